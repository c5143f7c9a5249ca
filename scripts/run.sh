#!/usr/bin/env bash
# `make run`: builds thumbfarm, starts it in single-machine mode (in-process
# queue and worker, store under ./data), ingests the sample photos and prints
# a few ready thumbnail URLs. Ctrl-C stops it. The server's log goes to
# $THUMBFARM_DATA_DIR/thumbfarm.log so that the URLs printed last stay in view.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

PHOTOS=${PHOTOS:-../shared/corpus/seed}
export THUMBFARM_LISTEN=${THUMBFARM_LISTEN:-127.0.0.1:8080}
export THUMBFARM_API_KEYS=${THUMBFARM_API_KEYS:-local-dev-key-0123456789}
export THUMBFARM_DATA_DIR=${THUMBFARM_DATA_DIR:-./data}
base="http://$THUMBFARM_LISTEN"

echo "run: building (release)"
cargo build --release -q -p thumbfarm
# `thumbfarm` is the API with the worker in-process (single-machine mode).
bin=target/release/thumbfarm

mkdir -p "$THUMBFARM_DATA_DIR"
log="$THUMBFARM_DATA_DIR/thumbfarm.log"
"$bin" serve >>"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fs "$base/healthz" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { echo "run: the server did not start; its log ($log):" >&2; tail -20 "$log" >&2; exit 1; }
  sleep 0.2
done

if [ -e "$PHOTOS" ]; then
  echo "run: ingesting $PHOTOS"
  "$bin" ingest "$PHOTOS" --api-url "$base" --api-key "$THUMBFARM_API_KEYS" || true
else
  echo "run: no photos at $PHOTOS (set PHOTOS=folder)"
fi

echo
echo "run: thumbfarm is serving on $base — a few thumbnails:"
find "$PHOTOS" -maxdepth 1 -type f \( -iname '*.jpg' -o -iname '*.heic' -o -iname '*.png' \) 2>/dev/null \
  | sort | head -4 | while read -r f; do
    hash=$(sha1sum "$f" | cut -d' ' -f1)
    for size in tile_224 fit_720; do
      printf '  %-28s %s%s\n' "$(basename "$f") $size" "$base" "$("$bin" url "$hash" "$size")"
    done
  done
find "$PHOTOS" -maxdepth 1 -type f \( -iname '*.mp4' -o -iname '*.mov' \) 2>/dev/null \
  | sort | head -1 | while read -r f; do
    hash=$(sha1sum "$f" | cut -d' ' -f1)
    printf '  %-28s %s%s\n' "$(basename "$f") avc" "$base" "$("$bin" url "$hash" avc)"
  done
echo "  preview list: curl -H 'Authorization: Bearer $THUMBFARM_API_KEYS' $base/api/v1/previews/<hash>"
echo "  status page:  $base/   metrics: $base/metrics"
echo "  server log:   tail -f $log"
echo "run: Ctrl-C to stop"
wait $server
