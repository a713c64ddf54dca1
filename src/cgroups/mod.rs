//! The container's cgroup: where it is (runc's path rules), made and joined before the init can open
//! anything, device rules enforced through it, removed on delete. Nothing else in berth writes cgroup
//! files. Today it carries the device controller (so a config's device denials hold even with
//! CAP_MKNOD, linux.devices or a device node inside a volume, as in runc and crun); the other
//! controllers build on the same plumbing.
//!
//! Layouts: cgroup v2 (the unified hierarchy mounted at /sys/fs/cgroup), where device rules are a
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program berth emits ([`bpf`]); cgroup v1 (and the hybrid layout of
//! this project's CI host), where they are `devices.deny`/`devices.allow` lines ([`devices`]).

pub mod bpf;
pub mod devices;

use crate::error::{Context, Error, Result, io_err};
use crate::spec::ValidSpec;
use devices::Rule;
use std::path::{Component, Path, PathBuf};

const MOUNT: &str = "/sys/fs/cgroup";

/// Which hierarchy holds the device controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// The v1 `devices` hierarchy.
    V1,
    /// The unified hierarchy.
    V2,
}

/// The layout of this host.
pub fn detect() -> Result<(Version, PathBuf)> {
    if Path::new(MOUNT).join("cgroup.controllers").exists() {
        return Ok((Version::V2, PathBuf::from(MOUNT)));
    }
    let v1 = Path::new(MOUNT).join("devices");
    if v1.join("devices.allow").exists() {
        return Ok((Version::V1, v1));
    }
    Err(Error::NotSupported(
        "linux.resources.devices: no cgroup device controller (neither cgroup v2 at /sys/fs/cgroup nor a v1 devices hierarchy)".into(),
    ))
}

/// This process's own cgroup in the hierarchy of `version` (relative paths are taken against it, as
/// runc does).
fn own_cgroup(version: Version) -> Result<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| io_err("read", Path::new("/proc/self/cgroup"), e))?;
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let hit = match version {
            Version::V2 => ctrl.is_empty(),
            Version::V1 => ctrl.split(',').any(|c| c == "devices"),
        };
        if hit {
            return Ok(PathBuf::from(path));
        }
    }
    Ok(PathBuf::from("/"))
}

/// The container's cgroup (saved in its state so delete removes it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    /// Its directory.
    pub dir: PathBuf,
    /// Its hierarchy.
    pub version: Version,
    /// The topmost directory berth made for it (the cgroup itself or an ancestor), removed with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_from: Option<PathBuf>,
}

/// The cgroup path inside the hierarchy, by runc's rules: linux.cgroupsPath absolute (from the
/// hierarchy's root) or relative (to the runtime's own cgroup), `/berth/<id>` when absent. `..` and
/// the root itself are refused.
pub fn path_for(vs: &ValidSpec, id: &str, own: &Path) -> Result<PathBuf> {
    let given = vs
        .linux()
        .cgroups_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("/berth/{id}"));
    let p = Path::new(&given);
    if p.components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(Error::InvalidSpec(format!(
            "linux.cgroupsPath: {given:?} must not contain '.' or '..'"
        )));
    }
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        own.join(p)
    };
    let rel: PathBuf = full
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    if rel.as_os_str().is_empty() {
        return Err(Error::InvalidSpec(format!(
            "linux.cgroupsPath: {given:?} is the root cgroup"
        )));
    }
    Ok(rel)
}

impl Cgroup {
    /// The cgroup a container needs, if any: today one exists when the spec has device rules.
    pub fn for_spec(vs: &ValidSpec, id: &str) -> Result<Option<(Cgroup, Vec<Rule>)>> {
        let Some(rules) = devices::rules(vs)? else {
            return Ok(None);
        };
        let (version, mount) = detect()?;
        let rel = path_for(vs, id, &own_cgroup(version)?)?;
        Ok(Some((
            Cgroup {
                made_from: mount
                    .join(&rel)
                    .ancestors()
                    .take_while(|a| *a != mount && !a.exists())
                    .last()
                    .map(Path::to_path_buf),
                dir: mount.join(rel),
                version,
            },
            rules,
        )))
    }

    /// Makes the directory (an existing one is refused: it may hold another container) and applies
    /// the device rules, before any process is in it.
    pub fn create(&self, rules: &[Rule]) -> Result<()> {
        if self.made_from.is_none() {
            return Err(Error::State(format!(
                "linux.cgroupsPath: {} already exists (another container's?)",
                self.dir.display()
            )));
        }
        let label = || "linux.cgroupsPath".to_string();
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err("mkdir", parent, e))
                .with_context(label)?;
        }
        std::fs::create_dir(&self.dir)
            .map_err(|e| io_err("mkdir", &self.dir, e))
            .with_context(label)?;
        let applied = match self.version {
            Version::V1 => devices::apply_v1(&self.dir, rules),
            Version::V2 => bpf::attach(&self.dir, &bpf::program(rules)),
        };
        if let Err(e) = applied {
            let _ = self.remove();
            return Err(e).with_context(|| "linux.resources.devices".into());
        }
        Ok(())
    }

    /// Moves `pid` into the cgroup.
    pub fn join(&self, pid: i32) -> Result<()> {
        let procs = self.dir.join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(|e| io_err("write", &procs, e))
    }

    /// The pids in the cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Removes the directory (once the last process has left it; a few retries for the kernel to
    /// notice an exit), then the ancestors berth made for it while they are empty.
    pub fn remove(&self) -> Result<()> {
        rmdir_retrying(&self.dir)?;
        let Some(top) = &self.made_from else {
            return Ok(());
        };
        for dir in self.dir.ancestors().skip(1) {
            if !dir.starts_with(top) || std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
        Ok(())
    }
}

fn rmdir_retrying(dir: &Path) -> Result<()> {
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => return Err(io_err("rmdir", dir, e)),
        }
    }
    Err(Error::State(format!(
        "rmdir({}): EBUSY: processes are still in it",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default::default_spec;

    fn vs(path: Option<&str>) -> ValidSpec {
        let mut s = default_spec();
        s.linux.as_mut().unwrap().cgroups_path = path.map(Into::into);
        ValidSpec::new(s, Path::new("/b")).unwrap()
    }

    #[test]
    fn path_rules_as_runc() {
        let own = Path::new("/user.slice/me");
        assert_eq!(
            path_for(&vs(Some("/a/b")), "c", own).unwrap(),
            Path::new("a/b")
        );
        assert_eq!(
            path_for(&vs(Some("a/b")), "c", own).unwrap(),
            Path::new("user.slice/me/a/b")
        );
        assert_eq!(
            path_for(&vs(None), "c1", own).unwrap(),
            Path::new("berth/c1")
        );
        assert!(path_for(&vs(Some("/a/../../etc")), "c", own).is_err());
        assert!(path_for(&vs(Some("/")), "c", own).is_err());
    }
}
