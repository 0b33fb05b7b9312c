#!/bin/bash
# buildah.sh -- buildah builds an image whose RUN steps run in the runtime
# (`buildah bud --runtime --isolation oci`): files written, ENV, WORKDIR and USER
# seen by RUN, a failing RUN's exit status; the image is then run with podman (same
# private storage, runtime rt) and with `buildah run`. Buildah passes no --root.
# Cgroup manager $RT_CGROUP_MANAGER (lib.sh), buildah's --cgroup-manager: with
# systemd buildah passes --systemd-cgroup and no cgroupsPath (the runtime's default
# scope, runc-ID.scope in system.slice for runc).
. "$(dirname "$0")/lib.sh"
scenario_init buildah
need_pkgs buildah podman netavark conmon busybox-static

write_containers_conf "$T/containers"
cgroup_parents libpod_parent

IMG=localhost/rtint-built:latest
BA=(buildah --cgroup-manager "$CGROUP_MANAGER")
PM=(podman --runtime "$WRAP")

teardown() {
	run "${BA[@]}" rm --all
	run "${PM[@]}" rm --all --force --time 0
	run "${BA[@]}" rmi --all --force
}

mkdir -p "$T/ctx"
make_rootfs_tar "$T/ctx/rootfs.tar"
cat >"$T/ctx/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV GREETING=hello-from-build
WORKDIR /app
RUN echo "$GREETING" >/app/greeting && pwd >/app/workdir && echo "step 1 wrote /app/greeting"
RUN test "$GREETING" = hello-from-build && test "$(pwd)" = /app && test "$(cat greeting)" = "$GREETING" && \
    echo env-and-workdir-ok >/app/checked && echo "step 2 saw ENV and WORKDIR"
USER 1000:1000
RUN id -u >/tmp/uid-during-build && echo "step 3 ran as uid $(id -u)"
USER 0
RUN mkdir -p /data && printf 'line1\nline2\n' >/data/lines && wc -l </data/lines >/data/count && \
    chown -R 1000:1000 /data && echo "step 4 ran as uid $(id -u)"
USER user
CMD ["cat", "/app/greeting"]
EOF

say "buildah bud --runtime --isolation oci"
check "bud: builds, each RUN step ran" \
	--out-re 'step 1 wrote /app/greeting' --out-re 'step 2 saw ENV and WORKDIR' \
	--out-re 'step 3 ran as uid 1000' --out-re 'step 4 ran as uid 0' --out-re 'Successfully tagged '"$IMG" -- \
	"${BA[@]}" bud --runtime "$WRAP" --isolation oci --network none --layers=false -t "$IMG" "$T/ctx" ||
	fatal "no image"
check "bud: the RUN steps went through the runtime (create/start/delete)" \
	--out-re '^(--systemd-cgroup )?create --bundle .* buildah-' --out-re '^start buildah-' --out-re '^delete buildah-' -- \
	cat "$T/rt-calls.log"
# buildah (1.28, and still upstream) never passes --systemd-cgroup for bud's RUN steps,
# whatever --cgroup-manager says (only `buildah run` does), nor a cgroupsPath: each
# step is in the runtime's default cgroupfs cgroup (the checks at the end say where).

say "the image, run with podman"
check "podman run: the image's CMD and USER" --out $'hello-from-build\n1000' -- \
	"${PM[@]}" run --rm "$IMG" sh -c 'cat /app/greeting; id -u'
check "podman run: the files the RUN steps wrote" \
	--out $'/app\nenv-and-workdir-ok\n1000\n2\nline1\nline2\n1000' -- \
	"${PM[@]}" run --rm "$IMG" sh -c 'cat /app/workdir /app/checked /tmp/uid-during-build /data/count /data/lines; stat -c %u /data/lines'
check "podman run: ENV and WORKDIR kept in the image" --out "hello-from-build|/app" -- \
	"${PM[@]}" run --rm "$IMG" sh -c 'echo "$GREETING|$(pwd)"'
check "podman run: default CMD" --out "hello-from-build" -- "${PM[@]}" run --rm "$IMG"

say "buildah from + buildah run"
check "buildah from the built image" --out-re '^rtint-built-working-container' -- "${BA[@]}" from "$IMG" ||
	fatal "no working container"
WC=$OUT
check "buildah run: files from the build" --out $'env-and-workdir-ok\nhello-from-build|/app|1000' -- \
	"${BA[@]}" run --runtime "$WRAP" --isolation oci --network none "$WC" -- \
	sh -c 'cat /app/checked; echo "$GREETING|$(pwd)|$(id -u)"'
check "buildah run: a file written in one run is there in the next" --out "persisted" -- sh -c "
	$(printf '%q ' "${BA[@]}") run --runtime '$WRAP' --isolation oci --network none '$WC' -- sh -c 'echo persisted >/data/new' &&
	$(printf '%q ' "${BA[@]}") run --runtime '$WRAP' --isolation oci --network none '$WC' -- cat /data/new"
check "buildah run: a failing command's exit status" --rc 5 --err-re 'exit status 5' -- \
	"${BA[@]}" run --runtime "$WRAP" --isolation oci --network none "$WC" -- sh -c 'exit 5'
if [ "$CGROUP_MANAGER" = systemd ]; then
	# buildah run passes --systemd-cgroup (no cgroupsPath: the runtime's default scope).
	check "buildah run: --systemd-cgroup (cgroup manager systemd)" --out-re '^--systemd-cgroup create .* buildah-' -- \
		cat "$T/rt-calls.log"
fi
check "buildah rm" -- "${BA[@]}" rm "$WC"

say "a RUN step under a memory limit (bud --memory)"
mkdir -p "$T/ctx-mem"
printf 'FROM %s\nUSER 0\nRUN for f in /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes; do [ -r $f ] && echo "limit $(cat $f)" && break; done\n' \
	"$IMG" >"$T/ctx-mem/Dockerfile"
check "bud --memory 64m: the RUN step runs with the limit" --out-re '^limit 67108864$' -- \
	"${BA[@]}" bud --memory 64m --runtime "$WRAP" --isolation oci --network none --layers=false -t localhost/rtint-mem "$T/ctx-mem"

say "a failing RUN step"
mkdir -p "$T/ctx-fail"
printf 'FROM %s\nUSER 0\nRUN echo before-failure && exit 3\nRUN echo never-reached\n' "$IMG" >"$T/ctx-fail/Dockerfile"
check "bud: a RUN step exiting 3 fails the build with its status" --rc 3 --out-re 'before-failure' \
	--out-not-re 'never-reached' --err-re 'exit status 3' -- \
	"${BA[@]}" bud --runtime "$WRAP" --isolation oci --network none -t localhost/rtint-fail "$T/ctx-fail"
check "bud: no image from the failed build" --rc 125 --err-re 'image not known' -- "${BA[@]}" inspect --type image localhost/rtint-fail
