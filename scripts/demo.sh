#!/bin/sh
# The main job: build berth, build the busybox rootfs, and run a container on it with one read-only
# and one read-write volume. Shows what the container sees and what it left on the host.
set -eu
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "demo.sh: needs a Rust toolchain (cargo) on PATH" >&2; exit 1; }
cargo build --release -q
[ -x rootfs/bin/busybox ] || ./scripts/mkrootfs.sh
berth=$PWD/target/x86_64-unknown-linux-gnu/release/berth
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle" "$work/data" "$work/out"
echo "hello from the host" > "$work/data/greeting"
ln -s "$PWD/rootfs" "$work/bundle/rootfs"
cat > "$work/bundle/config.json" <<JSON
{
  "ociVersion": "1.2.0",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["sh", "-c", "echo \"in the container: \$(hostname), pid \$\$\"; cat /data/greeting; (echo try > /data/x) 2>/dev/null || echo '/data is read-only, as asked'; date > /out/stamp && echo 'wrote /out/stamp'"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    "cwd": "/",
    "capabilities": { "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"] },
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "demo",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/data", "type": "bind", "source": "$work/data", "options": ["rbind", "ro", "nosuid", "nodev"] },
    { "destination": "/out", "type": "bind", "source": "$work/out", "options": ["rbind", "rw", "nosuid", "nodev"] }
  ],
  "linux": {
    "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
"$berth" --root "$work/state" run --bundle "$work/bundle" demo
echo "on the host: /out/stamp = $(cat "$work/out/stamp")"
