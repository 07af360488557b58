"""Test-wide settings: never touch the network (only 127.0.0.1), never show progress bars; and
the miniature sources, written once per session."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def real_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """`real_checkpoint(backbone)`: the CI real-configuration directory of a real backbone
    (`livr_core.realconfig`: published config, tokenizer and processor files, 2 layers, reduced
    widths, random bf16 weights), written once per test session."""
    from livr_core.realconfig.checkpoints import write_checkpoint

    root = tmp_path_factory.mktemp("real-checkpoints")
    written: dict[str, object] = {}

    def get(backbone: str):
        if backbone not in written:
            written[backbone] = write_checkpoint(backbone, root / backbone)
        return written[backbone]

    return get


@pytest.fixture(scope="session")
def mini_sources(tmp_path_factory):
    """Every miniature source written once: source name -> its dataset folder (what
    --source-root points at). Tests must not modify these files."""
    from builders import miniature

    return miniature.write_all(tmp_path_factory.mktemp("sources"))
