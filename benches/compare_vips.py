#!/usr/bin/env python3
"""Comparison harness: thumbfarm vs libvips' vipsthumbnail on the same photos.

Both render the pre-generated set (fit_1920, fit_1280, tile_500, fit_720,
tile_224, tile_100, tile_50, colors) of each photo, pinned to one core
(`taskset -c 0`, VIPS_CONCURRENCY=1), in the same run. Reports the median
wall time per photo, throughput, and peak resident memory of each side,
as a Markdown table for docs/benchmarks.md.

vipsthumbnail makes one size per invocation, so it is measured three ways:
- `vips-each`: every size straight from the original (shrink-on-load), one
  `vipsthumbnail` process per size;
- `vips-cascade`: fit_1920 from the original, then the other sizes from that
  fit_1920 file — the same cascade thumbfarm uses;
- `libvips in-process` (when pyvips is installed): the same cascade through
  libvips' `thumbnail` operation inside one process, timing only the work
  (no process start-up), against thumbfarm's own in-process time (the
  `total` line of `thumbfarm-worker render`). This is the like-for-like
  library comparison; peak memory is the whole process's in both cases.

`djpeg` (libjpeg-turbo's, when installed) times one full-size decode of
each JPEG as a floor: the issue-10 goal is thumbfarm's whole pre-generated
set within 2.5× of it. The bytes per size of thumbfarm's outputs are summed
over the photos.

With `--isolate`, both thumbfarm measurements decode in a supervised child
process, as the worker does by default (`--isolate-decoders`): the whole
process then includes starting the child, and the in-process time includes
handing the job to a warm child and reading its outputs back.

Usage: benches/compare_vips.py [--runs N] [--isolate] [--bin target/release/thumbfarm-worker] FILE...
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

# (name, box, fill?) — the default pre-generated set, largest first.
SIZES = [
    ("fit_1920", "1920x1200", False),
    ("fit_1280", "1280x1024", False),
    ("tile_500", "500x500", True),
    ("fit_720", "720x720", False),
    ("tile_224", "224x224", True),
    ("tile_100", "100x100", True),
    ("tile_50", "50x50", True),
    ("colors", "3x3", True),
]


def run(cmd, env=None):
    """Runs cmd, returns (seconds, peak RSS in KiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if status != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.strip()[:300]}")
    return elapsed, usage.ru_maxrss


def vips_cmd(src, out_dir, name, box, fill):
    ext = "png" if name == "colors" else "jpg"
    q = "" if name == "colors" else "[Q=83,strip,interlace]"
    cmd = ["taskset", "-c", "0", "vipsthumbnail", src, "-s", box,
           "-o", os.path.join(out_dir, f"{name}.{ext}{q}")]
    if fill:
        cmd += ["-m", "centre"]
    return cmd


ISOLATE = []


def bench_thumbfarm(binary, src, out_dir):
    return run(["taskset", "-c", "0", binary, "render", *ISOLATE, "--source", src,
                "--sizes", "pregenerated", "--out", out_dir])


def run_timed(cmd, env=None):
    """Runs cmd, which prints `total <ms> ms` as its last line; returns
    (work seconds, peak RSS in KiB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.strip()[:300]}")
    last = [l for l in out.splitlines() if l.startswith("total ")][-1]
    return float(last.split()[1]) / 1000.0, usage.ru_maxrss


PYVIPS_JOB = r"""
import sys, time, pyvips
src, out = sys.argv[1], sys.argv[2]
sizes = [(n, int(b.split('x')[0]), int(b.split('x')[1]), f == 'True') for n, b, f in
         (a.split(':') for a in sys.argv[3:])]
pyvips.cache_set_max(0)
t = time.perf_counter()
base = None
for name, w, h, fill in sizes:
    source = src if base is None else base
    kw = {'height': h, 'size': 'down'} if not fill else {'height': h, 'crop': 'centre'}
    img = pyvips.Image.thumbnail(source, w, **kw)
    if name == 'colors':
        img.write_to_file(f'{out}/{name}.png', strip=True)
    else:
        path = f'{out}/{name}.jpg'
        img.write_to_file(path, Q=83 if w > 150 else 78, strip=True, interlace=True)
        if base is None:
            base = path
print(f'total {(time.perf_counter() - t) * 1000:.1f} ms')
"""


def bench_pyvips(src, out_dir, env):
    args = [f"{n}:{b}:{f}" for n, b, f in SIZES]
    return run_timed(["taskset", "-c", "0", sys.executable, "-c", PYVIPS_JOB, src, out_dir, *args], env)


def bench_thumbfarm_inproc(binary, src, out_dir):
    return run_timed(["taskset", "-c", "0", binary, "render", *ISOLATE, "--source", src,
                      "--sizes", "pregenerated", "--out", out_dir])


def bench_djpeg(src, out_dir):
    return run(["taskset", "-c", "0", "djpeg", "-outfile", os.path.join(out_dir, "full.ppm"), src])


def thumbfarm_bytes(binary, src):
    """Bytes per size of thumbfarm's outputs for `src` (from `render`'s lines)."""
    with tempfile.TemporaryDirectory() as d:
        out = subprocess.run([binary, "render", "--source", src, "--sizes", "pregenerated",
                              "--out", d], capture_output=True, text=True, check=True).stdout
    sizes = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[-1] == "bytes" and "_" in parts[0]:
            suffix = parts[0].split("_", 1)[1]
            sizes[suffix] = int(parts[-2])
    return sizes


def bench_vips_each(src, out_dir, env):
    total, peak = 0.0, 0
    for name, box, fill in SIZES:
        t, m = run(vips_cmd(src, out_dir, name, box, fill), env)
        total += t
        peak = max(peak, m)
    return total, peak


def bench_vips_cascade(src, out_dir, env):
    name, box, fill = SIZES[0]
    total, peak = run(vips_cmd(src, out_dir, name, box, fill), env)
    base = os.path.join(out_dir, "fit_1920.jpg")
    for name, box, fill in SIZES[1:]:
        t, m = run(vips_cmd(base, out_dir, name, box, fill), env)
        total += t
        peak = max(peak, m)
    return total, peak


def identify(path):
    try:
        out = subprocess.run(["vipsheader", path], capture_output=True, text=True, check=True)
        # "<file>: 4032x3024 uchar, 3 bands, srgb, jpegload"
        dims = out.stdout.split(":", 1)[1].split()[0]
        w, h = (int(v) for v in dims.split("x"))
        return w, h
    except Exception:  # noqa: BLE001 - best effort label
        return 0, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--bin", default="target/release/thumbfarm-worker")
    ap.add_argument("--isolate", action="store_true",
                    help="thumbfarm decodes in a supervised child (the worker's default)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if args.isolate:
        ISOLATE.append("--isolate")
    if not shutil.which("vipsthumbnail"):
        sys.exit("vipsthumbnail not found (apt-get install libvips-tools)")
    env = dict(os.environ, VIPS_CONCURRENCY="1")
    try:
        import pyvips  # noqa: F401
        have_pyvips = True
    except ImportError:
        have_pyvips = False
    rows = []
    totals = {k: [0.0, 0] for k in ("thumbfarm", "vips-each", "vips-cascade", "tf-inproc", "vips-inproc", "djpeg")}
    have_djpeg = shutil.which("djpeg") is not None
    bytes_per_size = {}
    for src in args.files:
        w, h = identify(src)
        results = {}
        benches = [("thumbfarm", lambda d: bench_thumbfarm(args.bin, src, d)),
                   ("vips-each", lambda d: bench_vips_each(src, d, env)),
                   ("vips-cascade", lambda d: bench_vips_cascade(src, d, env))]
        if have_pyvips:
            benches += [("tf-inproc", lambda d: bench_thumbfarm_inproc(args.bin, src, d)),
                        ("vips-inproc", lambda d: bench_pyvips(src, d, env))]
        if have_djpeg:
            benches.append(("djpeg", lambda d: bench_djpeg(src, d)))
        for suffix, n in thumbfarm_bytes(args.bin, src).items():
            bytes_per_size[suffix] = bytes_per_size.get(suffix, 0) + n
        for label, fn in benches:
            times, peaks = [], []
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory() as d:
                    t, m = fn(d)
                times.append(t)
                peaks.append(m)
            results[label] = (statistics.median(times), max(peaks))
            totals[label][0] += results[label][0]
            totals[label][1] = max(totals[label][1], results[label][1])
        rows.append((os.path.basename(src), w, h, results))

    print("| photo | pixels | thumbfarm ms | vips-each ms | vips-cascade ms | speed-up vs each | vs cascade | thumbfarm peak MiB | vips peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, w, h, r in rows:
        tf, ve, vc = r["thumbfarm"], r["vips-each"], r["vips-cascade"]
        print(f"| {name} | {w}×{h} ({w*h/1e6:.1f} MP) | {tf[0]*1000:.0f} | {ve[0]*1000:.0f} | "
              f"{vc[0]*1000:.0f} | {ve[0]/tf[0]:.2f}× | {vc[0]/tf[0]:.2f}× | "
              f"{tf[1]/1024:.0f} | {max(ve[1], vc[1])/1024:.0f} |")
    tf, ve, vc = totals["thumbfarm"], totals["vips-each"], totals["vips-cascade"]
    print(f"| **all** | | {tf[0]*1000:.0f} | {ve[0]*1000:.0f} | {vc[0]*1000:.0f} | "
          f"**{ve[0]/tf[0]:.2f}×** | **{vc[0]/tf[0]:.2f}×** | {tf[1]/1024:.0f} | {max(ve[1], vc[1])/1024:.0f} |")
    if not have_pyvips:
        print("\n(pyvips not installed: no in-process comparison; `pip install pyvips`)")
        return
    print()
    print("In-process work time (no process start-up), same cascade, one core:")
    print()
    print("| photo | thumbfarm ms | libvips ms | throughput ratio | thumbfarm peak MiB | libvips+python peak MiB |")
    print("|---|---|---|---|---|---|")
    for name, w, h, r in rows:
        tf, vp = r["tf-inproc"], r["vips-inproc"]
        print(f"| {name} | {tf[0]*1000:.0f} | {vp[0]*1000:.0f} | {vp[0]/tf[0]:.2f}× | {tf[1]/1024:.0f} | {vp[1]/1024:.0f} |")
    tf, vp = totals["tf-inproc"], totals["vips-inproc"]
    print(f"| **all** | {tf[0]*1000:.0f} | {vp[0]*1000:.0f} | **{vp[0]/tf[0]:.2f}×** | {tf[1]/1024:.0f} | {vp[1]/1024:.0f} |")
    if have_djpeg:
        print()
        print("thumbfarm's whole set (work) against one full-size `djpeg` decode (whole process):")
        print()
        print("| photo | thumbfarm ms | djpeg ms | ratio |")
        print("|---|---|---|---|")
        for name, w, h, r in rows:
            tf, dj = r["tf-inproc"], r["djpeg"]
            print(f"| {name} | {tf[0]*1000:.0f} | {dj[0]*1000:.0f} | {tf[0]/dj[0]:.2f}× |")
        tf, dj = totals["tf-inproc"], totals["djpeg"]
        print(f"| **all** | {tf[0]*1000:.0f} | {dj[0]*1000:.0f} | **{tf[0]/dj[0]:.2f}×** |")
    print()
    print("thumbfarm's bytes per size, summed over the photos:")
    print()
    print("| file suffix | bytes |")
    print("|---|---|")
    for suffix, n in sorted(bytes_per_size.items(), key=lambda kv: -kv[1]):
        print(f"| {suffix} | {n:,} |")
    print(f"| **all** | {sum(bytes_per_size.values()):,} |")


if __name__ == "__main__":
    main()
