#!/bin/bash
# The GPU machine's check (issue 14), in two stages, each one `run` call of the device tool.
# That machine has CUDA 13, cmake, ninja and PyTorch but no package registry, so the Debian
# packages the build needs travel with the call: first, HERE, `bash tests/bench/gpu_prepare.sh`
# (fills the ignored .gpu-deps/, about 22 MiB; `bash tests/bench/gpu_deps_proof.sh` shows the
# build configures from them alone). Then the two calls, from the repository root there:
#   run(command="bash tests/bench/gpu_check.sh tests $OUT", carry=[".gpu-deps"], timeout_s=600)
#   run(command="bash tests/bench/gpu_check.sh bench $OUT", carry=[".gpu-deps"], timeout_s=600)
# (the second right after the first, while the machine is warm: it reuses build-gpu/, and
# rebuilds cftrain when the machine is fresh). Back here, with the two calls' files_at folders:
#   python3 tests/bench/gpu_results.py --tests T/tests.json --bench B --out tests/bench/results/h200-$(date +%F).json
# "tests": unpacks .gpu-deps into /tmp/gpu-deps, builds Release for sm_90 with ninja and MPI off,
#   runs every CUDA test (engine, whole model, training) with CUDA_LAUNCH_BLOCKING=1 so a fault
#   names its kernel, the kernel suite under compute-sanitizer memcheck, and the converter test
#   (HF transformers is there); writes tests.json {passed, failed, skipped} and the logs to OUT.
#   Exit 1 when a stage fails or times out, a test fails, or a CUDA test is SKIPPED (on that
#   machine a skip means the device was not found; the skip message says why, in
#   cudaGetErrorString's words).
# "bench": cftrain bench and tests/bench/bench_steps_pytorch.py for ViT-B/16 at batch 128,
#   modes infer, ft, ftfd, cam, full in fp32, tf32 and bf16 (STEPS=10 timed after 2 warm-up
#   steps), then a per-kernel profile of ft and full in bf16; writes ours_<prec>.json,
#   torch.log, profile.log and bench.json (the rows of the results file) to OUT.
# Every stage runs under `timeout`, the caps of a call summing to under 600 s (tests: configure
# 45, build 270, tests 60 + 30 + 60, memcheck 75, converter 40; bench: 3 x (110 + 60), profile
# 60); each call leaves at most 8 files in OUT, as many as the device tool brings back.
set -uo pipefail
stage=${1:?usage: gpu_check.sh tests|bench OUT_DIR}
out=${2:?usage: gpu_check.sh tests|bench OUT_DIR}
steps=${STEPS:-10}
batch=${BATCH:-128}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
export PATH=$PATH:/usr/local/cuda/bin  # nvcc, compute-sanitizer where the toolkit keeps them
failures=()
# step NAME SECONDS COMMAND...: runs COMMAND under a timeout, logs NAME's exit status.
step() {
  local name=$1 seconds=$2
  shift 2
  echo "== $name ($(date +%T), at most ${seconds}s)" >&2  # stdout may be a result file
  timeout --kill-after=10 "$seconds" "$@"
  local rc=$?
  [ "$rc" -eq 0 ] || failures+=("$name: exit $rc$([ "$rc" -eq 124 ] && echo ' (timed out)')")
  return "$rc"
}

build() {  # build TARGETS...: configure (once) and build with the carried packages
  source tests/bench/gpu_deps.sh
  gpu_deps_unpack .gpu-deps /tmp/gpu-deps || { echo "gpu_check: no .gpu-deps (carry it)"; exit 1; }
  step configure 45 cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DENGINE_CUDA=ON \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DENGINE_MPI=OFF -DENGINE_BUILD_BENCH=OFF \
    "${GPU_DEPS_CMAKE_ARGS[@]}" > "$build_log" 2>&1 &&
    step build 270 cmake --build build-gpu -j"$(nproc)" --target "$@" >> "$build_log" 2>&1
  local rc=$?
  [ "$rc" -eq 0 ] || { tail -40 "$build_log"; echo "gpu_check: ${failures[*]}"; exit 1; }
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nvcc --version | tail -2
  g++ --version | head -1
  cmake --version | head -1
  grep PRETTY_NAME /etc/os-release
  command -v compute-sanitizer dpkg-deb ninja
} > "$out/env.log" 2>&1
cat "$out/env.log"

if [ "$stage" = tests ]; then
  build_log=$out/build.log
  build engine_tests models_tests train_tests cftrain
  export CUDA_LAUNCH_BLOCKING=1
  : > "$out/tests.log"
  step engine_tests 60 build-gpu/tests/engine_tests --gtest_filter='Cuda*:*CudaOp*' >> "$out/tests.log" 2>&1
  step models_tests 30 build-gpu/tests/models_tests --gtest_filter='ClipCuda*' >> "$out/tests.log" 2>&1
  step train_tests 60 build-gpu/tests/train_tests --gtest_filter='*Cuda*' >> "$out/tests.log" 2>&1
  step memcheck 75 compute-sanitizer --tool memcheck --error-exitcode 1 \
    build-gpu/tests/engine_tests --gtest_filter='CudaKernels*' > "$out/memcheck.log" 2>&1
  step converter 40 python3 tests/weights/test_convert_clip.py --cftrain build-gpu/cftrain \
    > "$out/converter.log" 2>&1
  # Counts from the three CUDA runs (the memcheck run repeats the kernel suite).
  python3 - "$out" <<'PY' || failures+=("a CUDA test failed or was skipped (tests.json)")
import json, re, sys
out = sys.argv[1]
log = open(f"{out}/tests.log").read()
counts = {k: sum(int(n) for n in re.findall(rf"^\[  {k.upper():6}\s*\] (\d+) tests?", log, re.M))
          for k in ("passed", "failed", "skipped")}
counts["skipped_tests"] = re.findall(r"^\[  SKIPPED \] (\S+)\n", log, re.M)
json.dump(counts, open(f"{out}/tests.json", "w"), indent=1)
print(counts)
sys.exit(1 if counts["failed"] or counts["skipped"] or not counts["passed"] else 0)
PY
  grep -E '^\[  (FAILED|SKIPPED) |^(ERROR|Error)|Skipped|cudaGetDeviceCount' "$out/tests.log" | head -40
  tail -n 3 "$out/memcheck.log" "$out/converter.log"
  cp "$out/tests.json" build-gpu/tests.json 2> /dev/null
elif [ "$stage" = bench ]; then
  build_log=$out/bench.log  # 8 files at most come back
  [ -x build-gpu/cftrain ] || build cftrain
  for precision in fp32 tf32 bf16; do
    step "cftrain bench $precision" 110 build-gpu/cftrain bench --model vit-b16 --device cuda \
      --batch "$batch" --precision "$precision" --steps "$steps" --json \
      > "$out/ours_$precision.json" 2>> "$out/bench.log"
    PYTHONUNBUFFERED=1 step "pytorch $precision" 60 python3 tests/bench/bench_steps_pytorch.py \
      --model vit-b16 --device cuda --batch "$batch" --precision "$precision" --steps "$steps" \
      >> "$out/torch.log" 2>&1
  done
  step profile 60 build-gpu/cftrain bench --model vit-b16 --device cuda --batch "$batch" \
    --precision bf16 --mode ft,full --steps 3 --warmup 2 --profile 2 > "$out/profile.log" 2>&1
  tests=()
  [ -f build-gpu/tests.json ] && tests=(--tests build-gpu/tests.json)
  python3 tests/bench/gpu_results.py "${tests[@]}" --bench "$out" --out "$out/bench.json" ||
    failures+=("gpu_results.py")
else
  echo "gpu_check: unknown stage $stage (tests or bench)"
  exit 2
fi

if ((${#failures[@]})); then
  echo "gpu_check $stage FAILED:"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "gpu_check $stage: passed"
