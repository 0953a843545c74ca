#!/bin/bash
# The prepared GPU check of issue 6, for a session that is lent the H200 machine. From the
# repository root there:
#   bash tests/bench/gpu_check.sh "$OUT"
# It builds Release for sm_90, runs every CUDA test (ops, kernels, allocator, whole model,
# training, against the CPU) and the converter test (with HF transformers there), then
# `cftrain bench` and the PyTorch yardstick (tests/bench/bench_steps_pytorch.py) for ViT-B/16
# at batch 128 in fp32, tf32 and bf16, profiles the FT and full steps per kernel, and prints a
# table of ours against PyTorch last. Logs (build.log, tests.log, bench.log, profile.log,
# summary.txt) go to the output folder.
# Budget: about 2 min to build on 16 cores, 2 min of tests, 5 min of benchmarks (STEPS=20).
set -uo pipefail
out=${1:?usage: gpu_check.sh OUT_DIR}
steps=${STEPS:-20}
batch=${BATCH:-128}
cd "$(dirname "$0")/../.."
mkdir -p "$out"

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/bench.log" 2>&1
echo "== build" && date
if ! { cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DENGINE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 &&
       cmake --build build-gpu -j"$(nproc)" --target engine_tests models_tests train_tests cftrain; } > "$out/build.log" 2>&1; then
  tail -40 "$out/build.log"
  echo "gpu_check: the build failed (see build.log)"
  exit 1
fi

echo "== CUDA tests" && date
build-gpu/tests/engine_tests --gtest_filter='Cuda*:*CudaOp*' > "$out/tests.log" 2>&1
engine_rc=$?
build-gpu/tests/models_tests --gtest_filter='ClipCuda*' >> "$out/tests.log" 2>&1
models_rc=$?
build-gpu/tests/train_tests --gtest_filter='*Cuda*' >> "$out/tests.log" 2>&1  # training on the GPU
train_rc=$?
# The converter against HuggingFace transformers (installed there, not on the CPU machines).
python3 tests/weights/test_convert_clip.py --cftrain build-gpu/cftrain >> "$out/tests.log" 2>&1
converter_rc=$?
grep -E '^\[  (PASSED|FAILED|SKIPPED) |transformers' "$out/tests.log"

echo "== bench" && date
for precision in fp32 tf32 bf16; do
  build-gpu/cftrain bench --model vit-b16 --device cuda --batch "$batch" --precision "$precision" \
    --steps "$steps" --json > "$out/ours_$precision.json" 2>> "$out/bench.log"
  echo "cftrain bench $precision: exit $?" >> "$out/bench.log"
  PYTHONUNBUFFERED=1 python3 tests/bench/bench_steps_pytorch.py --model vit-b16 --device cuda --batch "$batch" \
    --precision "$precision" --steps "$steps" >> "$out/bench.log" 2>&1
done

# Where the time goes: per-kernel profile of the FT and full steps in bf16 and fp32.
for precision in bf16 fp32; do
  build-gpu/cftrain bench --model vit-b16 --device cuda --batch "$batch" --precision "$precision" --mode ft,full \
    --steps 3 --warmup 2 --profile 2 >> "$out/profile.log" 2>&1
done

# The table: ours and PyTorch's images/s per mode and precision, and their ratio.
python3 - "$out" <<'EOF' | tee "$out/summary.txt"
import json, os, re, sys
out = sys.argv[1]
torch = {}
for line in open(os.path.join(out, "bench.log")):
    m = re.match(r"vit-b16\s+(\w+)\s+(\w+)\s+cuda\s+\d+\s+[\d.]+\s+([\d.]+)\s+([\d.]+|nan)", line)
    if m:
        torch[(m[1], m[2])] = (float(m[3]), float(m[4]))
print(f"{'mode':7}{'prec':6}{'ours img/s':>12}{'torch img/s':>13}{'ratio':>8}{'ours MiB':>10}{'torch MiB':>11}")
for precision in ("fp32", "tf32", "bf16"):
    path = os.path.join(out, f"ours_{precision}.json")
    try:
        rows = json.load(open(path))
    except (OSError, ValueError):
        print(f"{precision}: no result from cftrain bench (see bench.log)")
        continue
    for row in rows:
        ours = row["images_per_second"]
        theirs, their_mib = torch.get((row["mode"], precision), (float("nan"), float("nan")))
        print(f"{row['mode']:7}{precision:6}{ours:>12.1f}{theirs:>13.1f}{ours / theirs:>8.2f}"
              f"{row['peak_bytes'] / 2**20:>10.0f}{their_mib:>11.0f}")
EOF
echo "CUDA tests exit: engine $engine_rc, model $models_rc, training $train_rc; converter test exit $converter_rc"
