#!/usr/bin/env bash
# Load bench for cached thumbnails: wrk against thumbfarm (local store; the
# API is the same code as thumbfarm-api, the in-process worker only renders)
# and against nginx serving the same file from the same directory, same run.
# Prints a Markdown table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PHOTO=${PHOTO:-../shared/corpus/seed/elephants.jpg}
API_PORT=${API_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
bin=target/release/thumbfarm
[ -x "$bin" ] || cargo build --release -q -p thumbfarm

work=$(mktemp -d)
trap 'kill $api 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT

THUMBFARM_CACHE_BYTES=${CACHE_BYTES:-268435456} THUMBFARM_LISTEN=127.0.0.1:$API_PORT THUMBFARM_DATA_DIR="$work/data" THUMBFARM_API_KEYS=bench-key-0123456789 \
  THUMBFARM_LOG=warn "$bin" serve >/dev/null 2>&1 &
api=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.1; done
"$bin" ingest "$PHOTO" --api-url "http://127.0.0.1:$API_PORT" --api-key bench-key-0123456789 >/dev/null
hash=$(sha1sum "$PHOTO" | cut -d' ' -f1)
path=$("$bin" url "$hash" tile_224)
# First request renders (on demand) if ingest's bulk job has not finished yet.
curl -fs -o /dev/null "http://127.0.0.1:$API_PORT$path"
key=$(cd "$work/data" && find thumbs -name "${hash}_224x224_center.jpg" | head -1)
bytes=$(stat -c %s "$work/data/$key")

cat >"$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $work/data;
    location / { add_header Cache-Control "public, max-age=31536000, immutable"; etag on; }
  }
}
CONF
nginx -c "$work/nginx.conf"

measure() { # url -> "rps p50 p99"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    $1=="50%" {p50=$2}
    $1=="99%" {p99=$2}
    END {print rps, p50, p99}'
}
read -r a_rps a_p50 a_p99 < <(measure "http://127.0.0.1:$API_PORT$path")
read -r n_rps n_p50 n_p99 < <(measure "http://127.0.0.1:$NGINX_PORT/$key")
echo "| server | requests/s | p50 | p99 |"
echo "|---|---|---|---|"
echo "| thumbfarm-api (local store, tile_224, $bytes bytes) | $a_rps | $a_p50 | $a_p99 |"
echo "| nginx 1 worker, sendfile (same file) | $n_rps | $n_p50 | $n_p99 |"
python3 -c "print(f'| ratio | {float(\"$a_rps\")/float(\"$n_rps\"):.2f}× | | |')"
