#!/bin/bash
# Data-parallel scaling on the CPU: the same training run (the method, FT + FD +
# ObjMaskSingleFill(0.3), on the demo's pre-trained ViT and its generated 32 px images, one epoch,
# global batch BATCH) under `mpirun -np 1` and `mpirun -np 2`, one kernel thread per rank, REPEATS
# times each. Every run's speed is the images of its steps after the first WARMUP divided by
# their time (from the per-step images_per_s of rank 0's metrics.jsonl, which counts the global
# batch); the script prints each run with the machine's load (`uptime`) before and after it
# and the CPU time all its ranks used (user + system, from /usr/bin/time on mpirun, start-up and
# warm-up included), then the median of each configuration and the ratio of the medians. On a
# busy machine the ranks share the cores with other work and images/s measure that share; the
# CPU time per image does not depend on it.
#   bash tests/bench/bench_data_parallel.sh [CFTRAIN]      (default: build/cftrain)
# Environment: BATCH (128), WARMUP (2), STEPS (10, measured), REPEATS (3), MPIRUN (mpirun),
# WORK (a fresh temporary folder; the runs' directories go there). The demo model is pre-trained
# and cached on first use ($XDG_CACHE_HOME/cftrain or ~/.cache/cftrain; minutes): a one-step
# run does that before any measurement.
set -euo pipefail
cftrain=$(realpath "${1:-build/cftrain}")
batch=${BATCH:-128}
warmup=${WARMUP:-2}
steps=${STEPS:-10}
repeats=${REPEATS:-3}
mpirun=${MPIRUN:-mpirun}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"

# The run's config: one epoch of WARMUP + STEPS optimizer steps, no validation, no checkpoint
# but the last, a metrics record per step.
config() {  # config FILE IMAGES RUN_DIR
  cat > "$1" <<EOF
[model]
weights = "demo:pretrained"
[data]
train = "demo:finetune"
holdout = 0
limit = $2
[train]
mode = "ft_fd_mask"
strategy = "ObjMaskSingleFill(0.3)"
w_distill = 1.0
lr = 3e-4
epochs = 1
batch = $batch
accum = 1
log_every = 1
checkpoint_every = 0
[run]
dir = "$3"
device = "cpu"
EOF
}

# Images per second of the steps after the warm-up: sum of images over sum of step times.
speed() {  # speed METRICS_JSONL
  grep '"type":"step"' "$1" | sed 's/.*"images_per_s":\([0-9.eE+-]*\).*/\1/' |
    awk -v skip="$warmup" -v b="$batch" \
      'NR > skip { n++; t += b / $1 } END { if (n) printf "%.1f\n", n * b / t; else print "nan" }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "cftrain: $cftrain"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "$("$mpirun" --version | head -1)"
echo "run: ft_fd_mask ObjMaskSingleFill(0.3), demo model, global batch $batch, $warmup warm-up + $steps measured steps, --threads 1 per rank"

config "$work/prepare.toml" "$batch" "$work/prepare"
"$cftrain" --threads 1 train --config "$work/prepare.toml" > "$work/prepare.log" 2>&1 ||
  { cat "$work/prepare.log"; exit 1; }

config "$work/run.toml" $((batch * (warmup + steps))) "$work/run"
declare -A results
for ranks in 1 2; do
  for r in $(seq "$repeats"); do
    dir="$work/np${ranks}_$r"
    before=$(uptime | sed 's/.*load average: //')
    /usr/bin/time -f "%e %U %S" -o "$dir.time" \
      "$mpirun" --allow-run-as-root --oversubscribe -np "$ranks" "$cftrain" --threads 1 \
      train --config "$work/run.toml" --set run.dir="$dir" > "$dir.log" 2>&1 ||
      { cat "$dir.log"; exit 1; }
    after=$(uptime | sed 's/.*load average: //')
    s=$(speed "$dir/metrics.jsonl")
    results[$ranks]+="$s "
    cpu=$(awk '{ printf "%.1f s wall, %.1f s CPU", $1, $2 + $3 }' "$dir.time")
    echo "np $ranks run $r: $s images/s ($cpu)   load before: $before   after: $after"
  done
done

m1=$(echo "${results[1]}" | tr ' ' '\n' | grep . | median)
m2=$(echo "${results[2]}" | tr ' ' '\n' | grep . | median)
echo "median np 1: $m1 images/s   np 2: $m2 images/s   ratio np 2 / np 1: $(awk -v a="$m2" -v b="$m1" 'BEGIN { printf "%.2f", a / b }')"
echo "runs in $work"
