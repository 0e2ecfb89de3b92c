#!/usr/bin/env bash
# Prints the path of a virtualenv holding the pinned test dependencies
# (requirements/test.txt, plus requirements/bench.txt with --bench), making
# or completing it first. Idempotent: a venv whose requirements have not
# changed is reused as it is, without asking PyPI.
#
#   VENV=$(ffi/python/scripts/venv.sh) && "$VENV/bin/python" -m pytest ...
#   VENV=$(ffi/python/scripts/venv.sh --requirements tests/drf/requirements-3.txt)
#
# Where: $APIKEYS_PYTHON_VENV, else /var/tmp/apikeys-python-<hash of the
# requirements>, a place every user can read: the server tests run their
# workers as `nobody`, who must be able to import from it (a checkout under
# /root, or pyenv's interpreter in /root/.pyenv, would not do). For the same
# reason the venv is made from the system interpreter, /usr/bin/python3,
# when there is one ($APIKEYS_PYTHON chooses another).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

bench=0
[ "${1:-}" = "--bench" ] && bench=1

requirements=("$here/requirements/test.txt")
((bench)) && requirements+=("$here/requirements/bench.txt")
# --requirements FILE: a venv of FILE's packages alone (tests/drf: the real
# djangorestframework-api-key releases whose rows the importer reads).
if [ "${1:-}" = "--requirements" ]; then
  requirements=("$(cd "$(dirname "$2")" && pwd)/$(basename "$2")")
fi

python=${APIKEYS_PYTHON:-}
if [ -z "$python" ]; then
  if [ -x /usr/bin/python3 ]; then python=/usr/bin/python3; else python=$(command -v python3); fi
fi

hash=$( { "$python" -c 'import sys; print(sys.version)'; cat "${requirements[@]}"; } | sha256sum | cut -c1-12)
venv=${APIKEYS_PYTHON_VENV:-/var/tmp/apikeys-python-$hash}
stamp="$venv/.apikeys-requirements-$hash"

if [ ! -e "$stamp" ]; then
  exec 9>"/var/tmp/apikeys-python-venv.lock"
  flock 9   # two test runs on one machine make it once
  if [ ! -e "$stamp" ]; then
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
      # Debian splits venv's pip bootstrap into its own package.
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null 2>&1 \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null; }
    fi
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      $(printf -- '-r %s ' "${requirements[@]}") >&2
    chmod -R a+rX "$venv"
    touch "$stamp"
  fi
fi
printf '%s\n' "$venv"
