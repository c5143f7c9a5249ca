#!/usr/bin/env python3
"""Discrete-event simulation of a thumbfarm cluster (issue 13, items 4 and 5).

    python3 benches/sim/sim.py                        # default scenario (small)
    python3 benches/sim/sim.py --scenario backfill_100m
    python3 benches/sim/sim.py --scenario sweep       # workers / prefetch search
    python3 benches/sim/sim.py --config my.json       # inputs and/or a scenario
    python3 benches/sim/sim.py --list                 # scenarios and TO MEASURE inputs
    python3 benches/sim/sim.py --self-test            # queueing-theory checks
    ... --json                                        # JSON instead of Markdown
    ... --s3-profile aws|local-s3s-fs --seed N --window S --set key=JSON

Python 3.11 standard library only. Every measured or assumed number lives in
benches/sim/inputs.json with a `source`; "TO MEASURE" marks placeholders.

What is modelled (and where it comes from in the code):

* Clients: closed loop (N connections, each sends its next request when
  the last is answered, like the load test in tests/common/cluster.rs) or
  open loop (Poisson arrivals behind a CDN hit ratio). A request is an
  ingest, a miss or a hit; assets are Zipf-popular. Misses: `sequence` asks
  for the next rendition nobody asked for yet, in the load test's order;
  `first_request` for one of K renditions that are not pre-generated (a miss
  until rendered, so the same miss repeats); `fresh` keeps a steady share of
  misses for steady-state runs.
* API replicas (crates/api): a load balancer sends each request round-robin
  to a replica; a replica spends `api.cpu_s_per_request` on one of its cores
  (FIFO), then reads the store: `api.s3_gets_per_hit` GETs for a hit (2
  today: manifest + object; 1 after the change in progress), none when its
  hot cache (optional, TTL only) holds the thumbnail. An ingest PUTs the
  original and a new manifest and publishes the pre-generation job.
  A miss (the object GET answers 404) goes to the on-demand coordinator
  (services/ondemand.rs): one job and one wait per (asset, rendition) and
  replica; a request that finds the job in flight on its replica joins it; a
  job older than `republish_after` (= --wait-timeout, state.rs) is published
  again. With cross-replica coalescing on (issue 13), the
  replica first takes a broker claim (an exclusive queue with x-expires as a
  lease); a replica that finds the claim held waits for the event without
  publishing. Waiters wake on `rendered.<hash>` (every replica subscribes to
  `rendered.*`, so every event reaches every replica), read the object once
  more and answer; after `api.wait_timeout_s` they answer 503.
* RabbitMQ: `render.ondemand` and `render.bulk` are separate queues. Each
  worker has one consumer per queue, each on its own channel with
  basic_qos(prefetch) (shared/src/queue/amqp.rs), so a consumer holds at most
  `prefetch` unacknowledged messages of its queue. The broker pushes a ready
  message to the next consumer (round-robin) that has credit left; credit
  comes back when the worker acks, which it does only after the job
  (outputs, manifest, event) is done.
* Workers (crates/worker/src/intake.rs): `concurrency` job slots (a
  semaphore). A forwarding task per queue moves deliveries into a channel;
  the main loop takes a slot, then a delivery with a *biased* select:
  on-demand first, then transcode, then bulk. So on-demand work is never
  queued behind bulk work *at the worker*, but it does not pre-empt either:
  an on-demand job that arrives while every slot runs a bulk job waits for
  the first slot to free. And because the bulk consumer's credit is
  `prefetch`, a worker never runs more than `prefetch` bulk jobs at once:
  with prefetch < concurrency the other slots stay free for on-demand work
  (and idle during a backfill). Both effects are simulated exactly.
* A render job (worker/src/jobs/render.rs, manifest.rs), in order: GET the
  manifest; HEAD each wanted output when the manifest has the original's
  dimensions (an on-demand job; a fresh bulk job has none) and skip when all
  exist; GET the original (+ its bytes at the profile's bandwidth); render on
  one core (fixed overhead + decoder-isolation hand-over + seconds per
  megapixel per format); HEAD each output, PUT each output not yet stored;
  merge the manifest (GET, conditional PUT, GET to read it back) and check it
  against the stored objects (one LIST of thumbs/, one HEAD of videos/);
  publish `rendered.<hash>` with a confirm; ack. S3 calls are sequential and
  hold the job's slot but not a core. A render takes one core; with
  concurrency above the cores, renders wait for a core first come first
  served (the OS shares cores between decoder children instead: the same
  throughput, a somewhat different latency spread). With the per-asset
  worker claim (issue 13), a second job of an asset that is
  being rendered waits for the claim, then finds the outputs and skips.

A long run is represented by a window of steady state (after a warm-up),
whose per-second rates are scaled up to 24 hours; the output says so.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import heapq
import json
import math
import os
import random
import statistics
import sys
import time
from collections import deque

HERE = os.path.dirname(os.path.abspath(__file__))
INPUTS_PATH = os.path.join(HERE, "inputs.json")

M64 = (1 << 64) - 1
DAY = 86400.0

# Store folders and S3 request classes counted per hash prefix.
THUMBS, META, ORIGINALS, VIDEOS = 0, 1, 2, 3
FOLDERS = ("thumbs/", "meta/", "originals/", "videos/")
GETC, PUTC, LISTC = 0, 1, 2  # GET/HEAD, PUT, LIST
CLASSES = ("GET/HEAD", "PUT", "LIST")

OD, BULK = 0, 1  # job kinds


# --------------------------------------------------------------------------
# inputs and scenarios


def load_inputs(path=INPUTS_PATH):
    with open(path) as f:
        return json.load(f)


def deep_merge(a, b):
    """b over a (dicts merged recursively, everything else replaced)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_scenario(scenarios, name, seen=()):
    if name not in scenarios:
        raise SystemExit(f"unknown scenario {name!r}; known: {', '.join(sorted(scenarios))}")
    if name in seen:
        raise SystemExit(f"scenario {name!r} inherits from itself")
    sc = scenarios[name]
    if "base" in sc:
        base = resolve_scenario(scenarios, sc["base"], seen + (name,))
        sc = deep_merge(base, {k: v for k, v in sc.items() if k != "base"})
    return sc


def set_path(d, dotted, value):
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
    d[keys[-1]] = value


class Inputs:
    """The measured/assumed numbers, by dotted name (`render.jpeg_set_s_per_mp`)."""

    def __init__(self, raw):
        self.raw = raw

    def __getitem__(self, name):
        try:
            return self.raw[name]["value"]
        except KeyError:
            raise SystemExit(f"inputs.json has no input {name!r}") from None

    def to_measure(self):
        out = []
        for name, spec in self.raw.items():
            if not isinstance(spec, dict):
                continue
            if "TO MEASURE" in str(spec.get("source", "")):
                out.append((name, spec))
            if name == "s3.profiles":
                for prof, ops in spec["value"].items():
                    for op, s in ops.items():
                        if isinstance(s, dict) and "TO MEASURE" in str(s.get("source", "")):
                            out.append((f"s3.profiles.{prof}.{op}", s))
        return out


# --------------------------------------------------------------------------
# random draws


class Latency:
    """Draws a latency. From a list of measured samples (empirical), or from a
    lognormal fitted to p50 and p90/p99 (least squares on the log-quantiles),
    or a constant. Draws index a table of 10 000 quantiles (fast, and the
    same distribution every run)."""

    N = 10000

    def __init__(self, spec, rng, scale=1.0):
        self.rng = rng
        if isinstance(spec, (int, float)):
            table = [float(spec)]
        elif "samples" in spec:
            table = sorted(float(x) for x in spec["samples"])
            n = len(table)
            table = [table[min(n - 1, int((i + 0.5) * n / self.N))] for i in range(self.N)]
        else:
            p50 = float(spec["p50"])
            z, lg = [], []
            for q, zq in (("p90", 1.2815516), ("p99", 2.3263479)):
                if q in spec:
                    z.append(zq)
                    lg.append(math.log(float(spec[q]) / p50))
            sigma = sum(a * b for a, b in zip(z, lg)) / sum(a * a for a in z) if z else 0.0
            mu = math.log(p50)
            nd = statistics.NormalDist()
            table = [math.exp(mu + sigma * nd.inv_cdf((i + 0.5) / self.N)) for i in range(self.N)]
        self.table = [x * scale for x in table]
        self.n = len(self.table)
        self.mean = statistics.fmean(self.table)
        self.sums = {}

    def __call__(self):
        return self.table[int(self.rng.random() * self.n)]

    def sum(self, k):
        """The sum of k independent draws, from a table of 10 000 such sums
        drawn once (the same distribution, one lookup per call)."""
        if k <= 0:
            return 0.0
        if k == 1:
            return self()
        tab = self.sums.get(k)
        if tab is None:
            t, r, n = self.table, self.rng.random, self.n
            tab = self.sums[k] = [sum(t[int(r() * n)] for _ in range(k)) for _ in range(self.N)]
        return tab[int(self.rng.random() * self.N)]

    def quantile(self, q):
        return self.table[min(self.n - 1, int(q * self.n))]


class Zipf:
    """Ranks 1..n with P(k) ~ k^-s: exact for the first 100 000 ranks, the
    tail by inverting the integral of x^-s (good to a fraction of a rank)."""

    HEAD = 100000

    def __init__(self, n, s, rng):
        self.n, self.s, self.rng = int(n), float(s), rng
        h = min(self.n, self.HEAD)
        acc, cum = 0.0, []
        for k in range(1, h + 1):
            acc += k ** -self.s
            cum.append(acc)
        self.cum, self.h, self.head = cum, h, acc
        self.tail = self._integral(h + 0.5, self.n + 0.5) if self.n > h else 0.0
        self.total = acc + self.tail

    def _integral(self, a, b):
        s = self.s
        if abs(s - 1.0) < 1e-12:
            return math.log(b / a)
        return (b ** (1 - s) - a ** (1 - s)) / (1 - s)

    def p(self, k):
        return k ** -self.s / self.total

    def __call__(self):
        u = self.rng.random() * self.total
        if u < self.head:
            return bisect.bisect_left(self.cum, u) + 1
        v, a, s = u - self.head, self.h + 0.5, self.s
        if abs(s - 1.0) < 1e-12:
            x = a * math.exp(v)
        else:
            x = (a ** (1 - s) + v * (1 - s)) ** (1 / (1 - s))
        return min(self.n, max(self.h + 1, int(x + 0.5)))


def prefix16(x):
    """The first 4 hex digits of an asset's SHA-1, as an int (splitmix64 of
    its rank: uniform, and the same for every request of that asset)."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return (x ^ (x >> 31)) >> 48


def pct(xs, q):
    if not xs:
        return float("nan")
    i = min(len(xs) - 1, max(0, int(math.ceil(q * len(xs))) - 1))
    return xs[i]


# --------------------------------------------------------------------------
# the event loop and the broker


class Loop:
    __slots__ = ("now", "heap", "seq")

    def __init__(self):
        self.now, self.heap, self.seq = 0.0, [], 0

    def at(self, t, fn, arg=None):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, fn, arg))

    def run(self, until, stop=None):
        heap, pop = self.heap, heapq.heappop
        while heap and heap[0][0] <= until:
            t, _, fn, arg = pop(heap)
            self.now = t
            fn(arg)
            if stop is not None and stop():
                return


class Consumer:
    __slots__ = ("worker", "queue", "prefetch", "unacked", "in_avail")

    def __init__(self, worker, queue, prefetch):
        self.worker, self.queue, self.prefetch = worker, queue, prefetch
        self.unacked, self.in_avail = 0, False


class BrokerQueue:
    """A quorum queue: ready messages, pushed round-robin to consumers that
    have credit (unacked < prefetch). `supply` makes it a bottomless backlog
    (a backfill that published faster than the workers take)."""

    def __init__(self, cl, name, supply=None):
        self.cl, self.name, self.supply = cl, name, supply
        self.ready, self.avail = deque(), deque()
        self.unacked = 0
        self.max_ready = self.max_total = 0
        self.area = 0.0  # time integral of ready messages (window)
        self.last = 0.0
        self.ready_samples = []

    def add(self, c):
        c.in_avail = True
        self.avail.append(c)

    def _track(self):
        cl = self.cl
        now = cl.loop.now
        if cl.w0 <= now:
            a = max(self.last, cl.w0)
            b = min(now, cl.w1)
            if b > a:
                self.area += len(self.ready) * (b - a)
        self.last = now

    def publish(self, msg):
        self._track()
        msg.t_pub = self.cl.loop.now
        self.ready.append(msg)
        self.dispatch()
        n = len(self.ready)
        if n > self.max_ready:
            self.max_ready = n
        if n + self.unacked > self.max_total:
            self.max_total = n + self.unacked

    def dispatch(self):
        cl = self.cl
        avail, ready = self.avail, self.ready
        if not avail or not (ready or self.supply):
            return
        self._track()
        now = cl.loop.now
        deliver = cl.deliver
        at = cl.loop.at
        while avail and (ready or self.supply):
            c = avail.popleft()
            msg = ready.popleft() if ready else self.supply(now)
            c.unacked += 1
            self.unacked += 1
            if c.unacked < c.prefetch:
                avail.append(c)
            else:
                c.in_avail = False
            at(now + deliver(), c.worker.receive, (c, msg))

    def ack(self, c):
        c.unacked -= 1
        self.unacked -= 1
        if not c.in_avail:
            c.in_avail = True
            self.avail.append(c)
        self.dispatch()


class Job:
    __slots__ = ("kind", "target", "p4", "n_out", "cpu", "bytes", "out_bytes", "precheck",
                 "t_pub", "t_start", "t_cpu", "consumer", "worker", "rendered")

    def __init__(self, kind, target, p4, n_out, cpu, nbytes, out_bytes, precheck):
        self.kind, self.target, self.p4 = kind, target, p4
        self.n_out, self.cpu, self.bytes, self.precheck = n_out, cpu, nbytes, precheck
        self.out_bytes = out_bytes
        self.t_pub = self.t_start = self.t_cpu = 0.0
        self.consumer = self.worker = None
        self.rendered = False


class Worker:
    __slots__ = ("cl", "free_slots", "free_cores", "cpu_q", "buf_od", "buf_bulk",
                 "c_od", "c_bulk")

    def __init__(self, cl, concurrency, cores, prefetch):
        self.cl = cl
        self.free_slots, self.free_cores = concurrency, cores
        self.cpu_q, self.buf_od, self.buf_bulk = deque(), deque(), deque()
        self.c_od = Consumer(self, cl.q_od, prefetch)
        self.c_bulk = Consumer(self, cl.q_bulk, prefetch) if cl.q_bulk else None

    def receive(self, arg):
        c, msg = arg
        msg.consumer = c
        (self.buf_od if c is self.c_od else self.buf_bulk).append(msg)
        self.try_start()

    def try_start(self):
        # intake.rs: take a permit, then `select! { biased; ondemand, transcode, bulk }`
        od, bulk = self.buf_od, self.buf_bulk
        while self.free_slots and (od or bulk):
            msg = od.popleft() if od else bulk.popleft()
            self.free_slots -= 1
            self.cl.start_job(self, msg)


class Waiter:
    __slots__ = ("t0", "conn", "rep", "target", "p4", "done")

    def __init__(self, t0, conn, rep, target, p4):
        self.t0, self.conn, self.rep, self.target, self.p4 = t0, conn, rep, target, p4
        self.done = False


class Replica:
    __slots__ = ("cores", "inflight", "busy", "cache")

    def __init__(self, cores):
        self.cores = [0.0] * cores  # a heap of the times each core is next free
        self.inflight = {}  # target -> [published_at, [waiters]]
        self.busy = 0.0
        self.cache = {}  # hot cache: (asset, rendition) -> expiry (capacity not modelled)


# --------------------------------------------------------------------------
# the cluster


class Cluster:
    def __init__(self, sc, inp, seed=None, test=None):
        self.sc, self.inp, self.test = sc, inp, test
        self.rng = random.Random(sc.get("seed", 1) if seed is None else seed)
        r = self.rng
        self.loop = Loop()
        self.depth = int(sc.get("prefix_depth", 3))

        # --- latencies
        prof_name = sc.get("s3_profile", "local-s3s-fs")
        profiles = inp["s3.profiles"]
        if prof_name not in profiles:
            raise SystemExit(f"unknown s3 profile {prof_name!r}; known: {', '.join(profiles)}")
        prof = profiles[prof_name]
        self.s3_profile = prof_name
        self.GET = Latency(prof["GET"], r)
        self.HEAD = Latency(prof["HEAD"], r)
        self.PUT = Latency(prof["PUT"], r)
        self.LIST = Latency(prof["LIST"], r)
        self.bw = float(prof["bandwidth_bytes_per_s"]["value"])
        # the self-test runs with a broker that costs nothing
        self.deliver = Latency(0.0 if test else inp["broker.deliver_s"], r)
        self.publish_s = Latency(0.0 if test else inp["broker.publish_confirm_s"], r)
        self.claim_s = Latency(0.0 if test else inp["broker.claim_s"], r)
        self.ack_s = 0.0 if test else float(inp["broker.ack_s"])
        self.event_s = Latency(0.0 if test else inp["broker.event_deliver_s"], r)
        self.lease = float(inp["broker.claim_lease_s"])

        # --- API
        api = sc.get("api", {})
        self.n_rep = int(api.get("replicas", 1))
        self.replicas = [Replica(int(api.get("cores_per_replica", 1))) for _ in range(self.n_rep)]
        self.lb_i = 0
        self.api_cpu = float(inp["api.cpu_s_per_request"])
        self.lb_s = float(inp["api.lb_overhead_s"])
        self.gets_per_hit = int(sc.get("api_s3_gets_per_hit", inp["api.s3_gets_per_hit"]))
        self.timeout = float(sc.get("api_wait_timeout_s", inp["api.wait_timeout_s"]))
        self.hot_cache = bool(sc.get("api_hot_cache", False))
        self.cache_ttl = float(inp["api.cache_ttl_s"])
        self.republish_after = self.timeout  # Coordinator::new(…, options.wait_timeout, …)
        self.coalesce = bool(sc.get("cluster_coalescing", True))
        self.worker_claim = bool(sc.get("worker_asset_claim", True))
        self.claims = {}

        # --- traffic
        cl_ = sc.get("client", {"mode": "none"})
        self.client = cl_
        self.mode = cl_.get("mode", "none")
        self.zipf = Zipf(sc.get("assets", 1000), sc.get("zipf_s", 1.0), r) if self.mode != "none" else None
        self.miss_model = sc.get("miss_model", "fresh")
        self.miss_frac = float(sc.get("miss_fraction", 0.0))
        self.K = int(sc.get("ondemand_renditions", 8))
        self.K_hit = int(sc.get("hit_renditions", 4))
        self.ingest_frac = float(sc.get("ingest_fraction", 0.0))
        self.n_assets = int(sc.get("assets", 1000))
        self.next_new = self.n_assets + 1  # assets created by ingest requests
        self.miss_left = {}  # sequence model: asset -> renditions already asked for
        self.stored = set()
        self.gen = {}

        # --- photos and job costs
        self._build_costs(sc, inp)

        # --- broker and workers
        self.q_od = BrokerQueue(self, "render.ondemand")
        bulk = sc.get("bulk", {"mode": "off"})
        self.bulk_mode = bulk.get("mode", "off")
        # who fills the bulk queue: `thumbfarm-api backfill` (walks meta/: GET each manifest,
        # HEAD its outputs when it has dimensions) or the ingest planner (GET, create the manifest)
        self.feeder = bulk.get("feeder", "backfill")
        self.bulk_dims = bool(bulk.get("manifest_has_dimensions", False))
        self.q_bulk = None
        if self.bulk_mode == "saturated":
            self.q_bulk = BrokerQueue(self, "render.bulk", supply=self._bulk_job)
        elif self.bulk_mode == "rate" or self.ingest_frac > 0:
            self.q_bulk = BrokerQueue(self, "render.bulk")
        wk = sc.get("workers", {})
        self.n_workers = int(wk.get("count", 1))
        self.cores = int(wk.get("cores", 1))
        self.concurrency = int(wk.get("concurrency", self.cores))
        self.prefetch = int(wk.get("prefetch", 2))
        if wk.get("prefetch_raised_to_concurrency", True):
            # crates/worker/src/intake.rs raises each queue's credit to the
            # job slots (set false to model workers before that change)
            self.prefetch = max(self.prefetch, self.concurrency)
        self.workers = []
        for _ in range(self.n_workers):
            w = Worker(self, self.concurrency, self.cores, self.prefetch)
            self.workers.append(w)
        # consumers register in worker order, as workers start
        for w in self.workers:
            self.q_od.add(w.c_od)
        if self.q_bulk:
            for w in self.workers:
                self.q_bulk.add(w.c_bulk)

        # --- window
        self.w0 = float(sc.get("warmup_s", 0.0))
        self.w1 = self.w0 + float(sc.get("window_s", 600.0))
        if self.mode == "closed":
            self.w0, self.w1 = 0.0, float("inf")

        # --- counters
        self.pc = [[0] * 65536 for _ in range(12)]  # folder*3+class -> counts by 16-bit prefix
        self.ops = {"GET": 0, "HEAD": 0, "PUT": 0, "LIST": 0}
        self.lat_hit, self.lat_miss, self.lat_ingest = [], [], []
        self.cache_hits = 0
        self.n_503 = 0
        self.od_delay = []
        self.od_sojourn = []
        self.od_published = 0
        self.od_targets_published = set()
        self.renders = {}
        self.n_render = {OD: 0, BULK: 0}
        self.n_skip = {OD: 0, BULK: 0}
        self.n_done = {OD: 0, BULK: 0}
        self.claim_waits = 0
        self.joined_local = self.joined_cluster = 0
        self.misses = 0
        self.events = 0
        self.claims_taken = 0
        self.slot_busy = self.core_busy = 0.0
        self.job_wall = {OD: 0.0, BULK: 0.0}
        self.job_wall_n = {OD: 0, BULK: 0}
        self.bytes_put = 0.0
        self.last_done = 0.0
        self.issued = 0
        self.rendering = {}
        self.claim_waiters = {}

    # ---- costs

    def _build_costs(self, sc, inp):
        speed = float(inp["render.cpu_speed_factor"])
        overhead = float(inp["render.job_overhead_s"]) + float(inp["render.isolation_s_per_job"])
        per_mp = float(inp["render.jpeg_set_s_per_mp"])
        extra = inp["render.set_extra_s_per_format"]
        pregen = sc.get("pregenerate_formats", ["jpeg"])
        n_sizes = int(sc.get("pregenerated_sizes", inp["outputs.pregenerated_sizes"]))
        self.mix = []
        mix = sc.get("photo_mix")
        if mix is None or isinstance(mix, str):
            mix = inp[mix or "photo.mix"]
        for m in mix:
            set_s = m.get("set_s")  # a measured whole-set time (HEIC), else per-MP JPEG
            base = float(set_s) if set_s is not None else per_mp * float(m["mp"])
            bulk_cpu = (overhead + base + sum(float(extra[f]) for f in pregen if f != "jpeg")) / speed
            n_out = n_sizes + (n_sizes - 1) * sum(1 for f in pregen if f != "jpeg")
            self.mix.append((float(m["share"]), m, bulk_cpu, n_out, float(m["bytes"])))
        self.set_bytes = sum(float(inp["outputs.set_bytes"][f]) for f in pregen)
        self.single_bytes = inp["outputs.single_bytes"]
        tot = sum(x[0] for x in self.mix)
        self.mix_cum = list(self._cum([x[0] / tot for x in self.mix]))
        self.cpu_cv = float(inp["render.cpu_cv"])
        dec = float(inp["render.single_decode_s_per_mp"])
        single = inp["render.single_output_s"]
        od_mix = sc.get("ondemand_formats", {"jpeg": 1.0})
        self.od_fmt = [(f, float(s)) for f, s in od_mix.items()]
        self.od_fmt_cum = list(self._cum([s for _, s in self.od_fmt]))
        self.od_cost = {}
        for i, (_, m, _, _, _) in enumerate(self.mix):
            dec_s = dec * float(m["mp"]) * float(m.get("decode_factor", 1.0))
            for f, _ in self.od_fmt:
                self.od_cost[(i, f)] = (overhead + dec_s + float(single[f])) / speed
        self.bulk_mean_cpu = sum(x[0] / tot * x[2] for x in self.mix)
        # sequence misses: the renditions asked for in order (tests/common/cluster.rs MISS_NAMES)
        self.seq = []
        size_s, size_b = inp["render.per_size_s"], inp["outputs.per_size_bytes"]
        ratio = inp["outputs.bytes_ratio"]
        for name in sc.get("ondemand_sequence", []):
            size, _, ext = name.partition(".")
            f = {"webp": "webp", "avif": "avif"}.get(ext, "jpeg")
            box = {"left_224": "tile_224", "right_224": "tile_224"}.get(size, size)
            cpu = overhead + float(size_s[box][f])
            if sc.get("ondemand_job_cpu_s") is not None:
                # measured for the scenario's photos (the load test writes it)
                cpu = float(sc["ondemand_job_cpu_s"])
            self.seq.append((name, cpu / speed,
                             float(size_b[box]) * float(ratio[f])))
        self.K_seq = len(self.seq)

    @staticmethod
    def _cum(ws):
        acc = 0.0
        s = sum(ws)
        for w in ws:
            acc += w / s
            yield acc

    def _pick(self, cum):
        u = self.rng.random()
        for i, c in enumerate(cum):
            if u <= c:
                return i
        return len(cum) - 1

    def _vary(self, mean):
        cv = self.cpu_cv
        if cv <= 0:
            return mean
        k = 1.0 / (cv * cv)
        return self.rng.gammavariate(k, mean / k)

    def _bulk_job(self, now=None):
        i = self._pick(self.mix_cum) if len(self.mix) > 1 else 0
        _, m, cpu, n_out, nbytes = self.mix[i]
        p4 = self.rng.getrandbits(16)
        t = self.loop.now
        if self.w0 <= t <= self.w1:  # what fed this job (counted when a worker takes it)
            pc, ops = self.pc, self.ops
            pc[META * 3 + GETC][p4] += 1
            ops["GET"] += 1
            if self.feeder == "backfill":
                if self.bulk_dims:
                    pc[THUMBS * 3 + GETC][p4] += n_out
                    ops["HEAD"] += n_out
            else:
                pc[META * 3 + PUTC][p4] += 1
                ops["PUT"] += 1
        return Job(BULK, None, p4, n_out, self._vary(cpu), nbytes, self.set_bytes, self.bulk_dims)

    def _ingest_job(self, p4):
        _, m, cpu, n_out, nbytes = self.mix[0]
        return Job(BULK, None, p4, n_out, self._vary(cpu), nbytes, self.set_bytes, False)

    def feeder_estimate(self, n=20000):
        """Seconds one feeding process spends per photo, one photo at a time
        (background/backfill.rs handle_object, ingest_planner.rs settle):
        backfill: GET manifest, HEADs in parallel (join_all) when it has
        dimensions, publish with confirm (LIST pages amortised); planner: GET
        (absent), conditional PUT of the new manifest, publish, ack."""
        tot = 0.0
        n_out = self.mix[0][3]
        for _ in range(n):
            if self.feeder == "backfill":
                t = self.GET() + self.publish_s() + self.LIST() / 1000.0
                if self.bulk_dims:
                    t += max(self.HEAD() for _ in range(n_out))
            else:
                t = self.GET() + self.PUT() + self.publish_s() + self.ack_s
            tot += t
        return tot / n

    def _od_job(self, target, p4):
        i = self._pick(self.mix_cum) if len(self.mix) > 1 else 0
        if self.seq:
            _, cost, nbytes = self.seq[target[1]]
            m = self.mix[i][1]
            dec = float(self.inp["render.single_decode_s_per_mp"]) * float(m["mp"]) * float(m.get("decode_factor", 1.0))
            return Job(OD, target, p4, 1, self._vary(cost + dec / float(self.inp["render.cpu_speed_factor"])),
                       self.mix[i][4], nbytes, True)
        f = self.od_fmt[self._pick(self.od_fmt_cum)][0] if len(self.od_fmt) > 1 else self.od_fmt[0][0]
        return Job(OD, target, p4, 1, self._vary(self.od_cost[(i, f)]), self.mix[i][4],
                   float(self.single_bytes[f]), True)

    # ---- S3 accounting

    def s3(self, t, folder, cls, p4, k, op):
        if self.w0 <= t <= self.w1:
            self.pc[folder * 3 + cls][p4] += k
            self.ops[op] += k

    # ---- API

    def api_request(self, t, conn):
        rep = self.replicas[self.lb_i]
        self.lb_i = (self.lb_i + 1) % self.n_rep
        cores = rep.cores
        start = cores[0] if cores[0] > t else t
        done_cpu = start + self.api_cpu
        heapq.heapreplace(cores, done_cpu)
        if self.w0 <= t <= self.w1:
            rep.busy += self.api_cpu
        r = self.rng.random
        u = r()
        if u < self.ingest_frac:
            return self._ingest(t, conn, done_cpu)
        u -= self.ingest_frac
        rank = self.zipf()
        miss, target = False, None
        if u < self.miss_frac:
            if self.miss_model == "fresh":  # a steady share of misses, concurrent ones coalesce
                miss, target = True, (rank, self.gen.get(rank, 0))
            elif self.miss_model == "sequence":  # the next rendition nobody asked for (the load test)
                left = self.miss_left
                while left.get(rank, 0) >= self.K_seq:
                    rank = rank % self.n_assets + 1
                k = left.get(rank, 0)
                left[rank] = k + 1
                miss, target = True, (rank, k)
            else:  # first_request: one of K renditions not pre-generated, a miss until rendered
                target = (rank, int(r() * self.K))
                miss = target not in self.stored
        p4 = prefix16(rank)
        g = self.gets_per_hit
        if not miss and self.hot_cache:
            key = target if target is not None else (rank, -1 - int(r() * self.K_hit))
            exp = rep.cache.get(key)
            if exp is not None and exp > t:
                g = 0
                self.cache_hits += 1
            else:
                rep.cache[key] = t + self.cache_ttl
        if g >= 2:
            self.s3(t, META, GETC, p4, 1, "GET")
        if g:
            self.s3(t, THUMBS, GETC, p4, 1, "GET")
        lat = self.GET.sum(g)
        if not miss:
            done = done_cpu + lat + self.lb_s
            if conn is None:
                if self.w0 <= t <= self.w1:
                    self.lat_hit.append(done - t)
            else:
                self.loop.at(done, self._conn_done, (conn, t, self.lat_hit))
            return
        if g < 2:  # the manifest is read once the object is missing
            self.s3(t, META, GETC, p4, 1, "GET")
            lat += self.GET()
        self.loop.at(done_cpu + lat, self._on_miss, Waiter(t, conn, rep, target, p4))

    def _ingest(self, t, conn, done_cpu):
        """POST /api/v1/ingest (routes/ingest.rs): the body reaches the replica,
        the manifest is looked up (absent), the original is PUT, the new
        manifest is created, the pre-generation job goes to render.bulk."""
        rank = self.next_new
        self.next_new += 1
        p4 = prefix16(rank)
        nbytes = self.mix[0][4]
        lat = (2 * nbytes / self.bw + self.GET() + self.PUT.sum(2) + self.publish_s() + self.lb_s)
        self.s3(t, META, GETC, p4, 1, "GET")
        self.s3(t, ORIGINALS, PUTC, p4, 1, "PUT")
        self.s3(t, META, PUTC, p4, 1, "PUT")
        done = done_cpu + lat
        self.loop.at(done - self.lb_s, lambda job: self.q_bulk.publish(job), self._ingest_job(p4))
        if conn is None:
            if self.w0 <= t <= self.w1:
                self.lat_ingest.append(done - t)
        else:
            self.loop.at(done, self._conn_done, (conn, t, self.lat_ingest))

    def _conn_done(self, arg):
        conn, t0, into = arg
        into.append(self.loop.now - t0)
        self.last_done = self.loop.now
        self._next(conn)

    def _next(self, conn):
        if self.issued < self.client["requests"]:
            self.issued += 1
            self.api_request(self.loop.now, conn)

    def _on_miss(self, w):
        now = self.loop.now
        if w.target in self.stored:  # rendered meanwhile
            self.s3(now, THUMBS, GETC, w.p4, 1, "GET")
            self.loop.at(now + self.GET() + self.lb_s, self._w_done, w)
            return
        if self.w0 <= w.t0 <= self.w1:
            self.misses += 1
        self.loop.at(w.t0 + self.timeout, self._w_timeout, w)
        entry = w.rep.inflight.get(w.target)
        if entry is not None:
            entry[1].append(w)
            self.joined_local += 1
            if now - entry[0] <= self.republish_after:
                return
            entry[0] = now  # no event within --wait-timeout: publish again
        else:
            w.rep.inflight[w.target] = [now, [w]]
        delay = 0.0
        if self.coalesce:
            exp = self.claims.get(w.target)
            if exp is not None and exp > now:
                self.joined_cluster += 1
                return
            delay += self.claim_s()
            self.claims[w.target] = now + delay + self.lease
            self.claims_taken += 1
        delay += self.publish_s()
        self.loop.at(now + delay, self._publish_od, self._od_job(w.target, w.p4))

    def _publish_od(self, job):
        now = self.loop.now
        if self.w0 <= now <= self.w1:
            self.od_published += 1
            if job.target is not None:
                self.od_targets_published.add(job.target)
        self.q_od.publish(job)

    def _w_done(self, w):
        if w.done:
            return
        w.done = True
        now = self.loop.now
        if self.w0 <= w.t0 <= self.w1:
            self.lat_miss.append(now - w.t0)
        self.last_done = now
        if w.conn is not None:
            self._next(w.conn)

    def _w_timeout(self, w):
        if w.done:
            return
        w.done = True
        if self.w0 <= w.t0 <= self.w1:
            self.n_503 += 1
            self.lat_miss.append(self.timeout)
        self.last_done = self.loop.now
        if w.conn is not None:
            self._next(w.conn)

    def _api_event(self, target):
        now = self.loop.now
        self.claims.pop(target, None)
        for rep in self.replicas:
            entry = rep.inflight.pop(target, None)
            if entry:
                for w in entry[1]:
                    if not w.done:
                        self.s3(now, THUMBS, GETC, w.p4, 1, "GET")
                        self.loop.at(now + self.GET() + self.lb_s, self._w_done, w)

    # ---- open-loop arrivals

    def _arrivals(self, _):
        now = self.loop.now
        end = min(now + 0.01, self.arr_stop)
        t = self.next_arrival
        rate = self.arr_rate
        ev = self.rng.expovariate
        while t < end:
            self.api_request(t, None)
            t += ev(rate)
        self.next_arrival = t
        if t < self.arr_stop:
            self.loop.at(end, self._arrivals)

    def _od_direct(self, _):
        """On-demand jobs without the API (sweep, self-test): Poisson arrivals."""
        now = self.loop.now
        if self.test:
            self.q_od.publish(Job(OD, None, 0, 0, 0.0, 0.0, 0.0, False))
        else:
            rank = self.zipf() if self.zipf else self.rng.getrandbits(40)
            g = self.gen.get(rank, 0)
            self.gen[rank] = g + 1  # one job per miss target
            self._publish_od(self._od_job((rank, g), prefix16(rank)))
        nxt = now + self.rng.expovariate(self.od_rate)
        if nxt < self.arr_stop:
            self.loop.at(nxt, self._od_direct)

    def _bulk_arrival(self, _):
        self.q_bulk.publish(self._bulk_job())
        nxt = self.loop.now + self.rng.expovariate(self.bulk_rate)
        if nxt < self.arr_stop:
            self.loop.at(nxt, self._bulk_arrival)

    # ---- worker side

    def start_job(self, w, job):
        now = self.loop.now
        job.t_start, job.worker = now, w
        in_win = self.w0 <= now <= self.w1
        if job.kind == OD and self.w0 <= job.t_pub <= self.w1:
            self.od_delay.append(now - job.t_pub)
        if self.test:
            job.rendered = True
            self.loop.at(now + self.test(job), self._job_post, job)
            if w.free_cores:
                w.free_cores -= 1
            job.t_cpu = now
            return
        tgt = job.target
        if tgt is not None:
            if tgt in self.stored:
                return self._skip(job, now)
            if tgt in self.rendering and self.worker_claim:
                self.claim_waits += 1
                self.claim_waiters.setdefault(tgt, []).append(job)
                return  # holds its slot until the claim is released
            self.rendering[tgt] = self.rendering.get(tgt, 0) + 1
            if self.w0 <= job.t_pub <= self.w1:  # counted like the jobs: published in the window
                self.renders[tgt] = self.renders.get(tgt, 0) + 1
        p4 = job.p4
        # read_manifest; HEADs when the manifest has dimensions; fetch_original
        pre = self.GET.sum(2) + job.bytes / self.bw
        heads = job.n_out if job.precheck else 0
        if heads:
            pre += self.HEAD.sum(heads)
        if in_win:
            pc, ops = self.pc, self.ops
            pc[META * 3 + GETC][p4] += 1
            pc[ORIGINALS * 3 + GETC][p4] += 1
            pc[THUMBS * 3 + GETC][p4] += heads
            ops["GET"] += 2
            ops["HEAD"] += heads
        job.rendered = True
        if in_win:
            self.n_render[job.kind] += 1
        self.loop.at(now + pre, self._job_cpu, job)

    def _skip(self, job, now):
        """A job whose outputs are stored: manifest GET, HEADs, event, ack."""
        cost = self.GET() + self.HEAD.sum(job.n_out) + self.publish_s() + self.ack_s
        self.s3(now, META, GETC, job.p4, 1, "GET")
        self.s3(now, THUMBS, GETC, job.p4, job.n_out, "HEAD")
        if self.w0 <= now <= self.w1:
            self.n_skip[job.kind] += 1
        job.rendered = False
        self.loop.at(now + cost, self._job_end, job)

    def _job_cpu(self, job):
        w = job.worker
        if w.free_cores:
            w.free_cores -= 1
            job.t_cpu = self.loop.now
            self.loop.at(self.loop.now + job.cpu, self._job_post, job)
        else:
            w.cpu_q.append(job)

    def _clip(self, a, b):
        a, b = max(a, self.w0), min(b, self.w1)
        return b - a if b > a else 0.0

    def _job_post(self, job):
        now = self.loop.now
        w = job.worker
        self.core_busy += self._clip(job.t_cpu, now)
        if w.cpu_q:
            nxt = w.cpu_q.popleft()
            nxt.t_cpu = now
            self.loop.at(now + nxt.cpu, self._job_post, nxt)
        else:
            w.free_cores += 1
        if self.test:
            return self._job_end(job)
        p4, n = job.p4, job.n_out
        puts = n if (job.target is None or job.target not in self.stored) else 0
        # missing_outputs (HEAD each), PUT each output not stored; merge_manifest:
        # GET, conditional PUT, GET (read back); LIST thumbs/, HEAD videos/; event; ack
        post = (self.HEAD.sum(n + 1) + self.PUT.sum(puts + 1) + self.GET.sum(2) + self.LIST()
                + (job.out_bytes / self.bw if puts else 0.0) + self.publish_s() + self.ack_s)
        if self.w0 <= now <= self.w1:
            pc, ops = self.pc, self.ops
            pc[THUMBS * 3 + GETC][p4] += n
            pc[THUMBS * 3 + PUTC][p4] += puts
            pc[THUMBS * 3 + LISTC][p4] += 1
            pc[META * 3 + GETC][p4] += 2
            pc[META * 3 + PUTC][p4] += 1
            pc[VIDEOS * 3 + GETC][p4] += 1
            ops["HEAD"] += n + 1
            ops["PUT"] += puts + 1
            ops["GET"] += 2
            ops["LIST"] += 1
            if puts:
                self.bytes_put += job.out_bytes
        self.loop.at(now + post, self._job_end, job)

    def _job_end(self, job):
        now = self.loop.now
        w = job.worker
        kind = job.kind
        in_win = self.w0 <= now <= self.w1
        tgt = job.target
        if tgt is not None and job.rendered:
            self.stored.add(tgt)
            c = self.rendering.get(tgt, 1) - 1
            if c > 0:
                self.rendering[tgt] = c
            else:
                self.rendering.pop(tgt, None)
                for waiting in self.claim_waiters.pop(tgt, ()):
                    self._skip(waiting, now)
            rank, g = tgt
            if self.gen.get(rank, 0) <= g:
                self.gen[rank] = g + 1
        if in_win:
            self.n_done[kind] += 1
            self.events += 1
        self.slot_busy += self._clip(job.t_start, now)
        if in_win and job.rendered:
            self.job_wall[kind] += now - job.t_start
            self.job_wall_n[kind] += 1
        if kind == OD and self.w0 <= job.t_pub <= self.w1:
            self.od_sojourn.append(now - job.t_pub)
        if tgt is not None and self.mode != "none":
            self.loop.at(now + self.event_s(), self._api_event, tgt)
        c = job.consumer
        c.queue.ack(c)
        w.free_slots += 1
        w.try_start()

    # ---- running

    def run(self):
        loop = self.loop
        if self.mode == "closed":
            conns = int(self.client["connections"])
            total = int(self.client["requests"])
            for c in range(min(conns, total)):
                self.issued += 1
                loop.at(0.0, lambda c: self.api_request(loop.now, c), c)
            loop.run(float("inf"), stop=lambda: self.issued >= total and self._all_answered())
            self.w1 = self.last_done
            self.window = self.last_done
        else:
            self.arr_stop = self.w1
            if self.mode == "open":
                c = self.client
                self.arr_rate = float(c["edge_rps"]) * (1.0 - float(c.get("cdn_hit", 0.0)))
                self.next_arrival = self.rng.expovariate(self.arr_rate)
                loop.at(0.0, self._arrivals)
            elif self.mode == "jobs":  # on-demand jobs straight into the queue
                self.od_rate = float(self.client["ondemand_jobs_per_s"])
                loop.at(self.rng.expovariate(self.od_rate), self._od_direct)
            if self.bulk_mode == "saturated":
                self.q_bulk.dispatch()
            elif self.bulk_mode == "rate":
                self.bulk_rate = float(self.sc["bulk"]["publish_per_s"])
                loop.at(0.0, self._bulk_arrival)
            drain = float(self.sc.get("drain_s", self.timeout + 1.0))
            loop.run(self.w1 + drain)
            self.window = self.w1 - self.w0
        self.q_od._track()
        if self.q_bulk:
            self.q_bulk._track()
        return self

    def _all_answered(self):
        return len(self.lat_hit) + len(self.lat_miss) + len(self.lat_ingest) >= self.client["requests"]


# --------------------------------------------------------------------------
# results


def per_prefix(cl, depth):
    """(uniform, simulated max) requests/s per prefix for each folder and class."""
    out = {}
    win = cl.window or 1.0
    shift = 4 * (4 - depth)
    size = 1 << shift
    nb = 1 << (4 * depth)
    for f in range(4):
        for c in range(3):
            lst = cl.pc[f * 3 + c]
            tot = sum(lst)
            if not tot:
                continue
            mx = max(sum(lst[b * size:(b + 1) * size]) for b in range(nb)) if size > 1 else max(lst)
            out[(FOLDERS[f], CLASSES[c])] = (tot / win / nb, mx / win, tot / win)
    return out


def summarize(cl, sc, inp):
    win = cl.window
    res = {"scenario": sc.get("name"), "description": sc.get("description", "")}
    res["simulated"] = {
        "mode": cl.mode, "window_s": round(win, 3), "warmup_s": cl.w0 if cl.mode != "closed" else 0.0,
        "s3_profile": cl.s3_profile, "prefix_depth": cl.depth,
        "workers": cl.n_workers, "cores_per_worker": cl.cores, "concurrency": cl.concurrency,
        "prefetch": cl.prefetch, "api_replicas": cl.n_rep,
        "cluster_coalescing": cl.coalesce, "worker_asset_claim": cl.worker_claim,
        "api_s3_gets_per_hit": cl.gets_per_hit, "api_hot_cache": cl.hot_cache,
        "photo": cl.mix[0][1].get("name"), "miss_model": cl.miss_model,
    }
    hits, miss, ing = sorted(cl.lat_hit), sorted(cl.lat_miss), sorted(cl.lat_ingest)
    allr = sorted(cl.lat_hit + cl.lat_miss + cl.lat_ingest)
    n_req = len(allr)
    api = {}
    if cl.mode != "none" and cl.mode != "jobs":
        api = {
            "requests": n_req,
            "throughput_rps": n_req / win if win else 0.0,
            "latency_p50_ms": pct(allr, 0.5) * 1e3, "latency_p99_ms": pct(allr, 0.99) * 1e3,
            "hit_p50_ms": pct(hits, 0.5) * 1e3, "hit_p99_ms": pct(hits, 0.99) * 1e3,
            "miss_p50_ms": pct(miss, 0.5) * 1e3, "miss_p99_ms": pct(miss, 0.99) * 1e3,
            "ingests": len(ing), "ingest_p50_ms": pct(ing, 0.5) * 1e3, "ingest_p99_ms": pct(ing, 0.99) * 1e3,
            "hot_cache_hits": cl.cache_hits,
            "misses": cl.misses, "answered_503": cl.n_503,
            "joined_on_replica": cl.joined_local, "joined_cluster_claim": cl.joined_cluster,
            "claims_taken": cl.claims_taken,
            "cpu_utilisation": sum(r.busy for r in cl.replicas) / (win * sum(len(r.cores) for r in cl.replicas)) if win else 0.0,
        }
        rps_target = float(inp["api.replica_rps"])
        api["replicas_needed"] = max(1, math.ceil(api["throughput_rps"] / rps_target)) if cl.mode == "open" else None
        api["replica_rps_input"] = rps_target
    res["api"] = api
    od = sorted(cl.od_delay)
    soj = sorted(cl.od_sojourn)
    dup_renders = sum(c - 1 for c in cl.renders.values() if c > 1)
    res["ondemand"] = {
        "jobs_published": cl.od_published,
        "jobs_per_s": cl.od_published / win if win else 0.0,
        "distinct_targets": len(cl.od_targets_published),
        "duplicate_jobs": cl.od_published - len(cl.od_targets_published),
        "queue_delay_p50_ms": pct(od, 0.5) * 1e3, "queue_delay_p99_ms": pct(od, 0.99) * 1e3,
        "queue_delay_max_ms": (od[-1] * 1e3) if od else float("nan"),
        "queue_delay_mean_ms": (statistics.fmean(od) * 1e3) if od else float("nan"),
        "time_to_rendered_p50_ms": pct(soj, 0.5) * 1e3, "time_to_rendered_p99_ms": pct(soj, 0.99) * 1e3,
        "max_ready": cl.q_od.max_ready, "max_in_system": cl.q_od.max_total,
        "mean_ready": cl.q_od.area / win if win else 0.0,
        "renders": cl.n_render[OD], "skipped": cl.n_skip[OD],
        "duplicate_renders": dup_renders, "claim_waits": cl.claim_waits,
        "mean_job_s": cl.job_wall[OD] / cl.job_wall_n[OD] if cl.job_wall_n[OD] else float("nan"),
    }
    slots = cl.n_workers * cl.concurrency
    cores = cl.n_workers * cl.cores
    bulk = {}
    if cl.q_bulk:
        rate = cl.n_done[BULK] / win if win else 0.0
        photos = float(sc["bulk"].get("photos", 1e8))
        hours = float(sc["bulk"].get("deadline_h", 24))
        need = photos / (hours * 3600.0)
        bulk = {
            "jobs_done": cl.n_done[BULK], "jobs_per_s": rate,
            "per_worker_jobs_per_s": rate / cl.n_workers,
            "hours_to_drain": photos / rate / 3600.0 if rate else float("inf"),
            "photos": photos, "deadline_h": hours, "needed_jobs_per_s": need,
            # only a saturated backlog measures what a worker can do
            "workers_needed": (math.ceil(need / (rate / cl.n_workers))
                               if rate and cl.bulk_mode == "saturated" else None),
            "mean_job_cpu_s": cl.bulk_mean_cpu,
            "feeder": cl.feeder,
            "feeder_s_per_photo": (fs := cl.feeder_estimate()),
            "feeder_processes_needed": math.ceil(need * fs),
            "mean_job_wall_s": cl.job_wall[BULK] / cl.job_wall_n[BULK] if cl.job_wall_n[BULK] else float("nan"),
            "mode": cl.bulk_mode if cl.bulk_mode != "off" else "ingest",
        }
    res["bulk"] = bulk
    res["workers"] = {
        "slot_utilisation": cl.slot_busy / (slots * win) if win else 0.0,
        "core_utilisation": cl.core_busy / (cores * win) if win else 0.0,
        "bulk_slots_usable": min(cl.concurrency, cl.prefetch),
    }
    # S3
    tot = {k: v / win for k, v in cl.ops.items()} if win else {}
    pp = per_prefix(cl, cl.depth) if win else {}
    limits = inp["s3.limits"]
    busiest = {}
    for (folder, cls), (uni, mx, total) in pp.items():
        lim = limits["get_head_per_s"] if cls == "GET/HEAD" else limits["put_per_s"] if cls == "PUT" else None
        busiest[f"{folder} {cls}"] = {"total_per_s": total, "uniform_per_prefix": uni, "max_per_prefix": mx,
                                       "limit_per_prefix": lim}
    depths = {}
    if win:
        for d in (1, 2, 3, 4):
            p = per_prefix(cl, d)
            depths[d] = {f"{k[0]} {k[1]}": {"uniform": v[0], "max": v[1]} for k, v in p.items()}
    res["s3"] = {"requests_per_s": tot, "per_prefix": busiest, "by_depth": depths,
                 "requests_per_job": (sum(cl.ops.values()) / max(1, cl.n_done[BULK] + cl.n_done[OD])),
                 "bytes_put_per_s": cl.bytes_put / win if win else 0.0}
    n_done = cl.n_done[OD] + cl.n_done[BULK]
    res["broker"] = {
        "job_publishes_per_s": (cl.od_published + (cl.n_done[BULK])) / win if win else 0.0,
        "events_per_s": cl.events / win if win else 0.0,
        "event_deliveries_to_api_per_s": cl.events * cl.n_rep / win if win else 0.0,
        "jobs_done": n_done,
    }
    res["scale_note"] = scale_note(cl)
    return res


def scale_note(cl):
    if cl.mode == "closed":
        return (f"ran the whole closed-loop test: {cl.client['requests']} requests over "
                f"{cl.client['connections']} connections, {cl.window:.2f} simulated seconds")
    return (f"simulated {cl.window:.0f} s of steady state after a {cl.w0:.0f} s warm-up; rates are "
            f"averages over that window and 24 h figures scale them up (x {DAY / cl.window:.0f})")


def fmt(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "on" if x else "off"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞"
        if abs(x) >= 1000:
            return f"{x:,.0f}"
        if abs(x) >= 100:
            return f"{x:.0f}"
        if abs(x) >= 10:
            return f"{x:.{max(0, nd - 0)}f}"
        if abs(x) >= 0.01 or x == 0:
            return f"{x:.{nd + 1}f}"
        return f"{x:.2g}"
    return str(x)


def markdown(res):
    s = res["simulated"]
    lines = [f"### Scenario `{res['scenario']}`", ""]
    if res.get("description"):
        lines += [res["description"], ""]
    lines += [f"_{res['scale_note']}._", ""]
    lines += [
        f"Setup: {s['api_replicas']} API replicas, {s['workers']} workers × {s['cores_per_worker']} cores "
        f"(concurrency {s['concurrency']}, prefetch {s['prefetch']}), S3 profile `{s['s3_profile']}`, "
        f"prefix depth {s['prefix_depth']}, cross-replica coalescing {fmt(s['cluster_coalescing'])}, "
        f"worker asset claim {fmt(s['worker_asset_claim'])}, {s['api_s3_gets_per_hit']} S3 GET(s) per hit, "
        f"hot cache {fmt(s['api_hot_cache'])}, photos `{s['photo']}`, misses `{s['miss_model']}`.",
        "", "| output | value |", "|---|---|"]
    a, o, b, wk, br = res["api"], res["ondemand"], res["bulk"], res["workers"], res["broker"]

    def row(k, v):
        lines.append(f"| {k} | {v} |")

    if a:
        row("API requests simulated", fmt(a["requests"]))
        row("throughput (requests/s)", fmt(a["throughput_rps"]))
        row("latency p50 / p99, all requests (ms)", f"{fmt(a['latency_p50_ms'])} / {fmt(a['latency_p99_ms'])}")
        row("latency p50 / p99, hits (ms)", f"{fmt(a['hit_p50_ms'])} / {fmt(a['hit_p99_ms'])}")
        row("latency p50 / p99, misses (ms)", f"{fmt(a['miss_p50_ms'])} / {fmt(a['miss_p99_ms'])}")
        if a["ingests"]:
            row("ingests; latency p50 / p99 (ms)", f"{fmt(a['ingests'])}; {fmt(a['ingest_p50_ms'])} / {fmt(a['ingest_p99_ms'])}")
        if s.get("api_hot_cache"):
            row("hits answered from a replica's hot cache", fmt(a["hot_cache_hits"]))
        row("misses (requests that found no object)", fmt(a["misses"]))
        row("answered 503 after the wait timeout", fmt(a["answered_503"]))
        row("misses joined on their replica / via the cluster claim", f"{fmt(a['joined_on_replica'])} / {fmt(a['joined_cluster_claim'])}")
        row("API CPU utilisation", f"{a['cpu_utilisation'] * 100:.1f} %")
        if a.get("replicas_needed"):
            row(f"API replicas needed at {fmt(a['replica_rps_input'])} requests/s each", fmt(a["replicas_needed"]))
    row("on-demand jobs published (per s)", f"{fmt(o['jobs_published'])} ({fmt(o['jobs_per_s'])})")
    row("on-demand renders / skipped (outputs found)", f"{fmt(o['renders'])} / {fmt(o['skipped'])}")
    row("duplicate jobs (published beyond one per target)", fmt(o["duplicate_jobs"]))
    row("**duplicate renders**", fmt(o["duplicate_renders"]))
    row("jobs that waited for a worker asset claim", fmt(o["claim_waits"]))
    row("on-demand queue delay p50 / p99 / max (ms)",
        f"{fmt(o['queue_delay_p50_ms'])} / {fmt(o['queue_delay_p99_ms'])} / {fmt(o['queue_delay_max_ms'])}")
    row("on-demand job, publish to done, p50 / p99 (ms)",
        f"{fmt(o['time_to_rendered_p50_ms'])} / {fmt(o['time_to_rendered_p99_ms'])}")
    row("on-demand queue: max ready / max ready+unacked / mean ready",
        f"{fmt(o['max_ready'])} / {fmt(o['max_in_system'])} / {fmt(o['mean_ready'], 2)}")
    if b:
        row("bulk jobs done (per s)", f"{fmt(b['jobs_done'])} ({fmt(b['jobs_per_s'])})")
        row("bulk job: mean CPU / mean wall time in its slot (s)",
            f"{fmt(b['mean_job_cpu_s'], 2)} / {fmt(b['mean_job_wall_s'], 2)}")
    if b and b["mode"] == "saturated":
        row("bulk jobs/s per worker", fmt(b["per_worker_jobs_per_s"], 2))
        row(f"hours to drain {b['photos']:,.0f} photos with {s['workers']} workers", fmt(b["hours_to_drain"]))
        row(f"**workers needed for {b['photos']:,.0f} photos in {b['deadline_h']:g} h**",
            f"{fmt(b['workers_needed'])} (× {s['cores_per_worker']} cores = {fmt((b['workers_needed'] or 0) * s['cores_per_worker'])} cores)")
        row("bulk slots usable per worker = min(concurrency, prefetch)", fmt(wk["bulk_slots_usable"]))
    elif b and b["mode"] == "rate":
        row(f"hours to drain {b['photos']:,.0f} photos at this rate", fmt(b["hours_to_drain"]))
    if b and b["mode"] in ("saturated", "rate"):
        feeder = ("`thumbfarm-api backfill` walkers (one cursor: one walker today)" if b["feeder"] == "backfill"
                  else "ingest planners")
        row(f"feeding the bulk queue: one process per photo (ms) → {feeder} needed for the target",
            f"{fmt(b['feeder_s_per_photo'] * 1e3)} → {fmt(b['feeder_processes_needed'])}")
    row("worker slot / core utilisation", f"{wk['slot_utilisation'] * 100:.0f} % / {wk['core_utilisation'] * 100:.0f} %")
    s3 = res["s3"]
    rq = s3["requests_per_s"]
    row("S3 requests/s: GET / HEAD / PUT / LIST", " / ".join(fmt(rq.get(k, 0.0)) for k in ("GET", "HEAD", "PUT", "LIST")))
    for key, v in sorted(s3["per_prefix"].items(), key=lambda kv: -kv[1]["max_per_prefix"])[:4]:
        lim = v["limit_per_prefix"]
        row(f"S3 {key} per prefix at depth {s['prefix_depth']}: uniform / max (limit)",
            f"{fmt(v['uniform_per_prefix'], 2)} / {fmt(v['max_per_prefix'], 2)} ({fmt(lim) if lim else 'n/a'})")
    row("broker: job publishes / rendered events / event deliveries to API replicas (per s)",
        f"{fmt(br['job_publishes_per_s'])} / {fmt(br['events_per_s'])} / {fmt(br['event_deliveries_to_api_per_s'])}")
    lines.append("")
    return "\n".join(lines)


def depth_table(res):
    lines = ["Requests/s per hash prefix by prefix depth (uniform = total / 16^depth; max = busiest prefix in the simulation):", "",
             "| folder, class | depth 1 uniform / max | depth 2 | depth 3 | depth 4 |", "|---|---|---|---|---|"]
    bd = res["s3"]["by_depth"]
    keys = sorted(bd.get(1, {}).keys(), key=lambda k: -bd[1][k]["max"])
    for k in keys[:6]:
        cells = [f"{fmt(bd[d][k]['uniform'], 2)} / {fmt(bd[d][k]['max'], 2)}" for d in (1, 2, 3, 4)]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# scenarios


def prepare(sc_raw, name, args):
    sc = copy.deepcopy(sc_raw)
    sc["name"] = name
    if args.s3_profile:
        sc["s3_profile"] = args.s3_profile
    if args.window:
        sc["window_s"] = args.window
    for kv in args.set or ():
        k, _, v = kv.partition("=")
        try:
            val = json.loads(v)
        except json.JSONDecodeError:
            val = v
        set_path(sc, k, val)
    return sc


def run_scenario(sc, inp, seed=None):
    cl = Cluster(sc, inp, seed=seed).run()
    return summarize(cl, sc, inp)


def run_sweep(sc, inp, seed=None, log=None):
    """For each (concurrency, prefetch): the fewest workers that finish the
    backfill in time (bulk queue saturated, on-demand jobs arriving as in the
    scenario), and the on-demand queue delay at that number."""
    sw = sc["sweep"]
    photos = float(sc["bulk"]["photos"])
    need = photos / (float(sc["bulk"]["deadline_h"]) * 3600.0)
    od_rate = float(sw["ondemand_jobs_per_s"])
    rows = []
    t_start = time.time()
    for g in sw["grid"]:
        base = deep_merge(sc, {"workers": g})
        base["client"] = {"mode": "jobs", "ondemand_jobs_per_s": od_rate}
        base["bulk"] = dict(sc["bulk"], mode="saturated")
        # probe: per-worker capacity on a few workers, bulk only
        probe = deep_merge(base, {"workers": {"count": sw.get("probe_workers", 16)}})
        probe["client"] = {"mode": "none"}
        probe["window_s"], probe["warmup_s"], probe["drain_s"] = sw.get("probe_window_s", 60), 10, 0
        r = run_scenario(probe, inp, seed)
        per_worker = r["bulk"]["per_worker_jobs_per_s"]
        n = max(1, math.ceil(need / per_worker))
        for _ in range(4):
            cfg = deep_merge(base, {"workers": {"count": n}})
            cfg["window_s"], cfg["warmup_s"] = sw.get("window_s", 120), sw.get("warmup_s", 20)
            res = run_scenario(cfg, inp, seed)
            rate = res["bulk"]["jobs_per_s"]
            if rate >= need:
                break
            n = max(n + 1, math.ceil(n * need / rate))
        o = res["ondemand"]
        c, p = int(g["concurrency"]), int(g["prefetch"])
        cores = int(base["workers"]["cores"])
        pw = rate / n
        reaction = float(inp["keda.reaction_s"])
        od_target = float(sw["ondemand_delay_target_s"])
        od_job_s = res["ondemand"]["mean_job_s"]
        row = {
            "concurrency": c, "prefetch": p, "cores": cores, "workers": n, "total_cores": n * cores,
            "bulk_jobs_per_s": rate, "per_worker_jobs_per_s": pw,
            "od_delay_p50_ms": o["queue_delay_p50_ms"], "od_delay_p99_ms": o["queue_delay_p99_ms"],
            "od_delay_max_ms": o["queue_delay_max_ms"], "od_max_ready": o["max_ready"],
            "od_done_p50_ms": o["time_to_rendered_p50_ms"], "od_done_p99_ms": o["time_to_rendered_p99_ms"],
            "od_mean_ready": o["mean_ready"],
            "core_utilisation": res["workers"]["core_utilisation"],
            "slot_utilisation": res["workers"]["slot_utilisation"],
            "keda_bulk_value": pw * reaction,
            "keda_ondemand_value": od_target * min(c, p) / od_job_s if od_job_s else None,
            "s3_profile": res["simulated"]["s3_profile"],
        }
        rows.append(row)
        if log:
            log(f"  concurrency {c} prefetch {p}: {n} workers, on-demand p99 {row['od_delay_p99_ms']:.0f} ms "
                f"({time.time() - t_start:.0f} s so far)")
    max_util = float(sw.get("max_core_utilisation", 0.8))
    ok = [r for r in rows if r["od_done_p99_ms"] <= od_target * 1e3 and r["core_utilisation"] <= max_util] or rows
    fewest = min(r["total_cores"] for r in ok)
    # within 3 % of the fewest cores, prefer the smaller prefetch (less held per worker)
    best = min((r for r in ok if r["total_cores"] <= fewest * 1.03), key=lambda r: (r["prefetch"], r["total_cores"]))
    return {"scenario": sc.get("name"), "description": sc.get("description", ""), "needed_jobs_per_s": need,
            "ondemand_jobs_per_s": od_rate, "rows": rows, "best": best,
            "ondemand_delay_target_ms": od_target * 1e3, "max_core_utilisation": max_util,
            "scale_note": (f"each row: bulk queue saturated, {od_rate:g} on-demand jobs/s; "
                           f"{sw.get('window_s', 120)} s of steady state after {sw.get('warmup_s', 20)} s warm-up, "
                           "rates scaled to 24 h"),
            "keda_reaction_s": float(inp["keda.reaction_s"])}


def sweep_markdown(sw):
    lines = [f"### Scenario `{sw['scenario']}`", "", sw["description"], "", f"_{sw['scale_note']}._", "",
             f"Backfill needs {sw['needed_jobs_per_s']:,.0f} jobs/s; S3 profile `{sw['rows'][0]['s3_profile']}`.", "",
             "| concurrency | prefetch | workers for 24 h | cores | bulk jobs/s per worker | on-demand queue delay p50 / p99 / max (ms) | on-demand publish→done p50 / p99 (ms) | on-demand ready max | core util. | KEDA bulk value | KEDA on-demand value |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sw["rows"]:
        lines.append(
            f"| {r['concurrency']} | {r['prefetch']} | {r['workers']:,} | {r['total_cores']:,} | {r['per_worker_jobs_per_s']:.2f} | "
            f"{fmt(r['od_delay_p50_ms'])} / {fmt(r['od_delay_p99_ms'])} / {fmt(r['od_delay_max_ms'])} | "
            f"{fmt(r['od_done_p50_ms'])} / {fmt(r['od_done_p99_ms'])} | "
            f"{r['od_max_ready']} | {r['core_utilisation'] * 100:.0f} % | "
            f"{r['keda_bulk_value']:.0f} | {r['keda_ondemand_value']:.1f} |")
    b = sw["best"]
    lines += ["",
              f"Recommendation (fewest cores with cores at most {sw['max_core_utilisation'] * 100:.0f} % busy and on-demand "
              f"jobs done within {sw['ondemand_delay_target_ms']:.0f} ms of publishing at p99): concurrency {b['concurrency']}, "
              f"prefetch {b['prefetch']} → {b['workers']:,} workers "
              f"({b['total_cores']:,} cores), on-demand queue delay p99 "
              f"{fmt(b['od_delay_p99_ms'])} ms, publish→done p99 {fmt(b['od_done_p99_ms'])} ms. "
              "A worker runs at most min(concurrency, prefetch) bulk jobs at once, so prefetch below "
              "concurrency would leave slots idle during a backfill: the worker raises its prefetch to its "
              "concurrency (rows with a lower prefetch show the effective one); "
              "queue delay is publish → slot, publish→done adds the job itself (and, with concurrency above "
              "the cores, its wait for a core).",
              "",
              "KEDA `value` (ready messages per replica): bulk = jobs one worker finishes in the scaler's reaction time "
              f"({sw['keda_reaction_s']:.0f} s: polling + pod start), i.e. start a pod only for a backlog the running ones "
              "would not clear before it is up; on-demand = ready messages one worker clears within the delay target. "
              "Ready on-demand messages appear only once every worker holds `prefetch` on-demand jobs, "
              "so during a backfill the on-demand trigger stays at 0 and the bulk trigger does the scaling.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# self-test


def erlang_c_wq(lam, mu, c):
    a = lam / mu
    rho = a / c
    s = sum(a ** k / math.factorial(k) for k in range(c))
    top = a ** c / math.factorial(c) / (1 - rho)
    pw = top / (s + top)
    return pw / (c * mu - lam)


def self_test(inp):
    ok = True
    out = []

    def check(name, got, want, tol):
        nonlocal ok
        err = abs(got - want) / want
        good = err <= tol
        ok &= good
        out.append(f"{'ok  ' if good else 'FAIL'} {name}: {got:.4f} vs theory {want:.4f} ({err * 100:.1f} %, tolerance {tol * 100:.0f} %)")

    base = {"s3_profile": "local-s3s-fs", "api": {"replicas": 1}, "bulk": {"mode": "off"},
            "warmup_s": 2000.0, "drain_s": 0.0}

    def mm(lam, mu, c, window, seed):
        sc = deep_merge(base, {"workers": {"count": c, "cores": 1, "concurrency": 1, "prefetch": 1},
                               "client": {"mode": "jobs", "ondemand_jobs_per_s": lam}, "window_s": window})
        rng = random.Random(seed + 99)
        cl = Cluster(sc, inp, seed=seed, test=lambda job: rng.expovariate(mu)).run()
        wq = statistics.fmean(cl.od_delay)
        lq = cl.q_od.area / cl.window
        return wq, lq, cl

    # M/M/1, rho = 0.5: Wq = rho / (mu - lambda) = 1.0
    wq, lq, cl = mm(0.5, 1.0, 1, 200000.0, 7)
    check("M/M/1 rho=0.5 mean queue wait", wq, 0.5 / (1.0 - 0.5), 0.10)
    check("Little's law Lq = lambda * Wq (M/M/1)", lq, 0.5 * wq, 0.05)
    # M/M/4, rho = 0.7 (prefetch 1: the broker only pushes to idle workers)
    wq4, lq4, _ = mm(2.8, 1.0, 4, 100000.0, 11)
    check("M/M/4 rho=0.7 mean queue wait (Erlang C)", wq4, erlang_c_wq(2.8, 1.0, 4), 0.10)
    check("Little's law Lq = lambda * Wq (M/M/4)", lq4, 2.8 * wq4, 0.05)
    # Priority: one slot busy with back-to-back bulk jobs of exactly 1 s; sparse
    # on-demand jobs wait for the running bulk job only: its residual, mean 0.5 s.
    sc = deep_merge(base, {"workers": {"count": 1, "cores": 1, "concurrency": 1, "prefetch": 1},
                           "client": {"mode": "jobs", "ondemand_jobs_per_s": 0.02},
                           "bulk": {"mode": "saturated", "photos": 1, "deadline_h": 1},
                           "window_s": 200000.0})
    cl = Cluster(sc, inp, seed=5, test=lambda job: 1.0 if job.kind == BULK else 0.001).run()
    check("on-demand behind a saturated backfill waits one bulk residual (mean S/2)",
          statistics.fmean(cl.od_delay), 0.5, 0.10)
    return ok, out


# --------------------------------------------------------------------------
# main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=None, help="scenario name in inputs.json (default: small)")
    ap.add_argument("--config", help="a JSON file: {\"inputs\": {...overrides}, \"scenarios\": {...}, \"scenario\": {...}}")
    ap.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    ap.add_argument("--self-test", action="store_true", help="check the simulator against queueing theory")
    ap.add_argument("--list", action="store_true", help="list scenarios and the TO MEASURE inputs")
    ap.add_argument("--s3-profile", help="override the scenario's S3 latency profile")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--window", type=float, help="simulated steady-state window in seconds")
    ap.add_argument("--set", action="append", metavar="KEY=JSON", help="override a scenario field, e.g. workers.prefetch=4")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run N seeds and add the median and range of the main outputs")
    args = ap.parse_args(argv)

    raw = load_inputs()
    scenarios = raw["scenarios"]
    name = args.scenario
    if args.config:
        with open(args.config) as f:
            cfg = json.load(f)
        raw["inputs"] = deep_merge(raw["inputs"], cfg.get("inputs", {}))
        scenarios = deep_merge(scenarios, cfg.get("scenarios", {}))
        if "scenario" in cfg:
            scenarios["config"] = cfg["scenario"]
            name = name or "config"
    name = name or raw.get("default_scenario", "small")
    inputs = Inputs(raw["inputs"])
    inp = {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in raw["inputs"].items()}

    if args.list:
        print("Scenarios:")
        for k, v in scenarios.items():
            print(f"  {k:16} {v.get('description', '')[:100]}")
        print("\nInputs marked TO MEASURE:")
        for n, spec in inputs.to_measure():
            v = spec.get("value", {k: spec[k] for k in spec if k in ('p50', 'p90', 'p99')})
            print(f"  {n}: {json.dumps(v)}")
        return 0

    if args.self_test:
        ok, lines = self_test(inp)
        print("\n".join(lines))
        print("self-test passed" if ok else "self-test FAILED")
        return 0 if ok else 1

    sc = prepare(resolve_scenario(scenarios, name), name, args)
    t0 = time.time()
    log = (lambda m: print(m, file=sys.stderr)) if not args.json else None
    if "sweep" in sc:
        res = run_sweep(sc, inp, args.seed, log=log)
        res["runtime_s"] = round(time.time() - t0, 1)
        if args.json:
            print(json.dumps(res, indent=2, default=str))
        else:
            print(sweep_markdown(res))
            print(f"_(runtime {res['runtime_s']} s)_")
        return 0
    seed0 = args.seed if args.seed is not None else int(sc.get("seed", 1))
    runs = [run_scenario(sc, inp, seed0 + i) for i in range(max(1, args.repeat))]
    res = runs[0]
    if len(runs) > 1:
        res["spread"] = spread(runs, seed0)
    res["runtime_s"] = round(time.time() - t0, 1)
    if args.json:
        print(json.dumps(res, indent=2, default=str))
    else:
        print(markdown(res))
        if "spread" in res:
            print(spread_markdown(res["spread"]))
        print(depth_table(res))
        print(f"_(runtime {res['runtime_s']} s)_")
    return 0


SPREAD_KEYS = [
    ("api", "throughput_rps", "throughput (requests/s)"),
    ("api", "latency_p50_ms", "latency p50, all (ms)"),
    ("api", "latency_p99_ms", "latency p99, all (ms)"),
    ("api", "miss_p99_ms", "latency p99, misses (ms)"),
    ("api", "misses", "misses"),
    ("api", "ingests", "ingests"),
    ("api", "answered_503", "503 answers"),
    ("ondemand", "renders", "on-demand renders"),
    ("ondemand", "duplicate_jobs", "duplicate jobs"),
    ("ondemand", "duplicate_renders", "duplicate renders"),
    ("ondemand", "max_ready", "max ready on-demand"),
    ("ondemand", "queue_delay_p99_ms", "on-demand queue delay p99 (ms)"),
    ("bulk", "jobs_done", "bulk jobs done"),
]


def spread(runs, seed0):
    out = {"seeds": [seed0, seed0 + len(runs) - 1], "metrics": {}}
    for sec, key, label in SPREAD_KEYS:
        vals = [r[sec].get(key) for r in runs if r.get(sec)]
        vals = [v for v in vals if isinstance(v, (int, float)) and not math.isnan(v)]
        if vals:
            out["metrics"][label] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


def spread_markdown(sp):
    lines = [f"Spread over seeds {sp['seeds'][0]}..{sp['seeds'][1]} (the table above is seed {sp['seeds'][0]}):", "",
             "| output | median | min | max |", "|---|---|---|---|"]
    for label, v in sp["metrics"].items():
        med = v["median"]
        if isinstance(v["min"], int) and float(med).is_integer():
            med = int(med)
        lines.append(f"| {label} | {fmt(med)} | {fmt(v['min'])} | {fmt(v['max'])} |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
