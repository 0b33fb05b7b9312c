#!/bin/sh
# bench-build.sh [N] -- time `rt-build build` against `buildah bud` on the same
# Dockerfile, side by side in one run: rt-build with rt, runc and crun as its
# runtime, buildah bud with runc and with crun; each cold (empty store / no
# cache) and cached (an unchanged rebuild). The base image is made from
# busybox-static (FROM scratch + ADD rootfs.tar), so nothing is pulled. Runs
# interleave N times (default 5); medians and the ratio to `buildah bud
# --runtime crun` are printed.
#   RT_BENCH_PROFILE  cargo profile of the rt binaries (default release; debug
#                     skips the long LTO build when only checking the script)
# Needs root, buildah, runc, crun and /bin/busybox; leaves nothing behind (the
# images buildah made are removed by ID).
set -eu
cd "$(dirname "$0")/.."
N=${1:-5}
PROFILE=${RT_BENCH_PROFILE:-release}
if [ "$(id -u)" != 0 ]; then
	echo "bench-build.sh: run as root" >&2
	exit 1
fi
for p in buildah runc crun; do
	command -v "$p" >/dev/null 2>&1 || { echo "bench-build.sh: needs $p" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "bench-build.sh: needs /bin/busybox (busybox-static)" >&2; exit 1; }
if [ "$PROFILE" = release ]; then
	cargo build --release -q -p rt -p rt-build
else
	cargo build -q -p rt -p rt-build
fi
BIN="${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE"
RTB="$BIN/rt-build"
RUNC=$(command -v runc)
CRUN=$(command -v crun)

. hack/crun-hybrid.sh
crun_hybrid_prepare
T=$(mktemp -d /var/tmp/rt-bench-build.XXXXXX)
cleanup() {
	crun_hybrid_restore
	# every image the runs made (re-tagging leaves the older ones nameless)
	if [ -f "$T/ids" ]; then
		sort -u "$T/ids" | xargs -r buildah rmi -f >/dev/null 2>&1 || true
	fi
	buildah rmi -f rt-bench-build-cold rt-bench-build-cached >/dev/null 2>&1 || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

# the context: a busybox root filesystem tar and a Dockerfile with RUN, COPY,
# WORKDIR and config steps
mkdir -p "$T/ctx" "$T/root/bin" "$T/root/etc" "$T/root/proc" "$T/root/sys" "$T/root/dev" "$T/root/tmp"
cp /bin/busybox "$T/root/bin/"
for a in sh echo cat mkdir rm ls; do ln -s busybox "$T/root/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$T/root/etc/passwd"
echo 'root:x:0:' >"$T/root/etc/group"
echo base >"$T/root/etc/base.txt"
tar -C "$T/root" -cf "$T/ctx/rootfs.tar" .
echo data >"$T/ctx/data.txt"
cat >"$T/ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
ADD rootfs.tar /
RUN echo one > /one
RUN mkdir -p /app && echo two > /app/two
COPY data.txt /app/
RUN rm /etc/base.txt && echo three > /three
ENV A=1
WORKDIR /app
RUN cat /app/data.txt > /app/copy
CMD ["cat", "/app/copy"]
DOCKERFILE

now() { date +%s.%N; }
# time_it NAME CMD...: run CMD, append its wall time to $T/NAME.times
# (sh has no locals: the loops' $name must survive)
time_it() {
	tname=$1
	shift
	s=$(now)
	"$@" >/dev/null 2>&1 || { echo "bench-build.sh: $tname failed: $*" >&2; exit 1; }
	e=$(now)
	awk -v s="$s" -v e="$e" 'BEGIN {printf "%.4f\n", e - s}' >>"$T/$tname.times"
}

rtb() { # rtb RUNTIME STORE
	"$RTB" --store "$2" build -q --runtime "$1" "$T/ctx"
}
bud() { # bud RUNTIME TAG LAYERS
	# (sh has no pipefail: a failed build must not pass for a fast one)
	buildah bud --runtime "$1" --layers="$3" -q -t "$2" "$T/ctx" >"$T/bud.out" || return 1
	tail -n1 "$T/bud.out" >>"$T/ids"
}

# warm up page cache and buildah's storage
bud "$CRUN" rt-bench-build-cached true >/dev/null || { echo "bench-build.sh: buildah bud --runtime crun failed" >&2; exit 1; }
for name in rt runc crun; do
	case $name in rt) r="$BIN/rt" ;; runc) r=$RUNC ;; crun) r=$CRUN ;; esac
	rtb "$r" "$T/store-cached-$name" >/dev/null
done

i=0
while [ "$i" -lt "$N" ]; do
	for name in rt runc crun; do
		case $name in rt) r="$BIN/rt" ;; runc) r=$RUNC ;; crun) r=$CRUN ;; esac
		rm -rf "$T/store-cold"
		time_it "rt-build-$name-cold" rtb "$r" "$T/store-cold"
		time_it "rt-build-$name-cached" rtb "$r" "$T/store-cached-$name"
	done
	for name in runc crun; do
		case $name in runc) r=$RUNC ;; crun) r=$CRUN ;; esac
		time_it "buildah-$name-cold" bud "$r" rt-bench-build-cold false
		time_it "buildah-$name-cached" bud "$r" rt-bench-build-cached true
	done
	i=$((i + 1))
done
rm -rf "$T/store-cold"

median() { sort -n "$T/$1.times" | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "Dockerfile: FROM scratch + ADD busybox rootfs, 4 RUN, COPY, WORKDIR, ENV, CMD; $N runs each ($PROFILE rt binaries)"
for kind in cold cached; do
	base=$(median "buildah-crun-$kind")
	printf '%s:\n' "$kind"
	for name in buildah-crun buildah-runc rt-build-rt rt-build-crun rt-build-runc; do
		m=$(median "$name-$kind")
		awk -v n="$name" -v m="$m" -v b="$base" 'BEGIN {printf "  %-15s %8.3f s  %5.2fx buildah+crun\n", n, m, m / b}'
	done
done
