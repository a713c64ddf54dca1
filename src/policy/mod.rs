//! The host mount policy: which host directories a container's bind mounts may come from, how, and for
//! whom. No OCI runtime has this; berth enforces it itself so that a wrong or compromised orchestrator
//! above it still cannot mount what the platform does not allow.
//!
//! Three layers: the platform's allowed roots (each with its maximum access and whether special files
//! may be mounted from it), named tenants (a subset of the roots, their own maximum access and a volume
//! limit), and the bundle's own mounts (the tenant named by `--tenant` or the `berth.tenant`
//! annotation).
//!
//! A bind source is never checked as a string: its allowed root is opened, the rest of the path is
//! opened beneath it with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` (a symlink or `..` that
//! leaves the root fails with EXDEV), the file type is checked on that fd, and that same fd is what
//! gets cloned and mounted (see `mount::apply`). Before any process or state exists, the parent runs
//! the same checks over every mount ([`Enforcer::check_all`]), so a refusal leaves nothing behind.

pub mod bundle;

use crate::error::{Error, Result};
use crate::mount::plan::{MountOp, OpKind};
use crate::sys;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// Where the policy is looked for when neither `--policy` nor `BERTH_POLICY` names one.
pub const DEFAULT_PATH: &str = "/etc/berth/policy.json";
/// The annotation that names the tenant.
pub const TENANT_ANNOTATION: &str = "berth.tenant";

/// ro or rw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read-only.
    Ro,
    /// Read-write.
    Rw,
}

impl Access {
    /// `ro` or `rw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Ro => "ro",
            Access::Rw => "rw",
        }
    }
}

/// One allowed host root.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootRule {
    /// Absolute host directory.
    pub path: PathBuf,
    /// The most a mount from it may get.
    pub access: Access,
    /// Device nodes, sockets and FIFOs may be mounted from it.
    #[serde(default)]
    pub special_files: bool,
    /// The on-disk ids an idmapped mount of it may map (none: idmapped mounts from it are refused).
    #[serde(default)]
    pub idmap: Option<IdmapRule>,
}

/// Which on-disk ids an idmapped mount may map (each mapping's `containerID` range must lie in one
/// of these), so a tenant cannot map host root's files into its container as its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdmapRule {
    /// Allowed on-disk uid ranges.
    pub uids: Vec<IdRange>,
    /// Allowed on-disk gid ranges.
    pub gids: Vec<IdRange>,
}

/// `size` ids from `from`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    /// The first id.
    pub from: u32,
    /// How many.
    pub size: u32,
}

impl IdmapRule {
    /// The first mapping outside the rule, as `uid 0..65535` text.
    fn outside(&self, idmap: &crate::mount::plan::Idmap) -> Option<String> {
        let within = |ranges: &[IdRange], m: &crate::spec::IdMapping| {
            let (start, end) = (
                u64::from(m.container_id),
                u64::from(m.container_id) + u64::from(m.size),
            );
            ranges
                .iter()
                .any(|r| u64::from(r.from) <= start && end <= u64::from(r.from) + u64::from(r.size))
        };
        let bad = |kind: &str, ranges: &[IdRange], maps: &[crate::spec::IdMapping]| {
            maps.iter().find(|m| !within(ranges, m)).map(|m| {
                format!(
                    "{kind} {}..{}",
                    m.container_id,
                    u64::from(m.container_id) + u64::from(m.size) - 1
                )
            })
        };
        bad("uid", &self.uids, &idmap.uid).or_else(|| bad("gid", &self.gids, &idmap.gid))
    }
}

/// One tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// The platform roots (by path) it may use.
    pub roots: Vec<PathBuf>,
    /// Its maximum access (never above the root's).
    pub access: Access,
    /// The most bind mounts one container of it may have.
    #[serde(default)]
    pub max_volumes: Option<usize>,
}

/// Where a container's rootfs may come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootfsRule {
    /// Absolute host directory under which rootfs directories may be.
    pub path: PathBuf,
    /// rw, or ro (which forces root.readonly).
    pub access: Access,
}

/// The policy file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Allowed host roots.
    pub roots: Vec<RootRule>,
    /// Tenants by name.
    #[serde(default)]
    pub tenants: BTreeMap<String, Tenant>,
    /// The Landlock mode, a floor: the `berth.landlock` annotation may raise it, never lower it.
    #[serde(default)]
    pub landlock: Option<crate::security::landlock::Mode>,
    /// Where rootfs directories may be (none: every bundle is refused).
    #[serde(default)]
    pub rootfs: Vec<RootfsRule>,
    /// Hook executables a bundle may name (absolute paths; none by default: hooks run as host root).
    #[serde(default)]
    pub hooks: Vec<PathBuf>,
    /// The one annotation that names the tenant, set by the orchestrator that writes the bundle
    /// (e.g. `io.kubernetes.cri.sandbox-namespace`, which pod authors cannot set).
    #[serde(default)]
    pub tenant_annotation: Option<String>,
    /// The tenant of a container that names none (else such a container is refused).
    #[serde(default)]
    pub default_tenant: Option<String>,
    /// What else a bundle may widen.
    #[serde(default)]
    pub container: bundle::ContainerRules,
    /// A bind that asks for more than its root's or tenant's access: refused (the default), or
    /// mounted read-only (for orchestrators that ask rw by default, such as the kubelet for a
    /// hostPath without `readOnly`).
    #[serde(default)]
    pub excess_access: ExcessAccess,
}

/// What becomes of a bind asking for more access than its cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExcessAccess {
    /// The container is refused.
    #[default]
    Refuse,
    /// The bind is mounted read-only (as a whole tree), and the log says so.
    ReadOnly,
}

fn is_normal_absolute(p: &Path) -> bool {
    p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

impl Policy {
    /// Parses and validates a policy file's bytes; errors name the key.
    pub fn parse(bytes: &[u8], origin: &Path) -> Result<Policy> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let p: Policy = serde_path_to_error::deserialize(de).map_err(|e| {
            Error::Policy(format!(
                "{}: key {}: {}",
                origin.display(),
                e.path(),
                e.inner()
            ))
        })?;
        p.validate()
            .map_err(|m| Error::Policy(format!("{}: {m}", origin.display())))?;
        Ok(p)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.roots.is_empty() {
            return Err("roots: at least one allowed root is needed".into());
        }
        for (i, r) in self.roots.iter().enumerate() {
            if !is_normal_absolute(&r.path) || r.path == Path::new("/") {
                return Err(format!(
                    "roots[{i}].path: {:?} must be an absolute path without '.' or '..', and not /",
                    r.path
                ));
            }
            for (j, o) in self.roots.iter().enumerate().skip(i + 1) {
                if r.path == o.path {
                    return Err(format!("roots[{j}].path: {:?} is listed twice", o.path));
                }
                let nested = r.path.starts_with(&o.path) || o.path.starts_with(&r.path);
                if nested && (r.access != o.access || r.special_files != o.special_files) {
                    return Err(format!(
                        "roots[{j}].path: {:?} overlaps roots[{i}] ({:?}) with different rules",
                        o.path, r.path
                    ));
                }
            }
        }
        for (i, r) in self.rootfs.iter().enumerate() {
            if !is_normal_absolute(&r.path) || r.path == Path::new("/") {
                return Err(format!(
                    "rootfs[{i}].path: {:?} must be an absolute path without '.' or '..', and not /",
                    r.path
                ));
            }
        }
        for (i, h) in self.hooks.iter().enumerate() {
            if !is_normal_absolute(h) {
                return Err(format!("hooks[{i}]: {h:?} is not an absolute path"));
            }
        }
        if let Some(t) = self
            .default_tenant
            .as_ref()
            .filter(|t| !self.tenants.contains_key(*t))
        {
            return Err(format!("default_tenant: {t:?} is not one of the tenants"));
        }
        self.container.validate()?;
        for (name, t) in &self.tenants {
            if name.is_empty() {
                return Err("tenants: a tenant needs a name".into());
            }
            for (i, root) in t.roots.iter().enumerate() {
                if !self.roots.iter().any(|r| &r.path == root) {
                    return Err(format!(
                        "tenants.{name}.roots[{i}]: {root:?} is not one of the platform's roots"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Loads the policy named by `--policy`, else `BERTH_POLICY`, else /etc/berth/policy.json when it
    /// exists; None means no policy (plain OCI behaviour).
    pub fn load(explicit: Option<&Path>) -> Result<Option<Policy>> {
        let env = std::env::var_os("BERTH_POLICY")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let path = match explicit.map(Path::to_path_buf).or(env) {
            Some(p) => p,
            None if Path::new(DEFAULT_PATH).exists() => PathBuf::from(DEFAULT_PATH),
            None => return Ok(None),
        };
        let bytes =
            std::fs::read(&path).map_err(|e| crate::error::io_err("read policy", &path, e))?;
        Policy::parse(&bytes, &path).map(Some)
    }

    /// The most specific root containing `source` (by components; `..` stays in the remainder, where
    /// RESOLVE_BENEATH refuses it).
    fn root_for(&self, source: &Path) -> Option<&RootRule> {
        self.roots
            .iter()
            .filter(|r| source.starts_with(&r.path))
            .max_by_key(|r| r.path.components().count())
    }
}

/// The policy's one typed refusal, for mounts and the rest of the bundle alike: the field (or mount)
/// refused, the policy key that refused it, and why. It is the error create returns
/// ([`Error::Refused`]) and what `berth check` prints; nothing parses its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The config.json field or mount: `root.path`, `hooks.prestart[0]`, `mounts[2] (/data)`.
    pub field: String,
    /// The policy key that decided: `roots`, `tenants.a.max_volumes`, `container.hooks`.
    pub rule: String,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: refused by {}: {}",
            self.field, self.rule, self.reason
        )
    }
}

impl Refusal {
    /// A refusal of `field` by `rule`.
    pub fn new(
        field: impl Into<String>,
        rule: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Refusal {
            field: field.into(),
            rule: rule.into(),
            reason: reason.into(),
        }
    }
}

/// A verdict on one mount.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// Index in config.json's mounts.
    pub index: usize,
    /// Destination in the container.
    pub destination: String,
    /// Host source (as written), if any.
    pub source: Option<String>,
    /// `allowed` or `refused`.
    pub verdict: &'static str,
    /// The source as the kernel resolved it (bind mounts that were opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolved: Option<String>,
    /// ro or rw, as it will be mounted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Access>,
    /// The rule that decided.
    pub rule: String,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The refusal, when refused.
    #[serde(skip)]
    pub refusal: Option<Refusal>,
    /// rw was asked and the policy's cap mounts it read-only.
    #[serde(skip)]
    pub capped: bool,
}

impl Verdict {
    fn refuse(&mut self, r: Refusal) {
        self.verdict = "refused";
        self.rule = r.rule.clone();
        self.reason = Some(r.to_string());
        self.refusal = Some(r);
    }
}

/// A policy with the tenant it applies to, ready to check mounts.
#[derive(Debug, Clone)]
pub struct Enforcer {
    /// The policy.
    pub policy: Policy,
    /// The tenant, if one is named.
    pub tenant: Option<String>,
}

/// Filesystems that take no host path and so need no policy rule.
const PATHLESS_FS: &[&str] = &["proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup2"];

/// Whether a bind mount op leaves any mount of its tree writable (the effective attributes, as the
/// kernel will apply them: `ro` + `rrw` is writable, and so is a top-only `ro` rbind's submount).
fn wants_rw(op: &MountOp) -> bool {
    !op.top_read_only()
}

impl Enforcer {
    /// Checks the tenant name.
    pub fn new(policy: Policy, tenant: Option<String>) -> Result<Enforcer> {
        if let Some(t) = tenant.as_ref().filter(|t| !policy.tenants.contains_key(*t)) {
            return Err(Error::Policy(format!("tenant {t:?} is not in the policy")));
        }
        Ok(Enforcer { policy, tenant })
    }

    fn tenant(&self) -> Option<(&str, &Tenant)> {
        let name = self.tenant.as_deref()?;
        self.policy.tenants.get(name).map(|t| (name, t))
    }

    /// Opens the source of a bind mount under its allowed root and checks every rule; the returned fd
    /// is the one to mount. `rootfs` is the container's rootfs, which no source may be or contain.
    /// The checks, in order: the root it lies under (and the tenant's say), the access, the idmap,
    /// the open beneath the root, the file type, the rootfs.
    pub fn open_source(&self, op: &MountOp, rootfs: &Path) -> Result<(OwnedFd, Access)> {
        let OpKind::Bind { source, .. } = &op.kind else {
            return Err(Error::Policy("not a bind mount".into()));
        };
        let refuse = |rule: &str, why: String| Error::Refused(Refusal::new(op.label(), rule, why));
        let (rule, max) = self.lookup(source).map_err(|(r, why)| refuse(&r, why))?;
        let access = self
            .access(op, rule, max)
            .map_err(|(r, why)| refuse(r, why))?;
        if let Some(idmap) = &op.idmap {
            idmap_allowed(rule, idmap).map_err(|why| refuse("roots.idmap", why))?;
        }
        let fd = open_source_beneath(rule, source).map_err(|why| refuse("roots", why))?;
        let st = sys::fstat(&fd)?;
        let t = st.st_mode & libc::S_IFMT;
        file_type_allowed(rule, source, t).map_err(|why| refuse("special_files", why))?;
        if t == libc::S_IFDIR && contains(&fd, rootfs)? {
            return Err(refuse(
                "rootfs",
                format!("{} is the rootfs or contains it", source.display()),
            ));
        }
        Ok((fd, access))
    }

    /// The allowed root `source` lies under, and the most access it and the tenant give.
    fn lookup(&self, source: &Path) -> std::result::Result<(&RootRule, Access), (String, String)> {
        let rule = self.policy.root_for(source).ok_or_else(|| {
            (
                "roots".to_string(),
                format!("source {} is not under an allowed root", source.display()),
            )
        })?;
        let mut max = rule.access;
        if let Some((name, t)) = self.tenant() {
            if !t.roots.iter().any(|r| r == &rule.path) {
                return Err((
                    format!("tenants.{name}.roots"),
                    format!("tenant {name} may not use the root {}", rule.path.display()),
                ));
            }
            max = max.min(t.access);
        }
        Ok((rule, max))
    }

    /// The access the mount gets: what it asks, capped at `max` (read-only under `excess_access:
    /// read-only`, which harden() then applies to the whole tree), or refused.
    fn access(
        &self,
        op: &MountOp,
        rule: &RootRule,
        max: Access,
    ) -> std::result::Result<Access, (&'static str, String)> {
        let mut access = if wants_rw(op) { Access::Rw } else { Access::Ro };
        if access > max && self.policy.excess_access == ExcessAccess::ReadOnly {
            access = Access::Ro;
        }
        if access > max {
            return Err((
                "access",
                format!(
                    "rw requested, but at most ro is allowed from {}",
                    rule.path.display()
                ),
            ));
        }
        Ok(access)
    }

    /// Checks every mount of a plan; refusals are errors (the first one), before anything is made.
    pub fn check_all(&self, ops: &[MountOp], rootfs: &Path) -> Result<()> {
        self.check_beside(ops, rootfs, 0)
    }

    /// [`Enforcer::check_all`] for mounts added beside `already` bind mounts of a running container
    /// (live volumes: a tenant's `max_volumes` counts them all).
    pub fn check_beside(&self, ops: &[MountOp], rootfs: &Path, already: usize) -> Result<()> {
        for v in self.verdicts_beside(ops, rootfs, already) {
            if let Some(r) = v.refusal {
                return Err(Error::Refused(r));
            }
            if v.capped {
                crate::logging::info(&format!(
                    "mounts[{}] ({}): rw asked, mounted read-only under the policy's cap",
                    v.index, v.destination
                ));
            }
        }
        Ok(())
    }

    /// A verdict for each mount (what `berth check` prints).
    pub fn verdicts(&self, ops: &[MountOp], rootfs: &Path) -> Vec<Verdict> {
        self.verdicts_beside(ops, rootfs, 0)
    }

    /// [`Enforcer::verdicts`] for mounts added beside `already` bind mounts.
    pub fn verdicts_beside(&self, ops: &[MountOp], rootfs: &Path, already: usize) -> Vec<Verdict> {
        let binds = already
            + ops
                .iter()
                .filter(|o| matches!(o.kind, OpKind::Bind { .. }))
                .count();
        let limit = self
            .tenant()
            .and_then(|(n, t)| t.max_volumes.map(|m| (n, m)));
        ops.iter()
            .map(|op| {
                let mut v = Verdict {
                    index: op.index,
                    destination: op.dest.display().to_string(),
                    source: None,
                    verdict: "allowed",
                    resolved: None,
                    access: None,
                    rule: String::new(),
                    reason: None,
                    refusal: None,
                    capped: false,
                };
                match &op.kind {
                    OpKind::Fs { fstype, .. } if PATHLESS_FS.contains(&fstype.as_str()) => {
                        v.rule = format!("{fstype} takes no host path");
                    }
                    OpKind::Fs { fstype, .. } => v.refuse(Refusal::new(
                        op.label(),
                        "roots",
                        format!(
                            "filesystem type {fstype} takes host paths, which a policy cannot vet"
                        ),
                    )),
                    OpKind::Bind { source, .. } => {
                        v.source = Some(source.display().to_string());
                        if let Some((name, max)) = limit.filter(|(_, m)| binds > *m) {
                            v.refuse(Refusal::new(
                                op.label(),
                                format!("tenants.{name}.max_volumes"),
                                format!("{binds} bind mounts, at most {max} allowed"),
                            ));
                            return v;
                        }
                        self.bind_verdict(op, source, rootfs, &mut v);
                    }
                }
                v
            })
            .collect()
    }

    /// The verdict on one bind mount: its source opened and checked as create will open it.
    fn bind_verdict(&self, op: &MountOp, source: &Path, rootfs: &Path, v: &mut Verdict) {
        let (fd, access) = match self.open_source(op, rootfs) {
            Ok(r) => r,
            Err(e) => {
                return v.refuse(match e.refusal() {
                    Some(r) => r.clone(),
                    None => Refusal::new(op.label(), "policy", e.to_string()),
                });
            }
        };
        v.resolved = std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
        .ok()
        .map(|p| p.display().to_string());
        v.access = Some(access);
        v.rule = self
            .policy
            .root_for(source)
            .map(|r| format!("root {}", r.path.display()))
            .unwrap_or_default();
        if let Some(i) = &op.idmap {
            let ranges: Vec<String> = i
                .uid
                .iter()
                .map(|m| {
                    let last = u64::from(m.container_id) + u64::from(m.size) - 1;
                    format!("{}..{last}", m.container_id)
                })
                .collect();
            v.rule.push_str(&format!(
                "; idmap{} on-disk uids {}",
                if i.recursive { " (recursive)" } else { "" },
                ranges.join(",")
            ));
        }
        if wants_rw(op) && access == Access::Ro {
            v.capped = true;
            v.rule
                .push_str("; rw asked, mounted read-only (excess_access: read-only)");
        }
    }
}

/// An idmapped mount is allowed from `rule` only within its idmap rule's on-disk ids.
fn idmap_allowed(
    rule: &RootRule,
    idmap: &crate::mount::plan::Idmap,
) -> std::result::Result<(), String> {
    let Some(allowed) = &rule.idmap else {
        return Err(format!(
            "{} allows no idmapped mounts (no idmap rule)",
            rule.path.display()
        ));
    };
    match allowed.outside(idmap) {
        Some(range) => Err(format!(
            "the mapping exposes on-disk {range}, outside what {} allows",
            rule.path.display()
        )),
        None => Ok(()),
    }
}

/// Opens `source` beneath its allowed root ([`open_beneath`]); why not, when it cannot be.
fn open_source_beneath(rule: &RootRule, source: &Path) -> std::result::Result<OwnedFd, String> {
    open_beneath(&rule.path, source, libc::O_PATH).map_err(|e| match e {
        Beneath::Root(e) => format!("the allowed root cannot be opened: {e}"),
        Beneath::Rest(nix::errno::Errno::EXDEV | nix::errno::Errno::ELOOP) => format!(
            "{} leaves the allowed root {} (symlink or ..)",
            source.display(),
            rule.path.display()
        ),
        Beneath::Rest(e) => format!(
            "opening {} beneath {}: {e}",
            source.display(),
            rule.path.display()
        ),
    })
}

/// Only directories and regular files may be bound, unless the root allows special files.
fn file_type_allowed(rule: &RootRule, source: &Path, t: u32) -> std::result::Result<(), String> {
    if t == libc::S_IFDIR || t == libc::S_IFREG || rule.special_files {
        return Ok(());
    }
    let what = match t {
        libc::S_IFCHR | libc::S_IFBLK => "a device node",
        libc::S_IFSOCK => "a socket",
        libc::S_IFIFO => "a FIFO",
        _ => "a special file",
    };
    Err(format!(
        "{} is {what}, and {} does not allow special files",
        source.display(),
        rule.path.display()
    ))
}

/// The policy as the mount code's source of bind sources: every source is opened beneath its allowed
/// root and checked, and that fd is the one mounted (the child checks again what the parent checked).
#[derive(Debug, Clone, Copy)]
pub struct Vetted<'a> {
    /// The policy and tenant.
    pub enforcer: &'a Enforcer,
    /// The container's rootfs on the host, which no source may be or contain.
    pub rootfs: &'a Path,
}

impl crate::mount::apply::OpenSource for Vetted<'_> {
    fn open_source(&self, op: &MountOp, _source: &Path) -> Result<OwnedFd> {
        Ok(self.enforcer.open_source(op, self.rootfs)?.0)
    }
}

/// Why [`open_beneath`] failed.
#[derive(Debug)]
pub(crate) enum Beneath {
    /// The allowed root itself could not be opened.
    Root(crate::error::SysError),
    /// The rest of the path did not resolve beneath it (EXDEV/ELOOP: it leaves the root).
    Rest(nix::errno::Errno),
}

/// Opens `path` by opening the allowed `root` (no symlink on the way) and the rest of `path` beneath
/// it with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: a symlink, `..` or magic link that leaves the
/// root fails, and the fd returned is the one to check and use.
pub(crate) fn open_beneath(
    root: &Path,
    path: &Path,
    flags: i32,
) -> std::result::Result<OwnedFd, Beneath> {
    let dir = sys::openat2(
        None,
        root,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        sys::RESOLVE_NO_SYMLINKS,
    )
    .map_err(Beneath::Root)?;
    let rest = path.strip_prefix(root).unwrap_or(Path::new(""));
    let rest = if rest.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rest
    };
    sys::openat2_errno(
        Some(std::os::fd::AsFd::as_fd(&dir)),
        rest,
        flags,
        0,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(Beneath::Rest)
}

/// Whether the directory `dir` is `rootfs` or one of its ancestors (walking up from the rootfs with
/// `..`, comparing device and inode).
fn contains(dir: &OwnedFd, rootfs: &Path) -> Result<bool> {
    let want = sys::fstat(dir)?;
    let Ok(mut cur) = sys::openat2(None, rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0) else {
        return Ok(false);
    };
    for _ in 0..4096 {
        let st = sys::fstat(&cur)?;
        if st.st_dev == want.st_dev && st.st_ino == want.st_ino {
            return Ok(true);
        }
        let up = sys::openat2(
            Some(std::os::fd::AsFd::as_fd(&cur)),
            Path::new(".."),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            0,
        )?;
        let ust = sys::fstat(&up)?;
        if ust.st_dev == st.st_dev && ust.st_ino == st.st_ino {
            return Ok(false);
        }
        cur = up;
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Policy> {
        Policy::parse(s.as_bytes(), Path::new("p.json"))
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse(r#"{"roots":[{"path":"/srv","access":"ro","acess":"rw"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("roots[0]") && e.contains("acess"), "{e}");
    }

    #[test]
    fn relative_and_dotdot_roots_refused() {
        for p in ["srv", "/srv/../etc", "/"] {
            let e = parse(&format!(r#"{{"roots":[{{"path":"{p}","access":"ro"}}]}}"#))
                .unwrap_err()
                .to_string();
            assert!(e.contains("roots[0].path"), "{e}");
        }
    }

    #[test]
    fn overlapping_roots_with_conflicting_rules_refused() {
        let e = parse(
            r#"{"roots":[{"path":"/srv","access":"ro"},{"path":"/srv/data","access":"rw"}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("roots[1].path") && e.contains("overlaps"), "{e}");
        assert!(
            parse(
                r#"{"roots":[{"path":"/srv","access":"ro"},{"path":"/srv/data","access":"ro"}]}"#
            )
            .is_ok()
        );
    }

    #[test]
    fn tenant_roots_must_be_platform_roots() {
        let e = parse(r#"{"roots":[{"path":"/srv","access":"rw"}],"tenants":{"a":{"roots":["/etc"],"access":"ro"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tenants.a.roots[0]"), "{e}");
    }

    #[test]
    fn most_specific_root_wins() {
        let p = parse(
            r#"{"roots":[{"path":"/srv","access":"ro"},{"path":"/srv/data","access":"ro"}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.root_for(Path::new("/srv/data/x")).unwrap().path,
            Path::new("/srv/data")
        );
        assert!(p.root_for(Path::new("/srvx")).is_none());
    }
}
