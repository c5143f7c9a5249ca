#!/usr/bin/env bash
# `make bench`: criterion benches, the vipsthumbnail comparison and the HTTP
# load bench. Results go to stdout; docs/benchmarks.md records a run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release -q -p thumbfarm-worker -p thumbfarm-api -p thumbfarm
echo "## machine"; nproc; grep -m1 'model name' /proc/cpuinfo; free -g | head -2
echo "## criterion (render stages)"
cargo bench -q -p thumbfarm-worker --bench render -- --noplot 2>&1 | grep -E 'time:|^[a-z_/0-9]+' || true
# libvips in-process (pyvips) is the like-for-like library comparison.
python3 -c 'import pyvips' 2>/dev/null || pip install --quiet pyvips || true
# Full-size, intact phone and camera originals only (3–12 MP): a blank or
# truncated file flatters every decoder.
PHOTOS=(../shared/corpus/photos/*.jpg ../shared/corpus/raw/PXL_20200710_061629144.MP.jpg
  ../shared/corpus/raw/iphone6s_livephoto.jpg)
echo "## thumbfarm vs vipsthumbnail (one core each), decoders in process"
python3 benches/compare_vips.py --runs 3 "${PHOTOS[@]}"
echo "## the same with decoder isolation (the worker's default)"
python3 benches/compare_vips.py --runs 3 --isolate "${PHOTOS[@]}"
echo "## output formats: bytes at the JPEG's DSSIM, encode cost (WebP, AVIF)"
benches/formats.sh
echo "## video: thumbfarm transcoder vs the ffmpeg CLI (same settings)"
python3 benches/compare_ffmpeg.py --runs 3 \
  ../shared/corpus/seed/earth.avi ../shared/corpus/seed/earth.mov \
  ../shared/corpus/ext/video/bbb_1920x1080_60fps_vp8.webm \
  ../shared/corpus/ext/video/hdr10-video-with-sdr-container.mp4 \
  ../shared/corpus/ext/video/pixel7_videoOnly_cleaned.mp4
echo "## cached thumbnails over HTTP (wrk)"
benches/load.sh
echo "## cached thumbnails over HTTP, hot cache off (every hit reads the store)"
CACHE_BYTES=0 benches/load.sh
echo "## multi-replica load test: 3 API replicas behind nginx, 2 workers, RabbitMQ, S3"
cargo run --release -q -p thumbfarm-e2e --example cluster_load -- --sim-config target/cluster-load-sim.json
echo "## cluster simulation (benches/sim) of the same run, from the costs it measured"
python3 benches/sim/sim.py --config target/cluster-load-sim.json --repeat 5
