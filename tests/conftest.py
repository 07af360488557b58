"""Test-wide settings: never touch the network (only 127.0.0.1), never show progress bars; and
the miniature sources, written once per session."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="session")
def mini_sources(tmp_path_factory):
    """Every miniature source written once: source name -> its dataset folder (what
    --source-root points at). Tests must not modify these files."""
    from builders import miniature

    return miniature.write_all(tmp_path_factory.mktemp("sources"))
