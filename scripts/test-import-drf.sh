#!/usr/bin/env bash
# Moving in from djangorestframework-api-key, against the real library: in a
# venv of each release (2.3.0: Django's PBKDF2-SHA256 at 1,000,000
# iterations; 3.1.0: sha512$$), with Django 5.2, keys are made by the
# library's own APIKey.objects.create_key and its table exported as CSV
# (tests/drf/make_rows.py); tests/import.rs's `import_real_drf_rows` imports
# the export and verifies every key, which re-digests it.
#
#   scripts/test-import-drf.sh    (scripts/install-test-deps makes the venvs)
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# PBKDF2 at 1,000,000 iterations is about 15 s a key in a debug build: one
# key of 2.3.0, three of 3.1.0.
for release in "2 1" "3 3"; do
  read -r major count <<<"$release"
  venv=$(ffi/python/scripts/venv.sh --requirements "tests/drf/requirements-$major.txt")
  mkdir -p "$out/$major"
  "$venv/bin/python" tests/drf/make_rows.py "$out/$major" "$count"
  APIKEYS_DRF_EXPORT="$out/$major/apikey.csv" APIKEYS_DRF_KEYS="$out/$major/keys.txt" \
    cargo test --quiet -p apikeys --test import import_real_drf_rows -- --exact --ignored
done
