//! AppArmor: detected, never silently skipped.
//!
//! A requested `process.apparmorProfile` on a host without AppArmor is an error that names the profile.
//! Applying a profile (writing `exec PROFILE` to /proc/thread-self/attr/apparmor/exec through a
//! verified procfs just before execve) is not implemented yet, so on a host *with* AppArmor the request
//! is refused as not supported rather than ignored.

use crate::error::{Error, Result};

/// Where the kernel says whether AppArmor is enabled.
const ENABLED: &str = "/sys/module/apparmor/parameters/enabled";

/// Whether AppArmor is enabled on this host (`Y` in /sys/module/apparmor/parameters/enabled).
pub fn enabled() -> bool {
    std::fs::read(ENABLED).is_ok_and(|b| b.first() == Some(&b'Y'))
}

/// Checks a requested profile; Ok when none is requested.
pub fn check(profile: Option<&str>) -> Result<()> {
    let Some(p) = profile.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    if !enabled() {
        return Err(Error::NotSupported(format!(
            "process.apparmorProfile {p:?}: AppArmor is not enabled on this host ({ENABLED} is not Y)"
        )));
    }
    Err(Error::NotSupported(format!(
        "process.apparmorProfile {p:?}: applying AppArmor profiles is not implemented yet"
    )))
}
