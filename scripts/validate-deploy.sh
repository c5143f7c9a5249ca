#!/usr/bin/env bash
# Validates deploy/ (Kubernetes, KEDA, compose, Prometheus rules, Grafana
# dashboard, Dockerfile) against schemas and against the Rust sources, with no
# cluster, Docker engine or Rust build. Installs its Python dependencies from
# PyPI into .tools/venv (gitignored) the first time.
#
#   scripts/validate-deploy.sh                 run every check
#   scripts/validate-deploy.sh keda compose    only checks whose name contains a word
#   scripts/validate-deploy.sh --regenerate    rewrite k8s/base/prometheusrule.yaml from alerts.yml, then check
#
# Exits non-zero when a check fails; the last line is `N passed, N failed, N skipped`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.tools/venv"
python=${PYTHON:-python3}

# Pinned: the Kubernetes schemas come with kubernetes-validate, the Compose
# specification schema with check-jsonschema, PromQL parsing with promql-parser.
requirements=(
  "jsonschema==4.26.0"
  "pyyaml==6.0.3"
  "kubernetes-validate==1.37.0"
  "check-jsonschema==0.39.0"
  "dockerfile-parse==2.0.1"
  "promql-parser==0.11.0"
)
stamp="$venv/.thumbfarm-requirements"
wanted=$(printf '%s\n' "${requirements[@]}")

if [ ! -x "$venv/bin/python" ]; then
  echo "validate-deploy: creating $venv"
  "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "validate-deploy: installing ${requirements[*]}"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
  printf '%s' "$wanted" >"$stamp"
fi

cd "$here"
exec "$venv/bin/python" tests/deploy_manifests.py "$@"
