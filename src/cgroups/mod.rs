//! The container's cgroup, with the cgroupfs driver, on both layouts hosts have: cgroup v2 (the unified
//! hierarchy at /sys/fs/cgroup) and cgroup v1 (one directory per controller hierarchy; also the
//! hybrid layout of this project's CI host, where /sys/fs/cgroup/unified is left alone).
//!
//! Where it is follows runc ([`path_for`]); it is made and its limits and device rules written before
//! the init is placed in it at sync point 1, before the init can open anything, so no process of the
//! container ever runs outside it; it is recorded in the state directory before it is made, removed
//! with the state, and carries pause/resume (freezer), `kill --all` and `ps`. Nothing else in berth
//! writes cgroup files.
//!
//! [`resources`] turns `linux.resources` into file writes (v1/v2 conversions as runc), [`devices`] the
//! device rules into v1 lines, [`bpf`] into the v2 device program.

pub mod bpf;
pub mod dbus;
pub mod devices;
pub mod resources;
pub mod stats;
pub mod systemd;

use crate::error::{Context, Error, Result, io_err};
use crate::spec::ValidSpec;
use devices::Rule;
use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

const MOUNT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The host's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    /// One hierarchy per controller (or group of controllers).
    V1,
    /// The unified hierarchy.
    V2,
}

/// One hierarchy the container gets a directory in.
#[derive(Debug, Clone)]
struct Hierarchy {
    controllers: Vec<String>,
    mount: PathBuf,
    own: PathBuf,
    /// The unified (v2) tree of a hybrid host, holding the controllers no v1 hierarchy has.
    unified: bool,
}

fn read(path: &str) -> Result<String> {
    crate::sys::read_proc(path).map_err(|e| io_err("read", Path::new(path), e))
}

/// The hierarchies of this host (read from /proc/self/mountinfo and /proc/self/cgroup once).
fn layout() -> Result<(Version, Vec<Hierarchy>)> {
    let own = read("/proc/self/cgroup")?;
    let own_of = |pred: &dyn Fn(&str) -> bool| -> PathBuf {
        own.lines()
            .filter_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
                pred(ctrl).then(|| PathBuf::from(path))
            })
            .next()
            .unwrap_or_else(|| PathBuf::from("/"))
    };
    let fs = nix::sys::statfs::statfs(MOUNT)
        .map_err(|e| Error::sys(format!("statfs({MOUNT})"), e))?
        .filesystem_type()
        .0 as i64;
    if fs == CGROUP2_SUPER_MAGIC {
        let controllers = read(&format!("{MOUNT}/cgroup.controllers"))?
            .split_whitespace()
            .map(str::to_string)
            .collect();
        return Ok((
            Version::V2,
            vec![Hierarchy {
                controllers,
                mount: PathBuf::from(MOUNT),
                own: own_of(&|c| c.is_empty()),
                unified: false,
            }],
        ));
    }
    let mut out = Vec::new();
    let mut unified = None;
    for line in read("/proc/self/mountinfo")?.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let mut post = post.split(' ');
        let fstype = post.next();
        if fstype == Some("cgroup2") {
            unified = pre.split(' ').nth(4).map(PathBuf::from);
            continue;
        }
        if fstype != Some("cgroup") {
            continue;
        }
        let opts = post.nth(1).unwrap_or("");
        let controllers: Vec<String> = opts
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro") && !o.contains('='))
            .filter(|o| !o.starts_with("no") && *o != "xattr" && *o != "clone_children")
            .map(str::to_string)
            .collect();
        let Some(mount) = pre.split(' ').nth(4) else {
            continue;
        };
        if controllers.is_empty() || out.iter().any(|h: &Hierarchy| h.controllers == controllers) {
            continue;
        }
        let set = controllers.clone();
        let own = own_of(&|c| {
            let mut a: Vec<&str> = c.split(',').collect();
            let mut b: Vec<&str> = set.iter().map(String::as_str).collect();
            a.sort_unstable();
            b.sort_unstable();
            a == b
        });
        out.push(Hierarchy {
            controllers,
            mount: PathBuf::from(mount),
            own,
            unified: false,
        });
    }
    // Hybrid: the controllers left on the unified tree (hugetlb on this project's CI host) are used
    // there, with v2's files.
    if let Some(mount) = unified.filter(|_| !out.is_empty()) {
        let controllers: Vec<String> = std::fs::read_to_string(mount.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .filter(|c| !out.iter().any(|h| h.controllers.iter().any(|x| x == c)))
            .map(str::to_string)
            .collect();
        if !controllers.is_empty() {
            out.push(Hierarchy {
                controllers,
                mount,
                own: own_of(&|c| c.is_empty()),
                unified: true,
            });
        }
    }
    if out.is_empty() {
        return Err(Error::NotSupported(format!(
            "linux.resources: no cgroup hierarchy is mounted (neither cgroup v2 at {MOUNT} nor v1 controllers)"
        )));
    }
    Ok((Version::V1, out))
}

/// The cgroup this process is in, as host directories: on cgroup v2 its one directory, on v1 (and
/// hybrid) hosts one per hierarchy, named as a `cgroup` mount names them (`memory`, `cpu,cpuacct`,
/// `unified`). What a container without a cgroup of its own or a cgroup namespace is shown at
/// /sys/fs/cgroup, bound read-only rather than a fresh cgroup2 mount (see mount::apply).
pub fn own_dirs() -> Result<(Version, Vec<(String, PathBuf)>)> {
    let (version, hierarchies) = layout()?;
    let dirs = hierarchies
        .into_iter()
        .map(|h| {
            let name = hierarchy_name(&h.controllers, h.unified);
            let rel = h.own.strip_prefix("/").unwrap_or(&h.own).to_path_buf();
            (name, h.mount.join(rel))
        })
        .collect();
    Ok((version, dirs))
}

/// One directory of the container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dir {
    /// The controllers of its hierarchy.
    pub controllers: Vec<String>,
    /// The directory.
    pub path: PathBuf,
    /// The topmost directory berth made for it (it or an ancestor), removed with it; None when it
    /// existed already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub made_from: Option<PathBuf>,
    /// The unified tree of a hybrid host (v2 files and rules).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unified: bool,
}

impl Cgroup {
    /// Each directory with its hierarchy's name as a `cgroup` mount shows it (`memory`,
    /// `cpu,cpuacct`, `unified`).
    pub fn named_dirs(&self) -> Vec<(String, PathBuf)> {
        self.dirs
            .iter()
            .map(|d| (hierarchy_name(&d.controllers, d.unified), d.path.clone()))
            .collect()
    }
}

/// A hierarchy's name as a `cgroup` mount shows it.
fn hierarchy_name(controllers: &[String], unified: bool) -> String {
    if unified {
        "unified".to_string()
    } else {
        controllers.join(",")
    }
}

/// The container's cgroup (saved in its state so delete removes it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    /// The layout.
    pub version: Version,
    /// One directory (v2) or one per hierarchy (v1).
    pub dirs: Vec<Dir>,
    /// With the systemd driver: the transient scope that holds the directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<Unit>,
}

/// A systemd scope (`--systemd-cgroup`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unit {
    /// `prefix-name.scope`.
    pub name: String,
    /// The slice it is started in.
    pub slice: String,
}

/// What goes into a new cgroup.
#[derive(Debug, Clone, Default)]
pub struct Setup {
    /// linux.resources.devices, with berth's defaults (None: no device rules).
    pub devices: Option<Vec<Rule>>,
    /// The other resources.
    pub resources: resources::Plan,
    /// With the systemd driver: the unit properties systemd manages itself.
    pub properties: Vec<dbus::Val>,
}

/// The cgroup path inside the hierarchy, by runc's rules: linux.cgroupsPath absolute (from the
/// hierarchy's root) or relative (to the runtime's own cgroup), `/berth/<id>` when absent. `..` and
/// the root itself are refused. Systemd's `slice:prefix:name` form (for `--systemd-cgroup`,
/// [`systemd::unit_for`]) given to this driver is, as runc takes it, a relative path: one
/// directory of that name below berth's own cgroup (containerd's CRI sends that form whenever the
/// pod's cgroup parent ends in `.slice`, whatever the runtime's driver; see [`systemd_form`]).
pub fn path_for(vs: &ValidSpec, id: &str, own: &Path) -> Result<PathBuf> {
    path_under(vs, id, own, Path::new("/"))
}

/// [`path_for`], with the default parent `base/berth` (`base` from the hierarchy's root).
fn path_under(vs: &ValidSpec, id: &str, own: &Path, base: &Path) -> Result<PathBuf> {
    let given = vs
        .linux()
        .cgroups_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("{}/berth/{id}", base.display()));
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

/// A cgroupsPath in systemd's `slice:prefix:name` form.
pub fn systemd_form(path: &str) -> bool {
    !path.starts_with('/') && path.matches(':').count() == 2 && !path.contains('/')
}

/// systemd's `slice:prefix:name` given to the cgroupfs driver: taken as runc takes it (one
/// directory of that name), and said, since it is most likely a missing `--systemd-cgroup`.
fn warn_systemd_form(vs: &ValidSpec) {
    if let Some(p) = vs
        .linux()
        .cgroups_path
        .as_deref()
        .filter(|p| systemd_form(p))
    {
        crate::logging::warn(&format!(
            "linux.cgroupsPath {p:?} is systemd's slice:prefix:name form, but the cgroupfs driver is in use: it is taken as one directory of that name below berth's own cgroup, as runc does (pass --systemd-cgroup for the systemd driver)"
        ));
    }
}

/// `p` without its leading `/`.
fn rel(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

/// Rootless: the cgroup v2 subtree delegated to the caller (the topmost ancestor of its own cgroup
/// that it owns, as a delegating manager chowns it), from the hierarchy's root; with a cgroupsPath,
/// that path must lie in it. `None` (and a warning, as crun) when there is no such subtree: the
/// container runs without a cgroup.
fn delegated_base(
    version: Version,
    hierarchies: &[Hierarchy],
    vs: &ValidSpec,
    id: &str,
) -> Result<Option<PathBuf>> {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::geteuid().as_raw();
    // Noted in the log (stderr with --debug), not as a warning: rootless Podman and `unshare -Ur`
    // runs would show it on every container, and the container runs as crun's does.
    let none = |why: String| {
        crate::logging::info(&format!(
            "rootless: linux.resources and linux.cgroupsPath ignored: {why}"
        ));
        Ok(None)
    };
    let h = match (version, hierarchies.first()) {
        (Version::V2, Some(h)) => h,
        _ => return none(format!("cgroup v1 is not delegated to uid {uid}")),
    };
    let owned = |p: &Path| std::fs::metadata(h.mount.join(rel(p))).is_ok_and(|m| m.uid() == uid);
    let Some(base) = h
        .own
        .ancestors()
        .take_while(|a| *a != Path::new("/") && owned(a))
        .last()
        .map(Path::to_path_buf)
    else {
        return none(format!(
            "no cgroup is delegated to uid {uid} (its cgroup {} belongs to another user)",
            h.own.display()
        ));
    };
    let path = Path::new("/").join(path_under(vs, id, &h.own, &base)?);
    if !path.starts_with(&base) {
        return none(format!(
            "{} is outside the cgroup delegated to uid {uid} ({})",
            path.display(),
            base.display()
        ));
    }
    Ok(Some(base))
}

/// The spec asks for a cgroup: it names one, or it has resources.
fn wanted(vs: &ValidSpec) -> bool {
    let l = vs.linux();
    l.cgroups_path.as_deref().is_some_and(|p| !p.is_empty())
        || l.resources
            .as_ref()
            .and_then(|r| r.as_object())
            .is_some_and(|o| o.values().any(|v| !v.is_null()))
}

fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|e| io_err("write", path, e))
}

impl Cgroup {
    /// The cgroup a container needs, if any (a cgroupsPath or resources; always with the systemd
    /// driver, as runc), with what goes into it. Every resource field is checked here, before anything
    /// exists.
    pub fn for_spec(vs: &ValidSpec, id: &str, systemd: bool) -> Result<Option<(Cgroup, Setup)>> {
        if systemd {
            return Self::for_systemd(vs, id).map(Some);
        }
        if !wanted(vs) {
            return Ok(None);
        }
        let (version, hierarchies) = layout()?;
        // Rootless: only inside a cgroup v2 subtree delegated to the caller (else none, warned).
        let delegated = if crate::spec::rootless::active() {
            match delegated_base(version, &hierarchies, vs, id)? {
                Some(base) => Some(base),
                None => return Ok(None),
            }
        } else {
            None
        };
        let resources = match &vs.linux().resources {
            Some(r) => resources::plan(r, version)?,
            None => Default::default(),
        };
        for i in &resources.ignored {
            crate::logging::info(&format!("linux.resources.{i}: ignored"));
        }
        let has_path = vs
            .linux()
            .cgroups_path
            .as_deref()
            .is_some_and(|p| !p.is_empty());
        warn_systemd_form(vs);
        let mut dirs = Vec::new();
        // A hybrid host's unified tree is used only when a limit needs one of its controllers (it
        // then has to be enabled there, a change to the host's tree berth makes no sooner).
        let needs = |h: &Hierarchy| {
            resources
                .writes
                .iter()
                .any(|w| h.controllers.iter().any(|c| c == w.controller))
        };
        for h in hierarchies.iter().filter(|h| !h.unified || needs(h)) {
            let base = delegated.as_deref().unwrap_or(Path::new("/"));
            let path = h.mount.join(path_under(vs, id, &h.own, base)?);
            // The default parent (`/berth`) is shared by every container without a cgroupsPath and
            // stays, as runc's and Podman's parents do: only the container's own directory (and
            // ancestors of a given cgroupsPath) come and go with it. Rootless, nothing above the
            // delegated subtree is ever made.
            let keep = match (&delegated, has_path) {
                (Some(d), true) => h.mount.join(rel(d)),
                (_, false) => h.mount.join(rel(base)).join("berth"),
                (None, true) => h.mount.clone(),
            };
            let made_from = path
                .ancestors()
                .take_while(|a| *a != keep && *a != h.mount && !a.exists())
                .last()
                .map(Path::to_path_buf);
            dirs.push(Dir {
                controllers: h.controllers.clone(),
                path,
                made_from,
                unified: h.unified,
            });
        }
        let cg = Cgroup {
            version,
            dirs,
            unit: None,
        };
        for w in &resources.writes {
            if cg.dir_for(w.controller).is_none() {
                return Err(Error::NotSupported(format!(
                    "linux.resources.{}: this host has no {} controller (for {})",
                    w.field, w.controller, w.file
                )));
            }
        }
        // Rootless, device rules are not the cgroup's to keep (a BPF device program needs the host's
        // privilege); the user namespace already keeps the container from making device nodes.
        let devices = match delegated {
            Some(_) => None,
            None => devices::rules(vs)?,
        };
        Ok(Some((
            cg,
            Setup {
                devices,
                resources,
                properties: Vec::new(),
            },
        )))
    }

    /// The systemd driver's cgroup: a scope in the slice `linux.cgroupsPath` names, on cgroup v2.
    fn for_systemd(vs: &ValidSpec, id: &str) -> Result<(Cgroup, Setup)> {
        if crate::spec::rootless::active() {
            return Err(Error::NotSupported(
                "--systemd-cgroup: rootless (the user's systemd instance) is not supported; drop the flag".into(),
            ));
        }
        systemd::available()?;
        let (version, hierarchies) = layout()?;
        let h = match (version, hierarchies.first()) {
            (Version::V2, Some(h)) => h,
            _ => {
                return Err(Error::NotSupported(
                    "--systemd-cgroup: berth's systemd driver needs cgroup v2 (this host has v1)"
                        .into(),
                ));
            }
        };
        let (slice, unit, dir) = systemd::unit_for(vs.linux().cgroups_path.as_deref(), id)?;
        let r = vs.linux().resources.as_ref();
        let resources = match r {
            Some(r) => resources::plan(r, version)?,
            None => Default::default(),
        };
        let path = h.mount.join(rel(&dir));
        let cg = Cgroup {
            version,
            dirs: vec![Dir {
                controllers: h.controllers.clone(),
                made_from: Some(path.clone()),
                path,
                unified: false,
            }],
            unit: Some(Unit { name: unit, slice }),
        };
        let setup = Setup {
            devices: devices::rules(vs)?,
            resources,
            properties: systemd::resource_properties(r),
        };
        Ok((cg, setup))
    }

    /// The directory whose hierarchy holds `controller`.
    pub fn dir_for(&self, controller: &str) -> Option<&Path> {
        match self.version {
            Version::V2 => self
                .dirs
                .first()
                .filter(|d| controller.is_empty() || d.controllers.iter().any(|c| c == controller))
                .map(|d| d.path.as_path()),
            Version::V1 => self
                .dirs
                .iter()
                .find(|d| d.controllers.iter().any(|c| c == controller))
                .map(|d| d.path.as_path()),
        }
    }

    /// The directory listing the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        self.dir_for("pids")
            .or_else(|| self.dir_for("freezer"))
            .or_else(|| self.dirs.first().map(|d| d.path.as_path()))
    }

    /// Makes the directories (an existing one is refused: it may hold another container), then writes
    /// the limits and device rules, before any process is in it.
    pub fn create(&self, setup: &Setup) -> Result<()> {
        let label = || "linux.cgroupsPath".to_string();
        for d in &self.dirs {
            if d.made_from.is_none() {
                return Err(Error::State(format!(
                    "linux.cgroupsPath: {} already exists (another container's?)",
                    d.path.display()
                )));
            }
        }
        // A systemd scope is made with its first process (see [`Cgroup::enter`]).
        if self.unit.is_some() {
            return Ok(());
        }
        let made = self.make_dirs().with_context(label);
        let applied = made.and_then(|()| self.apply(setup));
        if let Err(e) = applied {
            let _ = self.remove();
            return Err(e);
        }
        Ok(())
    }

    fn make_dirs(&self) -> Result<()> {
        for d in &self.dirs {
            // Every missing directory from the hierarchy's root down (a kept parent such as /berth
            // included), each set up before its child: v2 controllers enabled, v1 cpuset filled.
            // Usually only the container's own directory is missing: one mkdir, no stat.
            if self.version == Version::V2 || d.unified {
                enable_controllers(d.path.parent().unwrap_or(&d.path));
            }
            let mut chain: Vec<&Path> = match std::fs::create_dir(&d.path) {
                Ok(()) => {
                    self.after_mkdir(d, &d.path)?;
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    d.path.ancestors().take_while(|a| !a.exists()).collect()
                }
                Err(e) => return Err(io_err("mkdir", &d.path, e)),
            };
            chain.reverse();
            for dir in chain {
                if self.version == Version::V2 || d.unified {
                    enable_controllers(dir.parent().unwrap_or(dir));
                }
                match std::fs::create_dir(dir) {
                    Ok(()) => {}
                    // A kept parent made meanwhile by another container.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir != d.path => {
                        continue;
                    }
                    Err(e) => return Err(io_err("mkdir", dir, e)),
                }
                self.after_mkdir(d, dir)?;
            }
        }
        Ok(())
    }

    /// A v1 cpuset directory just made gets its parent's cpus and mems.
    fn after_mkdir(&self, d: &Dir, dir: &Path) -> Result<()> {
        if d.controllers.iter().any(|c| c == "cpuset") && self.version == Version::V1 {
            inherit_cpuset(dir)?;
        }
        Ok(())
    }

    fn apply(&self, setup: &Setup) -> Result<()> {
        for w in &setup.resources.writes {
            let dir = self.dir_for(w.controller).ok_or_else(|| {
                Error::NotSupported(format!(
                    "linux.resources.{}: no {} controller",
                    w.field, w.controller
                ))
            })?;
            // A weight goes to whichever IO scheduler's file the kernel offers (as runc); a hybrid
            // host's unified tree takes v2's names.
            let unified = self.dirs.iter().any(|d| d.unified && d.path == dir);
            let name = match w.file.strip_suffix(".limit_in_bytes") {
                Some(stem) if unified && stem.starts_with("hugetlb.") => format!("{stem}.max"),
                _ => w.file.clone(),
            };
            let mut file = dir.join(&name);
            let alt = match w.file.as_str() {
                "blkio.weight" => Some("blkio.bfq.weight"),
                "io.bfq.weight" => Some("io.weight"),
                _ => None,
            };
            if let Some(alt) = alt.filter(|_| !file.exists()) {
                file = dir.join(alt);
            }
            write(&file, &w.value).with_context(|| format!("linux.resources.{}", w.field))?;
        }
        if let Some(rules) = &setup.devices {
            let applied = match self.version {
                Version::V1 => match self.dir_for("devices") {
                    Some(dir) => devices::apply_v1(dir, rules),
                    None => Err(Error::NotSupported("no devices controller".into())),
                },
                Version::V2 => match self.dirs.first() {
                    Some(d) => bpf::attach(&d.path, &bpf::program(rules)),
                    None => Err(Error::NotSupported("no cgroup".into())),
                },
            };
            applied.with_context(|| "linux.resources.devices".into())?;
        }
        Ok(())
    }

    /// Applies a new `linux.resources` to the existing cgroup (`update`), checked as at create.
    /// Device rules on v2 replace the container's device program (`defaults` are berth's default
    /// devices, appended as at create).
    pub fn update(&self, r: &serde_json::Value) -> Result<()> {
        let plan = resources::plan(r, self.version)?;
        if let Some(unit) = &self.unit {
            systemd::set(&unit.name, systemd::resource_properties(Some(r)))?;
        }
        for i in &plan.ignored {
            crate::logging::info(&format!("linux.resources.{i}: ignored"));
        }
        let devices = match r.get("devices").filter(|d| !d.is_null()) {
            Some(d) => Some(devices::with_defaults(devices::parse(d)?)),
            None => None,
        };
        match (self.version, devices) {
            (Version::V2, Some(rules)) => {
                self.apply(&Setup {
                    devices: None,
                    resources: plan,
                    properties: Vec::new(),
                })?;
                let d = self
                    .dirs
                    .first()
                    .ok_or_else(|| Error::State("no cgroup directory".into()))?;
                bpf::replace(&d.path, &bpf::program(&rules))
                    .with_context(|| "linux.resources.devices".into())
            }
            (_, devices) => self.apply(&Setup {
                devices,
                resources: plan,
                properties: Vec::new(),
            }),
        }
    }

    /// Puts the container's init `pid` into its new cgroup: with the systemd driver the scope is
    /// started with it, then its limits and device rules are written; else it joins the directories
    /// [`Cgroup::create`] made and set up.
    pub fn enter(&self, pid: i32, setup: &Setup) -> Result<()> {
        let Some(unit) = &self.unit else {
            return self.join(pid);
        };
        systemd::start(&unit.name, &unit.slice, pid, setup.properties.clone())
            .with_context(|| "linux.cgroupsPath".into())?;
        self.apply(setup)
    }

    /// The container's cgroup narrowed to the existing sub-cgroups that `specs` name (runc's
    /// `exec --cgroup`): `PATH` for every hierarchy, or `CONTROLLER[,CONTROLLER]:PATH` for the
    /// hierarchies of those controllers (cgroup v1; v2 has one tree, so only a bare PATH). PATH is
    /// relative to the container's cgroup, without `.` or `..`, and must be a directory beneath it
    /// (checked with openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS from the container's directory).
    pub fn sub(&self, specs: &[String]) -> Result<Cgroup> {
        let mut out = self.clone();
        out.unit = None;
        for spec in specs {
            let bad = |why: &str| Error::InvalidSpec(format!("--cgroup {spec:?}: {why}"));
            let (controllers, path) = match spec.split_once(':') {
                Some((c, p)) => (
                    c.split(',').filter(|c| !c.is_empty()).collect::<Vec<_>>(),
                    p,
                ),
                None => (Vec::new(), spec.as_str()),
            };
            let rel = Path::new(path);
            if path.is_empty()
                || rel.is_absolute()
                || !rel.components().all(|c| matches!(c, Component::Normal(_)))
            {
                return Err(bad(
                    "the sub-cgroup must be a relative path below the container's cgroup, without . or ..",
                ));
            }
            if self.version == Version::V2 && !controllers.is_empty() {
                return Err(bad(
                    "CONTROLLER:PATH is for cgroup v1; on cgroup v2 give the path alone",
                ));
            }
            if let Some(c) = controllers.iter().find(|c| {
                !self
                    .dirs
                    .iter()
                    .any(|d| d.controllers.iter().any(|dc| dc == *c))
            }) {
                return Err(bad(&format!(
                    "the container has no cgroup for controller {c:?}"
                )));
            }
            for (d, mine) in self.dirs.iter().zip(out.dirs.iter_mut()) {
                let wanted = controllers.is_empty()
                    || d.controllers
                        .iter()
                        .any(|dc| controllers.contains(&dc.as_str()));
                if !wanted {
                    continue;
                }
                let base =
                    crate::sys::openat2(None, &d.path, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
                crate::sys::openat2(
                    Some(base.as_fd()),
                    rel,
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                    crate::sys::RESOLVE_BENEATH | crate::sys::RESOLVE_NO_SYMLINKS,
                )
                .map_err(|e| {
                    Error::InvalidSpec(format!(
                        "--cgroup {spec:?}: {} is not an existing sub-cgroup of the container's: {}",
                        d.path.join(rel).display(),
                        e.errno
                    ))
                })?;
                mine.path = d.path.join(rel);
                mine.made_from = None;
            }
        }
        Ok(out)
    }

    /// Moves `pid` into the cgroup (every hierarchy).
    pub fn join(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            write(&d.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// Moves the calling process into the cgroup: "0" in cgroup.procs is the writer, on v1 as on
    /// v2, whatever pid namespace it is in.
    pub fn join_self(&self) -> Result<()> {
        for d in &self.dirs {
            write(&d.path.join("cgroup.procs"), "0")?;
        }
        Ok(())
    }

    /// The pids in the cgroup now.
    pub fn pids(&self) -> Vec<i32> {
        self.procs_dir()
            .and_then(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Signals every process in the cgroup (v2's cgroup.kill for SIGKILL).
    pub fn signal_all(&self, sig: nix::sys::signal::Signal) {
        if self.version == Version::V2
            && sig == nix::sys::signal::Signal::SIGKILL
            && let Some(d) = self.dirs.first()
            && write(&d.path.join("cgroup.kill"), "1").is_ok()
        {
            return;
        }
        for p in self.pids() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
        }
    }

    /// Freezes (pause) or thaws (resume), and waits until the kernel says it is done.
    pub fn freeze(&self, frozen: bool) -> Result<()> {
        let (file, value) = match self.version {
            Version::V2 => ("cgroup.freeze", if frozen { "1" } else { "0" }),
            Version::V1 => ("freezer.state", if frozen { "FROZEN" } else { "THAWED" }),
        };
        let dir = match self.version {
            Version::V2 => self.dirs.first().map(|d| d.path.as_path()),
            Version::V1 => self.dir_for("freezer"),
        }
        .ok_or_else(|| Error::NotSupported("pause: this host has no freezer controller".into()))?;
        write(&dir.join(file), value)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.frozen() != Some(frozen) {
            if Instant::now() > deadline {
                return Err(Error::State(format!(
                    "{}: the cgroup did not become {}",
                    dir.display(),
                    if frozen { "frozen" } else { "thawed" }
                )));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Whether the cgroup is frozen (None: no freezer).
    pub fn frozen(&self) -> Option<bool> {
        match self.version {
            Version::V2 => {
                let d = self.dirs.first()?;
                let ev = std::fs::read_to_string(d.path.join("cgroup.events")).ok()?;
                Some(ev.lines().any(|l| l == "frozen 1"))
            }
            Version::V1 => {
                let d = self.dir_for("freezer")?;
                let s = std::fs::read_to_string(d.join("freezer.state")).ok()?;
                Some(s.trim() == "FROZEN")
            }
        }
    }

    /// Removes the directories (once the last process has left; a few retries for the kernel to
    /// notice exits), then the ancestors berth made for them while they are empty.
    pub fn remove(&self) -> Result<()> {
        let mut first_err = None;
        // systemd removes a scope's directory when the scope stops (or empties).
        if let Some(unit) = &self.unit
            && let Err(e) = systemd::stop(&unit.name)
        {
            first_err = Some(e);
        }
        for d in &self.dirs {
            let Some(top) = &d.made_from else {
                continue;
            };
            if let Err(e) = rmdir_retrying(&d.path) {
                first_err.get_or_insert(e);
                continue;
            }
            for dir in d.path.ancestors().skip(1) {
                if !dir.starts_with(top) || std::fs::remove_dir(dir).is_err() {
                    break;
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// cgroup v2: lets the children of `dir` use every controller `dir` has (best effort: a cgroup with
/// processes of its own cannot, and the writes that need a controller then fail naming the field).
fn enable_controllers(dir: &Path) {
    let Ok(have) = std::fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let want: Vec<String> = have.split_whitespace().map(|c| format!("+{c}")).collect();
    if !want.is_empty() {
        let _ = std::fs::write(dir.join("cgroup.subtree_control"), want.join(" "));
    }
}

/// cgroup v1's cpuset starts empty in a new cgroup (and no process may join it then): it takes its
/// parent's cpus and mems, as runc does, and an ancestor that is empty too (a pod parent made by the
/// kubelet, say) is filled first, from the top down.
fn inherit_cpuset(dir: &Path) -> Result<()> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for f in ["cpuset.cpus", "cpuset.mems"] {
        let cur = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if !cur.trim().is_empty() {
            continue;
        }
        let mut v = std::fs::read_to_string(parent.join(f))
            .map_err(|e| io_err("read", &parent.join(f), e))?;
        if v.trim().is_empty() {
            inherit_cpuset(parent)?;
            v = std::fs::read_to_string(parent.join(f))
                .map_err(|e| io_err("read", &parent.join(f), e))?;
        }
        write(&dir.join(f), v.trim())?;
    }
    Ok(())
}

fn rmdir_retrying(dir: &Path) -> Result<()> {
    for _ in 0..200 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                std::thread::sleep(Duration::from_millis(5));
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
        // systemd's form given to the cgroupfs driver: a relative path, as runc takes it.
        assert_eq!(
            path_for(&vs(Some("system.slice:berth:c1")), "c", own).unwrap(),
            Path::new("user.slice/me/system.slice:berth:c1")
        );
    }
}
