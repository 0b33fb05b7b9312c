#!/bin/sh
# mkbundle.sh DIR [RT] -- make an OCI bundle in DIR: a busybox-static rootfs and
# the default config.json of `rt spec`, set to run a shell command without a tty.
set -eu
dir=${1:?usage: mkbundle.sh DIR [RT]}
rt=${2:-rt}
busybox=$(command -v busybox || echo /bin/busybox)
mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" \
	"$dir/rootfs/tmp" "$dir/rootfs/etc" "$dir/rootfs/root"
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$dir/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$rt" spec --bundle "$dir"
# No tty (so it runs under any caller), and a command that shows it is contained.
sed -i -e 's/"terminal": true/"terminal": false/' \
	-e 's|^\(\t*\)"sh"$|\1"sh", "-c", "echo hello from $(hostname), pid $$; id; ls /"|' \
	"$dir/config.json"
