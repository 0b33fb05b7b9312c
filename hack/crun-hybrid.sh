# Sourced by the benchmark scripts (sh): crun refuses a cgroup v1 hybrid host
# ("cgroups in hybrid mode not supported") while the v2 hierarchy holds a
# controller, hugetlb here, that no v1 hierarchy has. A v1 hugetlb hierarchy takes
# it: crun_hybrid_prepare mounts one for the benchmark only, crun_hybrid_restore
# takes it away again (call it from the EXIT trap). rt itself needs neither.
# A directory left by an earlier run is not a mount: the mount is what is checked.
crun_hybrid_mounted="" crun_hybrid_made_dir=""
crun_hybrid_prepare() {
	if [ -f /sys/fs/cgroup/cgroup.controllers ] || mountpoint -q /sys/fs/cgroup/hugetlb; then
		return 0
	fi
	if [ ! -d /sys/fs/cgroup/hugetlb ]; then
		mkdir /sys/fs/cgroup/hugetlb
		crun_hybrid_made_dir=1
	fi
	# Enabled for children of the v2 root (by an earlier hugetlb limit), hugetlb
	# cannot move to a v1 hierarchy: disable it there first (refused while used).
	u=/sys/fs/cgroup/unified/cgroup.subtree_control
	if [ -f "$u" ] && grep -qw hugetlb "$u"; then
		echo -hugetlb >"$u" 2>/dev/null || true
	fi
	mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
	crun_hybrid_mounted=1
}
crun_hybrid_restore() {
	[ -n "$crun_hybrid_mounted" ] || return 0
	# A v1 hierarchy with child cgroups outlives its mount and keeps hugetlb from
	# the v2 hierarchy: empty it first.
	find /sys/fs/cgroup/hugetlb -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true
	umount /sys/fs/cgroup/hugetlb || true
	# The hierarchy goes some time after its unmount (hugetlb then is back on v2);
	# unmounted while a removed child was still dying, it stays until it is
	# unmounted empty: then do that once more.
	crun_hybrid_released || {
		mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb && umount /sys/fs/cgroup/hugetlb
		crun_hybrid_released || echo "hugetlb is still held by a v1 hierarchy" >&2
	}
	[ -z "$crun_hybrid_made_dir" ] || rmdir /sys/fs/cgroup/hugetlb || true
	crun_hybrid_mounted=""
}
crun_hybrid_released() { # within 5 s
	n=0
	while [ "$(awk '$1 == "hugetlb" {print $2}' /proc/cgroups)" != 0 ]; do
		[ "$n" -lt 25 ] || return 1
		sleep 0.2
		n=$((n + 1))
	done
}
