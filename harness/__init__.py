"""harness: the benchmark harness that reproduces the paper's tables (`harness run --table N`).

Modules, one job each, from the bottom of the import graph up (no module imports one below it
in a cycle: tests/test_import_graph.py):
    errors     ConfigError and the other bad-input errors
    names      display names of backbones and tasks (read from their registries)
    methods    every method (zero-shot, SFT, LIVR, ablations) with its settings
    options    how a backbone is loaded and decoded (`--executor-opt`, --device, ...)
    protocol   how an untrained method is asked (a table's [zero_shot])
    config     table configs (tables/*.toml), overrides and validation
    paper      the paper's numbers
    parsing    answer extraction (MCQ letters, counts)
    items      what scoring reads and writes per example; the macro mean
    vsp_scoring, benchmarks   scoring of plans and of the generalisation benchmarks' answers
    metrics    scoring, per-task metrics, baselines
    cells      a cell's resolved config and hash
    plan       cells of a table against the built data: cost, sharding, what is missing
    executor   the model-side interface (CellExecutor) and the model-free executors
    samples    built records -> livr_core samples (image twice, the zero-shot protocol)
    modeling   a method's model from livr_core parts, greedy answers
    train_executor  the real executor (`livr`): train with livr_core, answer the test set
    store      the run store (cell folders, status, resume)
    runner     running cells: skip, resume, isolate crashes, score
    run_folder single runs (`train`, `eval`, `diagnose`): a run folder read back
    diagnose   usage diagnostics: latents removed, bottleneck at test, attention, pictures
    figures, visualize, plot   PNGs: shared settings, attention overlays and t-SNE, the chart
    report     the table in text, Markdown, CSV, LaTeX and JSON
    publish    a table's report on disk, never replaced by an emptier one
    rescore, parse_agreement   re-parsing saved outputs; the parser against reference corpora
    export_*   a trained run as a Hugging Face checkpoint; prediction files; lmms-eval and
               VLMEvalKit packs (packs/)
    doctor     checks of a machine, backbone and checkpoint before a long run
    mechanism  the synthetic check that LIVR's latents carry the image (docs/MECHANISM.md)
    demo, demo_progress   `harness demo` and its live progress
    cli        the `harness` command
"""
