//! Confinement layers beyond namespaces: capabilities, seccomp, Landlock, AppArmor, SELinux,
//! no_new_privs, and the sealed copy of berth's own binary. Each layer the spec asks for is enforced or
//! refused with a clear error; none is skipped silently.
//!
//! The confinement is prepared beside the spec, not inside it: [`prepare`] checks the security fields
//! of a validated spec and compiles seccomp into a [`Confinement`], called by create and exec right
//! after validation, so that every error is still found before a state directory or a process exists.
//! The init and exec apply it with the same steps (`process::init::confine`), and each layer says what
//! it actually enforced ([`Enforced`]), collected into one [`Report`].

pub mod apparmor;
pub mod caps;
pub mod exe;
pub mod landlock;
pub mod seccomp;
pub mod selinux;

use crate::error::{Error, Result};
use crate::spec::{Process, ValidSpec};
use serde::{Deserialize, Serialize};

/// What the container's processes are confined by, beyond the spec's plain values: prepared once by
/// [`prepare`], read by the init and by exec.
#[derive(Debug, Clone)]
pub struct Confinement {
    /// linux.seccomp, compiled (profile errors fail before anything exists).
    pub seccomp: Option<seccomp::Compiled>,
    /// How hard to apply Landlock (the annotation, raised to the policy's floor).
    pub landlock: landlock::Mode,
}

/// Checks the security fields of `vs` (capability names, AppArmor and SELinux labels) and compiles
/// its seccomp profile. `policy_landlock` is the host policy's Landlock floor, if there is one.
/// SELinux labels are dropped when SELinux is off (as runc and crun ignore them).
pub fn prepare(vs: &mut ValidSpec, policy_landlock: Option<landlock::Mode>) -> Result<Confinement> {
    check_process(&mut vs.process)?;
    if let Some(p) = vs.spec.process.as_mut() {
        p.selinux_label = vs.process.selinux_label.clone();
    }
    if let Some(l) = vs.spec.linux.as_mut() {
        check_selinux_label("linux.mountLabel", &mut l.mount_label)?;
    }
    let landlock = landlock::Mode::for_spec(vs, policy_landlock)?;
    Confinement::with_landlock(vs, landlock)
}

impl Confinement {
    /// The confinement of `vs` (whose process is already checked: [`check_process`]) with Landlock's
    /// mode already decided: exec's, from the container as created.
    pub fn with_landlock(vs: &ValidSpec, landlock: landlock::Mode) -> Result<Confinement> {
        let seccomp = match vs.spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
            Some(v) if !v.is_null() => Some(seccomp::compile(v)?),
            _ => None,
        };
        Ok(Confinement { seccomp, landlock })
    }
}

/// The security fields of a process object (the spec's, or one `exec` runs): capability names,
/// the AppArmor profile (AppArmor must be on), the SELinux label.
pub fn check_process(p: &mut Process) -> Result<()> {
    check_selinux_label("process.selinuxLabel", &mut p.selinux_label)?;
    apparmor::check(p.apparmor_profile.as_deref())?;
    if let Some(c) = &p.capabilities {
        for (set, list) in c.sets() {
            for (i, name) in list.iter().flatten().enumerate() {
                caps::parse(name).map_err(|_| {
                    Error::InvalidSpec(format!(
                        "process.capabilities.{set}[{i}]: unknown capability {name:?}"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// SELinux labels: with SELinux off there is nothing to label and the label is dropped, as runc and
/// crun ignore it (logged with --debug); with SELinux on it is checked here and applied later
/// (security::selinux, mount::plan).
fn check_selinux_label(field: &str, label: &mut Option<String>) -> Result<()> {
    let Some(l) = label.as_deref().filter(|l| !l.is_empty()) else {
        *label = None;
        return Ok(());
    };
    if selinux::enabled() {
        return selinux::check(field, l);
    }
    crate::logging::debug(&format!(
        "{field}: SELinux is not enabled on this host; label {l:?} ignored"
    ));
    *label = None;
    Ok(())
}

/// What one confinement layer actually enforced (rust-landlock's `RestrictionStatus`, per layer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", content = "why", rename_all = "lowercase")]
pub enum Enforced {
    /// Everything asked.
    Full,
    /// Part of it, and why not all.
    Partial(String),
    /// Nothing: not asked for, or (an opportunistic layer only) not available.
    #[default]
    Off,
}

impl Enforced {
    fn word(&self) -> String {
        match self {
            Enforced::Full => "full".into(),
            Enforced::Partial(why) => format!("partial ({why})"),
            Enforced::Off => "off".into(),
        }
    }
}

/// What every confinement layer enforced on one process: sent by the init (and by an exec'd
/// process) to berth before "ready", logged as one line, and kept as `confinement.json` in the
/// container's state directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Report {
    /// Capability sets (partial: ambient capabilities skipped that were not permitted and inheritable).
    pub capabilities: Enforced,
    /// no_new_privs.
    pub no_new_privs: Enforced,
    /// seccomp filters.
    pub seccomp: Enforced,
    /// Landlock (partial: the kernel lacks some of the rights berth asks for).
    pub landlock: Enforced,
    /// Landlock's mode (`off`, `best-effort`, `enforce`).
    pub landlock_mode: Option<landlock::Mode>,
    /// The AppArmor profile for the program.
    pub apparmor: Enforced,
    /// The SELinux label for the program.
    pub selinux: Enforced,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.landlock_mode {
            Some(landlock::Mode::Enforce) => "enforce",
            Some(landlock::Mode::BestEffort) => "best-effort",
            _ => "off",
        };
        write!(
            f,
            "confinement: capabilities {}, no_new_privs {}, seccomp {}, landlock ({mode}) {}, apparmor {}, selinux {}",
            self.capabilities.word(),
            self.no_new_privs.word(),
            self.seccomp.word(),
            self.landlock.word(),
            self.apparmor.word(),
            self.selinux.word()
        )
    }
}
