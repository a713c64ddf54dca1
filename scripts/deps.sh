#!/bin/sh
# Installs (Debian's apt) what berth's test suite needs and is missing: the busybox rootfs's
# busybox, util-linux tools, strace, the real clients (Podman, containerd, runc), protoc for the CRI
# driver, newuidmap/newgidmap. Used by scripts/test.sh and .ci/run.
set -eu
need=""
for p in busybox-static bsdutils strace util-linux podman containerd runc protobuf-compiler uidmap passwd; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    echo "deps.sh: installing$need" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
