#!/bin/sh
# The main job: build berth, build the busybox rootfs, and run a CI-style job on it through berth's
# front end (no bundle directory needed): the workspace mounted read-write, a cache read-only, no
# network but loopback, limits on memory and processes, under a host mount policy that allows only
# the demo's own directory.
set -eu
cd "$(dirname "$0")/.."
./scripts/toolchain.sh
cargo build --release -q
[ -x rootfs/bin/busybox ] || ./scripts/mkrootfs.sh
berth=$PWD/target/x86_64-unknown-linux-musl/release/berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
# The job's limits put its cgroup under berth's shared default parent (/berth in each hierarchy),
# which berth keeps, as runc and Podman keep theirs; the demo removes it again if it made it.
had_parent=$(ls -d /sys/fs/cgroup/*/berth /sys/fs/cgroup/berth 2>/dev/null | head -1)
trap 'rm -rf "$work"; [ -n "$had_parent" ] || rmdir /sys/fs/cgroup/*/berth /sys/fs/cgroup/berth 2>/dev/null || true' EXIT
mkdir -p "$work/volumes/workspace" "$work/volumes/cache"
echo 'echo "building $PROJECT"; cat /cache/deps.txt > build.log; echo ok >> build.log' > "$work/volumes/workspace/build.sh"
echo "deps from the cache" > "$work/volumes/cache/deps.txt"
cat > "$work/policy.json" <<JSON
{ "roots": [ { "path": "$work/volumes", "access": "rw" } ],
  "rootfs": [ { "path": "$PWD/rootfs", "access": "ro" } ] }
JSON
"$berth" --root "$work/state" --policy "$work/policy.json" run --rootfs rootfs \
    -v "$work/volumes/workspace:/work:rw" -v "$work/volumes/cache:/cache" -w /work \
    -e PROJECT=demo --memory 256m --pids-limit 64 -- \
    sh -c 'echo "in the container: $(hostname), pid $$, network: $(ls /sys/class/net)";
           sh build.sh && echo "wrote /work/build.log";
           (echo try > /cache/x) 2>/dev/null || echo "/cache is read-only (the default)";
           (echo try > /x) 2>/dev/null || echo "/ is read-only (the default)"'
echo "on the host: workspace/build.log = $(tr '\n' ' ' < "$work/volumes/workspace/build.log")"
echo "and a volume outside the policy's roots is refused:"
"$berth" --root "$work/state" --policy "$work/policy.json" run --rootfs rootfs -v /etc:/etc-host -- true || true
