#!/usr/bin/env bash
# The whole wa2crm test suite, runnable from a fresh clone on a fresh machine: it installs and
# starts what the tests need (PostgreSQL on 127.0.0.1:5432, moto's S3-API server in a venv, ffmpeg),
# builds the binary once, and runs every test of the workspace. A service that cannot be provided
# makes it fail loudly, never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export WA2CRM_TEST_DATABASE_URL="${WA2CRM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

pg_up() {
    pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null
}

ensure_postgres() {
    if command -v pg_isready >/dev/null && pg_up; then
        return
    fi
    if ! ls -d /etc/postgresql/*/main >/dev/null 2>&1; then
        echo "test.sh: installing PostgreSQL from Debian's packages"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local version hba
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    # The tests connect as postgres over TCP without a password, as on the project's machines.
    if ! as_root grep -q '^host all postgres 127.0.0.1/32 trust' "$hba"; then
        as_root sed -i '1i host all postgres 127.0.0.1/32 trust' "$hba"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload 2>/dev/null || true
    fi
    echo "test.sh: starting PostgreSQL $version"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 120); do
        if pg_up; then return; fi
        sleep 0.5
    done
    echo "test.sh: PostgreSQL did not come up on 127.0.0.1:5432" >&2
    exit 1
}

ensure_ffmpeg() {
    # The transcoding tests run the system's ffmpeg, as wa2crm does.
    if command -v ffmpeg >/dev/null; then
        return
    fi
    echo "test.sh: installing ffmpeg from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
    command -v ffmpeg >/dev/null || { echo "test.sh: ffmpeg could not be installed" >&2; exit 1; }
}

ensure_system_tools() {
    # systemd-analyze rates the unit's hardening (crates/daemon/tests/deploy.rs); prlimit
    # (util-linux) holds ffmpeg's resources; curl and openssl run the sandbox's recipe.
    local missing=()
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    command -v prlimit >/dev/null || missing+=(util-linux)
    # The sandbox's printed curl recipe is run as printed (tests/tests/sandbox.rs).
    command -v curl >/dev/null || missing+=(curl)
    command -v openssl >/dev/null || missing+=(openssl)
    # The console's tests drive a real browser (tests/tests/console.rs).
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test.sh: installing ${missing[*]} from Debian's packages"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

ensure_vendor_clients() {
    # The simulators' fidelity suites drive them with the vendors' own clients (HubSpot's
    # hubspot-api-client, simple-salesforce), pinned, in the venv start_s3_server made.
    local wanted="crates/sandbox/fidelity/requirements.txt"
    if ! .venv/bin/python - "$wanted" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        name, pinned = line.split("==")
        assert version(name) == pinned, name
PY
    then
        echo "test.sh: installing the vendors' clients for the fidelity suites into .venv"
        .venv/bin/pip install -q -r "$wanted"
    fi
}

drop_stale_test_schemas() {
    # Each PostgreSQL queue test works in a schema of its own; remove those of earlier runs.
    psql "$WA2CRM_TEST_DATABASE_URL" -Atqc \
        "SELECT 'DROP SCHEMA \"' || nspname || '\" CASCADE;' FROM pg_namespace WHERE nspname LIKE 'wa2crm\_test\_%'" \
        | psql "$WA2CRM_TEST_DATABASE_URL" -q >/dev/null
}

# shellcheck source=scripts/s3-server.sh
. "$(dirname "$0")/s3-server.sh"

ensure_postgres
ensure_ffmpeg
ensure_system_tools
drop_stale_test_schemas
start_s3_server
ensure_vendor_clients

# A clean checkout is built once: incremental state would only fill the disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# The end-to-end tests start the real binary: build it once, in the profile the tests use.
cargo build --locked --workspace --bins
# Unit, integration, end-to-end and doc tests (benchmarks are run separately: README, "Benchmarks").
cargo test --locked --workspace
# Hostile input, briefly: every fuzz target for WA2CRM_FUZZ_SECONDS (default 20) each.
scripts/fuzz.sh "${WA2CRM_FUZZ_SECONDS:-20}"
