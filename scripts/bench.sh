#!/bin/sh
# Start-up benchmark: `run` of /bin/true on the busybox rootfs with the default `berth spec` bundle
# (terminal off; no linux.resources, so crun needs no cgroup settings on cgroup-v1 hosts), berth vs
# runc vs crun interleaved in one run. Prints medians of wall time, CPU time (user+sys of the runtime
# and everything it waited for) and peak RSS, and the ratios to crun and runc.
#   scripts/bench.sh [RUNS]          (default 200)
#   scripts/bench.sh mounts [RUNS]   mount scaling (see scripts/bench.py)
#   scripts/bench.sh cgroups [RUNS]  the same with a Podman-like resources block, cgroups managed
#   scripts/bench.sh exec [RUNS]     exec of /bin/true into a running container
#   scripts/bench.sh masked [RUNS]   the default bundle with 400 more masked directories
#   scripts/bench.sh density [N]     pod density: N Kubernetes-like containers (default 100), each
#                                    exec'd 10 times like a probe, then deleted
# Other builds: CRUN=/path/to/crun RUNC=/path/to/runc, BENCH_RUNTIMES="crun-1.27=/path ..." (rows).
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root" >&2; exit 1; }
need=""
for p in runc crun time python3 strace; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
[ -x rootfs/bin/busybox ] || ./scripts/mkrootfs.sh
./scripts/toolchain.sh
cargo build --release -q
# crun 1.8.1 refuses cgroup-v1 hybrid hosts whose unified hierarchy has a controller (here: hugetlb),
# even with --cgroup-manager=disabled. The whole benchmark therefore runs in a private mount namespace
# in which that one file reads empty; the host is untouched and all three runtimes see the same system.
ctl=/sys/fs/cgroup/unified/cgroup.controllers
if [ -n "$(cat "$ctl" 2>/dev/null)" ]; then
    exec unshare -m --propagation private sh -c 'mount --bind /dev/null "$0" && exec python3 scripts/bench.py "$@"' "$ctl" "$@"
fi
exec python3 scripts/bench.py "$@"
