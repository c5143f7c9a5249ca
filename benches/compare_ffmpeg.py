#!/usr/bin/env python3
"""Transcode speed: thumbfarm's transcoder vs the `ffmpeg` CLI, same settings,
same files, same run.

For every file, runs alternately (so both see the same machine state):
  - `thumbfarm-worker transcode` forced onto the encode path
    (THUMBFARM_VIDEO_MAX_REMUX_BITRATE=1 makes every H.264 source "too big
    to remux"),
  - `ffmpeg -c:v libx264 -preset P -crf C -pix_fmt yuv420p -c:a aac -b:a 128k
    -movflags +faststart` (thumbfarm's defaults),
and for H.264 MP4/MOV sources also the remux path of both
(`thumbfarm-worker transcode` with defaults, `ffmpeg -c copy -movflags
+faststart`). Prints the median wall time of each, the encode speed ratio
(ffmpeg time / thumbfarm time: above 1 means thumbfarm is faster) and the
output sizes. Both are pinned to the same cores with `taskset`.

Usage: benches/compare_ffmpeg.py [--runs N] [--cores 0-1] FILE...
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

WORKER = os.environ.get("THUMBFARM_WORKER", "target/release/thumbfarm-worker")
PRESET = os.environ.get("THUMBFARM_VIDEO_PRESET", "fast")
CRF = os.environ.get("THUMBFARM_VIDEO_CRF", "23")


def probe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path],
        capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def timed(cmd, env=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cores", default="0-1")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    pin = ["taskset", "-c", args.cores]
    tmp = tempfile.mkdtemp(prefix="tf-ffmpeg-")
    print(f"# preset {PRESET}, crf {CRF}, cores {args.cores}, {args.runs} runs, median wall seconds")
    print(f"{'file':42} {'seconds':>7} {'thumbfarm':>10} {'ffmpeg':>8} {'ratio':>6} "
          f"{'tf bytes':>9} {'ff bytes':>9}  {'tf remux':>8} {'ff remux':>8}")
    for src in args.files:
        p = probe(src)
        duration = float(p["format"].get("duration", 0))
        video = next((s for s in p["streams"] if s["codec_type"] == "video"), {})
        remuxable = video.get("codec_name") == "h264" and src.lower().endswith((".mp4", ".mov", ".m4v"))
        tf_out, ff_out = os.path.join(tmp, "tf.mp4"), os.path.join(tmp, "ff.mp4")
        force = dict(os.environ, THUMBFARM_VIDEO_MAX_REMUX_BITRATE="1",
                     THUMBFARM_VIDEO_PRESET=PRESET, THUMBFARM_VIDEO_CRF=CRF, THUMBFARM_LOG="warn")
        tf_cmd = pin + [WORKER, "transcode", "--source", src, "--out", tf_out]
        ff_cmd = pin + ["ffmpeg", "-y", "-v", "error", "-i", src, "-map", "0:v:0", "-map", "0:a:0?",
                        "-c:v", "libx264", "-preset", PRESET, "-crf", CRF, "-pix_fmt", "yuv420p",
                        "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", ff_out]
        tf_times, ff_times, tf_remux, ff_remux = [], [], [], []
        for _ in range(args.runs):
            t, out = timed(tf_cmd, env=force)
            if "path transcode" not in out:
                sys.exit(f"thumbfarm did not take the encode path: {out}")
            tf_times.append(t)
            ff_times.append(timed(ff_cmd)[0])
            if remuxable:
                t, out = timed(pin + [WORKER, "transcode", "--source", src, "--out", tf_out + ".remux.mp4"],
                               env=dict(os.environ, THUMBFARM_LOG="warn"))
                if "path remux" in out:
                    tf_remux.append(t)
                ff_remux.append(timed(pin + ["ffmpeg", "-y", "-v", "error", "-i", src, "-map", "0:v:0",
                                             "-map", "0:a:0?", "-c", "copy", "-movflags", "+faststart",
                                             ff_out + ".remux.mp4"])[0])
        tf, ff = statistics.median(tf_times), statistics.median(ff_times)
        fmt = lambda xs: f"{statistics.median(xs):8.3f}" if xs else f"{'-':>8}"
        print(f"{os.path.basename(src)[:42]:42} {duration:7.2f} {tf:10.3f} {ff:8.3f} {ff / tf:6.2f} "
              f"{os.path.getsize(tf_out):9d} {os.path.getsize(ff_out):9d}  {fmt(tf_remux)} {fmt(ff_remux)}")


if __name__ == "__main__":
    main()
