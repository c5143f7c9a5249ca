#!/usr/bin/env bash
# HDR transcode cost (docs/benchmarks.md, issue 11 item 4): thumbfarm's
# tone-mapped transcode of the corpus HDR10 clip vs the same content as SDR,
# vs the ffmpeg CLI with the same filter graph and encoder settings.
# Usage: benches/hdr_video.sh [runs]   (needs target/*/thumbfarm-worker)
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
corpus=${THUMBFARM_CORPUS:-$root/../shared/corpus}
src=$corpus/ext/video/hdr10-video-with-sdr-container.mp4
bin=${THUMBFARM_WORKER_BIN:-$root/target/debug/thumbfarm-worker}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -f "$src" ] || { echo "missing $src" >&2; exit 1; }
graph="zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=hable:desat=0,zscale=t=bt709:m=bt709:r=tv,format=yuv420p"
# The same content as SDR (BT.709, 10-bit HEVC like the source).
ffmpeg -v error -y -i "$src" -vf "$graph,format=yuv420p10le" -c:v libx265 -preset fast \
  -x265-params log-level=error:colorprim=bt709:transfer=bt709:colormatrix=bt709 \
  -color_primaries bt709 -color_trc bt709 -colorspace bt709 -c:a copy "$work/sdr.mp4"
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_it() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
cli() { ffmpeg -v error -y -i "$1" ${2:+-vf "$2"} -c:v libx264 -preset fast -crf 23 -pix_fmt yuv420p \
  -color_primaries bt709 -color_trc bt709 -colorspace bt709 -c:a aac -b:a 128k -movflags +faststart "$work/cli.mp4"; }
for case in tf_hdr tf_sdr cli_hdr cli_sdr; do
  for _ in $(seq "$runs"); do
    case $case in
      tf_hdr) time_it "$bin" transcode --source "$src" --out "$work/out.mp4" ;;
      tf_sdr) time_it "$bin" transcode --source "$work/sdr.mp4" --out "$work/out.mp4" ;;
      cli_hdr) time_it cli "$src" "$graph" ;;
      cli_sdr) time_it cli "$work/sdr.mp4" "" ;;
    esac
  done | median | sed "s/^/$case /"
done
