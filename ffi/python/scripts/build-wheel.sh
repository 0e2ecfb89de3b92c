#!/usr/bin/env bash
# Builds the release libapikeys.so and a wheel that carries it:
#   ffi/python/dist/apikeys-<version>-py3-none-linux_<arch>.whl
# and prints the wheel's path. `pip install` of that file is the whole
# install: the package loads the library beside it, with no APIKEYS_LIB.
#
# The wheel is tagged py3-none (ctypes: any CPython 3, no ABI of its own) for
# this machine's platform (linux_x86_64 here): the library inside is native
# code built against this machine's glibc.
set -euo pipefail
python_dir=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$python_dir/../.." && pwd)

(cd "$root" && cargo build --release --quiet -p apikeys-ffi)
library="${CARGO_TARGET_DIR:-$root/target}/release/libapikeys.so"
[ -f "$library" ] || { echo "build-wheel.sh: $library was not built" >&2; exit 1; }

venv=$("$python_dir/scripts/venv.sh")   # setuptools and wheel, pinned
stage=$(mktemp -d /tmp/apikeys-wheel.XXXXXX)
trap 'rm -rf "$stage"' EXIT

cp -R "$python_dir/pyproject.toml" "$python_dir/README.md" "$python_dir/src" "$stage/"
find "$stage/src" -name __pycache__ -prune -exec rm -rf {} +
# The debug information is most of the library's size and none of its use.
strip --strip-debug -o "$stage/src/apikeys/libapikeys.so" "$library" 2>/dev/null \
  || cp "$library" "$stage/src/apikeys/libapikeys.so"
# Only here, never in the source tree: a distribution with native content,
# so setuptools writes a platform wheel installed into platlib
# (Root-Is-Purelib: false). `pip install ./ffi/python` stays pure Python.
cat > "$stage/setup.py" <<'PY'
from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(distclass=BinaryDistribution)
PY

"$venv/bin/python" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation \
  --wheel-dir "$stage/dist" "$stage" >&2
built=("$stage"/dist/apikeys-*.whl)
[ "${#built[@]}" -eq 1 ] || { echo "build-wheel.sh: expected one wheel, got: ${built[*]}" >&2; exit 1; }
# cp311-cp311-linux_x86_64 -> py3-none-linux_x86_64: the package is ctypes,
# not a CPython extension, so any Python 3 interpreter loads it.
"$venv/bin/python" -m wheel tags --remove --python-tag py3 --abi-tag none "${built[0]}" >/dev/null
wheel=("$stage"/dist/apikeys-*-py3-none-*.whl)

mkdir -p "$python_dir/dist"
rm -f "$python_dir"/dist/apikeys-*.whl
cp "${wheel[0]}" "$python_dir/dist/"
printf '%s\n' "$python_dir/dist/$(basename "${wheel[0]}")"
