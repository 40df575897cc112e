#!/usr/bin/env bash
# Runs every cargo-fuzz target for a while (default 20 s each): webhook parsing with signature
# checks (Meta, 360dialog, Twilio), the media probers, and media link verification. A crash, a hang (-timeout) or runaway
# memory (-rss_limit_mb) fails the run, with the input saved under fuzz/artifacts/.
#
# cargo-fuzz builds with unstable compiler flags; RUSTC_BOOTSTRAP lets the machine's stable
# toolchain accept them, so no second toolchain is needed. No sanitizer: the code under test is
# safe Rust, and what the fuzzer looks for here is panics, hangs and unbounded allocation.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-20}"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
for target in webhook_meta webhook_d360 webhook_twilio probe_media media_link; do
    mkdir -p "fuzz/corpus/$target"
    echo "fuzz.sh: $target for ${seconds}s"
    log="fuzz/$target.log"
    if ! cargo fuzz run --sanitizer none "$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "fuzz.sh: $target failed; the input is under fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E "^stat::number_of_executed_units|Done [0-9]+ runs" "$log" || true
done
