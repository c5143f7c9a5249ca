#!/usr/bin/env bash
# Installs what building and testing thumbfarm needs on Debian, skipping what
# is already there: FFmpeg dev packages, clang (for ffmpeg-next's bindgen),
# lcms2, cmake + nasm (libjpeg-turbo is built from source), libde265 + dav1d +
# libaom and
# a libheif 1.23 built from source (scripts/build-libheif.sh, once per machine:
# ~3 CPU-minutes; Debian's 1.15 cannot read iOS 18 HEICs), RabbitMQ, the
# comparison tools for benches, and an S3-compatible server (s3s-fs).
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"

packages=(
  pkg-config clang libclang-dev cmake nasm
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev ffmpeg
  libde265-dev libdav1d-dev libaom-dev g++ make curl liblcms2-dev
  rabbitmq-server
  libvips-tools wrk nginx-light chromium python3-venv
  libavif-bin webp libjpeg-turbo-progs jq
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v s3s-fs >/dev/null 2>&1; then
  echo "deps: building the S3 test server (cargo install s3s-fs, about 2 minutes)"
  cargo install --locked s3s-fs@0.14.1 --features binary
fi
# libheif 1.23 (static, decoders only); a no-op (~20 ms) when it is current.
"$(dirname "$0")/build-libheif.sh" >/dev/null
echo "deps: all present"
