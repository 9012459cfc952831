#!/usr/bin/env bash
# Make a fresh machine ready to run apsis-sso locally: a virtualenv with exactly the pins of
# requirements/dev.lock, the project and its development tools (devenv/) installed editable,
# the pinned Keycloak distribution with the extension built into providers/, Debian's
# PostgreSQL server for the production lane, Prometheus and promtool for the monitoring
# tests, Chromium for the browser test, and the docker
# compose plugin for validating docker-compose.yml. Safe to run again: each step is skipped
# when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if [ "$(id -u)" = "0" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null; }
  else
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  fi
}

if ! need mvn; then
  echo "[bootstrap] installing Maven (needed to fetch Keycloak and build the extension)" >&2
  apt_install maven || { echo "Maven is missing: install it (apt-get install maven)" >&2; exit 1; }
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "apsis-sso needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)" >&2
  exit 1
fi

# The lock files must have been resolved from the current pyproject.toml files (after a
# dependency change: scripts/lock.sh).
"$PYTHON" scripts/lock_inputs.py --check

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(cat requirements/dev.lock pyproject.toml devenv/pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing Python packages from requirements/dev.lock" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.lock
  # The projects themselves, editable, with the locked build backend: nothing else resolved.
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e . -e ./devenv
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

echo "[bootstrap] installing Keycloak and the extension" >&2
"$VENV/bin/python" -m devenv.keycloak install >/dev/null

# The production lane's database: Debian's PostgreSQL server (its programs live in
# /usr/lib/postgresql/<version>/bin; the lane runs a throwaway cluster of its own).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! need initdb; then
  echo "[bootstrap] installing Debian's postgresql server for the production test lane" >&2
  apt_install postgresql
fi

# The monitoring tests: promtool checks and unit-tests monitoring/'s rules, and the
# production lane's real Prometheus scrapes the daemon, the portal and Keycloak.
if ! need promtool || ! need prometheus; then
  echo "[bootstrap] installing Debian's prometheus (prometheus, promtool) for the monitoring tests" >&2
  apt_install --no-install-recommends prometheus
fi

if [ "${APSIS_SSO_SKIP_BROWSER:-0}" != "1" ] && ! need chromium; then
  echo "[bootstrap] installing Debian's chromium for the browser test" >&2
  apt_install chromium
fi

# docker-compose.yml is validated with `docker compose config` by the tests. This machine
# kind has no Docker engine and may have no compose plugin; the plugin is a Go program, so
# build it from the Go module proxy into the cache (the tests run it standalone from there)
# and, where the Docker client is installed, as its plugin too (skip: APSIS_SSO_SKIP_COMPOSE=1).
COMPOSE_VERSION="v2.32.4"
cache="${APSIS_SSO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apsis-sso}"
compose="$cache/bin/docker-compose"
if [ "${APSIS_SSO_SKIP_COMPOSE:-0}" != "1" ] && [ ! -x "$compose" ] \
   && ! { need docker && docker compose version >/dev/null 2>&1; }; then
  # Go's own tarball installs to /usr/local/go, which a non-login shell may not have on PATH.
  if ! need go && [ -x /usr/local/go/bin/go ]; then PATH="$PATH:/usr/local/go/bin"; fi
  if need go; then
    echo "[bootstrap] building the docker compose plugin $COMPOSE_VERSION (for config validation)" >&2
    gopath="$cache/gopath"
    if GOPATH="$gopath" GOFLAGS=-mod=mod go install "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" >/dev/null 2>&1; then
      mkdir -p "$cache/bin"
      cp "$gopath/bin/cmd" "$compose"
    else
      echo "[bootstrap] warning: could not build the docker compose plugin" >&2
    fi
  else
    echo "[bootstrap] warning: no Go toolchain to build the docker compose plugin with" >&2
  fi
fi
if [ -x "$compose" ] && need docker && ! docker compose version >/dev/null 2>&1; then
  mkdir -p "$HOME/.docker/cli-plugins"
  cp "$compose" "$HOME/.docker/cli-plugins/docker-compose"
fi

echo "[bootstrap] ready" >&2
