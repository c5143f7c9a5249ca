#!/usr/bin/env bash
# Load bench for stored thumbnails: wrk against thumbfarm (the API is the
# same code as thumbfarm-api, the in-process worker only renders) and, same
# run, against what serves the same bytes without thumbfarm:
#   STORE=local (default): nginx serving the file from the same directory;
#   STORE=s3: the S3 server itself (a presigned GET of the same object;
#     S3_ENDPOINT, default the s3s-fs of scripts/services.sh).
# CACHE_BYTES=0 turns the hot cache off: every request reads the store.
# Prints a Markdown table for docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
PHOTO=${PHOTO:-../shared/corpus/seed/elephants.jpg}
STORE=${STORE:-local}
S3_ENDPOINT=${S3_ENDPOINT:-http://127.0.0.1:8014}
S3_KEY=${THUMBFARM_TEST_S3_ACCESS_KEY:-thumbfarm}
S3_SECRET=${THUMBFARM_TEST_S3_SECRET_KEY:-thumbfarm-secret}
BUCKET=tf-load-$RANDOM$RANDOM
API_PORT=${API_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18081}
bin=target/release/thumbfarm
[ -x "$bin" ] || cargo build --release -q -p thumbfarm

work=$(mktemp -d)
trap 'kill $api $worker 2>/dev/null || true; nginx -c "$work/nginx.conf" -s stop 2>/dev/null || true; rm -rf "$work"' EXIT

store_env=()
worker=
if [ "$STORE" = s3 ]; then
  # With a bucket, thumbfarm is distributed: the broker and a worker render.
  store_env=(THUMBFARM_S3_BUCKET="$BUCKET" THUMBFARM_S3_ENDPOINT="$S3_ENDPOINT" THUMBFARM_S3_PATH_STYLE=true
    THUMBFARM_S3_CREATE_BUCKET=true AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION=us-east-1
    THUMBFARM_AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}")
  [ -x target/release/thumbfarm-worker ] || cargo build --release -q -p thumbfarm-worker
  env "${store_env[@]}" THUMBFARM_METRICS_LISTEN=127.0.0.1:0 THUMBFARM_LOG=warn target/release/thumbfarm-worker run >/dev/null 2>&1 &
  worker=$!
fi
env "${store_env[@]}" THUMBFARM_CACHE_BYTES=${CACHE_BYTES:-268435456} THUMBFARM_LISTEN=127.0.0.1:$API_PORT THUMBFARM_DATA_DIR="$work/data" THUMBFARM_API_KEYS=bench-key-0123456789 \
  THUMBFARM_LOG=warn "$bin" serve >/dev/null 2>&1 &
api=$!
for _ in $(seq 1 300); do curl -fs "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.1; done
"$bin" ingest "$PHOTO" --api-url "http://127.0.0.1:$API_PORT" --api-key bench-key-0123456789 >/dev/null
hash=$(sha1sum "$PHOTO" | cut -d' ' -f1)
path=$("$bin" url "$hash" tile_224)
# First request renders (on demand) if ingest's bulk job has not finished yet.
curl -fs -o /dev/null "http://127.0.0.1:$API_PORT$path"
if [ "$STORE" = s3 ]; then
  key="thumbs/${hash:0:1}/${hash:1:1}/${hash:2:1}/${hash}_224x224_center.jpg"
  direct=$(python3 benches/presign.py "$S3_ENDPOINT" "$BUCKET" "$key" "$S3_KEY" "$S3_SECRET")
  bytes=$(curl -fs "$direct" | wc -c)
else
  key=$(cd "$work/data" && find thumbs -name "${hash}_224x224_center.jpg" | head -1)
  bytes=$(stat -c %s "$work/data/$key")
fi

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
[ "$STORE" = s3 ] || nginx -c "$work/nginx.conf"

measure() { # url -> "rps p50 p99"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" | awk '
    /Requests\/sec/ {rps=$2}
    $1=="50%" {p50=$2}
    $1=="99%" {p99=$2}
    END {print rps, p50, p99}'
}
read -r a_rps a_p50 a_p99 < <(measure "http://127.0.0.1:$API_PORT$path")
if [ "$STORE" = s3 ]; then
  read -r n_rps n_p50 n_p99 < <(measure "$direct")
  other="the S3 server itself (presigned GET, same object)"
else
  read -r n_rps n_p50 n_p99 < <(measure "http://127.0.0.1:$NGINX_PORT/$key")
  other="nginx 1 worker, sendfile (same file)"
fi
echo "| server | requests/s | p50 | p99 |"
echo "|---|---|---|---|"
echo "| thumbfarm-api ($STORE store, hot cache ${CACHE_BYTES:-268435456} bytes, tile_224, $bytes bytes) | $a_rps | $a_p50 | $a_p99 |"
echo "| $other | $n_rps | $n_p50 | $n_p99 |"
python3 -c "print(f'| ratio | {float(\"$a_rps\")/float(\"$n_rps\"):.2f}× | | |')"
