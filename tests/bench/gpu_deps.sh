#!/bin/bash
# Sourced by gpu_check.sh (and by gpu_deps_proof.sh here): unpacks the Debian packages that
# gpu_prepare.sh fetched into .gpu-deps/ into a private prefix, with dpkg -x or, where dpkg is
# missing, ar + tar, and points the build at them:
#   source tests/bench/gpu_deps.sh && gpu_deps_unpack .gpu-deps /tmp/gpu-deps
# sets GPU_DEPS_CMAKE_ARGS (CMAKE_PREFIX_PATH, the pkg-config program: a wrapper that gives
# pkgconf its own library) and PKG_CONFIG_PATH. The packages' .pc files say prefix=/usr: they
# are rewritten to the prefix. CMake's package configurations are relocatable as they are, and
# the binaries find the unpacked shared libraries (ICU 72, turbojpeg, stb, toml++) through the
# build tree's RPATH.
gpu_deps_unpack() {
  local debs=$1 prefix=$2 deb
  rm -rf "$prefix" && mkdir -p "$prefix" || return 1
  for deb in "$debs"/*.deb; do
    if command -v dpkg-deb > /dev/null; then
      dpkg-deb -x "$deb" "$prefix" || return 1
    else
      local data
      data=$(ar t "$deb" | grep '^data\.tar') || return 1
      ar p "$deb" "$data" | tar -x -C "$prefix" -f - || return 1
    fi
  done
  local usr=$prefix/usr arch=x86_64-linux-gnu
  # Every variable set to a path under /usr (prefix, and libdir or includedir where they are
  # written out) moves under the prefix.
  find "$usr" -name '*.pc' -exec sed -i -E "s|^([A-Za-z_]+) *= */usr(/\| *\$)|\1=$usr\2|" {} + ||
    return 1
  if grep -rlE '^[A-Za-z_]+ *= */usr' "$usr"/lib/$arch/pkgconfig "$usr"/share/pkgconfig \
    2> /dev/null; then
    echo "gpu_deps: a .pc file above still points at /usr" >&2
    return 1
  fi
  export PKG_CONFIG_PATH=$usr/lib/$arch/pkgconfig:$usr/share/pkgconfig
  # pkgconf finds its own library through a wrapper: LD_LIBRARY_PATH stays as it was, so the
  # tests and PyTorch there keep loading the system's libraries (zlib, ...).
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$usr/lib/$arch" "$usr/bin/pkgconf" \
    > "$usr/bin/pkg-config" && chmod +x "$usr/bin/pkg-config" || return 1
  GPU_DEPS_CMAKE_ARGS=(-DCMAKE_PREFIX_PATH="$usr" -DPKG_CONFIG_EXECUTABLE="$usr/bin/pkg-config")
}
