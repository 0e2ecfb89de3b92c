#!/usr/bin/env bash
# Moving in from djangorestframework-api-key, against the real library: in a
# venv of each release, with Django 5.2, keys are made by the library's own
# APIKey.objects.create_key and its table exported as CSV
# (tests/drf/make_rows.py); tests/import.rs's `import_real_drf_rows` imports
# the export, checks the digests' kind, refuses a wrong key and verifies
# every key, which re-digests it. The releases and hashers:
#
# - 2.3.0 (Django's make_password) with Django's default PASSWORD_HASHERS:
#   PBKDF2-SHA256 at 1,000,000 iterations;
# - 2.3.0 with PASSWORD_HASHERS set to each of Django's Argon2, bcrypt-SHA256,
#   bcrypt and scrypt hashers, at their default costs (argon2-cffi and
#   bcrypt installed, as tests/drf/requirements-2.txt pins them);
# - 3.1.0: sha512$$.
#
#   scripts/test-import-drf.sh    (scripts/install-test-deps makes the venvs)
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# PBKDF2 at 1,000,000 iterations takes seconds a key in a debug build (one
# key, and its wrong key); the other hashers, at Django's default costs,
# well under a second.
# Each line: release, keys, the digest kind expected, Django's hasher.
while read -r major count kind hasher; do
  venv=$(ffi/python/scripts/venv.sh --requirements "tests/drf/requirements-$major.txt")
  dir="$out/$major-$kind"
  mkdir -p "$dir"
  "$venv/bin/python" tests/drf/make_rows.py "$dir" "$count" $hasher
  APIKEYS_DRF_EXPORT="$dir/apikey.csv" APIKEYS_DRF_KEYS="$dir/keys.txt" APIKEYS_DRF_KIND="$kind" \
    cargo test --quiet -p apikeys --test import import_real_drf_rows -- --exact --ignored
done <<'RUNS'
2 1 pbkdf2_sha256
2 2 argon2 Argon2PasswordHasher
2 2 bcrypt_sha256 BCryptSHA256PasswordHasher
2 2 bcrypt BCryptPasswordHasher
2 2 scrypt ScryptPasswordHasher
3 3 sha512
RUNS
