"""`livr_core`'s public surface: every name of `__all__` is its owner module's object, imported
on first use; importing the package (and its configuration) costs no torch import."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import livr_core

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_is_its_owners_object():
    assert {"load_backbone", "LoadOptions", "add_latent_tokens", "LatentConfig", "Encoder",
            "Sample", "EncodingConfig", "apply_finetuning", "FinetuneConfig", "Trainer",
            "TrainConfig", "generate", "GenerationConfig", "MaskVariant",
            "export_pretrained"} <= set(livr_core.__all__)
    for name in livr_core.__all__:
        owner = importlib.import_module(livr_core._OWNERS[name])
        assert getattr(livr_core, name) is getattr(owner, name), name
    assert set(dir(livr_core)) >= set(livr_core.__all__)


def test_an_unknown_name_is_an_attribute_error():
    try:
        livr_core.TrainConfg  # noqa: B018 - the attribute access is the test
    except AttributeError as exc:
        assert "TrainConfg" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_configuration_names_import_no_torch():
    code = ("import sys; from livr_core import TrainConfig, LatentConfig, MaskVariant; "
            "TrainConfig(); import livr_core.backbones; "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
