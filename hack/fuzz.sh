#!/bin/sh
# fuzz.sh [SECONDS] -- fuzz rt's config.json parser and validator with cargo-fuzz
# (libFuzzer) for SECONDS (default 30). The target `config` (fuzz/fuzz_targets/config.rs)
# feeds any bytes to rt_spec::parse and rt_spec::validate and checks that a config that
# parses survives rt's own JSON writer unchanged. It starts from fuzz/seeds/config
# (rt spec, rt spec --rootless, a config using most fields) and keeps what it finds in
# fuzz/corpus/config (not in git). A crash or panic fails the script and leaves its
# input in fuzz/artifacts/config/; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none config fuzz/artifacts/config/crash-...
# cargo-fuzz wants a nightly compiler for its -Z flags: RUSTC_BOOTSTRAP=1 lets the stable
# one take them. rt-spec has no unsafe code, so no sanitizer (-s none): a faster build and
# run, and panics are what is looked for. Installs cargo-fuzz from crates.io if missing.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
	cargo install --locked cargo-fuzz
fi
mkdir -p fuzz/corpus/config
RUSTC_BOOTSTRAP=1 exec cargo fuzz run --fuzz-dir fuzz -s none config \
	fuzz/corpus/config fuzz/seeds/config -- -max_total_time="$secs" -timeout=10 -print_final_stats=1
