#!/bin/bash
# Run HERE (a Debian 12 machine with apt and network), before the GPU machine's check: fetches the
# Debian packages the build needs and the GPU machine lacks (it has no package registry: no
# gtest, nlohmann-json, CLI11, toml++, turbojpeg, stb, ICU headers, zlib headers, pkg-config)
# into .gpu-deps/ (ignored by git, about 23 MiB), for `run`'s carry. gpu_check.sh unpacks them
# there with `dpkg -x` (or ar + tar) into a private prefix; nothing is installed on either
# machine. MPI is left out (the check configures with ENGINE_MPI=OFF), and so are Google
# Benchmark and OpenBLAS (ENGINE_BUILD_BENCH=OFF: cftrain bench is part of cftrain).
#   bash tests/bench/gpu_prepare.sh            # then see gpu_check.sh's header for the calls
set -euo pipefail
cd "$(dirname "$0")/../.."
packages=(
  libgtest-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev libtomlplusplus3
  libturbojpeg0-dev libturbojpeg0 libstb-dev libstb0 libicu-dev libicu72 zlib1g-dev zlib1g
  pkgconf-bin libpkgconf3
)
rm -rf .gpu-deps
mkdir -p .gpu-deps
# Only the lists of the configured sources are read; a machine that has fresh lists needs no update.
apt-get download --print-uris "${packages[@]}" > /dev/null 2>&1 || apt-get update -qq
(cd .gpu-deps && apt-get download "${packages[@]}")
# Plain names (package.deb): the versions' '%3a', '~' and '+' are no use in a carried path.
for package in "${packages[@]}"; do
  mv .gpu-deps/"${package}"_*.deb .gpu-deps/"$package.deb"
done
du -sh .gpu-deps
