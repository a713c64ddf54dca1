//! AppArmor: `process.apparmorProfile` is applied by writing `exec PROFILE` to
//! `/proc/thread-self/attr/apparmor/exec` (older kernels: `attr/exec`), so the kernel switches to the
//! profile at execve. The write goes through a procfs instance berth mounted itself (never the
//! container's /proc, which the image could have replaced). A requested profile on a host without
//! AppArmor is an error that names the profile; it is never skipped.

use crate::error::{Error, Result};
use crate::resolve::Root;
use crate::sys;
use std::path::Path;

/// Where the kernel says whether AppArmor is enabled.
const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";

/// Whether AppArmor is enabled on this host (`Y` in /sys/module/apparmor/parameters/enabled).
pub fn enabled() -> bool {
    std::fs::read(ENABLED).is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// Checks a requested profile before anything is created; Ok when none is requested.
pub fn check(profile: Option<&str>) -> Result<()> {
    match profile.filter(|p| !p.is_empty()) {
        Some(p) if !enabled() => Err(Error::NotSupported(format!(
            "process.apparmorProfile {p:?}: AppArmor is not enabled on this host ({ENABLED} is not Y)"
        ))),
        Some(p) if p.contains('\n') || p.contains('\0') => Err(Error::InvalidSpec(format!(
            "process.apparmorProfile {p:?}: not a profile name"
        ))),
        _ => Ok(()),
    }
}

/// Sets the profile the next execve switches to, through `proc` (berth's own procfs instance).
pub fn apply(profile: &str, proc: &Root) -> Result<()> {
    let mut last = None;
    for rel in ["thread-self/attr/apparmor/exec", "thread-self/attr/exec"] {
        match sys::openat2(
            Some(proc.fd()),
            Path::new(rel),
            libc::O_WRONLY,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => {
                let line = format!("exec {profile}");
                return nix::unistd::write(&fd, line.as_bytes())
                    .map(drop)
                    .map_err(|e| Error::sys(format!("write(/proc/{rel}, {line:?})"), e))
                    .map_err(|e| Error::Context {
                        what: format!("process.apparmorProfile {profile:?}"),
                        source: Box::new(e),
                    });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Context {
        what: format!("process.apparmorProfile {profile:?}"),
        source: Box::new(last.expect("two attempts").into()),
    })
}
