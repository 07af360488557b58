"""CLIP image embeddings through open_clip, with an on-disk cache keyed by image content.

The cache lives in `<cache_dir>/<model>--<pretrained>/` as `.npz` chunks of (sha256 of the image
bytes, L2-normalised float32 vector); a run appends one chunk for what it embedded, named with
host and pid and written atomically (`builders.atomic`: temporary file, fsync, rename), so an
interrupted run never leaves a corrupt chunk and two runs never write the same name. Random-weight
models (`pretrained=None`) are initialised from a fixed seed so their cache entries stay valid.

`tiny` is a small ViT built from open_clip's ViT-S-32 config with overrides: it needs no download
and embeds hundreds of images a second on a CPU, for tests and benchmarks of the plumbing.
"""

from __future__ import annotations

import io
import os
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from builders.atomic import atomic_write_bytes, host

# Overrides of open_clip's ViT-S-32 config giving a ~2M-parameter model for offline tests.
LOCAL_MODELS: dict[str, tuple[str, dict]] = {
    "tiny": ("ViT-S-32", {
        "embed_dim": 64,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }),
}


class ModelLoadError(RuntimeError):
    """open_clip could not build the model or fetch its weights."""


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no CUDA device")
    return device


class ClipEmbedder:
    """An open_clip image tower: `preprocess(img)` on worker threads, `encode(tensors)` batched."""

    def __init__(self, model: str, pretrained: str | None, device: str, seed: int) -> None:
        import open_clip  # imported here: it pulls in timm and the tokenizers

        self.model_name, self.pretrained = model, pretrained
        self.device = resolve_device(device)
        base, overrides = LOCAL_MODELS.get(model, (model, {}))
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                net, _, preprocess = open_clip.create_model_and_transforms(
                    base, pretrained=pretrained, device=self.device, **overrides)
        except (RuntimeError, ValueError, OSError) as exc:
            raise ModelLoadError(
                f"cannot build open_clip model {model!r} with pretrained={pretrained!r}: {exc}\n"
                f"(offline? `--pretrained none` uses random weights; known models: "
                f"open_clip.list_models() and {', '.join(LOCAL_MODELS)})") from exc
        self.net = net.eval()
        self.preprocess = preprocess
        self.dtype = next(net.parameters()).dtype

    @staticmethod
    def tag_for(model: str, pretrained: str | None, seed: int) -> str:
        """The cache namespace: random weights depend on the seed, pretrained ones do not."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_",
                      f"{model}--{pretrained if pretrained else f'random-seed{seed}'}")

    @torch.no_grad()
    def encode(self, tensors: Sequence[torch.Tensor]) -> np.ndarray:
        """(n, d) float32 L2-normalised embeddings of preprocessed images."""
        x = torch.stack(list(tensors)).to(self.device, self.dtype)
        if self.device.startswith("cuda"):
            with torch.autocast("cuda", dtype=torch.float16):
                feats = self.net.encode_image(x)
        else:
            feats = self.net.encode_image(x)
        feats = torch.nn.functional.normalize(feats.float(), dim=-1)
        return feats.cpu().numpy()

    def prepare(self, img: Image.Image) -> torch.Tensor:
        return self.preprocess(img)


class EmbeddingCache:
    """sha256 -> embedding for one model tag; `flush` persists what `put` added."""

    def __init__(self, root: Path, tag: str) -> None:
        self.dir = Path(root) / tag
        self._vecs: dict[str, np.ndarray] = {}
        self._new: dict[str, np.ndarray] = {}
        if self.dir.is_dir():
            for chunk in sorted(self.dir.glob("emb-*.npz")):
                try:
                    with np.load(chunk) as z:
                        self._vecs.update(zip(z["keys"].tolist(), z["vecs"]))
                except (OSError, ValueError, KeyError):
                    continue  # a damaged chunk only costs recomputation

    def __contains__(self, key: str) -> bool:
        return key in self._vecs

    def __len__(self) -> int:
        return len(self._vecs)

    def get(self, key: str) -> np.ndarray:
        return self._vecs[key]

    def put_many(self, keys: Iterable[str], vecs: np.ndarray) -> None:
        for k, v in zip(keys, vecs):
            self._vecs[k] = self._new[k] = np.asarray(v, dtype=np.float32)

    def flush(self) -> int:
        """Write the entries added since the last flush; returns how many."""
        if not self._new:
            return 0
        self.dir.mkdir(parents=True, exist_ok=True)
        n = len(list(self.dir.glob("emb-*.npz")))
        target = self.dir / f"emb-{n:05d}-{host()}-{os.getpid()}.npz"
        keys = np.array(list(self._new), dtype="U64")
        buf = io.BytesIO()
        np.savez(buf, keys=keys, vecs=np.stack(list(self._new.values())))
        atomic_write_bytes(target, buf.getvalue())
        written = len(self._new)
        self._new = {}
        return written


class LazyEmbedder:
    """Builds the CLIP model on first use, so a fully cached run never loads it."""

    def __init__(self, factory: Callable[[], ClipEmbedder]) -> None:
        self._factory = factory
        self._model: ClipEmbedder | None = None
        self._lock = threading.Lock()  # worker threads may all ask for it at once

    @property
    def model(self) -> ClipEmbedder:
        with self._lock:
            if self._model is None:
                self._model = self._factory()
        return self._model


def make_embedder(model: str, pretrained: str | None, device: str, seed: int,
                  cache_root: Path) -> tuple[LazyEmbedder, EmbeddingCache]:
    """A lazily built model and the cache of its embeddings."""
    cache = EmbeddingCache(cache_root, ClipEmbedder.tag_for(model, pretrained, seed))
    return LazyEmbedder(lambda: ClipEmbedder(model, pretrained, device, seed)), cache
