//! The container process: [`spawn`] clones the init in its namespaces and drives it from the parent,
//! [`init`] is the recipe it follows inside, [`sync`] is how the two talk, [`exec`] puts one more
//! process into a running container, [`supervise`] waits for a process berth stays with (signals,
//! terminal), and [`ChildGuard`] makes sure no child is left behind on an error.

mod attrs;
pub mod exec;
mod guard;
pub mod init;
pub mod spawn;
pub mod supervise;
pub mod sync;

pub use guard::ChildGuard;

/// Runs `f` inside the mount namespace `ns` (an fd of /proc/PID/ns/mnt or a pidfd), then returns
/// to this process's own namespace, root and working directory (setns resets both) whatever `f`
/// did. berth is single-threaded here, as setns(CLONE_NEWNS) requires. What `f` mounts there is
/// made on fds opened before (a detached tree from the host's side, a root opened through
/// /proc/PID/root), never on a path of the host's.
pub fn inside_mount_ns<T>(
    ns: std::os::fd::BorrowedFd<'_>,
    what: &str,
    f: impl FnOnce() -> crate::Result<T>,
) -> crate::Result<T> {
    use crate::error::Error;
    use std::os::fd::{AsFd, AsRawFd};
    let open = |p: &str| {
        crate::sys::openat2(
            None,
            std::path::Path::new(p),
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
            0,
        )
    };
    let own_ns = open("/proc/self/ns/mnt")?;
    let own_root = open("/proc/self/root")?;
    let own_cwd = open("/proc/self/cwd")?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::sys(format!("setns({what}, CLONE_NEWNS)"), e))?;
    let result = f();
    nix::sched::setns(own_ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::sys("setns(back to the runtime's mount namespace)", e))?;
    nix::unistd::fchdir(own_root.as_raw_fd()).map_err(|e| Error::sys("fchdir(own root)", e))?;
    nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(own root)", e))?;
    nix::unistd::fchdir(own_cwd.as_raw_fd()).map_err(|e| Error::sys("fchdir(own cwd)", e))?;
    result
}
