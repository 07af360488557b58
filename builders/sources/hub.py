"""Finding a dataset inside a Hugging Face hub cache, for readers of HF-hosted datasets.

`snapshot_download(repo_id)` without `local_dir` stores a dataset under
`~/.cache/huggingface/hub/datasets--<owner>--<name>/snapshots/<revision>/`; the revision named by
`refs/main` is the one to read (else the only snapshot). `candidates` lists the folders a reader
should try for a given `--source-root`: the path itself, its usual top folders, then the snapshot.
"""

from __future__ import annotations

from pathlib import Path


def hub_folder(repo_id: str) -> str:
    """The hub cache's folder name of dataset `repo_id` ("owner/name")."""
    return "datasets--" + repo_id.replace("/", "--")


def hub_snapshot(path: Path, repo_id: str) -> Path | None:
    """The snapshot of dataset `repo_id` when `path` is (or holds) its hub cache folder."""
    folder = hub_folder(repo_id)
    for repo in (path, path / folder, path / "hub" / folder):
        snaps = repo / "snapshots"
        if repo.name == folder and snaps.is_dir():
            ref = repo / "refs" / "main"
            if ref.is_file():
                return snaps / ref.read_text(encoding="utf-8").strip()
            found = sorted(p for p in snaps.iterdir() if p.is_dir())
            return found[0] if len(found) == 1 else None
    return None


def candidates(path: Path, top_folders: tuple[str, ...], repo_ids: tuple[str, ...]) -> list[Path]:
    """`path`, `path/<top>` for each usual top folder, and the hub snapshot of each repo id."""
    path = Path(path)
    snaps = [s for r in repo_ids if (s := hub_snapshot(path, r)) is not None]
    return [path, *(path / n for n in top_folders), *snaps]
