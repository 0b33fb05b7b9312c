#!/bin/sh
# test.sh -- install what the tests need, build everything and run every test.
# Container tests need root; with CI=true a missing privilege or kernel feature
# fails the run instead of skipping.
set -eu
cd "$(dirname "$0")/.."
hack/install-deps.sh
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads="${RT_TEST_THREADS:-4}"
