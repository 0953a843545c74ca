#!/usr/bin/env bash
# Fails when a C++ or CUDA source of the project is not formatted as .clang-format says, naming
# each file and its first differences. Fix with `clang-format -i FILE`.
# Usage: tests/check_format.sh [SOURCE_ROOT]
set -euo pipefail
root=${1:-"$(dirname "$0")/.."}
cd "$root"
if ! command -v clang-format >/dev/null; then
  echo "clang-format is not installed (Debian: clang-format; .ci/install installs it)"
  exit 1
fi
mapfile -t files < <(find engine nn models data train tests -type f \
  \( -name '*.h' -o -name '*.cpp' -o -name '*.cu' -o -name '*.cuh' \) | sort)
# One clang-format call for the whole tree; its warnings name each unformatted file.
mapfile -t unformatted < <(clang-format --dry-run "${files[@]}" 2>&1 |
  sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: warning: code should be clang-formatted.*/\1/p' | sort -u)
for file in "${unformatted[@]}"; do
  echo "not formatted: $file (clang-format -i $file)"
  diff <(clang-format "$file") "$file" | head -n 12 || true
done
if [ "${#unformatted[@]}" -gt 0 ]; then
  echo "${#unformatted[@]} file(s) not formatted ($(clang-format --version))"
  exit 1
fi
echo "all ${#files[@]} C++ and CUDA files are formatted ($(clang-format --version))"
