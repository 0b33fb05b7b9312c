#!/bin/bash
# containerd.sh -- a private containerd (own config, root, state and socket under
# the temp dir) drives the runtime through the io.containerd.runc.v2 shim with
# `ctr run --runc-binary`: run --rm (output, exit code, env, cwd), a detached task,
# task exec (plain, -t, -d), task ps, pause/resume, kill (one, --all), delete; and
# `events --stats` on a container the shim owns. containerd passes
# `--root <runc-root>/<namespace>` (here under the temp dir) to the runtime.
# Cgroup manager $RT_CGROUP_MANAGER (lib.sh): with systemd, `ctr run
# --runc-systemd-cgroup` sets SystemdCgroup in the shim's runc options (the shim then
# passes --systemd-cgroup) and needs a `slice:prefix:name` cgroup: system.slice:NS:ID,
# the scope NS-ID.scope; with cgroupfs ctr's default, /NS/ID.
. "$(dirname "$0")/lib.sh"
scenario_init containerd
need_pkgs containerd umoci busybox-static

C=$T/containerd
NS=rtint-$$                # containerd namespace; also the parent cgroup of the containers
RUNC_ROOT=$T/runc          # --runc-root: the runtime gets --root $RUNC_ROOT/$NS
STATE_ROOT=$RUNC_ROOT/$NS
IMG=localhost/rtint-busybox:latest
mkdir -p "$C" "$T/fifo"
cgroup_parents "$NS"

cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$C/containerd.sock"
[ttrpc]
  address = "$C/containerd.sock.ttrpc"
[debug]
  address = "$C/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$C/opt"
EOF

CTR=(ctr --address "$C/containerd.sock" --namespace "$NS")
RUN=("${CTR[@]}" run --runtime io.containerd.runc.v2 --runc-binary "$WRAP" --runc-root "$RUNC_ROOT" --fifo-dir "$T/fifo")
EXEC=("${CTR[@]}" task exec --fifo-dir "$T/fifo")
CONTAINERD_PID=

# ctr_run ID: R=(the ctr run command for container ID, with the cgroup manager's options).
ctr_run() {
	R=("${RUN[@]}")
	if [ "$CGROUP_MANAGER" = systemd ]; then
		R+=(--runc-systemd-cgroup --cgroup "system.slice:$NS:$1")
	fi
}
# cgroup_for ID: the cgroup the container must be in.
cgroup_for() {
	if [ "$CGROUP_MANAGER" = systemd ]; then echo "/system.slice/$NS-$1.scope"; else echo "/$NS/$1"; fi
}

teardown() {
	if [ -n "$CONTAINERD_PID" ]; then
		local id
		for id in $("${CTR[@]}" task ls -q 2>/dev/null); do
			run "${CTR[@]}" task kill --all --signal SIGKILL "$id"
			sleep 0.2
			run "${CTR[@]}" task delete --force "$id"
		done
		for id in $("${CTR[@]}" container ls -q 2>/dev/null); do run "${CTR[@]}" container delete "$id"; done
		run "${CTR[@]}" image rm "$IMG"
		run "${CTR[@]}" namespace remove "$NS"
		kill -TERM "$CONTAINERD_PID" 2>/dev/null
		local i
		for i in $(seq 50); do kill -0 "$CONTAINERD_PID" 2>/dev/null || break; sleep 0.1; done
		wait "$CONTAINERD_PID" 2>/dev/null
		CONTAINERD_PID=
	fi
}

# The image: a busybox rootfs as an OCI layout made with umoci, archived for `ctr image import`.
say "building the image (umoci)"
make_rootfs_tar "$T/rootfs.tar"
(
	set -e
	cd "$T"
	umoci init --layout oci
	umoci new --image oci:latest
	umoci unpack --image oci:latest bundle
	tar -C bundle/rootfs -xf rootfs.tar
	umoci repack --image oci:latest bundle
	umoci config --image oci:latest --config.cmd /bin/sh
	tar -C oci -cf image.tar .
	rm -rf bundle oci rootfs.tar
) >"$T/umoci.log" 2>&1 || { cat "$T/umoci.log"; fail "umoci: build the image" "see above"; fatal "no image"; }

say "starting a private containerd"
TMPDIR=$T/tmp containerd --config "$C/config.toml" >"$C/containerd.log" 2>&1 &
CONTAINERD_PID=$!
if ! retry 20 "${CTR[@]}" version; then
	tail -20 "$C/containerd.log"
	fail "containerd starts" "no answer on $C/containerd.sock after 20 s"
	fatal "no containerd"
fi
pass "containerd starts"

check "image import (OCI archive)" --out-re "unpacking $IMG" -- \
	"${CTR[@]}" image import --base-name localhost/rtint-busybox "$T/image.tar" || fatal "no image"

say "ctr run --rm --runc-binary"
ctr_run rtint-ctr-rm
check "run --rm: output and exit code" --rc 7 --out "hello" -- \
	"${R[@]}" --rm "$IMG" rtint-ctr-rm sh -c 'echo hello; exit 7'
ctr_run rtint-ctr-env
check "run --rm: --env and --cwd" --out "bar|/tmp|0" -- \
	"${R[@]}" --rm --env FOO=bar --cwd /tmp "$IMG" rtint-ctr-env sh -c 'echo "$FOO|$(pwd)|$(id -u)"'
ctr_run rtint-ctr-pid
check "run --rm: pid 1 in its own pid namespace" --out "1" -- "${R[@]}" --rm "$IMG" rtint-ctr-pid sh -c 'echo $$'
check "run: the runtime got containerd's --root" --out-re "--root $STATE_ROOT .*create .*rtint-ctr-rm" -- \
	cat "$T/rt-calls.log"

# The runtime's error reaches ctr (through the shim, from the runtime's --log): here a
# bind mount whose source is missing, which the init finds only once it mounts.
ctr_run rtint-ctr-badmount
check "run: a missing bind mount source fails the create with the runtime's mount error" --rc '*' \
	--err-re 'OCI runtime create failed' --err-re '/mnt/missing.*([Nn]o such file|ENOENT)|([Nn]o such file|ENOENT).*/mnt/missing|/nonexistent' -- \
	"${R[@]}" --rm --mount type=bind,src=/nonexistent/rtint,dst=/mnt/missing,options=rbind "$IMG" rtint-ctr-badmount true
assert_eq "run: the failed create's exit code is not 0" "yes" "$([ "$RC" != 0 ] && echo yes || echo "no: $RC")"
run "${CTR[@]}" container delete rtint-ctr-badmount

say "a detached task"
BG=rtint-ctr-bg
ctr_run $BG
check "run -d" -- "${R[@]}" -d "$IMG" $BG sh -c \
	'echo started; trap "echo got TERM; exit 3" TERM; while :; do echo x >>/tmp/ticks; sleep 0.1; done' ||
	fatal "no detached task"
check "task ls: running" --out-re "^$BG +[0-9]+ +RUNNING" -- "${CTR[@]}" task ls
BG_PID=$("${CTR[@]}" task ls | awk -v id=$BG '$1 == id { print $2 }')
check "runtime state: running, same pid (in containerd's --root)" --out-re '"status": ?"running"' \
	--out-re "\"pid\": ?$BG_PID," -- "$RT" --root "$STATE_ROOT" state $BG
check_cgroup "the task's init" "$BG_PID" "$(cgroup_for $BG)" "$(cgroup_for $BG)"

check "task exec: output and exit code" --rc 4 --out "exec-out" -- \
	"${EXEC[@]}" --exec-id e1 $BG sh -c 'echo exec-out; exit 4'
check "task exec: --cwd and --user" --out "/tmp|65534" -- \
	"${EXEC[@]}" --exec-id e2 --cwd /tmp --user 65534 $BG sh -c 'echo "$(pwd)|$(id -u)"'
check "task exec: in the container's pid namespace" --out-re '^sh -c echo started' -- \
	"${EXEC[@]}" --exec-id e3 $BG sh -c 'tr "\0" " " </proc/1/cmdline'
check "task exec: in the container's cgroup" --out-re ":$(cgroup_for $BG)\$" -- \
	"${EXEC[@]}" --exec-id e5 $BG cat /proc/self/cgroup
# ctr -t needs a terminal on its stdin: script(1) gives it one.
check "task exec -t: a terminal" --rc 6 --out-re '/dev/pts/[0-9]+' --out-re 'tty-ok' -- \
	script -qec "$(printf '%q ' "${EXEC[@]}") -t --exec-id e4 $BG sh -c 'tty; [ -t 0 ] && echo tty-ok; sleep 0.5; exit 6'" /dev/null
check "task exec -d" -- "${EXEC[@]}" -d --exec-id sleeper $BG sleep 1000
check "task ps: the init and the exec'd process" --out-re "^$BG_PID " --out-re 'ExecID:sleeper' -- \
	"${CTR[@]}" task ps $BG
SLEEPER=$("${CTR[@]}" task ps $BG | awk '/ExecID:sleeper/ { print $1 }')
check "runtime ps: the same pids" --out-re "(^|[^0-9])$BG_PID([^0-9]|$)" --out-re "(^|[^0-9])${SLEEPER:-none}([^0-9]|$)" -- \
	"$RT" --root "$STATE_ROOT" ps --format json $BG

check "task pause" -- "${CTR[@]}" task pause $BG
check "task ls: paused" --out-re "^$BG +[0-9]+ +PAUSED" -- "${CTR[@]}" task ls
check "runtime state: paused" --out-re '"status": ?"paused"' -- "$RT" --root "$STATE_ROOT" state $BG
a=$(ticks "$BG_PID"); sleep 0.6; b=$(ticks "$BG_PID")
assert_eq "pause: the task had been ticking" "yes" "$([ "$a" -gt 0 ] && echo yes || echo "no ticks in /tmp/ticks")"
assert_eq "pause: the task's processes are frozen (no ticks in 0.6 s)" "$a" "$b"
check "task resume" -- "${CTR[@]}" task resume $BG
check "task ls: running again" --out-re "^$BG +[0-9]+ +RUNNING" -- "${CTR[@]}" task ls
a=$(ticks "$BG_PID")
retry 5 sh -c "[ \$(wc -l </proc/$BG_PID/root/tmp/ticks) -gt $a ]"; b=$(ticks "$BG_PID")
assert_eq "resume: the task's processes run again (ticks again within 5 s)" "yes" "$([ "$b" -gt "$a" ] && echo yes || echo "no ($a -> $b)")"

# No ctr command asks the runtime for events (the shim reads cgroups itself), so the
# runtime is asked directly, as runc's users do, about the container the shim owns.
check "runtime events --stats on the shim's container" --out-re '"type": ?"stats"' --out-re "\"id\": ?\"$BG\"" \
	--out-re '"memory"' -- "$RT" --root "$STATE_ROOT" events --stats $BG

check "task kill: SIGTERM to the init" -- "${CTR[@]}" task kill $BG
retry 10 sh -c "$(printf '%q ' "${CTR[@]}") task ls | grep -Eq '^$BG +[0-9]+ +STOPPED'"
check "task ls: stopped" --out-re "^$BG +[0-9]+ +STOPPED" -- "${CTR[@]}" task ls
check "task delete: exit code 3 from the trap" --err-re "exit code 3\"" -- "${CTR[@]}" task delete $BG
check "runtime list: the container is gone" --out "" -- "$RT" --root "$STATE_ROOT" list -q
check_unit_gone "task delete" "$NS-$BG.scope"
check "container delete" -- "${CTR[@]}" container delete $BG

say "task kill --all"
ctr_run rtint-ctr-all
check "run -d (two processes)" -- "${R[@]}" -d "$IMG" rtint-ctr-all sh -c 'sleep 1000 & sleep 1000'
check "task kill --all --signal SIGKILL" -- "${CTR[@]}" task kill --all --signal SIGKILL rtint-ctr-all
retry 10 sh -c "$(printf '%q ' "${CTR[@]}") task ls | grep -Eq '^rtint-ctr-all +[0-9]+ +STOPPED'"
check "task delete: exit code 137" --err-re "exit code 137\"" -- "${CTR[@]}" task delete rtint-ctr-all
check "container delete" -- "${CTR[@]}" container delete rtint-ctr-all
check "no tasks or containers left in containerd" --out "" -- sh -c \
	"$(printf '%q ' "${CTR[@]}") task ls -q; $(printf '%q ' "${CTR[@]}") container ls -q"
