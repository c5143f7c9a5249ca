#!/usr/bin/env python3
"""Validates everything under deploy/ without a cluster, a Docker engine or a
Rust build. Run through scripts/validate-deploy.sh (which installs the
dependencies into .tools/venv); closes with `N passed, N failed, N skipped`.

What it checks:
- Kubernetes: every kustomization (resources and patches exist, no orphan
  YAML), every built-in object against the Kubernetes OpenAPI schemas shipped
  by `kubernetes-validate` (strict), KEDA / prometheus-operator objects
  against deploy/schemas/, the base and every overlay rendered (a small
  kustomize: resources, namespace, labels, images, strategic-merge / JSON-merge
  patches, $patch: delete; plus `kubectl kustomize` when kubectl is there),
  and consistency: selectors match pods, probes hit the real endpoints, ports
  exist, KEDA scales existing Deployments on existing queues, secrets exist,
  grace periods nest, security context, resources.
- THUMBFARM_* variables set by the manifests and compose are options of the
  binary the container runs (derived from `env = "THUMBFARM_..."` in crates/).
- Metric names and labels used by the Grafana dashboard and the alert rules
  exist in the Rust sources (PromQL parsed with promql-parser), and
  docs/metrics.md documents exactly the metrics the sources define.
- compose.yaml against the Compose specification schema, prometheus.yml,
  alerts.yml (and the PrometheusRule copy), Grafana provisioning, Dockerfile.

Names the brief expects but the Rust code does not have yet (PENDING_*) are
reported as skipped, not failed, until they appear in the sources.

`--regenerate` rewrites deploy/k8s/base/prometheusrule.yaml from alerts.yml.
"""

from __future__ import annotations

import copy
import glob
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = DEPLOY / "schemas"
CRATES = ROOT / "crates"
K8S_VERSION = "1.30"

# Expected from work in progress elsewhere: skipped (with a note) while absent
# from the sources, checked like everything else once they exist.
PENDING_METRICS: dict = {}
PENDING_ENV: dict = {}

# Labels every scraped series has or Prometheus/histograms add.
GENERIC_LABELS = {"le", "job", "instance", "pod", "namespace", "service", "container", "endpoint", "quantile"}
# Metrics from Prometheus itself.
BUILTIN_METRICS = {"up": {"job", "instance"}, "scrape_duration_seconds": {"job", "instance"}}


# ---------------------------------------------------------------- runner

class Skip(Exception):
    pass


NOTES = []


def pending(items):
    """Pending names do not fail a test; they are printed as notes."""
    NOTES.extend(sorted(set(items)))


TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Failures:
    """Collects every problem of one test, so one run shows them all."""

    def __init__(self):
        self.items = []

    def __call__(self, cond, msg):
        if not cond:
            self.items.append(msg)
        return cond

    def done(self):
        if self.items:
            raise AssertionError("\n".join(self.items))


def rel(p) -> str:
    return str(Path(p).resolve().relative_to(ROOT))


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def load_schema(name):
    with open(SCHEMAS / name) as f:
        return json.load(f)


def schema_errors(schema, instance):
    v = jsonschema.Draft202012Validator(schema)
    out = []
    for e in sorted(v.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in e.absolute_path) or "<root>"
        out.append(f"{path}: {e.message[:300]}")
    return out


# ---------------------------------------------------------------- facts from the Rust sources

def rust_files(*dirs):
    files = []
    for d in dirs:
        d = Path(d)
        files += [d] if d.is_file() else sorted(d.rglob("*.rs"))
    return files


def env_options(*dirs):
    pat = re.compile(r'env\s*=\s*"(THUMBFARM_[A-Z0-9_]+)"')
    names = set()
    for f in rust_files(*dirs):
        names |= set(pat.findall(f.read_text()))
    return names


def accepted_env():
    """THUMBFARM_* options per binary. The API sees only its own and the
    shared options (it links no worker code); `thumbfarm` (single machine)
    adds the worker's RenderArgs/ConsumerArgs to the API's."""
    shared = env_options(CRATES / "shared" / "src")
    worker = shared | env_options(CRATES / "worker" / "src")
    api = shared | env_options(CRATES / "api" / "src")
    single = api | env_options(CRATES / "worker" / "src" / "config.rs") | env_options(CRATES / "thumbfarm" / "src")
    return {"thumbfarm-api": api, "thumbfarm-worker": worker, "thumbfarm": single}


def rust_metrics():
    """{metric name: set(label names)} for every `"thumbfarm_..."` metric
    registered in crates/*/src (labels: the first `&["..", ..]` after the name)."""
    out = {}
    name_pat = re.compile(r'"(thumbfarm_[a-z0-9_]+)"')
    for f in rust_files(CRATES / "shared" / "src", CRATES / "worker" / "src", CRATES / "api" / "src"):
        text = f.read_text()
        # Skip test modules: their strings are expected exposition lines.
        cut = text.find("#[cfg(test)]")
        body = text if cut < 0 else text[:cut]
        for m in name_pat.finditer(body):
            name = m.group(1)
            after = body[m.end():m.end() + 400]
            # Only real registrations: a help string follows the name.
            if not re.match(r'\s*,\s*"', after):
                continue
            nxt = re.search(r"\)\?", after)
            window = after[: nxt.end()] if nxt else after
            labels = set()
            lm = re.search(r"&\[([^\]]*)\]", window)
            if lm:
                labels = set(re.findall(r'"([a-zA-Z_][a-zA-Z0-9_]*)"', lm.group(1)))
            out.setdefault(name, set()).update(labels)
    return out


def topology_queues():
    text = (CRATES / "shared" / "src" / "queue" / "topology.rs").read_text()
    return set(re.findall(r'QueueName::\w+\s*=>\s*"(thumbfarm\.[a-z.]+)"', text))


def crate_names():
    names = set()
    for toml in (CRATES).glob("*/Cargo.toml"):
        m = re.search(r'^name\s*=\s*"([^"]+)"', toml.read_text(), re.M)
        if m:
            names.add(m.group(1))
    return names


# ---------------------------------------------------------------- PromQL

def promql_selectors(expr):
    """[(metric name or None, {matcher label names}), ...] and the grouping
    labels of an expression, parsed by promql-parser."""
    import promql_parser

    tree = promql_parser.parse(expr)
    selectors, grouping = [], set()

    def walk(n):
        t = type(n).__name__
        if t == "VectorSelector":
            labels = {m.name for m in n.matchers.matchers if m.name != "__name__"}
            name = n.name
            for m in n.matchers.matchers:
                if m.name == "__name__":
                    name = m.value
            selectors.append((name, labels))
            return
        if t == "MatrixSelector":
            walk(n.vector_selector)
            return
        mod = getattr(n, "modifier", None)
        if mod is not None:
            if type(mod).__name__ == "AggModifier":
                grouping.update(mod.labels or [])
            elif type(mod).__name__ == "BinModifier":
                if mod.matching is not None:
                    grouping.update(mod.matching.labels or [])
                grouping.update(getattr(mod, "group_labels", None) or [])
        for attr in ("expr", "lhs", "rhs", "param"):
            v = getattr(n, attr, None)
            if v is not None and type(v).__module__ == "promql_parser" and not isinstance(v, (str, int, float)):
                if type(v).__name__ not in ("TokenType", "AggModifier", "BinModifier", "Function"):
                    walk(v)
        for a in getattr(n, "args", None) or []:
            walk(a)

    walk(tree)
    return selectors, grouping


def base_metric(name, known):
    if name in known:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return None


GRAFANA_VARS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
    "${__rate_interval}": "5m",
}


def check_promql(expr, where, metrics, fail, skipped, used=None):
    """Parses expr; every metric must exist (with its labels), else fail."""
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    expr = re.sub(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)\}?", r".*", expr)  # template variables
    try:
        selectors, grouping = promql_selectors(expr)
    except Exception as e:  # parse error
        fail(False, f"{where}: PromQL does not parse: {e}: {expr}")
        return
    known = dict(metrics)
    known.update(BUILTIN_METRICS)
    all_labels = set(GENERIC_LABELS)
    for name, labels in selectors:
        if name is None:
            fail(False, f"{where}: selector without a metric name")
            continue
        if name.startswith("rabbitmq_"):
            all_labels |= labels
            continue
        b = base_metric(name, known)
        if b is None:
            pending = base_metric(name, {k: set() for k in PENDING_METRICS})
            if pending:
                skipped.append(f"{where}: {pending} is not in the Rust sources yet ({PENDING_METRICS[pending]})")
                all_labels |= labels
                continue
            fail(False, f"{where}: metric {name} is not defined in crates/*/src")
            continue
        if used is not None:
            used.add(b)
        allowed = known[b] | GENERIC_LABELS
        all_labels |= known[b]
        bad = labels - allowed
        fail(not bad, f"{where}: {name} has no label(s) {sorted(bad)} (has {sorted(known[b])})")
    bad = grouping - all_labels
    fail(not bad, f"{where}: grouping by unknown label(s) {sorted(bad)}")


# ---------------------------------------------------------------- a small kustomize

def is_kustomization(p: Path):
    return p.name in ("kustomization.yaml", "kustomization.yml", "Kustomization")


def kustomization_file(d: Path):
    for n in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        if (d / n).exists():
            return d / n
    return None


def group_of(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


BUILTIN_GROUPS = {"", "apps", "autoscaling", "policy", "networking.k8s.io", "batch", "rbac.authorization.k8s.io"}

# Merge keys of the strategic-merge lists used in these manifests.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "env": "name", "ports": "containerPort",
    "volumes": "name", "volumeMounts": "mountPath", "envFrom": None,
}


def strategic_merge(base, patch, key=None):
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if k == "$patch":
                continue
            if v is None:
                out.pop(k, None)
            elif k in out:
                out[k] = strategic_merge(out[k], v, k)
            else:
                out[k] = copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list):
        mk = MERGE_KEYS.get(key)
        if key == "ports" and patch and isinstance(patch[0], dict) and "containerPort" not in patch[0]:
            mk = "port"
        if mk and all(isinstance(x, dict) for x in base + patch):
            out = [copy.deepcopy(x) for x in base]
            for item in patch:
                idx = next((i for i, x in enumerate(out) if x.get(mk) == item.get(mk)), None)
                if idx is None:
                    out.append(copy.deepcopy(item))
                else:
                    out[idx] = strategic_merge(out[idx], item)
            return out
        return copy.deepcopy(patch)
    return copy.deepcopy(patch)


def json_merge(base, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge(out.get(k), v)
    return out


def set_labels(obj, pairs, include_selectors):
    obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
    if include_selectors:
        raise NotImplementedError("includeSelectors: true")
    # kustomize's `labels` also labels pod templates unless includeTemplates is false;
    # with includeSelectors: false it leaves templates alone.


def build(directory: Path, fail, seen=None):
    """Renders a kustomization directory into a list of objects."""
    seen = seen or set()
    kfile = kustomization_file(directory)
    if kfile is None:
        fail(False, f"{rel(directory)}: no kustomization.yaml")
        return []
    if kfile in seen:
        fail(False, f"{rel(kfile)}: kustomization cycle")
        return []
    seen = seen | {kfile}
    k = load_yaml_docs(kfile)[0]
    objs = []
    for r in k.get("resources", []):
        p = (directory / r).resolve()
        if p.is_dir():
            objs += build(p, fail, seen)
        elif p.is_file():
            objs += [copy.deepcopy(d) for d in load_yaml_docs(p)]
        else:
            fail(False, f"{rel(kfile)}: resource {r} does not exist")
    for pt in k.get("patches", []):
        if "path" in pt:
            pp = directory / pt["path"]
            if not pp.is_file():
                fail(False, f"{rel(kfile)}: patch {pt['path']} does not exist")
                continue
            patch_docs = load_yaml_docs(pp)
        else:
            patch_docs = [d for d in yaml.safe_load_all(pt["patch"]) if d]
        for patch in patch_docs:
            if isinstance(patch, list):
                fail(False, f"{rel(kfile)}: JSON 6902 patches are not supported by this checker")
                continue
            target = pt.get("target") or {}
            kind = target.get("kind", patch.get("kind"))
            name = target.get("name", (patch.get("metadata") or {}).get("name"))
            matches = [o for o in objs if o.get("kind") == kind and o["metadata"].get("name") == name]
            if not fail(len(matches) == 1, f"{rel(kfile)}: patch {pt.get('path', '<inline>')} matches "
                                          f"{len(matches)} objects ({kind}/{name})"):
                continue
            target_obj = matches[0]
            if patch.get("$patch") == "delete":
                objs.remove(target_obj)
                continue
            if group_of(target_obj["apiVersion"]) in BUILTIN_GROUPS:
                merged = strategic_merge(target_obj, patch)
            else:
                merged = json_merge(target_obj, patch)
            objs[objs.index(target_obj)] = merged
    for lab in k.get("labels", []):
        for o in objs:
            set_labels(o, lab["pairs"], lab.get("includeSelectors", False))
    if "namespace" in k:
        for o in objs:
            if o.get("kind") != "Namespace":
                o.setdefault("metadata", {})["namespace"] = k["namespace"]
    for img in k.get("images", []):
        for o in objs:
            for c in pod_containers(o):
                ref = c.get("image", "")
                repo, tag = split_image(ref)
                if repo == img["name"]:
                    new = img.get("newName", repo)
                    if "digest" in img:
                        c["image"] = f"{new}@{img['digest']}"
                    else:
                        c["image"] = f"{new}:{img.get('newTag', tag or 'latest')}" if (img.get("newTag") or tag) else new
    for rep in k.get("replicas", []):
        for o in objs:
            if o["metadata"].get("name") == rep["name"] and o.get("kind") in ("Deployment", "StatefulSet"):
                o["spec"]["replicas"] = rep["count"]
    return objs


def split_image(ref):
    if "@" in ref:
        return ref.split("@")[0], None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        return ref.rsplit(":", 1)[0], ref.rsplit(":", 1)[1]
    return ref, None


def pod_spec(o):
    if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return o.get("spec", {}).get("template", {}).get("spec", {})
    return None


def pod_containers(o):
    ps = pod_spec(o)
    if ps is None:
        return []
    return ps.get("containers", []) + ps.get("initContainers", [])


def kustomize_dirs():
    return sorted({p.parent for p in K8S.rglob("kustomization.yaml")})


# ---------------------------------------------------------------- object validation

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring-servicemonitor-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring-prometheusrule-v1.json",
}


def validate_object(obj, where):
    """Schema errors of one object (built-in: Kubernetes OpenAPI, strict)."""
    import kubernetes_validate

    if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
        return [f"{where}: not a Kubernetes object (apiVersion/kind missing)"]
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_SCHEMAS:
        return [f"{where} {obj['kind']}/{obj['metadata'].get('name')}: {e}"
                for e in schema_errors(load_schema(CRD_SCHEMAS[key]), obj)]
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path) or "<root>"
        return [f"{where} {obj['kind']}/{obj.get('metadata', {}).get('name')}: {path}: {e.message[:300]}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{where}: no schema for {obj['apiVersion']} {obj['kind']} "
                f"(add one under deploy/schemas/): {e.message}"]
    return []


# ---------------------------------------------------------------- tests: Kubernetes

@test
def k8s_kustomizations_reference_existing_files_and_no_orphans():
    fail = Failures()
    schema = load_schema("kustomization-v1beta1.json")
    referenced = set()
    dirs = kustomize_dirs()
    fail(K8S / "base" in dirs, "deploy/k8s/base/kustomization.yaml missing")
    fail(any("overlays" in str(d) for d in dirs), "no overlay under deploy/k8s/overlays")
    for d in dirs:
        kf = kustomization_file(d)
        referenced.add(kf.resolve())
        k = load_yaml_docs(kf)[0]
        for e in schema_errors(schema, k):
            fail(False, f"{rel(kf)}: {e}")
        for r in k.get("resources", []) + [p["path"] for p in k.get("patches", []) if "path" in p]:
            p = (d / r).resolve()
            if fail(p.exists(), f"{rel(kf)}: {r} does not exist"):
                if p.is_dir():
                    fail(kustomization_file(p) is not None, f"{rel(kf)}: {r} is a folder without kustomization.yaml")
                else:
                    referenced.add(p)
    for f in list(K8S.rglob("*.yaml")) + list(K8S.rglob("*.yml")):
        fail(f.resolve() in referenced, f"{rel(f)} is not referenced by any kustomization")
    fail.done()


@test
def k8s_every_resource_file_validates_against_schemas():
    """Each resource file on its own (patch files are checked after merging)."""
    fail = Failures()
    count = 0
    for d in kustomize_dirs():
        k = load_yaml_docs(kustomization_file(d))[0]
        for r in k.get("resources", []):
            p = (d / r).resolve()
            if p.is_file():
                for doc in load_yaml_docs(p):
                    count += 1
                    for e in validate_object(doc, rel(p)):
                        fail(False, e)
    fail(count >= 10, f"only {count} objects found")
    fail.done()


def rendered_builds():
    out = {}
    for d in kustomize_dirs():
        f = Failures()
        objs = build(d, f)
        f.done()
        out[rel(d)] = objs
    return out


@test
def k8s_rendered_base_and_overlays_validate():
    fail = Failures()
    for where, objs in rendered_builds().items():
        names = set()
        for o in objs:
            key = (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
            fail(key not in names, f"{where}: duplicate {key}")
            names.add(key)
            for e in validate_object(o, where):
                fail(False, e)
    fail.done()


def normalized(o):
    """Order of merge-keyed lists (env, containers, ...) is not significant."""
    if isinstance(o, dict):
        return {k: normalized(v) for k, v in o.items()}
    if isinstance(o, list):
        items = [normalized(x) for x in o]
        if items and all(isinstance(x, dict) and "name" in x for x in items):
            return sorted(items, key=lambda x: str(x["name"]))
        return items
    return o


@test
def k8s_kubectl_kustomize_output_validates():
    kubectl = shutil.which("kubectl")
    kustomize = shutil.which("kustomize")
    if not (kubectl or kustomize):
        raise Skip("neither kubectl nor kustomize on PATH (the built-in renderer is checked above)")
    fail = Failures()
    for d in kustomize_dirs():
        cmd = [kustomize, "build", str(d)] if kustomize else [kubectl, "kustomize", str(d)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if not fail(r.returncode == 0, f"{' '.join(cmd[:-1])} {rel(d)} failed: {r.stderr.strip()[:500]}"):
            continue
        docs = [x for x in yaml.safe_load_all(r.stdout) if x]
        ours = build(d, Failures())
        key = lambda o: (o["kind"], o["metadata"]["name"])
        theirs_by = {key(o): o for o in docs}
        ours_by = {key(o): o for o in ours}
        fail(sorted(theirs_by) == sorted(ours_by),
             f"{rel(d)}: kubectl kustomize and the built-in renderer produce different object sets")
        for k in set(theirs_by) & set(ours_by):
            fail(normalized(theirs_by[k]) == normalized(ours_by[k]), f"{rel(d)}: {k[0]}/{k[1]} renders differently in kubectl kustomize "
                                             "and the built-in renderer")
        for o in docs:
            for e in validate_object(o, f"kustomize {rel(d)}"):
                fail(False, e)
    fail.done()


def by_kind(objs, kind):
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def selector_matches(selector, labels):
    ml = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    return bool(ml) and all(labels.get(k) == v for k, v in ml.items())


def container_env(o, objs, include_secret_refs=True):
    """{container name: {env name: value or '<secret:key>'}} including envFrom ConfigMaps."""
    cms = by_kind(objs, "ConfigMap")
    out = {}
    for c in pod_containers(o):
        env = {}
        for ef in c.get("envFrom", []):
            if "configMapRef" in ef:
                cm = cms.get(ef["configMapRef"]["name"])
                if cm:
                    env.update(cm.get("data", {}))
            elif "secretRef" in ef:
                env["<secretRef:%s>" % ef["secretRef"]["name"]] = ""
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            elif include_secret_refs:
                env[e["name"]] = "<ref>"
        out[c["name"]] = env
    return out


def binary_of(container):
    words = (container.get("command") or []) + (container.get("args") or [])
    for w in words:
        name = w.rsplit("/", 1)[-1]
        if name in ("thumbfarm-api", "thumbfarm-worker", "thumbfarm"):
            return name
    # The image's CMD: the api image runs thumbfarm-api, the full one thumbfarm.
    image = container.get("image", "").rsplit("/", 1)[-1].split(":")[0].split("@")[0]
    return "thumbfarm-api" if image.endswith("thumbfarm-api") else "thumbfarm"


def prestop_sleep(container):
    cmd = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command") or []
    if len(cmd) == 2 and cmd[0] == "sleep":
        return int(cmd[1])
    sleep = (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
    return int(sleep or 0)


@test
def k8s_thumbfarm_env_is_accepted_by_the_binaries():
    fail = Failures()
    accepted = accepted_env()
    skipped = []
    for where, objs in rendered_builds().items():
        cms = by_kind(objs, "ConfigMap")
        for name, o in by_kind(objs, "Deployment").items():
            for c in pod_containers(o):
                binary = binary_of(c)
                env = container_env(o, objs)[c["name"]]
                for ef in c.get("envFrom", []):
                    if "configMapRef" in ef:
                        fail(ef["configMapRef"]["name"] in cms,
                             f"{where} {name}: envFrom ConfigMap {ef['configMapRef']['name']} does not exist")
                for var in env:
                    if not var.startswith("THUMBFARM_"):
                        continue
                    if var in accepted[binary]:
                        continue
                    if var in PENDING_ENV and PENDING_ENV[var][0] in binary:
                        skipped.append(f"{var} ({PENDING_ENV[var][1]})")
                        continue
                    fail(False, f"{where} Deployment/{name}: {var} is not an option of {binary} "
                                f"(no env = \"{var}\" in its crates)")
    fail.done()
    pending(f"pending in the Rust sources: {s}" for s in skipped)


@test
def k8s_secret_references_resolve():
    fail = Failures()
    base_secret = {}
    for d in load_yaml_docs(K8S / "base" / "secret.yaml"):
        base_secret[d["metadata"]["name"]] = set((d.get("stringData") or {}) | (d.get("data") or {}))
    for where, objs in rendered_builds().items():
        secrets = {n: set((s.get("stringData") or {}) | (s.get("data") or {})) for n, s in by_kind(objs, "Secret").items()}
        if not secrets:
            secrets = base_secret  # created out of band with the keys of base/secret.yaml
        for name, o in by_kind(objs, "Deployment").items():
            for c in pod_containers(o):
                for e in c.get("env", []):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        fail(ref["key"] in secrets.get(ref["name"], set()),
                             f"{where} {name}: secret {ref['name']} has no key {ref['key']}")
        for name, ta in by_kind(objs, "TriggerAuthentication").items():
            for ref in ta["spec"].get("secretTargetRef", []):
                fail(ref["key"] in secrets.get(ref["name"], set()),
                     f"{where} TriggerAuthentication/{name}: secret {ref['name']} has no key {ref['key']}")
    fail.done()


@test
def k8s_workloads_probes_security_resources_and_grace():
    fail = Failures()
    for where, objs in rendered_builds().items():
        deps = by_kind(objs, "Deployment")
        fail("thumbfarm-api" in deps, f"{where}: no thumbfarm-api Deployment")
        fail({"thumbfarm-worker-render", "thumbfarm-worker-transcode"} <= set(deps),
             f"{where}: render and transcode worker Deployments missing")
        for name, o in deps.items():
            ps = pod_spec(o)
            sc = ps.get("securityContext", {})
            fail(sc.get("runAsNonRoot") is True, f"{where} {name}: pod securityContext.runAsNonRoot must be true")
            fail(sc.get("runAsUser", 0) != 0, f"{where} {name}: runAsUser must not be 0")
            tmp_volumes = {v["name"] for v in ps.get("volumes", []) if "emptyDir" in v}
            grace = ps.get("terminationGracePeriodSeconds", 30)
            for c in ps["containers"]:
                csc = c.get("securityContext", {})
                fail(csc.get("readOnlyRootFilesystem") is True, f"{where} {name}/{c['name']}: readOnlyRootFilesystem")
                fail(csc.get("allowPrivilegeEscalation") is False, f"{where} {name}/{c['name']}: allowPrivilegeEscalation")
                fail("ALL" in (csc.get("capabilities") or {}).get("drop", []), f"{where} {name}/{c['name']}: drop ALL capabilities")
                fail(any(m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in c.get("volumeMounts", [])),
                     f"{where} {name}/{c['name']}: /tmp must be an emptyDir (read-only root)")
                res = c.get("resources", {})
                for kind in ("requests", "limits"):
                    fail({"cpu", "memory"} <= set(res.get(kind, {})), f"{where} {name}/{c['name']}: resources.{kind} cpu+memory")
                fail(not c.get("image", "").endswith(":latest") or where.endswith("base"),
                     f"{where} {name}: overlay should pin an image tag, not :latest")
                ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
                binary = binary_of(c)
                env = container_env(o, objs)[c["name"]]
                sleep = prestop_sleep(c)
                fail(sleep > 0, f"{where} {name}: preStop sleep missing")
                if binary == "thumbfarm-api":
                    fail(ports.get("http") == 8080, f"{where} {name}: port http must be 8080")
                    fail(ports.get("admin") == 9090 and env.get("THUMBFARM_ADMIN_LISTEN", "").endswith(":9090"),
                         f"{where} {name}: the status page and /metrics belong on the operator port "
                         f"(port admin 9090, THUMBFARM_ADMIN_LISTEN)")
                    fail(env.get("THUMBFARM_LISTEN", "").endswith(":8080") and not env["THUMBFARM_LISTEN"].startswith("127."),
                         f"{where} {name}: THUMBFARM_LISTEN must listen on all interfaces, port 8080")
                    expect = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
                    port_name, port_num = "http", 8080
                    shutdown = float(env.get("THUMBFARM_SHUTDOWN_GRACE", 30))
                    fail(sleep + shutdown < grace, f"{where} {name}: preStop {sleep}s + THUMBFARM_SHUTDOWN_GRACE "
                                                   f"{shutdown}s must be below terminationGracePeriodSeconds {grace}")
                else:
                    fail(ports.get("metrics") == 9091, f"{where} {name}: port metrics must be 9091")
                    expect = {"readinessProbe": "/healthz", "livenessProbe": "/healthz"}
                    port_name, port_num = "metrics", 9091
                    g = int(env.get("THUMBFARM_GRACE_SECONDS", 60))
                    fail(sleep + g < grace, f"{where} {name}: preStop {sleep}s + THUMBFARM_GRACE_SECONDS {g}s must be "
                                            f"below terminationGracePeriodSeconds {grace}")
                    fail(grace >= 120, f"{where} {name}: terminationGracePeriodSeconds {grace} is shorter than a long job")
                    fail("replicas" not in o["spec"], f"{where} {name}: KEDA owns replicas; do not set spec.replicas")
                for probe, path in expect.items():
                    hg = (c.get(probe) or {}).get("httpGet") or {}
                    fail(hg.get("path") == path and hg.get("port") in (port_name, port_num),
                         f"{where} {name}: {probe} must GET {path} on {port_name} ({port_num}), has {hg}")
    fail.done()


@test
def k8s_selectors_services_hpa_pdb_servicemonitors_match():
    fail = Failures()
    for where, objs in rendered_builds().items():
        deps = by_kind(objs, "Deployment")
        pods = {n: o["spec"]["template"]["metadata"]["labels"] for n, o in deps.items()}
        for n, o in deps.items():
            fail(selector_matches(o["spec"]["selector"], pods[n]), f"{where} Deployment/{n}: selector does not match its pods")
        services = by_kind(objs, "Service")
        for n, s in services.items():
            matched = [d for d, labels in pods.items() if selector_matches(s["spec"]["selector"], labels)]
            fail(matched, f"{where} Service/{n}: selector matches no pods")
            for p in s["spec"]["ports"]:
                tp = p.get("targetPort", p["port"])
                for d in matched:
                    names = {cp.get("name") for c in pod_containers(deps[d]) for cp in c.get("ports", [])}
                    nums = {cp["containerPort"] for c in pod_containers(deps[d]) for cp in c.get("ports", [])}
                    fail(tp in names or tp in nums, f"{where} Service/{n}: targetPort {tp} not a port of {d}")
        for n, h in by_kind(objs, "HorizontalPodAutoscaler").items():
            fail(h["spec"]["scaleTargetRef"]["name"] in deps, f"{where} HPA/{n}: target missing")
            fail(h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"], f"{where} HPA/{n}: min > max")
        for n, p in by_kind(objs, "PodDisruptionBudget").items():
            fail(any(selector_matches(p["spec"]["selector"], l) for l in pods.values()), f"{where} PDB/{n}: matches no pods")
        fail(len(by_kind(objs, "PodDisruptionBudget")) >= 3, f"{where}: PDBs for api, render and transcode workers")
        sms = by_kind(objs, "ServiceMonitor")
        fail({"thumbfarm-api", "thumbfarm-worker"} <= set(sms), f"{where}: ServiceMonitors for api and worker")
        for n, sm in sms.items():
            matched = [s for s in services.values() if selector_matches(sm["spec"]["selector"], s["metadata"].get("labels", {}))]
            if fail(matched, f"{where} ServiceMonitor/{n}: selects no Service"):
                for ep in sm["spec"]["endpoints"]:
                    fail(all(ep.get("port") in {p.get("name") for p in s["spec"]["ports"]} for s in matched),
                         f"{where} ServiceMonitor/{n}: port {ep.get('port')} not on the Service")
                    fail(ep.get("path") == "/metrics", f"{where} ServiceMonitor/{n}: path must be /metrics")
                if n == "thumbfarm-api":
                    fail(all(ep.get("port") == "admin" for ep in sm["spec"]["endpoints"]),
                         f"{where} ServiceMonitor/{n}: the API's /metrics is on its operator port (admin)")
            # The job label (Service name by default) must be what the alerts use.
            fail(all(s["metadata"]["name"] in ("thumbfarm-api", "thumbfarm-worker") for s in matched),
                 f"{where} ServiceMonitor/{n}: job label would not be thumbfarm-api / thumbfarm-worker")
    fail.done()


@test
def k8s_ingress_exposes_only_the_public_routes():
    """The status page and /metrics never leave the cluster: every Ingress
    path is a public route of the API, on its public port."""
    fail = Failures()
    allowed = ("/api/v1/t/", "/api/v1/videos/", "/api/v1/previews/", "/api/v1/ingest", "/api/v1/assets/")
    for where, objs in rendered_builds().items():
        for n, ing in by_kind(objs, "Ingress").items():
            for rule in ing["spec"].get("rules", []):
                for p in (rule.get("http") or {}).get("paths", []):
                    path = p.get("path", "/")
                    fail(any(path == a or path.startswith(a) for a in allowed) and path not in ("/", ""),
                         f"{where} Ingress/{n}: path {path} exposes more than the public routes")
                    port = ((p.get("backend") or {}).get("service") or {}).get("port") or {}
                    fail(port.get("name") == "http" or port.get("number") == 8080,
                         f"{where} Ingress/{n}: {path} must go to the public port (http), not {port}")
    fail.done()


@test
def k8s_keda_scales_render_and_transcode_on_real_queues():
    fail = Failures()
    queues = topology_queues()
    for where, objs in rendered_builds().items():
        deps = by_kind(objs, "Deployment")
        tas = by_kind(objs, "TriggerAuthentication")
        sos = by_kind(objs, "ScaledObject")
        scaled = {}
        for n, so in sos.items():
            target = so["spec"]["scaleTargetRef"]["name"]
            fail(target in deps, f"{where} ScaledObject/{n}: target Deployment {target} missing")
            fail(so["spec"].get("minReplicaCount", 0) <= so["spec"].get("maxReplicaCount", 100),
                 f"{where} ScaledObject/{n}: min > max")
            for t in so["spec"]["triggers"]:
                fail(t["type"] == "rabbitmq", f"{where} ScaledObject/{n}: trigger type {t['type']}")
                q = t["metadata"].get("queueName")
                fail(q in queues, f"{where} ScaledObject/{n}: queue {q} is not in the topology ({sorted(queues)})")
                fail(t["metadata"].get("mode") == "QueueLength", f"{where} ScaledObject/{n}: mode must be QueueLength")
                ref = (t.get("authenticationRef") or {}).get("name")
                fail(ref in tas, f"{where} ScaledObject/{n}: TriggerAuthentication {ref} missing")
                scaled.setdefault(target, set()).add(q)
        fail(scaled.get("thumbfarm-worker-render") == {"thumbfarm.render.ondemand", "thumbfarm.render.bulk"},
             f"{where}: render workers must scale on the on-demand and bulk queues, got {scaled.get('thumbfarm-worker-render')}")
        fail(scaled.get("thumbfarm-worker-transcode") == {"thumbfarm.transcode"},
             f"{where}: transcode workers must scale on thumbfarm.transcode, got {scaled.get('thumbfarm-worker-transcode')}")
        hpas = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind(objs, "HorizontalPodAutoscaler").values()}
        fail(not (hpas & set(scaled)), f"{where}: a Deployment has both an HPA and a ScaledObject")
    fail.done()


# ---------------------------------------------------------------- tests: metrics, rules, dashboard

def load_alerts():
    return yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())


@test
def alerts_rule_file_shape_and_promql():
    fail = Failures()
    rules = load_alerts()
    for e in schema_errors(load_schema("prometheus-rules.json"), rules):
        fail(False, f"alerts.yml: {e}")
    metrics = rust_metrics()
    skipped = []
    names = []
    for g in rules.get("groups", []):
        for r in g.get("rules", []):
            names.append(r.get("alert"))
            check_promql(str(r["expr"]), f"alerts.yml {r.get('alert')}", metrics, fail, skipped)
            fail(r.get("labels", {}).get("severity") in ("critical", "warning", "info"),
                 f"alerts.yml {r.get('alert')}: severity label")
            fail("summary" in r.get("annotations", {}), f"alerts.yml {r.get('alert')}: summary annotation")
    fail(len(names) == len(set(names)), "alerts.yml: duplicate alert names")
    text = " ".join(str(r["expr"]) for g in rules["groups"] for r in g["rules"])
    for needed, why in [("thumbfarm_queue_messages_ready", "queue backing up"),
                        ('queue="thumbfarm.dead"', "dead letters growing"),
                        ('outcome="timeout"', "on-demand timeouts"),
                        ('up{job="thumbfarm-worker"}', "workers absent"),
                        ("thumbfarm_queue_consumers", "queue without consumers"),
                        ('status=~"5..', "API 5xx")]:
        fail(needed in text, f"alerts.yml: no rule for {why} ({needed})")
    fail.done()
    pending(skipped)


def prometheusrule_from_alerts():
    class Dumper(yaml.SafeDumper):
        pass

    def str_rep(d, v):
        return d.represent_scalar("tag:yaml.org,2002:str", v, style="|" if "\n" in v else None)

    Dumper.add_representer(str, str_rep)
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
           "metadata": {"name": "thumbfarm", "labels": {"role": "alert-rules"}},
           "spec": {"groups": load_alerts()["groups"]}}
    header = ("# GENERATED from deploy/prometheus/alerts.yml: the same groups for the\n"
              "# prometheus-operator. Regenerate after editing alerts.yml:\n"
              "#   scripts/validate-deploy.sh --regenerate\n"
              "# (tests/deploy_manifests.py fails while the two differ).\n")
    return header + yaml.dump(doc, Dumper=Dumper, sort_keys=False, width=1000)


@test
def prometheusrule_matches_alerts_yml():
    rule = load_yaml_docs(K8S / "base" / "prometheusrule.yaml")[0]
    assert rule["spec"]["groups"] == load_alerts()["groups"], \
        "deploy/k8s/base/prometheusrule.yaml differs from alerts.yml: run scripts/validate-deploy.sh --regenerate"


@test
def alert_runbooks_exist_in_operations_doc():
    fail = Failures()
    doc = (ROOT / "docs" / "operations.md").read_text()
    anchors = set()
    for line in doc.splitlines():
        m = re.match(r"^#+\s+(.*)$", line)
        if m:
            a = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(a)
    for g in load_alerts()["groups"]:
        for r in g["rules"]:
            rb = r.get("annotations", {}).get("runbook", "")
            if fail(rb.startswith("docs/operations.md#"), f"{r['alert']}: runbook annotation must point into docs/operations.md"):
                fail(rb.split("#", 1)[1] in anchors, f"{r['alert']}: docs/operations.md has no heading #{rb.split('#', 1)[1]}")
    fail.done()


@test
def grafana_dashboard_shape_and_metrics():
    fail = Failures()
    path = DEPLOY / "grafana" / "thumbfarm.json"
    dash = json.loads(path.read_text())
    for e in schema_errors(load_schema("grafana-dashboard.json"), dash):
        fail(False, f"thumbfarm.json: {e}")
    metrics = rust_metrics()
    skipped, used = [], set()
    ids = []
    variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
    exprs = []

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dash["panels"]):
        ids.append(p["id"])
        gp = p["gridPos"]
        fail(gp["x"] + gp["w"] <= 24, f"panel {p['title']!r}: wider than the grid")
        ds = p.get("datasource")
        if ds and isinstance(ds, dict) and ds.get("uid", "").startswith("$"):
            fail(ds["uid"].strip("${}") in variables, f"panel {p['title']!r}: datasource variable {ds['uid']} undefined")
        for t in p.get("targets", []):
            exprs.append(t["expr"])
            check_promql(t["expr"], f"panel {p['title']!r} {t['refId']}", metrics, fail, skipped, used)
            for var in re.findall(r"\$\{?([a-zA-Z_][a-zA-Z0-9_]*)", t["expr"]):
                fail(var.startswith("__") or var in variables, f"panel {p['title']!r}: variable ${var} undefined")
    fail(len(ids) == len(set(ids)), "duplicate panel ids")
    joined = "\n".join(exprs)
    for needed in ["thumbfarm_queue_messages_ready", "thumbfarm_queue_consumers", "thumbfarm_worker_jobs_total",
                   "thumbfarm_worker_render_duration_seconds_bucket", "thumbfarm_worker_job_duration_seconds_bucket",
                   "thumbfarm_worker_transcode_duration_seconds_bucket", "thumbfarm_ondemand_waits_total",
                   "thumbfarm_http_requests_total", "thumbfarm_http_request_duration_seconds_bucket",
                   "thumbfarm_thumb_cache_total", 'queue="thumbfarm.dead"', "thumbfarm_worker_jobs_in_flight",
                   "histogram_quantile(0.5", "histogram_quantile(0.95", "histogram_quantile(0.99"]:
        fail(needed in joined, f"dashboard has no panel using {needed}")
    fail.done()
    pending(skipped)


@test
def metrics_doc_lists_exactly_the_source_metrics():
    fail = Failures()
    doc = (ROOT / "docs" / "metrics.md").read_text()
    metrics = rust_metrics()
    fail(len(metrics) >= 15, f"only {len(metrics)} metrics found in the sources: the scanner is broken")
    for name, labels in metrics.items():
        if fail(f"`{name}`" in doc, f"docs/metrics.md does not document {name}"):
            row = next((l for l in doc.splitlines() if f"`{name}`" in l and l.startswith("|")), "")
            for lab in labels:
                fail(f"`{lab}`" in row, f"docs/metrics.md: the row of {name} does not name its label {lab}")
    for name in set(re.findall(r"`(thumbfarm_[a-z0-9_]+)`", doc)):
        b = base_metric(name, metrics) or base_metric(name, {k: set() for k in PENDING_METRICS})
        fail(b is not None, f"docs/metrics.md documents {name}, which the sources do not define")
    fail.done()


# ---------------------------------------------------------------- tests: compose, Prometheus, Grafana provisioning

def compose():
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@test
def compose_matches_the_compose_spec():
    ref = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json")
    schema = json.loads(ref.read_text())
    errs = list(jsonschema.Draft7Validator(schema).iter_errors(compose()))
    assert not errs, "\n".join(f"compose.yaml {'.'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errs)


@test
def compose_stack_services_env_and_mounts():
    fail = Failures()
    c = compose()
    svcs = c["services"]
    for s in ("rabbitmq", "api", "worker", "prometheus", "grafana"):
        fail(s in svcs, f"compose: service {s} missing")
    fail("minio" in svcs or "garage" in svcs, "compose: no S3 server (minio or garage)")
    fail(svcs.get("worker", {}).get("deploy", {}).get("replicas") == 2, "compose: worker replicas must be 2")
    fail("management" in svcs.get("rabbitmq", {}).get("image", ""), "compose: RabbitMQ management image")
    accepted = accepted_env()
    skipped = []
    for name, s in svcs.items():
        img = s.get("image", "")
        fail(img, f"compose {name}: no image")
        fail(":" in img, f"compose {name}: image {img} has no tag")
        for dep in (s.get("depends_on") or {}):
            fail(dep in svcs, f"compose {name}: depends_on unknown service {dep}")
        for v in s.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
            if src.startswith("."):
                fail((DEPLOY / src).exists(), f"compose {name}: bind mount {src} does not exist")
            elif isinstance(v, str):
                fail(src in (c.get("volumes") or {}), f"compose {name}: named volume {src} not declared")
        cmd = s.get("command") or []
        cmd = cmd if isinstance(cmd, list) else cmd.split()
        if img.startswith("thumbfarm"):
            binary = cmd[0] if cmd else "thumbfarm-api"
            fail(binary in accepted, f"compose {name}: command {cmd} runs no thumbfarm binary")
            env = s.get("environment") or {}
            fail(isinstance(env, dict), f"compose {name}: environment must be a mapping")
            for var in env:
                if var.startswith("THUMBFARM_") and var not in accepted.get(binary, set()):
                    if var in PENDING_ENV:
                        skipped.append(var)
                    else:
                        fail(False, f"compose {name}: {var} is not an option of {binary}")
            fail(bool(env.get("THUMBFARM_AMQP_URL")) and bool(env.get("THUMBFARM_S3_BUCKET")),
                 f"compose {name}: needs THUMBFARM_AMQP_URL and THUMBFARM_S3_BUCKET")
            if binary == "thumbfarm-api":
                fail(str(env.get("THUMBFARM_LISTEN", "")).startswith("0.0.0.0:8080"), "compose api: THUMBFARM_LISTEN 0.0.0.0:8080")
    build = (svcs.get("api") or {}).get("build") or {}
    fail((DEPLOY / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
         == (DEPLOY / "docker" / "Dockerfile").resolve(), "compose api: build must use deploy/docker/Dockerfile")
    fail(build.get("target") == "api", "compose api: build the decoder-free `api` stage")
    fail.done()
    pending(f"compose: {v} is not an option in the Rust sources yet ({PENDING_ENV[v][1]})" for v in skipped)


@test
def prometheus_config_scrapes_api_and_workers_and_loads_rules():
    fail = Failures()
    cfg = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for e in schema_errors(load_schema("prometheus-config.json"), cfg):
        fail(False, f"prometheus.yml: {e}")
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    api = jobs.get("thumbfarm-api", {})
    worker = jobs.get("thumbfarm-worker", {})
    fail(any(t.endswith(":9090") for sc in api.get("static_configs", []) for t in sc["targets"]),
         "prometheus.yml: job thumbfarm-api must scrape its operator port 9090")
    fail(any(d.get("port") == 9091 for d in worker.get("dns_sd_configs", [])) or
         any(t.endswith(":9091") for sc in worker.get("static_configs", []) for t in sc["targets"]),
         "prometheus.yml: job thumbfarm-worker must scrape port 9091")
    c = compose()
    mounts = {}
    for v in c["services"]["prometheus"]["volumes"]:
        parts = v.split(":")
        if parts[0].startswith("."):
            mounts[parts[1]] = parts[0]
    for rf in cfg.get("rule_files", []):
        fail(rf in mounts and (DEPLOY / mounts[rf]).exists(), f"prometheus.yml: rule file {rf} is not mounted by compose")
    services = set(c["services"])
    for j in cfg["scrape_configs"]:
        for sc in j.get("static_configs", []):
            for t in sc["targets"]:
                fail(t.split(":")[0] in services, f"prometheus.yml {j['job_name']}: {t} is not a compose service")
        for d in j.get("dns_sd_configs", []):
            for n in d["names"]:
                fail(n in services, f"prometheus.yml {j['job_name']}: {n} is not a compose service")
    fail.done()


@test
def grafana_provisioning_points_at_the_dashboard():
    fail = Failures()
    prov = DEPLOY / "grafana" / "provisioning"
    ds = yaml.safe_load((prov / "datasources" / "prometheus.yaml").read_text())
    fail(any(d["type"] == "prometheus" and "prometheus:9090" in d["url"] for d in ds["datasources"]),
         "grafana datasource must point at the compose prometheus")
    dp = yaml.safe_load((prov / "dashboards" / "thumbfarm.yaml").read_text())
    path = dp["providers"][0]["options"]["path"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose()["services"]["grafana"]["volumes"] if v.startswith(".")}
    fail(any(m.startswith(path) and m.endswith("thumbfarm.json") for m in mounts),
         f"grafana: no dashboard mounted under the provider path {path}")
    fail(mounts.get("/etc/grafana/provisioning") == "./grafana/provisioning", "grafana: provisioning not mounted")
    fail.done()


# ---------------------------------------------------------------- tests: Dockerfile

@test
def dockerfile_multistage_nonroot_with_runtime_libs():
    from dockerfile_parse import DockerfileParser

    fail = Failures()
    dfp = DockerfileParser(path=str(DEPLOY / "docker" / "Dockerfile"))
    ins = dfp.structure
    froms = [i for i in ins if i["instruction"] == "FROM"]
    fail(len(froms) >= 2, "Dockerfile: must be multi-stage")
    fail(re.match(r"rust:\S*bookworm\s+AS\s+builder", froms[0]["value"].replace("${DEBIAN_RELEASE}", "bookworm"), re.I),
         f"Dockerfile: first stage must be rust:*bookworm AS builder, is {froms[0]['value']}")
    fail(re.match(r"debian:\S*bookworm-slim", froms[-1]["value"].replace("${DEBIAN_RELEASE}", "bookworm")),
         f"Dockerfile: runtime must be debian:bookworm-slim, is {froms[-1]['value']}")
    last_from = max(i["startline"] for i in froms)
    builder = "\n".join(i["value"] for i in ins if i["instruction"] == "RUN" and i["startline"] < last_from)
    runtime = "\n".join(i["value"] for i in ins if i["instruction"] == "RUN" and i["startline"] > last_from)
    for pkg in ["libavcodec-dev", "libavformat-dev", "libavutil-dev", "libswscale-dev", "libswresample-dev",
                "libavfilter-dev", "libavdevice-dev", "libde265-dev", "libdav1d-dev", "liblcms2-dev", "clang", "libclang-dev",
                "cmake", "nasm", "pkg-config"]:
        fail(re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", builder), f"Dockerfile builder: package {pkg} missing")
    runtime_pkgs = ["libavcodec59", "libavformat59", "libavutil57", "libswscale6", "libswresample4", "libavfilter8",
                    "libavdevice59", "libde265-0", "libdav1d6", "liblcms2-2", "ca-certificates", "tini"]
    for pkg in runtime_pkgs:
        fail(re.search(rf"(^|\s){re.escape(pkg)}(\s|$)", runtime), f"Dockerfile runtime: package {pkg} missing")
    fail("-dev" not in runtime, "Dockerfile runtime: no -dev packages in the runtime image")
    crates = crate_names()
    builds = re.findall(r"cargo build ([^&\n]*)", builder)
    if fail(builds, "Dockerfile: no cargo build"):
        for args in builds:
            fail("--release" in args and "--locked" in args, "Dockerfile: cargo build --release --locked")
        every = " ".join(builds)
        for p in ("thumbfarm-api", "thumbfarm-worker", "thumbfarm"):
            fail(re.search(rf"-p {p}(\s|$)", every) and p in crates, f"Dockerfile: cargo build -p {p} (a workspace crate)")
        # The API is built on its own, so no decoder is linked into it.
        fail(any(a.split("-p")[1:] and [x.split()[0] for x in a.split("-p")[1:]] == ["thumbfarm-api"] for a in builds),
             "Dockerfile: the API must be built alone (`cargo build -p thumbfarm-api`), without the worker's features")
    copies = [i["value"] for i in ins if i["instruction"] == "COPY" and i["startline"] > last_from]
    fail(any("--from=builder" in c and "thumbfarm-api" in c and "thumbfarm-worker" in c for c in copies),
         "Dockerfile: COPY --from=builder of both binaries")
    # The decoder-free API image.
    api_from = [i for i in froms if re.search(r"\sAS\s+api$", i["value"], re.I)]
    if fail(api_from, "Dockerfile: no `AS api` stage (the decoder-free API image)"):
        start = api_from[0]["startline"]
        end = min([i["startline"] for i in froms if i["startline"] > start] or [10**9])
        stage = [i for i in ins if start < i["startline"] < end]
        api_runs = "\n".join(i["value"] for i in stage if i["instruction"] == "RUN")
        for lib in ["libav", "libsw", "libheif", "liblcms", "libde265", "libdav1d", "libjpeg"]:
            fail(lib not in api_runs, f"Dockerfile api stage: installs {lib}*, a decoder library")
        api_copies = " ".join(i["value"] for i in stage if i["instruction"] == "COPY")
        fail("thumbfarm-api" in api_copies and "thumbfarm-worker" not in api_copies,
             "Dockerfile api stage: copies thumbfarm-api and no worker")
    users = [i["value"] for i in ins if i["instruction"] == "USER" and i["startline"] > last_from]
    fail(users and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: runtime USER must be non-root")
    exposed = " ".join(i["value"] for i in ins if i["instruction"] == "EXPOSE").split()
    fail({"8080", "9090", "9091"} <= set(exposed), f"Dockerfile: EXPOSE 8080 9090 9091 (has {exposed})")
    ep = [i["value"] for i in ins if i["instruction"] == "ENTRYPOINT"]
    fail(ep and "tini" in ep[-1], "Dockerfile: tini as entrypoint")
    envs = " ".join(i["value"] for i in ins if i["instruction"] == "ENV")
    accepted = accepted_env()
    for var in re.findall(r"(THUMBFARM_[A-Z0-9_]+)=", envs):
        fail(var in accepted["thumbfarm"] | accepted["thumbfarm-worker"], f"Dockerfile: ENV {var} is no option")
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    fail("target/" in ignore or "target" in ignore, "Dockerfile.dockerignore must exclude target/")
    # On a bookworm machine with the -dev packages installed, the runtime
    # sonames are exactly what those -dev packages pull in.
    dpkg = shutil.which("dpkg-query")
    if dpkg and Path("/etc/debian_version").read_text().startswith("12") and \
            subprocess.run([dpkg, "-W", "libavcodec-dev"], capture_output=True).returncode == 0:
        for pkg in runtime_pkgs[:10]:
            r = subprocess.run([dpkg, "-W", "-f=${Status}", pkg], capture_output=True, text=True)
            fail("install ok installed" in r.stdout, f"Dockerfile runtime: {pkg} is not the package this Debian "
                                                     "bookworm's -dev packages depend on")
    fail.done()


# ---------------------------------------------------------------- main

def main():
    if "--regenerate" in sys.argv:
        (K8S / "base" / "prometheusrule.yaml").write_text(prometheusrule_from_alerts())
        print("regenerated deploy/k8s/base/prometheusrule.yaml")
    passed = failed = skipped = 0
    only = [a for a in sys.argv[1:] if not a.startswith("-")]
    for fn in TESTS:
        if only and not any(o in fn.__name__ for o in only):
            continue
        NOTES.clear()
        try:
            fn()
        except Skip as e:
            skipped += 1
            print(f"SKIP {fn.__name__}: {e}")
        except AssertionError as e:
            failed += 1
            msg = str(e) or traceback.format_exc()
            print(f"FAIL {fn.__name__}\n" + "\n".join("    " + l for l in msg.splitlines()))
        except Exception:
            failed += 1
            print(f"ERROR {fn.__name__}\n" + "\n".join("    " + l for l in traceback.format_exc().splitlines()))
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
        for n in NOTES:
            print(f"     note: {n}")
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
