#!/usr/bin/env bash
# Checks that every #include of the sources points down the project's layers, so that the folders
# can be read bottom up (each README gives the order):
#   engine < nn < models, data < train/common < train/pictures, train/method
#          < train/tools, train/eval, train/loop < train/report < train/demo < train/runs
#          < train/cli
# A folder may include itself and any folder of a lower rank, never a sibling of the same rank
# nor anything above it. Inside the engine, the CPU and CUDA backends share code only through
# engine/kernels (neither includes the other), and nothing outside engine/ includes a backend's
# own headers (engine/cpu, engine/cuda): it goes through the Backend interface.
# Usage: tests/check_layers.sh [SOURCE_ROOT]   (prints each violation; exit 1 if any)
set -euo pipefail
root=${1:-"$(dirname "$0")/.."}
cd "$root"

# Sets `layer` (engine, nn, ..., train/<folder>) and `rank` (empty: not a project folder) of
# the path $1.
classify() {
  local rest=${1#*/}
  layer=${1%%/*}
  [ "$layer" != train ] || layer=train/${rest%%/*}
  case "$layer" in
    engine) rank=0 ;;
    nn) rank=1 ;;
    models | data) rank=2 ;;
    train/common) rank=3 ;;
    train/pictures | train/method) rank=4 ;;
    train/tools | train/eval | train/loop) rank=5 ;;
    train/report) rank=6 ;;
    train/demo) rank=7 ;;
    train/runs) rank=8 ;;
    train/cli) rank=9 ;;
    *) rank="" ;;
  esac
}

violations=0
report() {
  echo "$1"
  violations=$((violations + 1))
}

while IFS= read -r file; do
  classify "$file"
  from=$layer
  from_rank=$rank
  if [ -z "$from_rank" ]; then
    report "$file: folder $from has no rank in tests/check_layers.sh"
    continue
  fi
  while IFS= read -r included; do
    classify "$included"
    [ -n "$rank" ] || continue  # not a project header
    if [ "$layer" != "$from" ] && [ "$rank" -ge "$from_rank" ]; then
      report "$file includes $included: $from may not depend on $layer"
    fi
    case "$file:$included" in
      engine/cuda/*:engine/cpu/* | engine/cpu/*:engine/cuda/*)
        report "$file includes $included: the backends share code only through engine/kernels" ;;
      engine/*) ;;
      *:engine/cpu/* | *:engine/cuda/*)
        report "$file includes $included: above engine/, use the Backend interface" ;;
    esac
  done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$file")
done < <(find engine nn models data train -type f \
  \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) | sort)

if [ "$violations" -gt 0 ]; then
  echo "$violations include(s) point up or across the layers"
  exit 1
fi
echo "every include points down the layers"
