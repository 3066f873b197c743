#!/usr/bin/env bash
# Installs what internal/interop's test needs, idempotently:
#   - Debian's kcat (apt-get, only when kcat is missing);
#   - a virtualenv at ${VALORA_PY_VENV:-$HOME/.cache/valora-py} with the
#     packages of requirements.txt (pip runs again only when that file
#     changes).
# Prints one line on stdout, the path of the virtualenv's python, so that
# `export VALORA_PYTHON=$(internal/interop/setup.sh)` works; progress goes to
# stderr. PYTHON picks the interpreter that creates the virtualenv (default
# python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
venv=${VALORA_PY_VENV:-$HOME/.cache/valora-py}
python=${PYTHON:-python3}

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    "${sudo[@]}" apt-get update -qq >&2
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >&2
}

if ! command -v kcat >/dev/null 2>&1; then
  echo "setup: installing kcat with apt-get" >&2
  apt_install kcat
fi
echo "setup: kcat $(kcat -V 2>&1 | grep -m1 -i "^version" || true)" >&2

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  echo "setup: creating virtualenv $venv with $python" >&2
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >&2; then
    # Debian's python3 needs python3-venv for ensurepip.
    rm -rf "$venv"
    apt_install python3-venv
    "$python" -m venv "$venv" >&2
  fi
fi

stamp="$venv/.valora-requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "setup: pip install -r requirements.txt into $venv" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  echo "$want" >"$stamp"
fi
"$venv/bin/python" -c 'import fastavro, confluent_kafka' >&2

echo "$venv/bin/python"
