#!/usr/bin/env bash
# Builds a current libheif (decoders: libde265 for HEVC/HEIC, dav1d for
# AV1/AVIF; one encoder: libaom for AVIF thumbnails) as a static, PIC library into a prefix and prints the environment
# that libheif-sys (feature v1_23, no embedded build) needs to find it.
#
#   scripts/build-libheif.sh               # build if missing; prints export lines
#   eval "$(scripts/build-libheif.sh)"     # ... and apply them to this shell
#
# Prefix: $THUMBFARM_LIBHEIF_PREFIX, default ~/.cache/thumbfarm/libheif-<version>
# (shared by every checkout on the machine, so a fresh clone does not rebuild),
# linked from <repo>/.tools/libheif-<version> (ignored by git and by the Docker
# context), where .cargo/config.toml points pkg-config. It holds a stamp
# (version + source checksum + cmake options); when the stamp matches, nothing
# is done (~20 ms), otherwise it is rebuilt in place. The installed libheif.pc
# is relocatable (prefix=${pcfiledir}/../..), so a CI cache may restore it anywhere.
# Cache key for CI: the SHA-256 of this file + the OS release.
#
# Source: libheif's release sources as vendored (unmodified, tag v1.23.1 minus
# examples/tests/fuzzing/heifio) in the libheif-sys crate on crates.io. crates.io
# is reachable wherever cargo works, and the tarball is checked against a pinned
# SHA-256 (the same one as in Cargo.lock). LIBHEIF_SRC=/path/to/libheif-1.23.1
# builds from an unpacked upstream release instead.
#
# System packages (Debian bookworm): cmake g++ make pkg-config curl libde265-dev libdav1d-dev libaom-dev.
# The static libheif links libde265.so.0, libdav1d.so.6 and libaom.so.3 dynamically
# (runtime packages libde265-0, libdav1d6, libaom3); binaries need no LD_LIBRARY_PATH/rpath and never
# load Debian's libheif.so.1.
set -euo pipefail

LIBHEIF_VERSION=1.23.1
CRATE=libheif-sys-5.3.1+1.23.1
CRATE_SHA256=f554864c5f34c7f285ff6acdcadb64bcc2a3de1609e9135cec702c5edc703864
CRATE_URL="https://static.crates.io/crates/libheif-sys/${CRATE/+/%2B}.crate"

CMAKE_OPTS=(
  -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_INSTALL_LIBDIR=lib
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON   # Rust links PIE executables
  -DBUILD_SHARED_LIBS=OFF
  -DBUILD_TESTING=OFF
  -DBUILD_DOCUMENTATION=OFF
  -DWITH_EXAMPLES=OFF
  -DWITH_GDK_PIXBUF=OFF
  -DENABLE_PLUGIN_LOADING=OFF
  -DWITH_REDUCED_VISIBILITY=ON
  -DENABLE_MULTITHREADING_SUPPORT=ON
  -DENABLE_PARALLEL_TILE_DECODING=ON
  -DWITH_LIBSHARPYUV=OFF                 # encoder-side RGB->YUV only
  -DWITH_UNCOMPRESSED_CODEC=OFF
  -DWITH_HEADER_COMPRESSION=OFF
  # Decoders we want, built in (not as plugins).
  -DWITH_LIBDE265=ON -DWITH_LIBDE265_PLUGIN=OFF
  -DWITH_DAV1D=ON -DWITH_DAV1D_PLUGIN=OFF
  # AVIF thumbnails: libaom's encoder, built in (dav1d decodes AV1).
  -DWITH_AOM_ENCODER=ON -DWITH_AOM_ENCODER_PLUGIN=OFF
  # Everything else off: no other encoders, no ffmpeg/openjpeg/... link deps.
  -DWITH_AOM_DECODER=OFF
  -DWITH_X265=OFF -DWITH_X264=OFF -DWITH_KVAZAAR=OFF -DWITH_UVG266=OFF
  -DWITH_VVDEC=OFF -DWITH_VVENC=OFF -DWITH_OpenH264_DECODER=OFF
  -DWITH_SvtEnc=OFF -DWITH_RAV1E=OFF
  -DWITH_JPEG_DECODER=OFF -DWITH_JPEG_ENCODER=OFF
  -DWITH_OpenJPEG_DECODER=OFF -DWITH_OpenJPEG_ENCODER=OFF -DWITH_OPENJPH_ENCODER=OFF
  -DWITH_FFMPEG_DECODER=OFF -DWITH_WEBCODECS=OFF
)

stamp=$(printf '%s\n' "$LIBHEIF_VERSION" "$CRATE_SHA256" "${CMAKE_OPTS[@]}" "pc-3" | sha256sum | cut -c1-16)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix="${THUMBFARM_LIBHEIF_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/thumbfarm/libheif-$LIBHEIF_VERSION}"
link="$repo/.tools/libheif-$LIBHEIF_VERSION"

# The archive is renamed libthumbfarm_heif.a (and the .pc says
# -lthumbfarm_heif): another crate's build script puts the system library
# directory on the link path first, where Debian's libheif-dev may have an
# older libheif.so that a plain -lheif would pick. Idempotent.
rename_archive() {
  local lib="$prefix/lib"
  if [[ -f "$lib/libheif.a" ]]; then
    mv -f "$lib/libheif.a" "$lib/libthumbfarm_heif.a"
  fi
  sed -i 's/ -lheif / -lthumbfarm_heif /' "$lib/pkgconfig/libheif.pc"
}

# <repo>/.tools/libheif-<version> -> the prefix (what .cargo/config.toml names).
link_into_repo() {
  [[ "$prefix" == "$link" ]] && return 0
  mkdir -p "$repo/.tools"
  if [[ -L "$link" || ! -e "$link" ]]; then
    ln -sfn "$prefix" "$link"
  else
    echo "build-libheif: $link exists and is not a link; leaving it" >&2
  fi
}

print_env() {
  echo "export PKG_CONFIG_PATH=\"$prefix/lib/pkgconfig\${PKG_CONFIG_PATH:+:\$PKG_CONFIG_PATH}\""
  echo "export THUMBFARM_LIBHEIF_PREFIX=\"$prefix\""
}

if [[ -f "$prefix/.stamp" && "$(cat "$prefix/.stamp")" == "$stamp" ]]; then
  echo "build-libheif: libheif $LIBHEIF_VERSION present in $prefix" >&2
  rename_archive
  link_into_repo
  print_env
  exit 0
fi

for tool in cmake c++ make pkg-config; do
  command -v "$tool" >/dev/null || { echo "build-libheif: missing $tool (apt-get install cmake g++ make pkg-config)" >&2; exit 1; }
done
for pc in libde265 dav1d aom; do
  pkg-config --exists "$pc" || { echo "build-libheif: missing $pc (apt-get install libde265-dev libdav1d-dev libaom-dev)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/libheif-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ -n "${LIBHEIF_SRC:-}" ]]; then
  src="$LIBHEIF_SRC"
else
  crate_file=""
  # Reuse cargo's download if the workspace already fetched libheif-sys.
  for f in "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"$CRATE.crate"; do
    [[ -f "$f" ]] && crate_file="$f" && break
  done
  if [[ -z "$crate_file" ]]; then
    crate_file="$work/$CRATE.crate"
    echo "build-libheif: downloading $CRATE_URL" >&2
    curl -fsSL --retry 3 -o "$crate_file" "$CRATE_URL"
  fi
  echo "$CRATE_SHA256  $crate_file" | sha256sum -c --quiet - >&2
  tar -xzf "$crate_file" -C "$work"
  src="$work/$CRATE/vendor/libheif"
  # The crate leaves out heifio (only used by the example tools).
  sed -i 's/^add_subdirectory(heifio)$/# heifio: examples only/' "$src/CMakeLists.txt"
fi

echo "build-libheif: building libheif $LIBHEIF_VERSION into $prefix" >&2
jobs="${LIBHEIF_JOBS:-$(nproc)}"
start=$(date +%s)
staging="$prefix.tmp.$$"
rm -rf "$staging"
cmake -S "$src" -B "$work/build" -DCMAKE_INSTALL_PREFIX="$prefix" "${CMAKE_OPTS[@]}" >"$work/cmake.log" 2>&1 \
  || { cat "$work/cmake.log" >&2; exit 1; }
grep -E "libde265 HEVC decoder|Dav1d AV1 decoder|AOM AV1 encoder" "$work/cmake.log" >&2 || true
nice -n "${LIBHEIF_NICE:-10}" cmake --build "$work/build" -j "$jobs" >"$work/build.log" 2>&1 \
  || { tail -50 "$work/build.log" >&2; exit 1; }
DESTDIR="$staging" cmake --install "$work/build" >/dev/null
# DESTDIR keeps the absolute prefix below the staging dir; move it into place
# atomically-ish so an interrupted build never leaves a half prefix with a stamp.
if [[ -e "$prefix" && ! -f "$prefix/.stamp" && -n "$(ls -A "$prefix" 2>/dev/null)" ]]; then
  echo "build-libheif: $prefix exists and was not made by this script; not replacing it" >&2
  exit 1
fi
rm -rf "$prefix"
mkdir -p "$(dirname "$prefix")"
mv "$staging$prefix" "$prefix"
rm -rf "$staging"

# libheif-sys asks pkg-config without --static, i.e. only "Libs: -lheif". With
# only libheif.a in the prefix the linker takes the archive, which then needs
# its private dependencies: move them into Libs so every consumer links.
pc="$prefix/lib/pkgconfig/libheif.pc"
private=$(sed -n 's/^Libs.private: *//p' "$pc")
dep_libs=$(pkg-config --libs libde265 dav1d aom)
# (-lstdc++ once: Libs.private already names it.)
sed -i "s|^Libs: .*|Libs: -L\${libdir} -lheif $dep_libs $private -lm -lpthread|" "$pc"
grep -q -- '-lstdc++' "$pc" || sed -i 's|^Libs: .*|& -lstdc++|' "$pc"
sed -i 's|^Cflags: .*|Cflags: -I${includedir} -DLIBHEIF_STATIC_BUILD|' "$pc"
sed -i 's|^Requires.private:.*|Requires.private:|; s|^Libs.private:.*|Libs.private:|' "$pc"
sed -i 's|^prefix=.*|prefix=${pcfiledir}/../..|' "$pc"
# The CMake package config is not relocatable; nothing here uses it.
rm -rf "$prefix/lib/cmake"

rename_archive
echo "$stamp" >"$prefix/.stamp"
link_into_repo
echo "build-libheif: done in $(( $(date +%s) - start ))s ($prefix, $(du -sh "$prefix" | cut -f1))" >&2
print_env
