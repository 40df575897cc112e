#!/usr/bin/env bash
# Sourced by test.sh and bench.sh: starts moto's S3-API server (from PyPI, in the project's .venv)
# on a free port for the life of the calling script and exports WA2CRM_TEST_S3_ENDPOINT.
# Needs the caller's as_root function.

# A real S3-API server for the storage tests: moto's, from PyPI, in a venv of the project's.
MOTO_VERSION="5.2.5"
start_s3_server() {
    local venv=".venv"
    # (sed reads pip's whole answer: `grep -q` would stop early, and under pipefail pip's broken
    # pipe would count as a mismatch and reinstall every time.)
    if [ ! -x "$venv/bin/moto_server" ] || [ "$("$venv/bin/pip" show moto 2>/dev/null | sed -n 's/^Version: //p')" != "$MOTO_VERSION" ]; then
        echo "test.sh: installing moto $MOTO_VERSION (S3-API server) into $venv"
        if ! python3 -m venv "$venv" 2>/dev/null; then
            as_root apt-get update -qq
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv "$venv"
        fi
        "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
    fi
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/wa2crm-moto-$port.log" 2>&1 &
    MOTO_PID=$!
    trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
    export WA2CRM_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
    for _ in $(seq 1 120); do
        if curl -fsS "$WA2CRM_TEST_S3_ENDPOINT/moto-api/" >/dev/null 2>&1; then
            return
        fi
        sleep 0.25
    done
    echo "test.sh: the S3-API server did not start (log: ${TMPDIR:-/tmp}/wa2crm-moto-$port.log)" >&2
    exit 1
}

