#!/usr/bin/env bash
# Output formats (docs/benchmarks.md, "Output formats: WebP and AVIF vs
# JPEG"): bytes of WebP and AVIF at the DSSIM of thumbfarm's JPEG, encode
# cost, the pre-generated set per format, and libavif (avifenc with aom and
# rav1e) against the in-process rav1e (ravif).
#
# Usage: benches/formats.sh [PART...]
#   PART: match speeds libavif sets (default: all of them), see
#   crates/worker/benches/formats.rs; its FORMATS_* variables pass through
#   (FORMATS_PHOTOS=jolla FORMATS_RUNS=1 for a quick run).
#
# Every encoder gets the same pixels: the bench resizes each photo once and
# writes the references as PNG ($out/refs), which is what avifenc reads.
# Everything runs on one core: RAYON_NUM_THREADS=1 (DSSIM), every encoder
# with one thread, avifenc -j 1.
# Output: the bench's Markdown on stdout and in $out/formats.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export THUMBFARM_CORPUS=${THUMBFARM_CORPUS:-$root/../shared/corpus}
out=${FORMATS_OUT:-$root/target/formats}
export FORMATS_REFS_DIR=${FORMATS_REFS_DIR:-$out/refs}
export RAYON_NUM_THREADS=1

for tool in avifenc avifdec jq; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
for photo in photos/HMD_Nokia_8.3_5G.jpg photos/canon_hdr_NO.jpg photos/iphone_hdr_NO.jpg \
  photos/jolla.jpg raw/PXL_20200710_061629144.MP.jpg raw/iphone6s_livephoto.jpg; do
  [ -f "$THUMBFARM_CORPUS/$photo" ] || { echo "missing corpus photo: $THUMBFARM_CORPUS/$photo" >&2; exit 1; }
done
mkdir -p "$out" "$FORMATS_REFS_DIR"

# Build once (release, the bench profile), then run the binary itself.
bin=$(cd "$root" && cargo bench -p thumbfarm-worker --bench formats --no-run --message-format=json |
  jq -r 'select(.reason == "compiler-artifact" and .target.name == "formats") | .executable // empty' | tail -n 1)
[ -x "$bin" ] || { echo "formats bench binary not built" >&2; exit 1; }

{
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "rustc: $(rustc --version)"
  echo "avifenc: $(avifenc --version 2>&1 | sed -n 's/^Version: //p' | head -n 1)"
  echo "command: RAYON_NUM_THREADS=1 $bin ${*:-all}"
  "$bin" "$@"
} | tee "$out/formats.md"

# Decoder cross-check: the bench decodes every AVIF with libheif (dav1d);
# avifdec (libavif + dav1d, libyuv) must give the same DSSIM.
ref=$(ls "$FORMATS_REFS_DIR"/*.fit_1280.png 2>/dev/null | head -n 1 || true)
if [ -n "$ref" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  echo
  echo "Decoder cross-check on $(basename "$ref") (DSSIM: libheif decode, then avifdec decode):"
  for yuv in 444 420; do
    avifenc -j 1 -c aom -s 6 -y "$yuv" --min 28 --max 28 "$ref" "$work/$yuv.avif" >/dev/null
    avifdec "$work/$yuv.avif" "$work/$yuv.png" >/dev/null
    "$bin" dssim "$ref" "$work/$yuv.avif" "$work/$yuv.png" | sed "s|$work/||; s/^/  $yuv: /"
  done | tee -a "$out/formats.md"
fi
