//! berth's test kit: what every test crate of the repository shares (berth's `tests/` and
//! `tests/cri`).
//!
//! - [`BERTH`]: the freshly built binary (`BERTH_BIN`, or the `berth` beside the test executable).
//! - [`Bundle`]: one test's world (temp dir, bundle on the busybox rootfs, own `--root`) with a drop
//!   guard that force-deletes what the test left and then fails the test if a state directory or a
//!   mount is left on the host.
//! - [`Bundle::refused`]: a refusal is a failure naming the cause that leaves nothing behind.
//! - [`Swapper`], [`Sleeper`]: the attacker's racing thread and a process in namespaces of its own.
//! - [`oci`]: OCI image layouts (blobs, tar entries, gzip, index/manifest/config).
//! - [`skip!`], [`tool`]: a test the host cannot run says why and returns, instead of panicking; the
//!   reasons are collected (`BERTH_SKIP_LOG`), and `BERTH_REQUIRE_TOOLS=1` (scripts/test.sh, after
//!   installing every tool) turns a missing tool back into a failure.

mod binary;
mod bundle;
mod host;
pub mod oci;
mod race;
mod run;

pub use binary::{BERTH, Berth, busybox, repo};
pub use bundle::{Bundle, make_rootfs, mountinfo};
pub use host::{cgroup_roots, cgroup_v2, devices_hierarchy, skipped, tool};
pub use race::{Sleeper, Swapper};
pub use run::{
    fails, in_pty, ok, output, run_from_shell, run_in_private_ns, sh, sh_in_private_mount_ns,
    stderr, stdout, syscalls_in,
};
