//! Landlock rules derived from the container's own mount table, so that even a mount mistake cannot
//! widen what the process may touch (no OCI runtime does this).
//!
//! Rights are unions over a path's ancestors, so write access is never granted on a directory that has
//! a read-only mount somewhere beneath it; such a directory gets read/execute only and its children are
//! granted one by one. The derived rules:
//! - the rootfs: read and execute; write too when `root.readonly` is false (except above read-only
//!   mounts, as said);
//! - every mount of the spec at its destination: read and execute when it is read-only (`ro`/`rro`,
//!   readonlyPaths), everything when it is writable (rw volumes, tmpfs, /dev, /proc...);
//!
//! Everything else, e.g. a host directory reached through a leaked fd or /proc/<pid>/root, is denied.
//! Rules are added on fds opened inside the root with `RESOLVE_IN_ROOT`, never on host path strings.
//! Mode from the annotation `berth.landlock` (`off`, `best-effort`, `enforce`; the policy may set the
//! default, else best-effort): enforce fails without a full Landlock; best-effort reports what it got.

use crate::error::{Error, Result};
use crate::mount::plan::{MountOp, OpKind};
use crate::resolve::Root;
use crate::spec::ValidSpec;
use crate::sys;
use landlock::{
    ABI, Access, AccessFs, BitFlags, CompatLevel, Compatible, PathBeneath, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus,
};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// The annotation that sets the mode.
pub const ANNOTATION: &str = "berth.landlock";
/// The newest ABI berth asks for.
const ABI_WANTED: ABI = ABI::V7;

/// How hard to apply Landlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
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
    /// From the annotation, else `default`.
    pub fn for_spec(vs: &ValidSpec, default: Option<Mode>) -> Result<Mode> {
        match vs.spec.annotations.get(ANNOTATION).map(String::as_str) {
            None => Ok(default.unwrap_or(Mode::BestEffort)),
            Some("off") => Ok(Mode::Off),
            Some("best-effort") => Ok(Mode::BestEffort),
            Some("enforce") => Ok(Mode::Enforce),
            Some(other) => Err(Error::InvalidSpec(format!(
                "annotations.{ANNOTATION}: {other:?} (expected off, best-effort or enforce)"
            ))),
        }
    }
}

/// What a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Read and execute.
    Read,
    /// Everything.
    Write,
}

fn is_ro(op: &MountOp) -> bool {
    (op.attr.attr_set | op.rattr.attr_set) & sys::MOUNT_ATTR_RDONLY != 0
}

/// Rules as container paths, derived purely from the spec and its mount plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Path and what it allows.
    pub grants: Vec<(PathBuf, Grant)>,
    /// Read-only paths: no write grant may cover them.
    pub read_only: Vec<PathBuf>,
}

/// Derives the rules (pure; unit-tested).
///
/// Only top-only read-only rbinds go into `read_only`: their submounts may be writable, and Landlock
/// makes the whole volume read-only. Every other read-only mount (ro binds without submounts, rro,
/// readonlyPaths, ro filesystems) is already refused writes by the kernel, so splitting the grants
/// above it would only cost the process write access to the directories around it.
pub fn derive(vs: &ValidSpec, ops: &[MountOp]) -> Rules {
    let read_only: Vec<PathBuf> = ops
        .iter()
        .filter(|o| {
            matches!(
                o.kind,
                OpKind::Bind {
                    recursive: true,
                    ..
                }
            ) && o.attr.attr_set & sys::MOUNT_ATTR_RDONLY != 0
                && o.rattr.attr_set & sys::MOUNT_ATTR_RDONLY == 0
        })
        .map(|o| o.dest.clone())
        .collect();
    let root_grant = if vs.spec.root.as_ref().is_some_and(|r| r.readonly) {
        Grant::Read
    } else {
        Grant::Write
    };
    let mut grants = vec![
        (PathBuf::from("/"), Grant::Read),
        (PathBuf::from("/"), root_grant),
    ];
    for op in ops {
        grants.push((
            op.dest.clone(),
            if is_ro(op) { Grant::Read } else { Grant::Write },
        ));
    }
    grants.dedup();
    Rules { grants, read_only }
}

impl Rules {
    /// Every strict ancestor of a read-only path (a set, so thousands of volumes stay linear).
    fn ancestors(&self) -> std::collections::HashSet<&Path> {
        self.read_only
            .iter()
            .flat_map(|r| r.ancestors().skip(1))
            .collect()
    }

    #[cfg(test)]
    fn above_read_only(&self, p: &Path) -> bool {
        self.ancestors().contains(p)
    }
}

/// Opens `path` in `root`; None when it does not exist.
fn open(root: &Root, path: &Path) -> Result<Option<(OwnedFd, bool)>> {
    match root.open_at(path, libc::O_PATH) {
        Ok(fd) => {
            let dir = sys::fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
            Ok(Some((fd, dir)))
        }
        // Missing, or not reachable by the process's user: no rule, so no access (fail closed).
        Err(e)
            if matches!(
                e.errno(),
                Some(nix::errno::Errno::ENOENT | nix::errno::Errno::EACCES)
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(feature = "_test")]
fn simulated_absent() -> bool {
    std::env::var_os("BERTH_TEST_NO_LANDLOCK").is_some()
}

#[cfg(not(feature = "_test"))]
fn simulated_absent() -> bool {
    false
}

/// The paths and grants to add, with write grants above read-only paths split into their children.
/// (Paths, not fds: each is opened only when its rule is added and closed right after, so thousands
/// of mounts stay within RLIMIT_NOFILE.)
fn resolve(rules: &Rules) -> Vec<(PathBuf, Grant)> {
    let above = rules.ancestors();
    let read_only: std::collections::HashSet<&Path> =
        rules.read_only.iter().map(PathBuf::as_path).collect();
    let mut out = Vec::new();
    for (path, g) in &rules.grants {
        if *g == Grant::Read || !above.contains(path.as_path()) {
            out.push((path.clone(), *g));
            continue;
        }
        // Grant write on each child that is neither a read-only path nor above one, recursively.
        let mut stack = vec![path.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let child = d.join(e.file_name());
                if read_only.contains(child.as_path()) {
                    continue;
                }
                if above.contains(child.as_path()) {
                    stack.push(child);
                } else {
                    out.push((child, Grant::Write));
                }
            }
        }
    }
    out
}

/// Applies the rules (inside the container, after pivot_root; `root` is the container's `/`). The exec
/// fifo needs no rule: the init holds it open from before the clone. Returns a line saying what was
/// enforced.
pub fn apply(mode: Mode, root: &Root, rules: &Rules) -> Result<String> {
    if mode == Mode::Off {
        return Ok("landlock: off".into());
    }
    if simulated_absent() {
        return match mode {
            Mode::Enforce => Err(Error::NotSupported(
                "annotations.berth.landlock=enforce: this kernel does not support Landlock".into(),
            )),
            _ => Ok(
                "landlock: best-effort: not enforced (this kernel does not support Landlock)"
                    .into(),
            ),
        };
    }
    let abi = ABI_WANTED;
    let level = if mode == Mode::Enforce {
        CompatLevel::HardRequirement
    } else {
        CompatLevel::BestEffort
    };
    let lerr = |e: landlock::RulesetError| Error::NotSupported(format!("landlock: {e}"));
    let mut ruleset = Ruleset::default()
        .set_compatibility(level)
        .handle_access(AccessFs::from_all(abi))
        .map_err(lerr)?
        .create()
        .map_err(lerr)?
        .no_new_privs(false);
    // One rule per inode and grant: many mounts of one source are one object to Landlock, and adding
    // the same rule again costs the kernel a merge each time (quadratic for thousands of mounts).
    let mut seen = std::collections::HashSet::new();
    for (path, g) in resolve(rules) {
        let Some((fd, dir)) = open(root, &path)? else {
            continue;
        };
        let st = sys::fstat(&fd)?;
        if !seen.insert((st.st_dev, st.st_ino, g)) {
            continue;
        }
        let mut rights: BitFlags<AccessFs> = match g {
            Grant::Read => AccessFs::from_read(abi),
            Grant::Write => AccessFs::from_all(abi),
        };
        if !dir {
            rights &= AccessFs::from_file(abi);
        }
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, rights))
            .map_err(lerr)?;
    }
    let status = ruleset.restrict_self().map_err(lerr)?;
    let what = match status.ruleset {
        RulesetStatus::FullyEnforced => "fully enforced",
        RulesetStatus::PartiallyEnforced => {
            "partially enforced (the kernel lacks some of ABI 7's rights)"
        }
        RulesetStatus::NotEnforced => "not enforced (this kernel does not support Landlock)",
    };
    if mode == Mode::Enforce && status.ruleset != RulesetStatus::FullyEnforced {
        return Err(Error::NotSupported(format!(
            "annotations.berth.landlock=enforce: Landlock {what}"
        )));
    }
    let name = if mode == Mode::Enforce {
        "enforce"
    } else {
        "best-effort"
    };
    Ok(format!("landlock: {name}: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default::default_spec;

    #[test]
    fn read_only_root_and_mounts() {
        let mut spec = default_spec();
        spec.mounts.push(crate::spec::Mount {
            destination: "/vol".into(),
            typ: Some("bind".into()),
            source: Some("/srv".into()),
            options: vec!["rbind".into(), "ro".into()],
            ..Default::default()
        });
        spec.mounts.push(crate::spec::Mount {
            destination: "/rro".into(),
            typ: Some("bind".into()),
            source: Some("/srv".into()),
            options: vec!["rbind".into(), "rro".into()],
            ..Default::default()
        });
        let vs = ValidSpec::new(spec, Path::new("/b")).unwrap();
        let ops = crate::mount::plan::plan(&vs.spec.mounts, &vs.bundle).unwrap();
        let r = derive(&vs, &ops);
        assert!(r.grants.contains(&(PathBuf::from("/"), Grant::Read)));
        assert!(!r.grants.contains(&(PathBuf::from("/"), Grant::Write)));
        assert!(r.grants.contains(&(PathBuf::from("/dev"), Grant::Write)));
        assert!(r.grants.contains(&(PathBuf::from("/sys"), Grant::Read)));
        assert!(r.grants.contains(&(PathBuf::from("/vol"), Grant::Read)));
        // Only the top-only ro rbind needs Landlock's help; rro is the kernel's business.
        assert_eq!(r.read_only, vec![PathBuf::from("/vol")]);
        assert!(r.above_read_only(Path::new("/")));
        assert!(!r.above_read_only(Path::new("/dev")));
    }
}
