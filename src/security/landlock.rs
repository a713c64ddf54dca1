//! Landlock rules taken from the mounts as they were attached, so that a path berth did not mount
//! (a host directory reached through a leaked fd, /proc/PID/root of a host process) stays out of
//! reach. Defence in depth: no read-only guarantee depends on it (read-only is the kernel's mount
//! attribute, recursive where a policy caps access).
//!
//! Rules are added on the fds the mounts were attached through, as they are attached (the rootfs
//! mount, then every spec mount: read/execute where the mount is read-only, everything where it is
//! writable), never on path strings and never by following a symlink, so an image symlink such as
//! `/zz -> /` or a symlinked destination cannot steer a rule onto another inode. Landlock rights are
//! unions over the path's ancestors (across mount points), so what lies beneath the rootfs gets at
//! least the rootfs's rights; a read-only rootfs gets read/execute and its writable mounts write.
//!
//! Mode from the annotation `berth.landlock` (`off`, `best-effort`, `enforce`). A policy's mode is a
//! floor the annotation can raise but never lower. Without either, best-effort applies only where it
//! cannot change OCI semantics: not when the bounding set has CAP_SYS_ADMIN or the container has a user
//! namespace of its own (a Landlocked process cannot mount). Enforce fails without a full Landlock.
use crate::error::{Error, Result};
use crate::spec::ValidSpec;
use crate::sys;
use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, Ruleset, RulesetAttr, RulesetCreated,
};
use std::os::fd::BorrowedFd;
#[cfg(test)]
use std::path::Path;

/// The annotation that sets the mode.
pub const ANNOTATION: &str = "berth.landlock";
/// The newest ABI berth asks for.
const ABI_WANTED: ABI = ABI::V7;

/// How hard to apply Landlock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Not at all.
    Off,
    /// As far as the kernel goes; say what was missing.
    BestEffort,
    /// Completely, or fail.
    Enforce,
}

impl Mode {
    /// From the annotation and the policy's mode (a floor the annotation may only raise); without
    /// either, best-effort where it cannot change OCI semantics, else off.
    pub fn for_spec(vs: &ValidSpec, policy: Option<Mode>) -> Result<Mode> {
        let asked = match vs.spec.annotations.get(ANNOTATION).map(String::as_str) {
            None => None,
            Some("off") => Some(Mode::Off),
            Some("best-effort") => Some(Mode::BestEffort),
            Some("enforce") => Some(Mode::Enforce),
            Some(other) => {
                return Err(Error::InvalidSpec(format!(
                    "annotations.{ANNOTATION}: {other:?} (expected off, best-effort or enforce)"
                )));
            }
        };
        Ok(match (asked, policy) {
            (Some(a), Some(p)) => a.max(p),
            (Some(m), None) | (None, Some(m)) => m,
            (None, None) if may_mount(vs) => Mode::Off,
            (None, None) => Mode::BestEffort,
        })
    }
}

/// The container may make mounts of its own (CAP_SYS_ADMIN in its bounding set, or a user namespace
/// of its own), which a Landlocked process cannot.
fn may_mount(vs: &ValidSpec) -> bool {
    let admin = vs
        .process
        .capabilities
        .as_ref()
        .and_then(|c| c.bounding.as_ref())
        .is_some_and(|b| b.iter().any(|c| c == "CAP_SYS_ADMIN"));
    admin
        || vs
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWUSER)
}

/// What a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Read and execute.
    Read,
    /// Everything.
    Write,
}

#[cfg(feature = "_test")]
fn simulated_absent() -> bool {
    std::env::var_os("BERTH_TEST_NO_LANDLOCK").is_some()
}

#[cfg(not(feature = "_test"))]
fn simulated_absent() -> bool {
    false
}

/// A ruleset being filled as mounts are made; [`Builder::restrict`] applies it.
///
/// The landlock crate creates the ruleset (and decides, per mode, what a kernel with an older ABI
/// gets); rules are then added and the ruleset applied with berth's own syscalls on its fd, since
/// the crate stats every rule's fd again (one more syscall per volume).
pub struct Builder {
    mode: Mode,
    ruleset: Option<std::os::fd::OwnedFd>,
    /// The rights the ruleset handles (rules may grant no others).
    handled: u64,
    /// Every right berth wanted is handled.
    full: bool,
    /// What the container's root got ([`Builder::allow_root`]): Landlock grants a path the union of
    /// the rules of all its ancestors, across mount points, so a rule beneath the root granting no
    /// more than this adds nothing and is not made (with a writable root, no volume needs a rule).
    root: Option<Grant>,
    /// One rule per object and grant: many mounts of one source are one object to Landlock, and
    /// adding the same rule again costs the kernel a merge each time.
    seen: std::collections::HashSet<(Key, Grant), std::hash::BuildHasherDefault<Fnv>>,
}

/// FNV-1a: the deduplication set hashes one short key per volume, where SipHash's resistance to
/// chosen keys buys nothing (the keys are the bundle's own paths) and costs a visible share of a
/// start with thousands of volumes.
#[derive(Debug, Default)]
struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// What a rule is on, for [`Builder`]'s deduplication.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// An inode (device, inode number).
    Inode(u64, u64),
    /// A bind source by the host path it was cloned from.
    Source(std::path::PathBuf),
    /// A mount of the plan by index (a new filesystem: an object of its own).
    Mount(usize),
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("mode", &self.mode)
            .field("rules", &self.seen.len())
            .finish()
    }
}

fn lerr(e: landlock::RulesetError) -> Error {
    Error::NotSupported(format!("landlock: {e}"))
}

impl Builder {
    /// Creates the ruleset (nothing with `off`, or when the kernel has no Landlock).
    pub fn new(mode: Mode) -> Result<Builder> {
        let mut b = Builder {
            mode,
            ruleset: None,
            handled: 0,
            full: false,
            root: None,
            seen: Default::default(),
        };
        if mode == Mode::Off || simulated_absent() {
            return Ok(b);
        }
        // Without Landlock, best-effort has nothing to build; enforce goes on for the crate to say
        // why it fails (HardRequirement below).
        let abi = match sys::landlock_abi() {
            Some(abi) => abi,
            None if mode == Mode::Enforce => 0,
            None => return Ok(b),
        };
        let level = if mode == Mode::Enforce {
            CompatLevel::HardRequirement
        } else {
            CompatLevel::BestEffort
        };
        let created: RulesetCreated = Ruleset::default()
            .set_compatibility(level)
            .handle_access(AccessFs::from_all(ABI_WANTED))
            .map_err(lerr)?
            .create()
            .map_err(lerr)?;
        b.ruleset = created.into();
        let abi = i32::try_from(abi.min(ABI_WANTED as i64)).unwrap_or(ABI_WANTED as i32);
        let have = AccessFs::from_all(ABI::from(abi));
        let wanted = AccessFs::from_all(ABI_WANTED);
        b.handled = (have & wanted).bits();
        b.full = have & wanted == wanted;
        Ok(b)
    }

    /// Allows `grant` beneath the container's root directory `fd`; rules added after it that grant no
    /// more are skipped (see [`Builder`]'s `root`).
    pub fn allow_root(&mut self, fd: BorrowedFd<'_>, grant: Grant) -> Result<()> {
        self.allow(fd, grant)?;
        self.root = Some(grant);
        Ok(())
    }

    /// Allows `grant` beneath the directory or file `fd` (a mount root berth attached).
    pub fn allow(&mut self, fd: BorrowedFd<'_>, grant: Grant) -> Result<()> {
        if self.ruleset.is_none() {
            return Ok(());
        }
        let st = sys::fstat(fd)?;
        let dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        self.allow_known(fd, dir, || Key::Inode(st.st_dev, st.st_ino), grant)
    }

    /// Allows everything beneath `fd`, a file or directory outside the container's mounts (an fd
    /// the caller handed in with `--preserve-fds`): the root's rule does not cover it, so no rule is
    /// skipped for it. Other kinds of fd (pipes, sockets) need no rule: Landlock does not restrict them.
    pub fn allow_handed_in(&mut self, fd: BorrowedFd<'_>) -> Result<()> {
        if self.ruleset.is_none() {
            return Ok(());
        }
        let st = sys::fstat(fd)?;
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFDIR && kind != libc::S_IFREG {
            return Ok(());
        }
        let root = self.root.take();
        let r = self.allow_known(
            fd,
            kind == libc::S_IFDIR,
            || Key::Inode(st.st_dev, st.st_ino),
            Grant::Write,
        );
        self.root = root;
        r
    }

    /// Whether rules are being collected (Landlock on, and available).
    pub fn active(&self) -> bool {
        self.ruleset.is_some()
    }

    /// Whether a rule granting `grant` would add nothing: no rules are collected, or the root's rule
    /// covers it (a writable root covers everything; a read-only one, reading). Lets a caller skip
    /// opening what would get no rule.
    pub fn covers(&self, grant: Grant) -> bool {
        self.ruleset.is_none()
            || match self.root {
                Some(Grant::Write) => true,
                Some(Grant::Read) => grant == Grant::Read,
                None => false,
            }
    }

    /// [`Builder::allow`] when the caller already knows whether `fd` is a directory and what it is
    /// (no stat).
    pub fn allow_known(
        &mut self,
        fd: BorrowedFd<'_>,
        dir: bool,
        key: impl FnOnce() -> Key,
        grant: Grant,
    ) -> Result<()> {
        let Some(ruleset) = &self.ruleset else {
            return Ok(());
        };
        if self.covers(grant) || !self.seen.insert((key(), grant)) {
            return Ok(());
        }
        let mut rights: BitFlags<AccessFs> = match grant {
            Grant::Read => AccessFs::from_read(ABI_WANTED),
            Grant::Write => AccessFs::from_all(ABI_WANTED),
        };
        if !dir {
            rights &= AccessFs::from_file(ABI_WANTED);
        }
        let access = rights.bits() & self.handled;
        if access == 0 {
            return Ok(());
        }
        Ok(sys::landlock_add_path_rule(
            std::os::fd::AsFd::as_fd(ruleset),
            fd,
            access,
        )?)
    }

    /// Restricts this process (needs no_new_privs or CAP_SYS_ADMIN). Returns what was enforced:
    /// enforce fails unless that is everything; best-effort says what was missing.
    pub fn restrict(self) -> Result<super::Enforced> {
        use super::Enforced;
        if self.mode == Mode::Off {
            return Ok(Enforced::Off);
        }
        let Some(ruleset) = self.ruleset else {
            return match self.mode {
                Mode::Enforce => Err(Error::NotSupported(
                    "annotations.berth.landlock=enforce: this kernel does not support Landlock"
                        .into(),
                )),
                _ => Ok(Enforced::Partial(
                    "not enforced: this kernel does not support Landlock".into(),
                )),
            };
        };
        sys::landlock_restrict_self(std::os::fd::AsFd::as_fd(&ruleset))?;
        if self.full {
            return Ok(Enforced::Full);
        }
        let why = "the kernel lacks some of ABI 7's rights";
        if self.mode == Mode::Enforce {
            return Err(Error::NotSupported(format!(
                "annotations.berth.landlock=enforce: Landlock only partially enforced ({why})"
            )));
        }
        Ok(Enforced::Partial(why.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default::default_spec;

    #[test]
    fn annotation_tightens_a_policy_mode_never_loosens_it() {
        let mut spec = default_spec();
        spec.annotations.insert(ANNOTATION.into(), "off".into());
        let vs = ValidSpec::new(spec.clone(), Path::new("/b")).unwrap();
        assert_eq!(
            Mode::for_spec(&vs, Some(Mode::Enforce)).unwrap(),
            Mode::Enforce
        );
        assert_eq!(Mode::for_spec(&vs, None).unwrap(), Mode::Off);
        spec.annotations.insert(ANNOTATION.into(), "enforce".into());
        let vs = ValidSpec::new(spec, Path::new("/b")).unwrap();
        assert_eq!(Mode::for_spec(&vs, Some(Mode::Off)).unwrap(), Mode::Enforce);
    }

    #[test]
    fn default_stays_off_where_it_would_change_oci_semantics() {
        let vs = ValidSpec::new(default_spec(), Path::new("/b")).unwrap();
        assert_eq!(Mode::for_spec(&vs, None).unwrap(), Mode::BestEffort);
        let mut spec = default_spec();
        spec.process
            .as_mut()
            .unwrap()
            .capabilities
            .as_mut()
            .unwrap()
            .bounding = Some(vec!["CAP_SYS_ADMIN".into()]);
        let vs = ValidSpec::new(spec, Path::new("/b")).unwrap();
        assert_eq!(Mode::for_spec(&vs, None).unwrap(), Mode::Off);
    }
}
