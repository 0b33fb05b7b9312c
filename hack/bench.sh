#!/bin/sh
# bench.sh [N] -- time rt against runc and crun on the same busybox bundle, side by
# side in one run: N rounds of create+start+delete of /bin/true (lifecycle) and of
# `run` (foreground), runtimes interleaved per round so load changes hit all alike.
# Prints the median per operation and each runtime's ratio to rt.
set -eu
n=${1:-50}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }
hack/install-deps.sh
need=""
command -v runc >/dev/null || need="$need runc"
command -v crun >/dev/null || need="$need crun"
if [ -n "$need" ]; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
cargo build --release -q -p rt
rt=$PWD/target/release/rt

. hack/crun-hybrid.sh
crun_hybrid_prepare
work=$(mktemp -d /tmp/rt-bench.XXXXXX)
cleanup() {
	for r in "$rt" runc crun; do
		for id in $("$r" --root "$work/state-$(basename "$r")" list -q 2>/dev/null); do
			"$r" --root "$work/state-$(basename "$r")" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	rm -rf "$work"
	crun_hybrid_restore
}
trap cleanup EXIT INT TERM

hack/mkbundle.sh "$work/bundle" "$rt" >/dev/null
sed -i 's|^\(\t*\)"sh", "-c", .*$|\1"/bin/true"|' "$work/bundle/config.json"
cd "$work/bundle"

now() { date +%s%N; }
runtimes="$rt runc crun"
for r in $runtimes; do : >"$work/lifecycle-$(basename "$r")"; : >"$work/run-$(basename "$r")"; done
i=0
while [ "$i" -lt "$n" ]; do
	# Rotate who goes first: the first cgroup v1 migration after a quiet spell waits
	# for an RCU grace period, and whoever follows another runtime skips that wait.
	case $((i % 3)) in
	0) order="$rt runc crun" ;;
	1) order="runc crun $rt" ;;
	*) order="crun $rt runc" ;;
	esac
	for r in $order; do
		name=$(basename "$r")
		root="$work/state-$name"
		t0=$(now)
		"$r" --root "$root" create "b$i" >/dev/null
		"$r" --root "$root" start "b$i"
		while [ "$("$r" --root "$root" state "b$i" | grep -c '"stopped"')" = 0 ]; do :; done
		"$r" --root "$root" delete "b$i"
		t1=$(now)
		"$r" --root "$root" run "r$i" >/dev/null
		t2=$(now)
		echo $(((t1 - t0) / 1000)) >>"$work/lifecycle-$name"
		echo $(((t2 - t1) / 1000)) >>"$work/run-$name"
	done
	i=$((i + 1))
done

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-28s %12s %12s %12s\n' "median, $n rounds" rt runc crun
for op in lifecycle run; do
	m_rt=$(median "$work/$op-rt")
	m_runc=$(median "$work/$op-runc")
	m_crun=$(median "$work/$op-crun")
	printf '%-28s %10sus %10sus %10sus\n' "$op (wall)" "$m_rt" "$m_runc" "$m_crun"
	printf '%-28s %12s %12s %12s\n' "  ratio to rt" 1.00 \
		"$(echo "$m_runc $m_rt" | awk '{printf "%.2f", $1/$2}')" \
		"$(echo "$m_crun $m_rt" | awk '{printf "%.2f", $1/$2}')"
done
