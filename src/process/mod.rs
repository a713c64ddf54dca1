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

/// This process's mount namespace, root and working directory, to come back to.
struct Home {
    ns: std::os::fd::OwnedFd,
    root: std::os::fd::OwnedFd,
    cwd: std::os::fd::OwnedFd,
}

impl Home {
    fn here() -> crate::Result<Home> {
        let open = |p: &str| {
            crate::sys::openat2(
                None,
                std::path::Path::new(p),
                libc::O_RDONLY | libc::O_CLOEXEC,
                0,
                0,
            )
        };
        Ok(Home {
            ns: open("/proc/self/ns/mnt")?,
            root: open("/proc/self/root")?,
            cwd: open("/proc/self/cwd")?,
        })
    }

    /// Back to the namespace, then its root and working directory (setns reset both).
    fn back(&self) -> crate::Result<()> {
        use crate::error::Error;
        use std::os::fd::{AsFd, AsRawFd};
        nix::sched::setns(self.ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::sys("setns(back to the runtime's mount namespace)", e))?;
        nix::unistd::fchdir(self.root.as_raw_fd())
            .map_err(|e| Error::sys("fchdir(own root)", e))?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(own root)", e))?;
        nix::unistd::fchdir(self.cwd.as_raw_fd()).map_err(|e| Error::sys("fchdir(own cwd)", e))
    }
}

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
    let home = Home::here()?;
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| crate::error::Error::sys(format!("setns({what}, CLONE_NEWNS)"), e))?;
    let result = f();
    home.back()?;
    result
}

/// Runs `f` in a new mount namespace of this process's own, a slave of the host's (nothing mounted
/// there reaches the host), then returns to the old one; the new namespace goes with the last
/// process in it (children `f` starts inherit it).
pub fn private_mount_ns<T>(f: impl FnOnce() -> crate::Result<T>) -> crate::Result<T> {
    use crate::error::Error;
    let home = Home::here()?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::sys("unshare(CLONE_NEWNS)", e))?;
    let slave = nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| Error::sys("mount(/, MS_REC|MS_SLAVE)", e));
    let result = slave.and_then(|()| f());
    home.back()?;
    result
}
