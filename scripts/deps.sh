#!/bin/sh
# Installs (Debian's apt) what berth's test suite needs and is missing: the busybox rootfs's
# busybox, util-linux tools, strace, the real clients (Podman, containerd, runc, Docker), protoc for
# the CRI driver, newuidmap/newgidmap, zsh and fish (the completion scripts are run in them). Used by scripts/test.sh and .ci/run. Docker's package would
# start the host's dockerd on install: a policy-rc.d that refuses every start is in place for the
# install only (the tests start a private dockerd of their own).
set -eu
need=""
for p in busybox-static bsdutils strace util-linux podman containerd runc docker.io protobuf-compiler uidmap passwd zsh fish; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    echo "deps.sh: installing$need" >&2
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        guard=1
    fi
    status=0
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null; } || status=$?
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
    exit "$status"
fi
