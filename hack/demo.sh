#!/bin/sh
# demo.sh -- build rt, make a busybox bundle and `rt run` it.
set -eu
cd "$(dirname "$0")/.."
hack/install-deps.sh
cargo build --release -p rt
rt=$PWD/target/release/rt
bundle=$(mktemp -d /tmp/rt-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
hack/mkbundle.sh "$bundle" "$rt"
"$rt" run --bundle "$bundle" "demo-$$"
