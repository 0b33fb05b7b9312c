#!/bin/sh
# test.sh -- install what the tests need, build everything and run every test:
# the cargo tests, the integration scenarios (podman, containerd, buildah driving
# target/debug/rt), then the container tests again in QEMU guests: a pure cgroup v2
# host and a systemd host (hack/vm).
#   RT_SKIP_INTEGRATION=1  leave out the integration scenarios
#   RT_SKIP_VM=1           leave out the guests (a quick local run)
# Container tests need root; with CI=true a missing privilege or kernel feature
# fails the run instead of skipping.
set -eu
cd "$(dirname "$0")/.."
hack/install-deps.sh
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads="${RT_TEST_THREADS:-4}"
if [ "${RT_SKIP_INTEGRATION:-}" != 1 ]; then
	RT="$PWD/target/debug/rt" integration/run.sh
fi
if [ "${RT_SKIP_VM:-}" != 1 ]; then
	hack/vm test --flavour all
fi
