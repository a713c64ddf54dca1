#!/bin/sh
# Runs berth's whole test suite: unit tests and the integration tests that run the real binary on
# real bundles (they need root). Builds the busybox rootfs first if it is missing.
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test.sh: run as root (the integration tests create namespaces and mounts)" >&2
    exit 1
fi
./scripts/toolchain.sh
command -v script >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bsdutils >/dev/null; }
[ -x rootfs/bin/busybox ] || ./scripts/mkrootfs.sh
cargo test --all-targets --features _test -- --test-threads="${BERTH_TEST_THREADS:-2}"
