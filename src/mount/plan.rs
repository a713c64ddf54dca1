//! The mount plan: config.json's `mounts` turned into [`MountOp`]s, purely (no system calls), so every
//! option error is found before a process or a state directory exists, and the logic is unit-tested
//! without root. Order is kept: the runtime-spec says mounts are made in the order listed.

use super::options::{self, Opt};
use crate::error::{Error, Result};
use crate::spec::{IdMapping, Mount};
use crate::sys::{MOUNT_ATTR_RDONLY, MountAttr};
use std::path::{Component, Path, PathBuf};

/// What to mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpKind {
    /// A bind mount of a host path (absolute; relative sources were joined to the bundle).
    Bind {
        /// Host path.
        source: PathBuf,
        /// rbind: the whole tree below the source.
        recursive: bool,
    },
    /// A new filesystem instance (tmpfs, proc, sysfs, devpts, mqueue, cgroup, overlay...).
    Fs {
        /// Filesystem type as fsopen(2) knows it.
        fstype: String,
        /// The `source` parameter, when the filesystem takes one.
        source: Option<String>,
        /// fsconfig parameters: `key` (flag) or `key=value`.
        params: Vec<(String, Option<String>)>,
    },
}

/// One mount to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOp {
    /// Index in config.json's mounts, for messages.
    pub index: usize,
    /// Absolute, normalised path inside the container.
    pub dest: PathBuf,
    /// What.
    pub kind: OpKind,
    /// Attributes of the top mount.
    pub attr: MountAttr,
    /// Attributes of every mount in the tree (the r-options).
    pub rattr: MountAttr,
    /// Propagation to set after attaching, and whether recursively.
    pub propagation: Option<(u64, bool)>,
    /// tmpcopyup: copy what the image has at the destination into the new tmpfs.
    pub copy_up: bool,
    /// An idmapped bind mount or tmpfs.
    pub idmap: Option<Idmap>,
}

/// How a bind mount or tmpfs is idmapped (`mount_setattr(MOUNT_ATTR_IDMAP)` on the detached mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idmap {
    /// Every mount of the tree (`ridmap`), or the top one (`idmap`, or mappings alone; as runc).
    pub recursive: bool,
    /// On-disk ids (`containerID`) shown as `hostID`; empty until [`resolve_idmaps`] fills in the
    /// container's own mappings for an `idmap` option without any.
    pub uid: Vec<IdMapping>,
    /// The same for gids.
    pub gid: Vec<IdMapping>,
    /// The mappings are the container's user namespace's (its fd can be used as is).
    pub from_container: bool,
}

impl MountOp {
    /// The attributes the top mount ends up with, computed as the kernel applies them: the top-only
    /// options first, then the recursive ones over them (`ro` + `rrw` is writable). Policy, `check`,
    /// Landlock and `apply` all read this one result.
    pub fn effective_top(&self) -> MountAttr {
        let (t, r) = (&self.attr, &self.rattr);
        MountAttr {
            attr_set: (t.attr_set & !r.attr_clr) | r.attr_set,
            attr_clr: (t.attr_clr & !r.attr_set) | r.attr_clr,
            ..Default::default()
        }
    }

    /// The top mount is read-only.
    pub fn top_read_only(&self) -> bool {
        self.effective_top().attr_set & MOUNT_ATTR_RDONLY != 0
    }

    /// Every mount of the tree is read-only (the top for a plain bind or a new filesystem; the
    /// recursive attribute for an rbind, whose submounts keep their own flags otherwise).
    pub fn tree_read_only(&self) -> bool {
        match self.kind {
            OpKind::Bind {
                recursive: true, ..
            } => self.rattr.attr_set & MOUNT_ATTR_RDONLY != 0,
            _ => self.top_read_only(),
        }
    }

    /// `mounts[3] (/data)`, for messages.
    pub fn label(&self) -> String {
        format!("mounts[{}] ({})", self.index, self.dest.display())
    }
}

/// Normalises a destination to an absolute path without `.`; `..` is kept for the resolver, which
/// clamps it at the root.
fn normalise(dest: &str) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in Path::new(dest).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::ParentDir => p.push(".."),
            _ => {}
        }
    }
    p
}

/// `dest` with each `..` taken lexically (clamped at `/`, as the resolver clamps it): where the path
/// points when it has no symlink in it. Used for decisions about a destination (is it `/`, is it in an
/// allow-list), never to resolve it.
pub fn lexical(dest: &Path) -> PathBuf {
    let mut p = PathBuf::from("/");
    for c in dest.components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::ParentDir => {
                p.pop();
            }
            _ => {}
        }
    }
    p
}

fn is_bind(m: &Mount) -> bool {
    m.typ.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Plans one mount.
pub fn plan_one(index: usize, m: &Mount, bundle: &Path) -> Result<MountOp> {
    // Made only for a message: plans of thousands of volumes format none.
    let label = || format!("mounts[{index}] ({})", m.destination);
    let bad = |msg: String| Error::InvalidSpec(format!("{}: {msg}", label()));
    if m.destination.is_empty() {
        return Err(bad("destination is empty".into()));
    }
    let dest = normalise(&m.destination);
    if lexical(&dest) == Path::new("/") {
        return Err(bad(format!(
            "destination {:?} is / and would cover the whole rootfs",
            m.destination
        )));
    }
    let bind = is_bind(m);
    let o = parse_options(m, bind, &label)?;
    let kind = kind_of(m, bind, o.recursive, o.params, bundle).map_err(bad)?;
    let (attr, rattr, propagation, copy_up, idmap_opt) =
        (o.attr, o.rattr, o.propagation, o.copy_up, o.idmap);
    if copy_up && !matches!(&kind, OpKind::Fs { fstype, .. } if fstype == "tmpfs") {
        return Err(bad("option \"tmpcopyup\" is for tmpfs mounts only".into()));
    }
    let idmappable = bind || matches!(&kind, OpKind::Fs { fstype, .. } if fstype == "tmpfs");
    let idmap = idmap_of(m, idmap_opt, idmappable).map_err(bad)?;
    Ok(MountOp {
        index,
        dest,
        kind,
        attr,
        rattr,
        propagation,
        copy_up,
        idmap,
    })
}

/// A mount's options, sorted by what they are.
#[derive(Default)]
struct Options {
    idmap: Option<bool>,
    recursive: bool,
    attr: MountAttr,
    rattr: MountAttr,
    propagation: Option<(u64, bool)>,
    params: Vec<(String, Option<String>)>,
    copy_up: bool,
}

/// Sorts `m.options` through the OCI option table: mount attributes (top and recursive),
/// propagation, bind, tmpcopyup, idmap, and the rest as filesystem parameters.
fn parse_options(m: &Mount, bind: bool, label: &dyn Fn() -> String) -> Result<Options> {
    let mut r = Options::default();
    for o in &m.options {
        match options::lookup(o) {
            Some(Opt::Attr {
                set,
                clr,
                recursive: false,
            }) => options::merge(&mut r.attr, set, clr),
            Some(Opt::Attr {
                set,
                clr,
                recursive: true,
            }) => options::merge(&mut r.rattr, set, clr),
            Some(Opt::Propagation { flag, recursive }) => r.propagation = Some((flag, recursive)),
            Some(Opt::Bind(rec)) => r.recursive = rec,
            Some(Opt::CopyUp) => r.copy_up = true,
            Some(Opt::Idmap(rec)) => r.idmap = Some(rec),
            Some(Opt::Ignore) => {}
            Some(Opt::Unsupported(why)) => {
                return Err(Error::NotSupported(format!(
                    "{}: option {o:?}: {why}",
                    label()
                )));
            }
            None if o.is_empty() => {
                return Err(Error::InvalidSpec(format!("{}: empty option", label())));
            }
            // A bind mount makes no filesystem, so filesystem data and superblock options (mode=755,
            // size=, sync) mean nothing to it; runc and crun ignore them too.
            Some(Opt::SuperFlag) | None if bind => {
                crate::logging::debug(&format!(
                    "{}: filesystem option {o:?} ignored on a bind mount",
                    label()
                ));
            }
            Some(Opt::SuperFlag) => r.params.push((o.clone(), None)),
            None => match o.split_once('=') {
                Some((k, v)) => r.params.push((k.to_string(), Some(v.to_string()))),
                None => r.params.push((o.clone(), None)),
            },
        }
    }
    Ok(r)
}

/// A bind of a source (relative to the bundle), or a new filesystem of a type.
fn kind_of(
    m: &Mount,
    bind: bool,
    recursive: bool,
    params: Vec<(String, Option<String>)>,
    bundle: &Path,
) -> std::result::Result<OpKind, String> {
    if bind {
        let src = m
            .source
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or("a bind mount needs a source")?;
        return Ok(OpKind::Bind {
            source: bundle.join(src),
            recursive,
        });
    }
    let fstype = m
        .typ
        .as_deref()
        .filter(|t| !t.is_empty())
        .ok_or("type is missing")?;
    if fstype.contains(['/', '\0']) {
        return Err(format!("type {fstype:?} is not a filesystem name"));
    }
    // cgroup: the unified (v2) hierarchy, read through the container's cgroup namespace; v1
    // hierarchies are not mounted into containers.
    let fstype = if fstype == "cgroup" {
        "cgroup2"
    } else {
        fstype
    };
    // Every filesystem takes `source` (pseudo filesystems only show it in mountinfo, where runc
    // and crun put the spec's source too).
    Ok(OpKind::Fs {
        fstype: fstype.to_string(),
        source: m.source.clone().filter(|s| !s.is_empty()),
        params,
    })
}

/// The idmapping a mount asks for: its own mappings (both, each range valid), or none yet for an
/// `idmap`/`ridmap` option alone (the container's, filled in by [`resolve_idmaps`]).
fn idmap_of(
    m: &Mount,
    opt: Option<bool>,
    idmappable: bool,
) -> std::result::Result<Option<Idmap>, String> {
    let (uid, gid) = (m.uid_mappings.as_ref(), m.gid_mappings.as_ref());
    if opt.is_none() && uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    if !idmappable {
        return Err("idmapped mounts are made of bind mounts and tmpfs only".into());
    }
    let (uid, gid) = match (uid, gid) {
        (None, None) => (Vec::new(), Vec::new()),
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => (u.clone(), g.clone()),
        _ => return Err("uidMappings and gidMappings: an idmapped mount needs both".into()),
    };
    for (field, maps) in [("uidMappings", &uid), ("gidMappings", &gid)] {
        for (i, x) in maps.iter().enumerate() {
            let fits = |start: u32| u64::from(start) + u64::from(x.size) <= u64::from(u32::MAX);
            if x.size == 0 || !fits(x.container_id) || !fits(x.host_id) {
                return Err(format!(
                    "{field}[{i}]: size {} from {} to {} is empty or overflows",
                    x.size, x.container_id, x.host_id
                ));
            }
        }
    }
    Ok(Some(Idmap {
        recursive: opt.unwrap_or(false),
        uid,
        gid,
        from_container: false,
    }))
}

/// Gives an `idmap`/`ridmap` mount without mappings the container's user namespace mappings; without
/// a user namespace of its own such a mount is an error naming it.
pub fn resolve_idmaps(
    ops: &mut [MountOp],
    userns: Option<(&[IdMapping], &[IdMapping])>,
) -> Result<()> {
    for op in ops {
        if !op.idmap.as_ref().is_some_and(|i| i.uid.is_empty()) {
            continue;
        }
        let label = op.label();
        let Some(idmap) = op.idmap.as_mut() else {
            continue;
        };
        let (uid, gid) = userns.ok_or_else(|| {
            Error::InvalidSpec(format!(
                "{label}: idmap without uidMappings/gidMappings takes the container's user namespace mappings, and it has none (linux.namespaces has no new user namespace)"
            ))
        })?;
        idmap.uid = uid.to_vec();
        idmap.gid = gid.to_vec();
        idmap.from_container = true;
    }
    Ok(())
}

/// Plans every mount of the spec, in order.
pub fn plan(mounts: &[Mount], bundle: &Path) -> Result<Vec<MountOp>> {
    mounts
        .iter()
        .enumerate()
        .map(|(i, m)| plan_one(i, m, bundle))
        .collect()
}

/// Plans every mount of a validated spec: [`plan`], then the container's mappings for idmapped mounts
/// that give none (when it makes a user namespace with mappings of its own).
pub fn plan_for(vs: &crate::spec::ValidSpec) -> Result<Vec<MountOp>> {
    let mut ops = plan(&vs.spec.mounts, &vs.bundle)?;
    let l = vs.linux();
    let userns = (!l.uid_mappings.is_empty() && !l.gid_mappings.is_empty())
        .then_some((l.uid_mappings.as_slice(), l.gid_mappings.as_slice()));
    resolve_idmaps(&mut ops, userns)?;
    // linux.mountLabel (only still set when SELinux is on: validate) labels the filesystems berth
    // makes whose files the container uses, unless a mount names its own context.
    if let Some(label) = l.mount_label.as_deref() {
        label_mounts(&mut ops, label);
    }
    Ok(ops)
}

/// Adds `context=label` to the tmpfs, mqueue and devpts mounts that have no SELinux option.
fn label_mounts(ops: &mut [MountOp], label: &str) {
    for op in ops {
        if let OpKind::Fs { fstype, params, .. } = &mut op.kind
            && matches!(fstype.as_str(), "tmpfs" | "mqueue" | "devpts")
            && !params.iter().any(|(k, _)| {
                matches!(
                    k.as_str(),
                    "context" | "fscontext" | "defcontext" | "rootcontext"
                )
            })
        {
            params.push(("context".into(), Some(label.to_string())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::MOUNT_ATTR_NOSUID;

    fn m(dest: &str, typ: Option<&str>, src: &str, opts: &[&str]) -> Mount {
        Mount {
            destination: dest.into(),
            typ: typ.map(Into::into),
            source: Some(src.into()),
            options: opts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn rbind_ro_is_top_only_and_rro_recursive() {
        let op = plan_one(
            0,
            &m("/a", None, "/h", &["rbind", "ro", "rnosuid"]),
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(
            op.kind,
            OpKind::Bind {
                source: "/h".into(),
                recursive: true
            }
        );
        assert_eq!(op.attr.attr_set, MOUNT_ATTR_RDONLY);
        assert_eq!(op.rattr.attr_set, MOUNT_ATTR_NOSUID);
        let op = plan_one(0, &m("/a", Some("bind"), "h", &["rro"]), Path::new("/b")).unwrap();
        assert_eq!(
            op.kind,
            OpKind::Bind {
                source: "/b/h".into(),
                recursive: false
            }
        );
        assert_eq!(op.rattr.attr_set, MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn bind_data_options_are_ignored_and_bad_ones_named() {
        let op = plan_one(
            0,
            &m(
                "/data",
                None,
                "/h",
                &["bind", "mode=755", "size=1m", "sync", "ro"],
            ),
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(op.attr.attr_set, MOUNT_ATTR_RDONLY);
        let e = plan(
            &[
                m("/x", Some("bind"), "/s", &[]),
                m("/data", None, "/h", &["bind", "mand"]),
            ],
            Path::new("/b"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("mounts[1] (/data)") && e.contains("\"mand\""),
            "{e}"
        );
    }

    #[test]
    fn effective_attributes_apply_recursive_over_top() {
        let b = Path::new("/b");
        let op = plan_one(0, &m("/a", None, "/h", &["rbind", "ro", "rrw"]), b).unwrap();
        assert!(!op.top_read_only() && !op.tree_read_only());
        let op = plan_one(0, &m("/a", None, "/h", &["rbind", "rro", "rw"]), b).unwrap();
        assert!(op.top_read_only() && op.tree_read_only());
        let op = plan_one(0, &m("/a", None, "/h", &["rbind", "ro"]), b).unwrap();
        assert!(op.top_read_only() && !op.tree_read_only());
        let op = plan_one(0, &m("/a", None, "/h", &["bind", "ro"]), b).unwrap();
        assert!(op.tree_read_only());
    }

    #[test]
    fn fs_params_and_destination_normalised() {
        let op = plan_one(
            2,
            &m(
                "dev//shm/.",
                Some("tmpfs"),
                "shm",
                &["nosuid", "size=64k", "mode=1777"],
            ),
            Path::new("/b"),
        )
        .unwrap();
        assert_eq!(op.dest, PathBuf::from("/dev/shm"));
        assert_eq!(
            op.kind,
            OpKind::Fs {
                fstype: "tmpfs".into(),
                source: Some("shm".into()),
                params: vec![
                    ("size".into(), Some("64k".into())),
                    ("mode".into(), Some("1777".into()))
                ]
            }
        );
    }

    #[test]
    fn the_mount_label_goes_on_tmpfs_mqueue_and_devpts_without_their_own_context() {
        let mut ops = plan(
            &[
                m("/t", Some("tmpfs"), "t", &[]),
                m("/q", Some("mqueue"), "q", &[]),
                m("/p", Some("devpts"), "p", &["context=own"]),
                m("/proc", Some("proc"), "proc", &[]),
                m("/b", None, "/h", &["bind"]),
            ],
            Path::new("/b"),
        )
        .unwrap();
        label_mounts(&mut ops, "u:r:t:s0");
        let ctx = |i: usize| match &ops[i].kind {
            OpKind::Fs { params, .. } => params
                .iter()
                .filter(|(k, _)| k == "context")
                .map(|(_, v)| v.clone().unwrap_or_default())
                .collect::<Vec<_>>(),
            OpKind::Bind { .. } => Vec::new(),
        };
        assert_eq!(ctx(0), ["u:r:t:s0"]);
        assert_eq!(ctx(1), ["u:r:t:s0"]);
        assert_eq!(ctx(2), ["own"]);
        assert!(ctx(3).is_empty() && ctx(4).is_empty());
    }

    #[test]
    fn root_destination_and_missing_type_refused() {
        for d in ["/", "/..", "/x/..", "x/../..", "/./"] {
            let e = plan_one(0, &m(d, Some("tmpfs"), "t", &[]), Path::new("/b")).unwrap_err();
            assert!(e.to_string().contains("cover the whole rootfs"), "{d}: {e}");
        }
        assert!(plan_one(0, &m("/x", None, "t", &[]), Path::new("/b")).is_err());
        assert!(
            plan_one(0, &m("/x", Some("proc"), "t", &["idmap"]), Path::new("/b"))
                .unwrap_err()
                .to_string()
                .contains("bind mounts and tmpfs only")
        );
        assert!(
            plan_one(0, &m("/x", Some("tmpfs"), "t", &["idmap"]), Path::new("/b"))
                .unwrap()
                .idmap
                .is_some()
        );
    }

    #[test]
    fn idmap_options_mappings_and_the_containers_mappings() {
        let map = |c, h, n| IdMapping {
            container_id: c,
            host_id: h,
            size: n,
        };
        // ridmap is recursive, idmap and mappings alone are not (runc).
        let op = plan_one(
            0,
            &m("/v", None, "/h", &["rbind", "ridmap"]),
            Path::new("/b"),
        )
        .unwrap();
        assert!(op.idmap.as_ref().unwrap().recursive);
        let mut with = m("/v", None, "/h", &["rbind"]);
        with.uid_mappings = Some(vec![map(1000, 100_000, 1)]);
        with.gid_mappings = Some(vec![map(1000, 100_000, 1)]);
        let op = plan_one(0, &with, Path::new("/b")).unwrap();
        let i = op.idmap.unwrap();
        assert!(!i.recursive && i.uid == vec![map(1000, 100_000, 1)] && !i.from_container);
        // Both mappings, valid ranges.
        with.gid_mappings = None;
        let e = plan_one(0, &with, Path::new("/b")).unwrap_err().to_string();
        assert!(
            e.contains("mounts[0] (/v)") && e.contains("needs both"),
            "{e}"
        );
        with.gid_mappings = Some(vec![map(1, u32::MAX, 2)]);
        let e = plan_one(0, &with, Path::new("/b")).unwrap_err().to_string();
        assert!(
            e.contains("gidMappings[0]") && e.contains("overflows"),
            "{e}"
        );
        // An option alone takes the container's mappings, which it must have.
        let mut ops =
            vec![plan_one(0, &m("/v", None, "/h", &["bind", "idmap"]), Path::new("/b")).unwrap()];
        let e = resolve_idmaps(&mut ops, None).unwrap_err().to_string();
        assert!(
            e.contains("mounts[0] (/v)") && e.contains("user namespace"),
            "{e}"
        );
        let c = [map(0, 100_000, 65536)];
        resolve_idmaps(&mut ops, Some((&c, &c))).unwrap();
        let i = ops[0].idmap.as_ref().unwrap();
        assert!(i.from_container && i.uid == c.to_vec());
    }

    #[test]
    fn cgroup_becomes_cgroup2_and_propagation_kept() {
        let op = plan_one(
            0,
            &m(
                "/sys/fs/cgroup",
                Some("cgroup"),
                "cgroup",
                &["ro", "rslave"],
            ),
            Path::new("/b"),
        )
        .unwrap();
        assert!(
            matches!(op.kind, OpKind::Fs { ref fstype, ref source, .. } if fstype == "cgroup2" && source.as_deref() == Some("cgroup"))
        );
        assert_eq!(op.propagation, Some((libc::MS_SLAVE, true)));
    }
}
