"""Evaluation throughput of the harness: examples per second, batched against one by one; JSON.

Times what `LivrExecutor` does for a test split once the model is built: records -> samples
(image decoding) -> greedy generation (`harness.modeling.generate_texts`) of a LIVR model (K=16
latents after the prompt, fresh LoRA) on a tiny backbone, with the generation batch size at 1
and at `--batch-size`. The records are Jigsaw-like: the real registry prompt (the tiny tokenizer
spends one token per byte, ~480 prompt tokens) and three images (a 400x200 canvas and two
200x100 patches). An untrained tiny model rarely stops early, so every arm decodes
`max_new_tokens` (16) steps per example: the worst case for batching, where rows that
finished cannot leave the batch.

Torch runs one thread by default (`--threads`). Arms run in interleaved rounds so load drift on a shared machine hits them alike; the JSON holds
every round's seconds, the median examples/s per arm, the batched/one-by-one ratio, and whether
both arms gave identical answers (they must: answers do not depend on the batch size).

    python bench/bench_eval.py                       # tiny-qwen2.5-vl, 32 examples, CPU
    python bench/bench_eval.py --batch-size 16 --examples 64 --device cuda
    python bench/bench_eval.py --backbone qwen2.5-vl-3b --source DIR --device cuda   # real arch
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tiny backbones are built in code

import numpy as np
import torch
from PIL import Image

from builders.record import Record, make_idx
from builders.registry import load_registry
from harness.methods import get_method
from harness.modeling import generate_texts, prepare
from harness.options import ModelOptions
from harness.samples import to_samples


def _png(rng: np.random.Generator, width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def jigsaw_like(n: int, seed: int = 0) -> list[Record]:
    spec = load_registry().resolve("jigsaw")
    rng = np.random.default_rng(seed)
    return [
        Record(
            idx=make_idx(spec, "test", i), question=spec.question, sub_task=spec.sub_task,
            images=[_png(rng, 400, 200), _png(rng, 200, 100), _png(rng, 200, 100)],
            choices=list(spec.choices), answer="(A)", prompt=spec.prompt, explanation="",
            task=spec.name, split="test", source="{}",
        )
        for i in range(1, n + 1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="tiny-qwen2.5-vl")
    parser.add_argument("--source", help="checkpoint directory of a real backbone (e.g. a "
                        "livr_core.realconfig directory); default: the backbone's own")
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: a tiny model's forward is mostly Python "
                             "overhead, and on a busy 2-core machine extra threads only contend)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    options = ModelOptions(device=args.device, progress=False, source=args.source)
    prepared = prepare(args.backbone, get_method("livr"), options, seed=42)
    records = jigsaw_like(args.examples)
    arms = {"one_by_one": 1, f"batch_{args.batch_size}": args.batch_size}
    seconds: dict[str, list[float]] = {name: [] for name in arms}
    answers: dict[str, dict[str, str]] = {}
    generate_texts(prepared, to_samples(records[:2], with_answer=False), options)  # warm-up
    for _ in range(args.rounds):
        for name, size in arms.items():
            start = time.perf_counter()
            samples = to_samples(records, with_answer=False)
            answers[name] = generate_texts(prepared, samples, replace(options, batch_size=size))
            seconds[name].append(time.perf_counter() - start)
    rate = {name: args.examples / statistics.median(s) for name, s in seconds.items()}
    single, batched = rate["one_by_one"], rate[f"batch_{args.batch_size}"]
    print(json.dumps({
        "backbone": args.backbone,
        "source": args.source,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "examples": args.examples,
        "max_new_tokens": options.max_new_tokens,
        "rounds": args.rounds,
        "arms": {
            name: {"batch_size": arms[name], "seconds": [round(x, 3) for x in seconds[name]],
                   "examples_per_s": round(rate[name], 2)}
            for name in arms
        },
        "ratio_batched_over_one_by_one": round(batched / single, 2),
        "identical_answers": len(set(map(json.dumps, answers.values()))) == 1,
    }, indent=2))


if __name__ == "__main__":
    main()
