#!/bin/sh
# Install what rt's build, tests and demo need on a fresh Debian machine.
# The Rust toolchain (cargo) is expected to be present already.
set -eu
if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: run as root (it uses apt-get)" >&2
	exit 1
fi
pkgs="busybox-static iproute2 util-linux procps umoci runc golang-github-containers-common buildah podman crun"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
