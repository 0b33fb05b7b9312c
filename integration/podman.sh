#!/bin/bash
# podman.sh -- podman drives the runtime: run (output, exit codes, -e/-w/-u, -i, -t),
# detached containers and logs, exec (plain, -t, -d), pause/unpause, update --memory,
# kill, stop, rm. Private storage and containers.conf; podman passes no --root, so the
# runtime uses its default root (/run/rt for rt). Cgroup manager $RT_CGROUP_MANAGER
# (lib.sh): with systemd podman passes --systemd-cgroup and cgroupsPath
# machine.slice:libpod:ID, so each container is in the scope libpod-ID.scope.
. "$(dirname "$0")/lib.sh"
scenario_init podman
need_pkgs podman netavark conmon busybox-static

P=$T/podman
mkdir -p "$P"
write_containers_conf "$P"
cgroup_parents libpod_parent

IMG=localhost/rtint-busybox:latest
PM=(podman --runtime "$WRAP")

teardown() {
	run "${PM[@]}" rm --all --force --time 0
	run "${PM[@]}" rmi --all --force
}

make_rootfs_tar "$T/rootfs.tar"
check "podman import a busybox rootfs" -- "${PM[@]}" import --change 'CMD ["/bin/sh"]' "$T/rootfs.tar" "$IMG" ||
	fatal "no image"

say "podman run --rm"
check "run: output" --out "hello" -- "${PM[@]}" run --rm "$IMG" echo hello
check "podman calls the runtime with --log FILE --log-format=json and no --root" \
	--out-re '^(--systemd-cgroup )?--log-format=json --log [^ ]+ create --bundle ' --out-not-re '--root' -- cat "$T/rt-calls.log"
if [ "$CGROUP_MANAGER" = systemd ]; then
	check "podman (cgroup_manager systemd) passes --systemd-cgroup and a machine.slice:libpod:ID cgroupsPath" \
		--out-re '^--systemd-cgroup .* create ' -- cat "$T/rt-calls.log"
	check "... the cgroupsPath" --out-re '^machine\.slice:libpod:[0-9a-f]{64}$' -- \
		sh -c "grep -ho '\"cgroupsPath\": *\"[^\"]*\"' '$T'/ctrs/*.json | head -1 | sed 's/^.*: *\"//; s/\"\$//'"
else
	check "podman (cgroup_manager cgroupfs) passes no --systemd-cgroup" --out-not-re '--systemd-cgroup' -- cat "$T/rt-calls.log"
fi
check "run: exit code passed through" --rc 42 -- "${PM[@]}" run --rm "$IMG" sh -c 'exit 42'
check "run: -e, -w, -u UID:GID" --out "bar|/tmp|1000:1000" -- \
	"${PM[@]}" run --rm -e FOO=bar -w /tmp -u 1000:1000 "$IMG" sh -c 'echo "$FOO|$(pwd)|$(id -u):$(id -g)"'
check "run: -u by name from the image's /etc/passwd" --out "1000 user /home/user" -- \
	"${PM[@]}" run --rm -u user "$IMG" sh -c 'echo "$(id -u) $(id -un) $HOME"'
check "run: no network but lo (netns = \"none\")" --out "lo" -- "${PM[@]}" run --rm "$IMG" ls /sys/class/net
check "run: pid 1 in its own pid namespace" --out "1" -- "${PM[@]}" run --rm "$IMG" sh -c 'echo $$'
check "run -i: stdin passed through" --stdin $'line one\nline two\n' --out $'line two\nline one' -- \
	"${PM[@]}" run --rm -i "$IMG" tac
check "run -t: a terminal" --out $'/dev/pts/0\nstdin and stdout are terminals' -- \
	"${PM[@]}" run --rm -t "$IMG" sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo stdin and stdout are terminals'
check "run -t: exit code passed through" --rc 9 -- "${PM[@]}" run --rm -t "$IMG" sh -c 'exit 9'
# podman maps the runtime's error (read from its --log JSON file) to 126/127.
check "run: missing command is exit code 127, with the runtime's error (from its --log JSON file)" \
	--rc 127 --err-re 'OCI runtime attempted to invoke a command that was not found' -- \
	"${PM[@]}" run --rm "$IMG" /no/such/command
# After a failed create podman runs `delete --force` on the container; runc exits 0
# when the container is already gone, else podman logs that the removal failed.
assert_eq "run: podman's delete --force after the failed create succeeds" "" \
	"$(grep -E 'does not exist|Removing container .* from runtime after creation failed' <<<"$ERR")" \
	"(stderr of the podman run above; $(grep -E '^delete --force' "$T/rt-calls.log" | tail -1))"
check "run: non-executable command is exit code 126" --rc 126 --err-re 'permission denied' -- \
	"${PM[@]}" run --rm "$IMG" /etc/passwd

say "podman run -d, logs, exec, pause, update, stop"
BG=rtint-podman-bg
check "run -d" --out-re '^[0-9a-f]{64}$' -- "${PM[@]}" run -d --name $BG "$IMG" sh -c \
	'echo started; trap "echo got TERM; exit 3" TERM; while :; do echo x >>/tmp/ticks; sleep 0.1; done' ||
	fatal "no detached container"
BG_ID=$OUT
retry 10 sh -c "podman --runtime '$WRAP' logs $BG | grep -q started"
check "logs: the container's output" --out "started" -- "${PM[@]}" logs $BG
check "inspect: running" --out "running" -- "${PM[@]}" inspect -f '{{.State.Status}}' $BG
check "runtime state: running (default root, as podman passes no --root)" --out-re '"status": ?"running"' -- \
	"$RT" state "$BG_ID"
BG_PID=$("${PM[@]}" inspect -f '{{.State.Pid}}' $BG)
BG_UNIT=libpod-$BG_ID.scope
check_cgroup "run -d: the container" "$BG_PID" "/machine.slice/$BG_UNIT" "/libpod_parent/libpod-$BG_ID"
check "exec: output and exit code" --rc 5 --out "exec-out" -- "${PM[@]}" exec $BG sh -c 'echo exec-out; exit 5'
check "exec: -e, -w, -u" --out "1|/tmp|1000" -- "${PM[@]}" exec -e X=1 -w /tmp -u 1000 $BG sh -c 'echo "$X|$(pwd)|$(id -u)"'
check "exec: in the container's pid namespace" --out-re '^sh -c echo started' -- "${PM[@]}" exec $BG sh -c 'tr "\0" " " </proc/1/cmdline'
check "exec -t: a terminal" --out $'/dev/pts/0\ntty' -- "${PM[@]}" exec -t $BG sh -c 'tty; [ -t 0 ] && echo tty'
check "exec -t: exit code passed through" --rc 4 -- "${PM[@]}" exec -t $BG sh -c 'exit 4'
check "exec -d" --out-re '^[0-9a-f]{64}$' -- "${PM[@]}" exec -d $BG sh -c 'echo detached >/tmp/detached'
retry 10 test -s "/proc/$BG_PID/root/tmp/detached"
check "exec -d: the process ran" --out "detached" -- "${PM[@]}" exec $BG cat /tmp/detached

check "pause" -- "${PM[@]}" pause $BG
check "pause: inspect says paused" --out "paused" -- "${PM[@]}" inspect -f '{{.State.Status}}' $BG
check "pause: runtime state paused" --out-re '"status": ?"paused"' -- "$RT" state "$BG_ID"
a=$(ticks "$BG_PID"); sleep 0.6; b=$(ticks "$BG_PID")
assert_eq "pause: the container had been ticking" "yes" "$([ "$a" -gt 0 ] && echo yes || echo "no ticks in /tmp/ticks")"
assert_eq "pause: the container's processes are frozen (no ticks in 0.6 s)" "$a" "$b"
check "unpause" -- "${PM[@]}" unpause $BG
check "unpause: inspect says running" --out "running" -- "${PM[@]}" inspect -f '{{.State.Status}}' $BG
a=$(ticks "$BG_PID")
retry 5 sh -c "[ \$(wc -l </proc/$BG_PID/root/tmp/ticks) -gt $a ]"; b=$(ticks "$BG_PID")
assert_eq "unpause: the container's processes run again (ticks again within 5 s)" "yes" "$([ "$b" -gt "$a" ] && echo yes || echo "no ($a -> $b)")"

check "update --memory 64m" -- "${PM[@]}" update --memory 64m $BG
mem=$(cgroup_file "$BG_PID" memory memory.limit_in_bytes memory.max)
assert_eq "update: the container's cgroup has the new memory limit ($mem)" "67108864" "$(cat "$mem" 2>&1)"
if [ "$CGROUP_MANAGER" = systemd ]; then
	check "update: systemd's unit has it too (MemoryMax of $BG_UNIT)" --out "MemoryMax=67108864" -- \
		systemctl show -p MemoryMax "$BG_UNIT"
fi

check "stop: SIGTERM, trapped" --out "$BG" -- "${PM[@]}" stop --time 10 $BG
check "stop: exit code of the trap" --out "exited 3" -- "${PM[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' $BG
check "stop: the trap's output is in the logs" --out $'started\ngot TERM' -- "${PM[@]}" logs $BG
check "rm" --out "$BG" -- "${PM[@]}" rm $BG
check "rm: gone from podman ps -a" --out "" -- "${PM[@]}" ps -a -q --filter name=$BG
check "rm: gone from the runtime's list" --out-not-re "$BG_ID" -- "$RT" list -q
check_unit_gone "rm" "$BG_UNIT"

say "podman kill, stop with SIGKILL fallback, rm -f"
check "run -d (for kill)" --out-re '^[0-9a-f]{64}$' -- "${PM[@]}" run -d --name rtint-podman-kill "$IMG" sleep 1000
check "kill: SIGKILL by default" --out "rtint-podman-kill" -- "${PM[@]}" kill rtint-podman-kill
check "kill: exit code 137" --out "137" -- "${PM[@]}" wait rtint-podman-kill
check "run -d (for kill -s)" --out-re '^[0-9a-f]{64}$' -- "${PM[@]}" run -d --name rtint-podman-usr1 "$IMG" sh -c \
	'trap "echo got USR1; exit 10" USR1; echo ready; while :; do sleep 0.1; done'
retry 10 sh -c "podman --runtime '$WRAP' logs rtint-podman-usr1 | grep -q ready"
check "kill -s USR1" --out "rtint-podman-usr1" -- "${PM[@]}" kill -s USR1 rtint-podman-usr1
check "kill -s USR1: the container's handler ran" --out "10" -- "${PM[@]}" wait rtint-podman-usr1
check "kill -s USR1: the handler's output is in the logs" --out $'ready\ngot USR1' -- "${PM[@]}" logs rtint-podman-usr1
check "run -d (for stop)" --out-re '^[0-9a-f]{64}$' -- "${PM[@]}" run -d --name rtint-podman-stop "$IMG" sleep 1000
check "stop: pid 1 ignores SIGTERM, SIGKILL after 1 s" --out "rtint-podman-stop" -- "${PM[@]}" stop --time 1 rtint-podman-stop
check "stop: exit code 137" --out "exited 137" -- "${PM[@]}" inspect -f '{{.State.Status}} {{.State.ExitCode}}' rtint-podman-stop
check "rm (stopped containers)" -- "${PM[@]}" rm rtint-podman-kill rtint-podman-usr1 rtint-podman-stop
check "run -d (for rm -f)" --out-re '^[0-9a-f]{64}$' -- "${PM[@]}" run -d --name rtint-podman-rmf "$IMG" sleep 1000
RMF_ID=$OUT
check "rm -f: a running container" --out "rtint-podman-rmf" -- "${PM[@]}" rm --force --time 0 rtint-podman-rmf
check "rm -f: gone from the runtime's list" --out-not-re "$RMF_ID" -- "$RT" list -q
check_unit_gone "rm -f" "libpod-$RMF_ID.scope"
check "no containers left in podman ps -a" --out "" -- "${PM[@]}" ps -a -q
