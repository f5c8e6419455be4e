#!/bin/sh
# One-time setup for deploy/compose: a database password, the metrics token,
# timebank.env, and the Ed25519 signing key (owned by the image's user, 10001, mode
# 0600). Keep ./keys backed up: see docs/operations.md ("Signing keys", "Backup and
# restore"). Give ./metrics_token to Prometheus (deploy/prometheus/prometheus.yml).
set -eu
cd "$(dirname "$0")"
umask 077
if [ ! -f postgres_password ]; then
    python3 -c "import secrets; print(secrets.token_urlsafe(24), end='')" > postgres_password
fi
if [ ! -f metrics_token ]; then
    python3 -c "import secrets; print(secrets.token_hex(32), end='')" > metrics_token
fi
if [ ! -f timebank.env ]; then
    sed -e "s/CHANGE-ME/$(cat postgres_password)/" -e "s/SET-BY-SETUP-SH/$(cat metrics_token)/" \
        timebank.env.example > timebank.env
elif ! grep -q '^TIMEBANK_METRICS_TOKEN=' timebank.env; then
    echo "TIMEBANK_METRICS_TOKEN=$(cat metrics_token)" >> timebank.env   # a setup from before the token
fi
if [ ! -f keys/keys.json ]; then
    mkdir -p keys
    docker compose build migrate
    docker compose run --rm --no-deps --user 10001:10001 -v "$PWD/keys:/keys" \
        -e TIMEBANK_SIGNING_KEY_DIR=/keys migrate keys generate
fi
echo "ready: docker compose up -d --build"
