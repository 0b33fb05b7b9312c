#!/bin/sh
# test.sh -- install what the tests need, build everything and run every test:
# the cargo tests, the integration scenarios (podman, containerd, buildah driving
# target/debug/rt), then the container tests again in QEMU guests: a pure cgroup v2
# host and a systemd host (hack/vm), and the integration scenarios in the systemd
# guest, with the clients' systemd cgroup manager (--systemd-cgroup); and a short
# fuzzing run of the config parser (hack/fuzz.sh).
#   RT_SKIP_INTEGRATION=1  leave out the integration scenarios (host and guest)
#   RT_FUZZ_SECONDS=N      fuzz for N seconds (default 20; 0 leaves fuzzing out)
#   RT_SKIP_VM=1           leave out the guests (a quick local run)
# Container tests need root; with CI=true a missing privilege or kernel feature
# fails the run instead of skipping.
set -eu
cd "$(dirname "$0")/.."
hack/install-deps.sh
cargo build --workspace --all-targets
cargo test --workspace -- --test-threads="${RT_TEST_THREADS:-4}"
if [ "${RT_FUZZ_SECONDS:-20}" != 0 ]; then
	# libFuzzer logs each input that finds new coverage: keep that in a file.
	if ! hack/fuzz.sh "${RT_FUZZ_SECONDS:-20}" >target/fuzz.log 2>&1; then
		tail -40 target/fuzz.log
		echo "test.sh: fuzzing found a failure (log: target/fuzz.log)" >&2
		exit 1
	fi
	echo "fuzzing: $(grep -E '^Done [0-9]+ runs' target/fuzz.log) (log: target/fuzz.log)"
fi
if [ "${RT_SKIP_INTEGRATION:-}" != 1 ]; then
	RT="$PWD/target/debug/rt" integration/run.sh
fi
if [ "${RT_SKIP_VM:-}" != 1 ]; then
	# The attack suite runs on the host; under TCG it takes as long as all the rest
	# together. Its cgroup and rootless cases run in the systemd guest.
	hack/vm test --flavour all --skip security
	hack/vm test --flavour systemd security::rootless security::cgroups_path
	if [ "${RT_SKIP_INTEGRATION:-}" != 1 ]; then
		# podman/containerd/buildah as users run them on a systemd host (~7 min under TCG)
		hack/vm run --flavour systemd -e RT_CGROUP_MANAGER=systemd -e SCENARIO_TIMEOUT=900 -e NO_COLOR=1 -- integration/run.sh
	fi
fi
