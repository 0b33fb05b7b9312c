#!/bin/sh
# bench-unpack.sh [N] -- time rt-unpack against umoci unpack on a large image,
# side by side in one run: a debootstrap'd Debian (bookworm, minbase) root
# imported as a one-layer gzip OCI image with umoci, unpacked N times (default 3)
# by each of: umoci unpack, rt-unpack, rt-unpack --store (first bundle, empty
# store) and rt-unpack --store (second bundle, layers stored). Runs interleave;
# medians and ratios are printed. Warm page cache for all (each tool's first
# reading of the image is not timed).
#   RT_BENCH_CACHE   where the rootfs and image are kept (default ~/.cache/rt-bench-unpack)
#   RT_BENCH_MIRROR  debootstrap mirror (default: the host's first Debian apt source)
#   RT_BENCH_DIR     where the bundles are made (default /var/tmp; /dev/shm shows the
#                    unpackers' own cost where file creation is slow, as on some VMs)
# Needs root (debootstrap, device nodes, overlay mounts); installs debootstrap and
# umoci with apt-get; leaves nothing but the cache behind.
set -eu
cd "$(dirname "$0")/.."
N=${1:-3}
if [ "$(id -u)" != 0 ]; then
	echo "bench-unpack.sh: run as root" >&2
	exit 1
fi
missing=""
for p in debootstrap umoci; do
	command -v "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
cargo build --release -q -p rt-unpack
RTU="$PWD/target/release/rt-unpack"

CACHE=${RT_BENCH_CACHE:-$HOME/.cache/rt-bench-unpack}
mkdir -p "$CACHE"
if [ ! -f "$CACHE/rootfs.done" ]; then
	mirror=${RT_BENCH_MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p; s/^deb \[*[^]]*\]* *\(http[^ ]*debian\) bookworm .*/\1/p' \
		/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1)}
	echo "debootstrap bookworm (minbase) from ${mirror:-?} into $CACHE/rootfs ..."
	rm -rf "$CACHE/rootfs"
	debootstrap --variant=minbase bookworm "$CACHE/rootfs" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{ tail -n 20 "$CACHE/debootstrap.log" >&2; exit 1; }
	touch "$CACHE/rootfs.done"
	rm -f "$CACHE/image.done"
fi
if [ ! -f "$CACHE/image.done" ]; then
	echo "importing the rootfs as an OCI image ($CACHE/image) ..."
	rm -rf "$CACHE/image"
	umoci init --layout "$CACHE/image"
	umoci new --image "$CACHE/image:latest"
	umoci insert --image "$CACHE/image:latest" "$CACHE/rootfs" /
	umoci config --image "$CACHE/image:latest" --config.cmd /bin/bash >/dev/null
	touch "$CACHE/image.done"
fi
IMG="$CACHE/image"

T=$(mktemp -d "${RT_BENCH_DIR:-/var/tmp}/rt-bench-unpack.XXXXXX")
cleanup() {
	for b in "$T"/b*; do
		[ -e "$b" ] && "$RTU" --cleanup "$b" 2>/dev/null || true
	done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM

now() { date +%s.%N; }
# time_it NAME CMD...: run CMD, append its wall time to $T/NAME.times
time_it() {
	name=$1
	shift
	s=$(now)
	"$@" >/dev/null
	e=$(now)
	awk -v s="$s" -v e="$e" 'BEGIN {printf "%.4f\n", e - s}' >>"$T/$name.times"
}

files=$(find "$CACHE/rootfs" -xdev | wc -l)
size=$(du -sm "$CACHE/rootfs" | cut -f1)
blob=$(du -sm "$IMG/blobs" | cut -f1)
echo "image: Debian bookworm minbase, $files entries, $size MiB unpacked, $blob MiB of blobs; $N runs each, bundles in $(dirname "$T") ($(findmnt -no FSTYPE -T "$T" | head -n1))"

# Untimed warm-up: the image's blobs in the page cache for everyone.
cat "$IMG"/blobs/sha256/* >/dev/null

i=0
while [ "$i" -lt "$N" ]; do
	i=$((i + 1))
	time_it umoci umoci unpack --image "$IMG:latest" "$T/b-umoci"
	rm -rf "$T/b-umoci"
	time_it rt "$RTU" -q "oci:$IMG" "$T/b-rt"
	"$RTU" --cleanup "$T/b-rt"
	rm -rf "$T/store"
	time_it store1 "$RTU" -q --store "$T/store" "oci:$IMG" "$T/b-s1"
	time_it store2 "$RTU" -q --store "$T/store" "oci:$IMG" "$T/b-s2"
	"$RTU" --cleanup "$T/b-s1"
	"$RTU" --cleanup "$T/b-s2"
	sync
done

median() { sort -n "$T/$1.times" | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
u=$(median umoci)
r=$(median rt)
s1=$(median store1)
s2=$(median store2)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
printf '%-34s %9s %s\n' "unpacker" "median s" "umoci / this"
printf '%-34s %9s %s\n' "umoci unpack" "$u" "1.0"
printf '%-34s %9s %sx\n' "rt-unpack" "$r" "$(ratio "$u" "$r")"
printf '%-34s %9s %sx\n' "rt-unpack --store (first bundle)" "$s1" "$(ratio "$u" "$s1")"
printf '%-34s %9s %sx\n' "rt-unpack --store (second bundle)" "$s2" "$(ratio "$u" "$s2")"
