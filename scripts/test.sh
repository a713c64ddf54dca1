#!/bin/sh
# Runs berth's whole test suite: unit tests, the integration tests that run the real binary on real
# bundles (they need root), and the CRI scenarios of tests/cri. On a fresh Debian machine it first
# installs what the tests need (scripts/deps.sh: Podman, containerd, runc, strace, protoc, ...), the
# Rust toolchain's musl target and the busybox rootfs, so every test runs; a tool still missing
# then fails its tests (BERTH_REQUIRE_TOOLS=1) instead of skipping them. BERTH_NO_INSTALL=1 skips
# the installation (then missing tools skip their tests, with the reasons listed at the end).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
    echo "test.sh: run as root (the integration tests create namespaces and mounts)" >&2
    exit 1
fi
if [ -z "${BERTH_NO_INSTALL:-}" ]; then
    ./scripts/deps.sh
    BERTH_REQUIRE_TOOLS=1
    export BERTH_REQUIRE_TOOLS
fi
./scripts/toolchain.sh
[ -x rootfs/bin/busybox ] || ./scripts/mkrootfs.sh
# berth's default cgroup parent (/berth in each hierarchy) stays after its containers, as runc's
# does; front-end containers always have a cgroup (their device rules), so the suite makes it: it is
# removed again afterwards when the suite made it (rmdir: only while empty).
had_parent=$(ls -d /sys/fs/cgroup/berth /sys/fs/cgroup/*/berth 2>/dev/null | head -1)
# A test the host cannot run says why and returns (the test kit's skip!/tool); the reasons are
# collected here and listed at the end, so that no skip goes unseen.
BERTH_SKIP_LOG=$(mktemp /tmp/berth-skips.XXXXXX)
export BERTH_SKIP_LOG
trap 'rm -f "$BERTH_SKIP_LOG"' EXIT
status=0
cargo test --all-targets --features _test -- --test-threads="${BERTH_TEST_THREADS:-2}" || status=$?
[ -n "$had_parent" ] || rmdir /sys/fs/cgroup/berth /sys/fs/cgroup/*/berth 2>/dev/null || true
[ "$status" = 0 ] || exit "$status"
# The test kit (tests/kit, shared by every test crate) and Kubernetes' path: containerd's CRI plugin
# driven over CRI v1 with berth (and runc, as the control) as RuntimeClass handlers (tests/cri, its
# own workspace member), on the binary built just above.
cargo test -p berth-test-kit
BERTH_BIN="$PWD/target/x86_64-unknown-linux-musl/debug/berth" cargo test -p berth-cri-tests
if [ -s "$BERTH_SKIP_LOG" ]; then
    echo "test.sh: $(wc -l <"$BERTH_SKIP_LOG") skipped on this host (test: reason):"
    sed 's/^/  /' "$BERTH_SKIP_LOG"
fi
