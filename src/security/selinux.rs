//! SELinux: `process.selinuxLabel` is written to `/proc/thread-self/attr/exec` through berth's own
//! procfs instance just before the security layers that follow it, so the kernel switches to that
//! domain at execve (as AppArmor's profile is applied); `linux.mountLabel` becomes the `context=`
//! option of the tmpfs, mqueue and devpts instances berth makes for the container (mount::plan), so
//! every file in them, the /dev nodes berth creates included, carries it. Bind sources are never
//! relabelled by the runtime (that is the orchestrator's `:z`/`:Z`). With SELinux off a label is
//! ignored and logged at debug level, as crun does.

use crate::error::{Error, Result};
use crate::resolve::Root;
use crate::sys;
use std::path::Path;

/// Where selinuxfs says whether SELinux is enforcing (its presence: SELinux is enabled).
const ENFORCE: &str = "/sys/fs/selinux/enforce";

/// Whether SELinux is enabled (selinuxfs mounted, enforcing or permissive); asked once.
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| Path::new(ENFORCE).exists())
}

/// A label as the kernel takes it: `user:role:type[:level]`, no NUL or newline.
pub fn check(field: &str, label: &str) -> Result<()> {
    if label.contains(['\0', '\n']) || label.split(':').count() < 3 {
        return Err(Error::InvalidSpec(format!(
            "{field} {label:?}: not an SELinux context (user:role:type[:level])"
        )));
    }
    Ok(())
}

/// Sets the domain the next execve switches to, through `proc` (berth's own procfs instance).
pub fn apply(label: &str, proc: &Root) -> Result<()> {
    let what = || format!("process.selinuxLabel {label:?}");
    let fd = sys::openat2(
        Some(proc.fd()),
        Path::new("thread-self/attr/exec"),
        libc::O_WRONLY,
        0,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| Error::Context {
        what: what(),
        source: Box::new(e.into()),
    })?;
    nix::unistd::write(&fd, label.as_bytes())
        .map(drop)
        .map_err(|e| Error::Context {
            what: what(),
            source: Box::new(Error::sys(
                "write(/proc/thread-self/attr/exec): the kernel refused the label for the next execve",
                e,
            )),
        })
}
