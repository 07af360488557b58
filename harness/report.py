"""Tables in the paper's layout, from the run store: terminal text, Markdown, CSV, LaTeX, JSON.

Owns `Value`, `ReportRow`, `Block`, `TableReport`, `build_report` and the renderers
`render_text`, `render_markdown`, `render_csv`, `render_latex` and `render_json`. The PNG chart
is `harness.plot`'s; writing the files (and never an emptier report) is `harness.publish`'s.

Layout: rows are backbone x method, grouped in blocks (one per backbone and table section);
columns are the tasks and the Mean (the macro mean, shown only when every task of the row has a
result). A "Delta vs SFT" row follows the table's `delta` method. Each value reads "ours (paper)"
when the paper has the number for this backbone, method and task; the best value of a column in
a block is marked best and the second best second (ties share the mark; our numbers only):
bold / underlined in Markdown and LaTeX, a trailing `*` / `+` in terminal text (with ANSI bold /
underline added on a TTY), each format with a legend. Every table is titled by its metric. A
"Baselines" block on top gives the random-choice accuracy and the best constant answer on the
same test answers. The report reads cells by path; `harness run` has already refused folders
holding another config, so what it finds is what the table planned.

Reported rows (a table's `[reported]`: methods the toolkit does not run) show the paper's number
after the word "reported" ("reported (62.90)"), take no style and no Mean; their sources, and a
transfer table's training set, are listed under the table as notes. The random-choice baseline of
a task whose questions carry their own options is the cells' per-question chance.

A cell whose files cannot be read shows "damaged" and its file and fault are listed under the
table (`problems`); the other cells are reported as usual. Every report file is written
atomically.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from builders.registry import load_registry
from harness.config import TableConfig
from harness.items import macro_mean
from harness.metrics import random_baseline, sorted_hist
from harness.names import backbone_label, task_label
from harness.paper import paper_scores
from harness.store import DAMAGED, DAMAGED_FIX, DONE, NEW, RunStore

MEAN = "mean"
Style = Literal["", "best", "second"]
Kind = Literal["method", "delta", "baseline", "reported"]
REPORTED = "reported"  # the status of a reported row's values


@dataclass(frozen=True)
class Value:
    ours: float | None
    paper: float | None = None
    status: str = DONE  # of the cell behind the value; "new" = not run yet
    style: Style = ""


@dataclass(frozen=True)
class ReportRow:
    kind: Kind
    label: str
    method: str | None
    values: dict[str, Value]  # column -> value
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # task -> cell metrics


@dataclass(frozen=True)
class Block:
    backbone: str | None  # None for the baselines block
    section: str
    rows: tuple[ReportRow, ...]


@dataclass(frozen=True)
class TableReport:
    table: str
    title: str
    metric: str
    columns: tuple[str, ...]  # task names, then "mean"
    blocks: tuple[Block, ...]
    n: dict[str, str]  # task -> evaluated N ("528", or "50/528" when cells differ)
    notes: tuple[str, ...] = ()  # lines under the table: training set, sources of reported rows
    parsers: str = ""  # which harness.parsing version(s) read the answers (harness rescore)
    problems: tuple[str, ...] = ()  # damaged cell files, each named with its fault

    def column_label(self, column: str) -> str:
        return "Mean" if column == MEAN else task_label(column)


# --- building ---------------------------------------------------------------------------------


def _method_row(
    table: TableConfig, store: RunStore, backbone: str, method: str, label: str, metric: str,
    problems: dict[str, None],
) -> ReportRow:
    """One method's row; the files of damaged cells are added to `problems` (ordered set)."""
    paper = paper_scores(table.paper, backbone, method) if metric == "accuracy" else None
    paper = paper or {}
    values: dict[str, Value] = {}
    details: dict[str, dict[str, Any]] = {}
    for task in table.tasks:
        key = (table.name, backbone, table.cell_task(task), method)
        state = store.state(key)
        metrics = store.load_metrics(key)
        if state is not None and state.status == DAMAGED:
            problems[state.problem] = None
        task_metrics = (metrics or {}).get("tasks", {}).get(task)
        if task_metrics is not None:
            details[task] = task_metrics
        values[task] = Value(
            ours=task_metrics[metric] if task_metrics else None,
            paper=paper.get(task),
            status=DONE if task_metrics else (state.status if state else NEW),
        )
    # The paper's Mean is over its own task set; it is comparable only over the same set.
    paper_mean = paper.get(MEAN) if set(paper) - {MEAN} == set(table.tasks) else None
    values[MEAN] = Value(macro_mean(values[t].ours for t in table.tasks), paper_mean)
    return ReportRow("method", label, method, values, details)


def _reported_row(table: TableConfig, backbone: str, method: str, label: str) -> ReportRow:
    """A row the toolkit does not run: the paper's numbers only."""
    paper = paper_scores(table.paper, backbone, method) or {}
    values = {t: Value(None, paper.get(t), REPORTED) for t in table.tasks}
    values[MEAN] = Value(None, None, REPORTED)
    return ReportRow("reported", label, method, values)


def _notes(table: TableConfig) -> tuple[str, ...]:
    notes = [f"Trained on: {table.train_set_source}"] if table.training == "transfer" else []
    labels = {r.method: r.label for s in table.sections for r in s.rows}
    if table.reported:
        notes.append("reported: rows this toolkit does not run; the paper's numbers, from")
        notes += [f"  {labels[m]}: {src}" for m, src in table.reported.items()]
    return tuple(notes)


def _delta_row(row: ReportRow, base: ReportRow, label: str) -> ReportRow:
    def diff(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    values = {
        c: Value(diff(v.ours, base.values[c].ours), diff(v.paper, base.values[c].paper))
        for c, v in row.values.items()
    }
    return ReportRow("delta", label, None, values)


def _styled(rows: list[ReportRow], columns: Sequence[str]) -> list[ReportRow]:
    """Bold the best and underline the second-best value per column among the method rows."""
    out = list(rows)
    for column in columns:
        present = sorted(
            {r.values[column].ours for r in rows if r.kind == "method"} - {None}, reverse=True
        )
        filled = sum(r.kind == "method" and r.values[column].ours is not None for r in rows)
        if filled < 2:
            continue
        ranks = {present[0]: "best", **({present[1]: "second"} if len(present) > 1 else {})}
        for i, r in enumerate(out):
            v = r.values[column]
            if r.kind == "method" and v.ours in ranks:
                out[i] = replace(r, values={**r.values, column: replace(v, style=ranks[v.ours])})
    return out


def _baselines(table: TableConfig, method_rows: Sequence[ReportRow]) -> Block:
    registry = load_registry()
    random_values: dict[str, Value] = {}
    constant: dict[str, Value] = {}
    for task in table.tasks:
        found = next((r.details[task] for r in method_rows if task in r.details), None)
        # A cell measured chance over its own questions (per-question options); else the task's,
        # unknown until a cell ran when each question has its own options (tasks.toml 0).
        spec = registry.resolve(task)
        per_question = spec.answer_type == "mcq" and not spec.num_options
        chance = (found["random_baseline"] if found
                  else None if per_question else random_baseline(spec))
        random_values[task] = Value(chance)
        constant[task] = Value(found["constant_baseline"] if found else None)
    random_values[MEAN] = Value(macro_mean(random_values[t].ours for t in table.tasks))
    constant[MEAN] = Value(macro_mean(constant[t].ours for t in table.tasks))
    return Block(None, "Baselines", (
        ReportRow("baseline", "Random choice", None, random_values),
        ReportRow("baseline", "Best constant answer", None, constant),
    ))


def _evaluated_n(table: TableConfig, rows: Sequence[ReportRow]) -> dict[str, str]:
    out = {}
    for task in table.tasks:
        ns = sorted({r.details[task]["n"] for r in rows if task in r.details})
        out[task] = "/".join(map(str, ns)) if ns else "-"
    return out


# How each metric a report can show is named in titles and footers.
METRIC_LABELS = {"accuracy": "accuracy (%)",
                 "parse_failure_rate": "parse failures (% of test answers)"}


def metric_title(title: str, metric: str) -> str:
    """The table's title (which names accuracy, as the paper's captions do) for `metric`."""
    if metric == "accuracy":
        return title
    label = METRIC_LABELS.get(metric, f"{metric.replace('_', ' ')} (%)")
    for accuracy in (METRIC_LABELS["accuracy"], "accuracy"):
        if accuracy in title:
            return title.replace(accuracy, label, 1)
    return f"{title}: {label}"


def build_report(table: TableConfig, store: RunStore, metric: str = "accuracy") -> TableReport:
    """The table's report from the store; `metric` is a TaskMetrics field (e.g.
    "parse_failure_rate"): only accuracy gets paper numbers, Delta rows and baselines."""
    columns = (*table.tasks, MEAN)
    blocks: list[Block] = []
    all_rows: list[ReportRow] = []
    problems: dict[str, None] = {}
    for backbone in table.backbones:
        for section in table.sections:
            rows: list[ReportRow] = []
            for r in section.rows:
                if r.method in table.reported:
                    rows.append(_reported_row(table, backbone, r.method, r.label))
                    continue
                row = _method_row(table, store, backbone, r.method, r.label, metric, problems)
                rows.append(row)
                all_rows.append(row)
                delta = table.delta if metric == "accuracy" else None
                if delta and r.method == delta.method:
                    base = next((x for x in section.rows if x.method == delta.base), None)
                    if base is not None:
                        base_row = _method_row(table, store, backbone, base.method, base.label,
                                               metric, problems)
                        rows.append(_delta_row(row, base_row, delta.label))
            # Higher is better only for accuracy; rates such as parse failures are not ranked.
            styled = _styled(rows, columns) if metric == "accuracy" else rows
            blocks.append(Block(backbone, section.title, tuple(styled)))
    if metric == "accuracy":
        blocks.insert(0, _baselines(table, all_rows))
    return TableReport(table.name, metric_title(table.title, metric), metric, columns,
                       tuple(blocks), _evaluated_n(table, all_rows), _notes(table),
                       _parsers(all_rows), tuple(problems))


def _parsers(rows: Sequence[ReportRow]) -> str:
    """The parser version(s) (and judge) that scored the shown cells, for the footer."""
    found = {(d.get("parser_version"), d.get("judge")) for r in rows for d in r.details.values()}
    if not found:
        return ""
    names = sorted(f"{v if v is not None else 'unrecorded (before 2)'}"
                   + (f" with judge {j}" if j else "") for v, j in found)
    mixed = " (mixed: `harness rescore` re-reads them all)" if len(names) > 1 else ""
    return f"Answers parsed by harness.parsing version {', '.join(names)}{mixed}."


# --- rendering --------------------------------------------------------------------------------


def _number(x: float | None, signed: bool) -> str:
    if x is None:
        return "-"
    return f"{x:+.2f}" if signed else f"{x:.2f}"


def _cell_text(v: Value, kind: Kind, mark: Callable[[str, Style], str]) -> str:
    signed = kind == "delta"
    if v.status == REPORTED:
        reported = mark(REPORTED, "")
        return mark("-", "") if v.paper is None else f"{reported} ({_number(v.paper, signed)})"
    if v.ours is None and v.status not in (DONE, NEW):
        ours = mark(v.status, "")  # failed / interrupted / running: say so rather than "-"
    else:
        ours = mark(_number(v.ours, signed), v.style if v.ours is not None else "")
    return ours if v.paper is None else f"{ours} ({_number(v.paper, signed)})"


def _grid(report: TableReport, mark: Callable[[str, Style], str],
          section_label: Callable[[str], str]) -> list[tuple[bool, list[str]]]:
    """The header, then (starts a block, [backbone, row label, values...]) per printed row;
    a section title gets a row of its own."""
    grid = [(False, ["Backbone", "Method", *(report.column_label(c) for c in report.columns)])]
    previous = None
    for block in report.blocks:
        # The backbone is named once, on the first row of its first block (the paper's layout).
        name = "" if block.backbone in (None, previous) else backbone_label(block.backbone)
        previous = block.backbone
        first = True
        if block.section:
            grid.append((first, [name, section_label(block.section), *[""] * len(report.columns)]))
            name, first = "", False
        for row in block.rows:
            cells = [_cell_text(row.values[c], row.kind, mark) for c in report.columns]
            grid.append((first, [name, row.label, *cells]))
            name, first = "", False
    return grid


# Terminal text marks best / second with a trailing character; every number cell carries one
# (a space when unmarked) so decimal points stay aligned down a column.
TEXT_MARKS = {"best": "*", "second": "+", "": " "}


def _text_mark(text: str, style: Style) -> str:
    return text + TEXT_MARKS[style]


def _no_mark(text: str, style: Style) -> str:
    return text


def _ansi_mark(text: str, style: Style) -> str:
    code = {"best": "1", "second": "4"}.get(style)
    marked = _text_mark(text, style)
    return f"\x1b[{code}m{marked}\x1b[0m" if code else marked


def _styles_present(report: TableReport) -> bool:
    return any(v.style for b in report.blocks for r in b.rows for v in r.values.values())


def _has_paper(report: TableReport) -> bool:
    return any(v.paper is not None for b in report.blocks for r in b.rows
               for v in r.values.values())


def render_text(report: TableReport, color: bool = False) -> str:
    """Aligned text for a terminal: best / second marked `*` / `+` after the number (plus ANSI
    bold / underline with `color`), a legend under the table."""
    if _styles_present(report):
        mark, styled_mark = _text_mark, _ansi_mark if color else _text_mark
    else:  # nothing ranked (one row, or a rate): no mark column either
        mark = styled_mark = _no_mark
    plain = _grid(report, mark, lambda s: s)
    shown = _grid(report, styled_mark, lambda s: s)
    # Widths come from the unstyled text so escape codes do not skew the columns.
    widths = [max(len(cells[i]) for _, cells in plain) for i in range(len(plain[0][1]))]
    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    lines = [report.title, rule]
    for (starts, cells), (_, styled) in zip(plain, shown):
        if starts:
            lines.append(rule)
        lines.append("  ".join(
            s + " " * (w - len(p)) if i < 2 else " " * (w - len(p)) + s
            for i, (p, s, w) in enumerate(zip(cells, styled, widths))
        ).rstrip())
    lines += [rule, *_footer(report, f"{TEXT_MARKS['best']} best, {TEXT_MARKS['second']} second "
                                      "best"), *_problem_lines(report)]
    return "\n".join(lines) + "\n"


def _problem_lines(report: TableReport) -> list[str]:
    if not report.problems:
        return []
    head = f'Damaged cells, shown as "damaged" ({DAMAGED_FIX}):'
    return [head, *(f"- {p}" for p in report.problems)]


def _footer(report: TableReport, marks: str) -> list[str]:
    """Lines under a table: what the values are, what the marks mean (when any is shown), the
    evaluated N, the parser version and the table's notes. Only what the table shows is
    explained."""
    what = [f"Values: {METRIC_LABELS.get(report.metric, f'{report.metric} (%)')}"]
    if _has_paper(report):
        what.append("in parentheses: the paper's number")
    if any(r.kind == "delta" for b in report.blocks for r in b.rows):
        what.append("Delta rows in percentage points")
    lines = ["; ".join(what) + "."]
    if _styles_present(report):
        lines.append(f"Marks: {marks} of each column within a block (our numbers; ties share "
                     "a mark).")
    n = ", ".join(f"{task_label(t)} {v}" for t, v in report.n.items())
    lines.append(f"Evaluated N (test examples): {n}." + (f" {report.parsers}" if report.parsers
                                                          else ""))
    return lines + list(report.notes)


def render_markdown(report: TableReport, extra: Sequence[TableReport] = ()) -> str:
    """A Markdown table (best **bold**, second <u>underlined</u>), then `extra` tables (e.g.
    parse-failure rates) and the histograms of predicted answers."""
    def mark(text: str, style: Style) -> str:
        return {"best": f"**{text}**", "second": f"<u>{text}</u>"}.get(style, text)

    def table_md(rep: TableReport, heading: str) -> list[str]:
        grid = [cells for _, cells in _grid(rep, mark, lambda s: f"*{s}*")]
        out = [heading, "", "| " + " | ".join(grid[0]) + " |",
               "|" + "|".join(["---", "---"] + ["---:"] * len(rep.columns)) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in grid[1:]]
        footer = _footer(rep, "**bold** best, <u>underlined</u> second best")
        problems = _problem_lines(rep)
        return out + [line for f in footer for line in ("", f)] + (
            [""] + problems if problems else []) + [""]

    lines = table_md(report, f"## {report.title}")
    for rep in extra:
        lines += table_md(rep, f"### {rep.title}")
    lines += _histograms(report)
    return "\n".join(lines).rstrip() + "\n"


def _hist(h: Mapping[str, int]) -> str:
    # metrics.json stores keys sorted as text ("10" before "2"); show them in answer order.
    return " ".join(f"{k}:{v}" for k, v in sorted_hist(h).items())


def _histograms(report: TableReport) -> list[str]:
    lines = ["### Predicted answers (counts; gold in brackets)", ""]
    seen = set()
    for block in report.blocks:
        for row in block.rows:
            key = (block.backbone, row.method)
            if row.kind != "method" or key in seen or not row.details:
                continue
            seen.add(key)
            for task, d in row.details.items():
                lines.append(f"- {backbone_label(block.backbone or '')} / {row.label} / "
                             f"{task_label(task)}: {_hist(d['pred_hist'])} "
                             f"[{_hist(d['gold_hist'])}]")
    return lines if len(lines) > 2 else []


def render_csv(report: TableReport) -> str:
    """One line per row; for each column our value and the paper's (empty when absent)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    head = ["backbone", "section", "row", "method", "kind"]
    for c in report.columns:
        head += [c, f"{c}_paper"]
    writer.writerow(head)
    for block in report.blocks:
        for row in block.rows:
            line = [block.backbone or "", block.section, row.label, row.method or "", row.kind]
            for c in report.columns:
                v = row.values[c]
                line += ["" if v.ours is None else f"{v.ours:.4f}",
                         "" if v.paper is None else f"{v.paper:.2f}"]
            writer.writerow(line)
    return buf.getvalue()


_TEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    escaped = "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)
    return escaped.replace("->", r"$\rightarrow$")


def render_latex(report: TableReport) -> str:
    """A booktabs tabular: \\textbf best, \\underline second, the paper's number in parentheses."""
    def mark(text: str, style: Style) -> str:
        return {"best": rf"\textbf{{{text}}}", "second": rf"\underline{{{text}}}"}.get(style, text)

    ncol = 2 + len(report.columns)
    lines = [r"\begin{tabular}{ll" + "c" * len(report.columns) + "}", r"\toprule",
             " & ".join(["Backbone", "Method", *(_tex(report.column_label(c))
                                                  for c in report.columns)]) + r" \\",
             r"\midrule"]
    for b, block in enumerate(report.blocks):
        if b:
            lines.append(r"\midrule")
        name = "" if block.backbone is None else _tex(backbone_label(block.backbone))
        if block.section:
            lines.append(rf"\multicolumn{{{ncol}}}{{l}}{{\textit{{{_tex(block.section)}}}}} \\")
        for row in block.rows:
            cells = [name, _tex(row.label)]
            cells += [_cell_text(row.values[c], row.kind, mark) for c in report.columns]
            lines.append(" & ".join(cells) + r" \\")
            name = ""
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render_json(report: TableReport) -> str:
    data = asdict(report)
    if not data["notes"]:
        del data["notes"]  # tables without notes keep their JSON as it was
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
