#!/usr/bin/env bash
# The benchmarks whose figures README records: `scripts/bench.sh` runs them all, or name one
# (`ingest`, `media`, `hubspot`, `salesforce`, `zendesk`, `zoho`, `console`). Builds the release binary, starts the S3-API server the media benchmark
# needs, and prints markdown tables.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
# shellcheck source=scripts/s3-server.sh
. "$(dirname "$0")/s3-server.sh"
start_s3_server
cargo build --locked --release -p wa2crm
for bench in "${@:-ingest media hubspot salesforce zendesk zoho console}"; do
    for b in $bench; do
        cargo bench --locked -p wa2crm-e2e --bench "$b"
    done
done
