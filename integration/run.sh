#!/bin/bash
# run.sh [SCENARIO...] -- run the integration scenarios (default: all) one after the
# other against $RT (default: target/debug/rt), print a summary, exit non-zero if any
# failed. A scenario is a script in this directory: podman, containerd, buildah.
# Each one is given SCENARIO_TIMEOUT seconds (default 300). RT_CGROUP_MANAGER
# (systemd|cgroupfs; default systemd where systemd runs) picks the clients' cgroup
# manager (see lib.sh).
set -u
dir=$(cd "$(dirname "$0")" && pwd)
all=(podman containerd buildah)
[ $# -gt 0 ] && all=("$@")
export RT=${RT:-$(dirname "$dir")/target/debug/rt}
if [ -z "${RT_CGROUP_MANAGER:-}" ]; then
	if [ -d /run/systemd/system ]; then RT_CGROUP_MANAGER=systemd; else RT_CGROUP_MANAGER=cgroupfs; fi
fi
export RT_CGROUP_MANAGER

passed=() failed=() skipped=()
start=$SECONDS
# Each scenario's output is also kept so that the summary, the part a CI log's tail
# shows, can repeat what failed.
logs=$(mktemp -d /tmp/rtint-logs.XXXXXX)
trap 'rm -rf "$logs"' EXIT
# tee's pipe is not a terminal; a guest's console is, but its output goes to a log.
[ -t 1 ] && [ -z "${NO_COLOR:-}" ] && export RTINT_COLOR=1
for s in "${all[@]}"; do
	s=${s%.sh}
	if [ ! -f "$dir/$s.sh" ]; then
		echo "run.sh: no scenario $s (have: podman containerd buildah)" >&2
		failed+=("$s(missing)")
		continue
	fi
	t0=$SECONDS
	echo "=== $s"
	timeout -k 90 "${SCENARIO_TIMEOUT:-300}" "$dir/$s.sh" 2>&1 | tee "$logs/$s"
	rc=${PIPESTATUS[0]}
	took=$((SECONDS - t0))
	case $rc in
	0) passed+=("$s (${took}s)") ;;
	77) skipped+=("$s") ;;
	124) failed+=("$s (timed out after ${took}s)") ;;
	*) failed+=("$s (${took}s)") ;;
	esac
done

echo
echo "=== integration summary (RT=$RT, cgroup manager $RT_CGROUP_MANAGER, $((SECONDS - start))s)"
for s in ${passed[@]+"${passed[@]}"}; do echo "  passed:  $s"; done
for s in ${skipped[@]+"${skipped[@]}"}; do echo "  skipped: $s (needs root)"; done
for s in ${failed[@]+"${failed[@]}"}; do
	echo "  FAILED:  $s"
	# The failed checks with their detail lines (indented deeper), and a fatal stop.
	sed 's/\x1b\[[0-9;]*m//g' "$logs/${s%% *}" 2>/dev/null | awk '
		/^  FAIL / || /cannot continue/ { show = 1; n = 0; print "           " $0; next }
		show && /^       / && n < 8 { n++; print "           " $0; next }
		{ show = 0 }'
done
line="${#passed[@]} passed, ${#failed[@]} failed"
[ ${#skipped[@]} -gt 0 ] && line="$line, ${#skipped[@]} skipped"
echo "integration: $line"
[ ${#failed[@]} = 0 ]
