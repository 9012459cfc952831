#!/usr/bin/env bash
# Install apsis-sso for production into a virtualenv, the way the image's build stage does
# (Dockerfile), from this source tree:
#
#   scripts/install.sh deps VENV   # requirements/runtime.lock into VENV (created if missing):
#                                  # exact versions, hashes checked, nothing resolved
#   scripts/install.sh app VENV    # build the wheel with requirements/build.lock's backend and
#                                  # install it into VENV without dependencies; then pip check
#
# Run from a clean tree (the image's build context, or a copy): setuptools builds in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
usage() { echo "usage: scripts/install.sh deps|app VENV" >&2; exit 2; }
[ $# -eq 2 ] || usage
phase="$1" venv="$2"
[ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }

case "$phase" in
  deps)
    pip install --require-hashes --no-deps -r requirements/runtime.lock
    ;;
  app)
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    "$PYTHON" -m venv "$work/build"
    "$work/build/bin/python" -m pip --disable-pip-version-check -q install --require-hashes --no-deps \
      -r requirements/build.lock
    "$work/build/bin/python" -m pip --disable-pip-version-check -q wheel --no-deps --no-build-isolation \
      -w "$work/wheels" .
    pip install --no-deps --force-reinstall "$work"/wheels/apsis_sso-*.whl
    pip check
    ;;
  *) usage ;;
esac
