#!/bin/sh
# The main job: build berth, build the busybox rootfs, and run a container on it with one read-only
# and one read-write volume through berth's front end (no bundle directory needed), under a host
# mount policy that allows only the demo's own directory.
set -eu
cd "$(dirname "$0")/.."
./scripts/toolchain.sh
cargo build --release -q
[ -x rootfs/bin/busybox ] || ./scripts/mkrootfs.sh
berth=$PWD/target/x86_64-unknown-linux-musl/release/berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/volumes/data" "$work/volumes/out"
echo "hello from the host" > "$work/volumes/data/greeting"
cat > "$work/policy.json" <<JSON
{ "roots": [ { "path": "$work/volumes", "access": "rw" } ],
  "rootfs": [ { "path": "$PWD/rootfs", "access": "ro" } ] }
JSON
"$berth" --root "$work/state" --policy "$work/policy.json" run --rootfs rootfs \
    -v "$work/volumes/data:/data" -v "$work/volumes/out:/out:rw" -- \
    sh -c 'echo "in the container: $(hostname), pid $$"; cat /data/greeting;
           (echo try > /data/x) 2>/dev/null || echo "/data is read-only (the default)";
           date > /out/stamp && echo "wrote /out/stamp"'
echo "on the host: out/stamp = $(cat "$work/volumes/out/stamp")"
echo "and a volume outside the policy's roots is refused:"
"$berth" --root "$work/state" --policy "$work/policy.json" run --rootfs rootfs -v /etc:/etc-host -- true || true
