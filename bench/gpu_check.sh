#!/usr/bin/env bash
# The GPU check: what one machine with one CUDA GPU runs (in under 8 minutes) to measure the
# toolkit on the real architectures, writing one JSON per step plus summary.json:
#
#   env.json         torch / CUDA / GPU versions
#   livr_step.json   LIVR stage-1 step (sdpa bool mask, flex BlockMask) vs direct SFT (fastest
#                    kernel) on Qwen2.5-VL-3B as published (36 layers, random bf16), batch 1 x 8:
#                    ratios, tokens/s, peak memory  (bench/bench_livr_step.py --real-arch)
#   livr_step_qwen3.json  the same on Qwen3-VL-4B
#   doctor.json      `harness doctor` on a real-configuration directory at published widths
#                    (livr_core.realconfig, 2 layers), on CUDA
#   dedup.json       dedup end to end vs its CLIP-embedding floor, on CUDA (bench/bench_dedup.py)
#   eval.json        batched vs one-by-one evaluation throughput on the real-configuration
#                    directory (bench/bench_eval.py)
#
# Usage: bench/gpu_check.sh [--cpu] [--install] [OUT_DIR]
#   OUT_DIR    where the JSON goes (default: $OUT, else ./gpu_check_out)
#   --cpu      smoke run on the CPU: the same steps at CI widths and toy sizes (minutes), to know
#              the script works before a GPU is spent on it
#   --install  run `pip install -e .` first (the only install; nothing is downloaded at run time:
#              weights are random, HF_HUB_OFFLINE=1)
# Exit status: 0 when every step succeeded and doctor found no FAIL, else 1.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CPU=0
INSTALL=0
DEST=""
for arg in "$@"; do
    case "$arg" in
        --cpu) CPU=1 ;;
        --install) INSTALL=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
        *) DEST="$arg" ;;
    esac
done
DEST="$(mkdir -p "${DEST:-${OUT:-gpu_check_out}}" && cd "${DEST:-${OUT:-gpu_check_out}}" && pwd)"
cd "$ROOT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TQDM_DISABLE=1
if [ "$INSTALL" = 1 ]; then pip install -e . || exit 1; fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

if [ "$CPU" = 1 ]; then
    DEVICE=cpu
    WIDTHS=ci
    STEP_ARGS=(--device cpu --widths ci --layers 2 --steps 1 --image-width 112 --image-height 112
               --threads 2 --no-flex)
    DOCTOR_ARGS=(--steps 1 --image-size 112x112 --executor-opt batch_size=2
                 --executor-opt max_new_tokens=4)
    DEDUP_ARGS=(--device cpu --n-train 40 --n-ref 10)
    EVAL_ARGS=(--device cpu --examples 4 --batch-size 2 --rounds 1 --threads 2)
else
    DEVICE=cuda
    WIDTHS=real
    STEP_ARGS=(--steps 3)
    DOCTOR_ARGS=(--steps 3)
    DEDUP_ARGS=(--device cuda)
    EVAL_ARGS=(--device cuda --examples 64 --batch-size 16 --rounds 3 --threads 4)
fi

FAILED=()
SECONDS_OF=()
# step NAME COMMAND...: stdout -> NAME.json (unless the command writes it), stderr -> NAME.log
step() {
    local name="$1"
    shift
    local start=$SECONDS
    echo "== $name: $*" >&2
    if "$@" >"$DEST/$name.out" 2>"$DEST/$name.log"; then
        echo "   ok ($((SECONDS - start)) s)" >&2
    else
        echo "   FAILED ($((SECONDS - start)) s): tail of $DEST/$name.log" >&2
        tail -n 5 "$DEST/$name.log" >&2
        FAILED+=("$name")
    fi
    SECONDS_OF+=("$name=$((SECONDS - start))")
    # a step whose stdout is its JSON: keep it as NAME.json
    if python -c "import json,sys; json.load(open(sys.argv[1]))" "$DEST/$name.out" 2>/dev/null
    then mv "$DEST/$name.out" "$DEST/$name.json"; fi
}

step env python - <<'EOF'
import json, platform, torch, transformers, peft
info = {"python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__,
        "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda}
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                bf16=torch.cuda.is_bf16_supported())
print(json.dumps(info, indent=2))
EOF
if [ "$CPU" = 0 ] && ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check.sh: CUDA is not available here; use --cpu for the smoke run" >&2
    exit 1
fi

step livr_step python bench/bench_livr_step.py --real-arch "${STEP_ARGS[@]}"
step livr_step_qwen3 python bench/bench_livr_step.py --real-arch --backbone qwen3-vl-4b \
    "${STEP_ARGS[@]}"

CHECKPOINT="$WORK/qwen2.5-vl-3b-$WIDTHS"
step checkpoint python -c "
import sys
from livr_core.realconfig.checkpoints import write_checkpoint
print(write_checkpoint('qwen2.5-vl-3b', sys.argv[1], widths=sys.argv[2]))" "$CHECKPOINT" "$WIDTHS"
step doctor python -m harness.cli doctor --backbone qwen2.5-vl-3b \
    --executor-opt "source=$CHECKPOINT" --executor-opt "device=$DEVICE" \
    --json "$DEST/doctor.json" "${DOCTOR_ARGS[@]}"
if [ "$CPU" = 0 ]; then  # the opt-in test suite at published widths (1-2 GB per checkpoint)
    step real_widths python -m pytest -q -p no:cacheprovider -m real_widths tests/livr_core
fi
step dedup python bench/bench_dedup.py "${DEDUP_ARGS[@]}"
step eval python bench/bench_eval.py --backbone qwen2.5-vl-3b --source "$CHECKPOINT" \
    "${EVAL_ARGS[@]}"

python - "$DEST" "$CPU" "${#FAILED[@]}" "${FAILED[@]}" -- "${SECONDS_OF[@]}" <<'EOF'
import json, sys
from pathlib import Path
dest, cpu, n = Path(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3])
failed = sys.argv[4:4 + n]
seconds = dict(x.split("=") for x in sys.argv[5 + n:])
def load(name):
    path = dest / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None
step, doctor, dedup, evaluation = load("livr_step"), load("doctor"), load("dedup"), load("eval")
summary = {
    "mode": "cpu smoke" if cpu else "gpu",
    "failed_steps": failed,
    "seconds": {k: int(v) for k, v in seconds.items()},
    "livr_step_ratio_to_sft_median": step and {k: v.get("ratio_to_sft_median")
                                      for k, v in step.get("arms", {}).items()},
    "doctor_failed_checks": doctor and doctor["failed"],
    "dedup": dedup and {k: v for k, v in dedup.items() if "ratio" in k},
    "eval_batched_over_one_by_one": evaluation and evaluation["ratio_batched_over_one_by_one"],
}
(dest / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
EOF
echo "written: $DEST" >&2
[ "${#FAILED[@]}" -eq 0 ]
