#!/usr/bin/env bash
# Make a fresh machine ready to run apsis-sso locally: a virtualenv with the project and
# its test dependencies, the pinned Keycloak distribution with the extension built into
# providers/, and Debian's Chromium for the browser test. Safe to run again: each step
# is skipped when already done.
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

if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating $VENV" >&2
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[bootstrap] installing Python packages" >&2
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e '.[test]'
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

echo "[bootstrap] installing Keycloak and the extension" >&2
"$VENV/bin/python" -m devenv.keycloak install >/dev/null

if [ "${APSIS_SSO_SKIP_BROWSER:-0}" != "1" ] && ! need chromium; then
  echo "[bootstrap] installing Debian's chromium for the browser test" >&2
  apt_install chromium
fi
# docker-compose.yml is validated with `docker compose config` by the tests. This machine
# kind has the Docker client but no engine and no compose plugin; the plugin is a Go
# program, so build it from the Go module proxy (skip with APSIS_SSO_SKIP_COMPOSE=1).
COMPOSE_VERSION="v2.32.4"
if [ "${APSIS_SSO_SKIP_COMPOSE:-0}" != "1" ] && need docker && ! docker compose version >/dev/null 2>&1; then
  if need go; then
    echo "[bootstrap] building the docker compose plugin $COMPOSE_VERSION (for config validation)" >&2
    gopath="${APSIS_SSO_CACHE:-$HOME/.cache/apsis-sso}/gopath"
    if GOPATH="$gopath" GOFLAGS=-mod=mod go install "github.com/docker/compose/v2/cmd@$COMPOSE_VERSION" >/dev/null 2>&1; then
      mkdir -p "$HOME/.docker/cli-plugins"
      cp "$gopath/bin/cmd" "$HOME/.docker/cli-plugins/docker-compose"
    else
      echo "[bootstrap] warning: could not build the docker compose plugin" >&2
    fi
  fi
fi

echo "[bootstrap] ready" >&2
