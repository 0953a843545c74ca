#!/bin/bash
# Proves HERE (as root, on this Debian 12 machine) that the GPU check's build needs nothing from
# the system's -dev packages: in a private mount namespace, an overlay on /usr whites out every
# file those packages installed (gtest, gmock, nlohmann-json, CLI11, toml++, turbojpeg, stb, ICU
# headers, zlib headers, pkg-config, MPI, Google Benchmark, OpenBLAS), then the build is
# configured as gpu_check.sh configures it, from the packages in .gpu-deps/ alone (gpu_deps.sh),
# every dependency found is checked to lie under the unpacked prefix, and one source file that
# includes each dependency is compiled. Not covered here: linking and loading (ICU's runtime
# libicu72 stays visible, as this machine's cmake itself links it), and CUDA (ENGINE_CUDA=OFF).
#   bash tests/bench/gpu_prepare.sh && bash tests/bench/gpu_deps_proof.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .gpu-deps ] || { echo "run tests/bench/gpu_prepare.sh first" >&2; exit 1; }
if [ "${1:-}" != --inside ]; then
  work=$(mktemp -d)
  mkdir -p "$work/up" "$work/work"
  hidden=(libgtest-dev libgmock-dev googletest nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
          libtomlplusplus3 libturbojpeg0-dev libturbojpeg0 libstb-dev libstb0 libicu-dev zlib1g-dev
          pkgconf-bin pkgconf pkg-config libpkgconf3 libopenmpi-dev libbenchmark-dev libopenblas-dev)
  for package in "${hidden[@]}"; do
    dpkg -L "$package" 2> /dev/null || true
  done | sed 's|^/lib/|/usr/lib/|' | grep '^/usr/' | sort -u | while IFS= read -r path; do
    [ -d "$path" ] && [ ! -L "$path" ] && continue  # folders stay (others share them)
    mkdir -p "$work/up$(dirname "${path#/usr}")"
    mknod "$work/up${path#/usr}" c 0 0  # an overlay whiteout: the file is gone
  done
  echo "whited out $(find "$work/up" -type c | wc -l) files"
  unshare -m --propagation private bash -c \
    "mount -t overlay overlay -o lowerdir=/usr,upperdir=$work/up,workdir=$work/work /usr &&
     exec bash $0 --inside"
  status=$?
  rm -rf "$work"
  exit $status
fi

for gone in /usr/include/gtest/gtest.h /usr/include/nlohmann/json.hpp /usr/include/CLI/CLI.hpp \
  /usr/include/toml++/toml.h /usr/include/turbojpeg.h /usr/include/stb/stb_image.h \
  /usr/include/unicode/uchar.h /usr/include/zlib.h /usr/bin/pkg-config /usr/lib/x86_64-linux-gnu/libicuuc.so \
  /usr/lib/x86_64-linux-gnu/libz.so /usr/lib/x86_64-linux-gnu/libgtest.a /usr/lib/x86_64-linux-gnu/libpkgconf.so.3; do
  [ ! -e "$gone" ] || { echo "gpu_deps_proof: $gone is still visible" >&2; exit 1; }
done
source tests/bench/gpu_deps.sh
prefix=/tmp/gpu-deps-proof
gpu_deps_unpack .gpu-deps "$prefix"
rm -rf build-proof
cmake -S . -B build-proof -G Ninja -DENGINE_CUDA=OFF -DENGINE_MPI=OFF -DENGINE_BUILD_BENCH=OFF \
  "${GPU_DEPS_CMAKE_ARGS[@]}" > build-proof.log 2>&1 || { tail -30 build-proof.log; exit 1; }
# Every dependency CMake found lies under the prefix (14 cache entries, one per file or folder).
found=$(grep -E '^(GTest_DIR|nlohmann_json_DIR|CLI11_DIR|ICU_INCLUDE_DIR|ICU_UC_LIBRARY_RELEASE|ZLIB_INCLUDE_DIR|ZLIB_LIBRARY_RELEASE|PKG_CONFIG_EXECUTABLE|pkgcfg_lib_(TURBOJPEG_turbojpeg|STB_stb|TOMLPP_tomlplusplus)|(TURBOJPEG|STB|TOMLPP)_INCLUDEDIR):' \
  build-proof/CMakeCache.txt | sed 's/:[A-Z]*=/=/')
echo "$found" | sed 's/^/  /'
[ "$(echo "$found" | wc -l)" -eq 14 ] || { echo "gpu_deps_proof: a dependency is missing above" >&2; exit 1; }
if echo "$found" | grep -v "=$prefix/"; then
  echo "gpu_deps_proof: the dependencies above were found outside $prefix" >&2
  exit 1
fi
# One source file per dependency compiles against the prefix alone.
objects=(engine/CMakeFiles/engine.dir/io/safetensors.cpp.o data/CMakeFiles/data.dir/decode.cpp.o
         models/CMakeFiles/models.dir/unicode_text.cpp.o models/CMakeFiles/models.dir/bpe_vocabulary.cpp.o
         train/CMakeFiles/train_runs.dir/runs/config.cpp.o tests/CMakeFiles/test_util.dir/test_util.cpp.o)
ninja -C build-proof -j"${JOBS:-2}" "${objects[@]}" train/CMakeFiles/cftrain.dir/cli/main.cpp.o \
  >> build-proof.log 2>&1 || { tail -30 build-proof.log; exit 1; }
echo "gpu_deps_proof: configured and compiled from .gpu-deps alone"
