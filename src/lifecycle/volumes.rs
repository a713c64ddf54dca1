//! Live volumes: `berth mounts add ID FILE` attaches bind mounts and tmpfs to a running container,
//! `berth mounts remove ID FILE` detaches what `add` attached. The same path as at create, on fds
//! only, with the container presumed hostile:
//!
//! 1. **Checked first**: the mounts are planned as config.json's would be (options, idmaps, the
//!    mount label), and under a host mount policy every source is held to it exactly as at create:
//!    roots, access caps, special files, idmap rules, the tenant (the caller's, which must be the
//!    container's own), `max_volumes` counting the spec's binds and the live ones. Then the policy's
//!    hardening (rro, rnosuid, rnodev). `--dry-run` stops here with `berth check`'s verdicts.
//! 2. **Made on the host's side**: each source opened (beneath its policy root), cloned with
//!    `open_tree(OPEN_TREE_CLONE)`, its attributes set on the detached tree; a tmpfs made with
//!    fsopen/fsmount. Nothing is attached anywhere yet: a berth killed here leaves nothing.
//! 3. **Recorded** as `attaching` in the state directory (durably), with the identity (device,
//!    inode) of each tree's root.
//! 4. **Attached** from inside the container's mount namespace (setns on a pidfd of the init,
//!    checked against its start time): the destination is resolved with `RESOLVE_IN_ROOT` from the
//!    init's root as it is now (/proc/PID/root, opened before), missing directories made inside it
//!    the same way, the destination vetted on its fd (not procfs or sysfs, not a device node, not
//!    the root itself) and the detached tree moved onto that fd. A component the container swaps for
//!    a symlink meanwhile is followed only inside its root; no path string is handed to the kernel.
//!    A failure detaches what this call attached and leaves no record of it.
//! 5. **Recorded** as `attached` with the mount's id (and its never-reused id, Linux 6.8+).
//!
//! `remove` finds a live volume by what was recorded: the kernel's mount table of the init
//! (/proc/PID/mountinfo) gives where mount id N is now, that path is opened inside the root without
//! following any symlink, and the fd is detached only if statx says it is the root of mount N (and
//! of the same never-reused id); it is unmounted through that fd (/proc/self/fd/N of the host's
//! procfs), never through a path the container controls. The spec's own mounts have no record and
//! cannot be removed. A record left `attaching` by a killed `add` is settled by the next `add` or
//! `remove`: the mount at its destination is adopted if its root is the recorded tree's, else the
//! record is dropped.
//!
//! Landlock: a running process's domain cannot be widened. Its rules are inherited by every mount
//! below a directory they cover, so a live volume is readable wherever the process could read, but
//! under a read-only root a writable live volume would not be writable by the processes already
//! running: such an `add` is refused while Landlock confines the container, unless `--exec-only`
//! says that only processes started afterwards by `berth exec` (whose rules are rebuilt from the
//! mount table) need to write there.

use super::Context;
use crate::error::{Context as _, Error, Result, io_err};
use crate::mount::plan::{MountOp, OpKind};
use crate::resolve::Root;
use crate::spec::{LiveVolume, Mount, ValidSpec};
use crate::state::{Container, Saved, Status};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A `mounts add` or `mounts remove` request.
#[derive(Debug, Clone, Default)]
pub struct LiveRequest {
    /// The mounts, as config.json's `mounts` (bind mounts and tmpfs).
    pub mounts: Vec<Mount>,
    /// `--tenant` (else BERTH_TENANT, the orchestrator's annotation, the policy's default).
    pub tenant: Option<String>,
    /// `--exec-only`: under Landlock and a read-only root, a writable volume is for processes
    /// started later by exec.
    pub exec_only: bool,
}

const ATTACHING: &str = "attaching";
const ATTACHED: &str = "attached";

/// A running container as live volumes need it (locked until dropped).
struct Target {
    container: Container,
    saved: Saved,
    vs: ValidSpec,
    live: Vec<LiveVolume>,
}

fn target(ctx: &Context, id: &str) -> Result<Target> {
    if crate::spec::rootless::active() {
        return Err(Error::NotSupported(
            "mounts: live volumes need host root (a rootless berth cannot clone host mounts)"
                .into(),
        ));
    }
    let container = Container::load(&ctx.root, id)?;
    let status = container.status();
    if !matches!(status, Status::Created | Status::Running | Status::Paused) {
        return Err(Error::State(format!(
            "container not running ({id:?} is {})",
            status.as_str()
        )));
    }
    let saved = container
        .saved
        .clone()
        .ok_or_else(|| Error::State("no state".into()))?;
    let config = container.dir.join(crate::state::CONFIG_FILE);
    let bytes = std::fs::read(&config).map_err(|e| io_err("read", &config, e))?;
    let vs = ValidSpec::new(crate::spec::parse(&bytes)?, &saved.bundle)?;
    if vs.joins_mount() {
        return Err(Error::NotSupported(format!(
            "mounts: container {id:?} joined a mount namespace it does not own; live volumes are only attached to a container's own"
        )));
    }
    let live = container.live_volumes();
    Ok(Target {
        container,
        saved,
        vs,
        live,
    })
}

/// The requested mounts as a mount plan: only bind mounts and tmpfs, destinations not already
/// holding a live volume, idmaps taking the container's own mappings, the mount label.
fn plan(t: &Target, mounts: &[Mount]) -> Result<Vec<MountOp>> {
    if mounts.is_empty() {
        return Err(Error::InvalidSpec("mounts: the list is empty".into()));
    }
    if let Some((i, m)) = mounts
        .iter()
        .enumerate()
        .find(|(_, m)| !Path::new(&m.destination).is_absolute())
    {
        return Err(Error::InvalidSpec(format!(
            "mounts[{i}].destination: {:?} is relative; a live volume's destination is an absolute path in the container",
            m.destination
        )));
    }
    let mut ops = crate::mount::plan::plan(mounts, &t.saved.bundle)?;
    for op in &ops {
        if let OpKind::Fs { fstype, .. } = &op.kind
            && fstype != "tmpfs"
        {
            return Err(Error::InvalidSpec(format!(
                "{}: type {fstype}: a live volume is a bind mount or a tmpfs",
                op.label()
            )));
        }
        let dest = crate::mount::plan::lexical(&op.dest);
        let taken = t
            .live
            .iter()
            .any(|v| crate::mount::plan::lexical(&v.destination) == dest);
        let twice = ops
            .iter()
            .any(|o| o.index < op.index && crate::mount::plan::lexical(&o.dest) == dest);
        if taken || twice {
            return Err(Error::InvalidSpec(format!(
                "{}: a live volume is already at {} (remove it first)",
                op.label(),
                dest.display()
            )));
        }
    }
    let l = t.vs.linux();
    let userns = (!l.uid_mappings.is_empty() && !l.gid_mappings.is_empty())
        .then_some((l.uid_mappings.as_slice(), l.gid_mappings.as_slice()));
    crate::mount::plan::resolve_idmaps(&mut ops, userns)?;
    Ok(ops)
}

/// The policy for the container, held to the tenant it was created for; `None` without a policy.
fn enforcer(
    ctx: &Context,
    t: &Target,
    req: &LiveRequest,
) -> Result<Option<crate::policy::Enforcer>> {
    let Some(e) = ctx.enforcer(req.tenant.as_deref(), &t.vs)? else {
        return Ok(None);
    };
    if t.saved.tenant.is_some() && e.tenant != t.saved.tenant {
        return Err(Error::Refused(crate::policy::Refusal::new(
            String::from("mounts"),
            "tenants",
            format!(
                "the container belongs to tenant {:?}; the caller's tenant is {:?}",
                t.saved.tenant.as_deref().unwrap_or_default(),
                e.tenant.as_deref().unwrap_or("none")
            ),
        )));
    }
    Ok(Some(e))
}

/// Bind mounts the container has now: the spec's and the live ones.
fn binds_now(t: &Target) -> usize {
    t.saved.binds + t.live.iter().filter(|v| v.typ == "bind").count()
}

/// `berth mounts add --dry-run`: the verdicts `berth check` gives, for these mounts beside the
/// container's own; nothing is made.
pub fn check_live(ctx: &Context, id: &str, req: &LiveRequest) -> Result<super::CheckReport> {
    let t = target(ctx, id)?;
    let ops = plan(&t, &req.mounts)?;
    let mounts = match enforcer(ctx, &t, req)? {
        Some(e) => e.verdicts_beside(&ops, &t.saved.rootfs, binds_now(&t)),
        None => super::check::no_policy_verdicts(&ops),
    };
    Ok(super::CheckReport {
        mounts,
        bundle: Vec::new(),
    })
}

/// Whether Landlock confines the container's init (what its confinement report says).
fn landlocked(t: &Target) -> bool {
    let path = t.container.dir.join(crate::state::CONFINEMENT_FILE);
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::security::Report>(&b).ok())
        .is_some_and(|r| r.landlock != crate::security::Enforced::Off)
}

/// `berth mounts add`: attaches the mounts to the running container `id`; returns the records.
pub fn add(ctx: &Context, id: &str, req: &LiveRequest) -> Result<Vec<LiveVolume>> {
    let mut t = target(ctx, id)?;
    let mut ops = plan(&t, &req.mounts)?;
    let enforcer = enforcer(ctx, &t, req)?;
    if let Some(e) = &enforcer {
        e.check_beside(&ops, &t.saved.rootfs, binds_now(&t))?;
        e.harden(&mut ops);
    }
    let blind = landlocked(&t) && t.saved.root_readonly && !req.exec_only;
    if let Some(op) = ops.iter().find(|op| blind && !op.top_read_only()) {
        return Err(Error::Refused(crate::policy::Refusal::new(
            op.label(),
            "landlock",
            "Landlock confines the container's running processes to reading beneath a read-only root, so they could not write to a writable live volume: add it read-only, or pass --exec-only for processes started later by berth exec",
        )));
    }
    let init = Init::open(&t.saved)?;
    // 2. The trees, made on the host's side; nothing is attached yet.
    let vetted = enforcer.as_ref().map(|enforcer| crate::policy::Vetted {
        enforcer,
        rootfs: &t.saved.rootfs,
    });
    let sources: &dyn crate::mount::apply::OpenSource = match &vetted {
        Some(v) => v,
        None => &crate::mount::apply::HostPath,
    };
    let mut usernses = crate::mount::idmap::Usernses::new(init.userns()?);
    let mut trees = Vec::with_capacity(ops.len());
    for op in &ops {
        let tree = crate::mount::apply::detached_tree(op, sources, &mut usernses)
            .map_err(|e| crate::mount::apply::explain(None, op, e))
            .with_context(|| op.label())?;
        trees.push(tree);
    }
    // 3. Recorded as attaching, with each tree's root.
    let mut records = Vec::with_capacity(ops.len());
    for ((op, m), tree) in ops.iter().zip(&req.mounts).zip(&trees) {
        let st = sys::fstat(tree)?;
        records.push(LiveVolume {
            destination: PathBuf::from(&m.destination),
            typ: if matches!(op.kind, OpKind::Bind { .. }) {
                "bind".into()
            } else {
                "tmpfs".into()
            },
            source: m.source.clone(),
            options: m.options.clone(),
            status: ATTACHING.into(),
            root_dev: st.st_dev,
            root_ino: st.st_ino,
            ..LiveVolume::default()
        });
    }
    let before = t.live.len();
    t.live.extend(records.iter().cloned());
    t.container.save_live_volumes(&t.live)?;
    // 4. Attached inside the container's mount namespace.
    let attached = init.inside(|root, fd_dir| {
        settle(&mut t.live[..before], root, &init)?;
        attach_all(root, fd_dir, &ops, trees)
    });
    match attached {
        Ok(ids) => {
            for (v, id) in t.live[before..].iter_mut().zip(ids) {
                v.status = ATTACHED.into();
                v.mount_id = id.id;
                v.mount_id_unique = id.unique;
            }
            t.container.save_live_volumes(&t.live)?;
            Ok(t.live[before..].to_vec())
        }
        Err(e) => {
            t.live.truncate(before);
            if let Err(e2) = t.container.save_live_volumes(&t.live) {
                crate::logging::warn(&format!("mounts add: recording the failure: {e2}"));
            }
            Err(e)
        }
    }
}

/// Attaches each tree at its destination in `root`; on a failure detaches those this call
/// attached. Returns the mounts' ids.
fn attach_all(
    root: &Root,
    fd_dir: &OwnedFd,
    ops: &[MountOp],
    trees: Vec<OwnedFd>,
) -> Result<Vec<sys::MountOf>> {
    let mut env = crate::mount::apply::Env {
        sources: &crate::mount::apply::HostPath,
        made: ops.iter().map(|op| op.index).zip(trees).collect(),
        early: Default::default(),
        usernses: Default::default(),
        dests: Default::default(),
        closer: Default::default(),
        root_special: None,
        cgroup_v1: Vec::new(),
        cgroup_v2_bind: None,
    };
    let mut done: Vec<OwnedFd> = Vec::new();
    let mut ids = Vec::new();
    for op in ops {
        let r = crate::mount::apply::apply_one(root, op, &mut env)
            .and_then(|(mnt, _)| Ok((sys::mount_of(&mnt)?, mnt)));
        match r {
            Ok((id, mnt)) => {
                ids.push(id);
                done.push(mnt);
            }
            Err(e) => {
                for mnt in done.iter().rev() {
                    if let Err(e2) = detach(fd_dir, mnt) {
                        crate::logging::warn(&format!("mounts add: undoing: {e2}"));
                    }
                }
                return Err(e);
            }
        }
    }
    env.closer.flush();
    Ok(ids)
}

/// Unmounts (MNT_DETACH) the mount whose root `mnt` is, through the fd itself: the magic link
/// /proc/self/fd/N of the host's procfs (`fd_dir`, opened before entering the container's
/// namespace), never a path the container controls.
fn detach(fd_dir: &OwnedFd, mnt: &OwnedFd) -> Result<()> {
    nix::unistd::fchdir(fd_dir.as_raw_fd()).map_err(|e| Error::sys("fchdir(/proc/self/fd)", e))?;
    let name = mnt.as_raw_fd().to_string();
    nix::mount::umount2(name.as_str(), nix::mount::MntFlags::MNT_DETACH)
        .map_err(|e| Error::sys(format!("umount2(/proc/self/fd/{name}, MNT_DETACH)"), e))
}

/// The init of the container, held by a pidfd checked against its start time, with its root and
/// the host's /proc/self/fd opened before anything enters its namespace.
struct Init {
    pid: i32,
    pidfd: OwnedFd,
    root: OwnedFd,
    fd_dir: OwnedFd,
    /// /proc/PID of the host's procfs (its mountinfo is read from inside the namespace too).
    proc_dir: OwnedFd,
    own_userns: bool,
}

impl Init {
    fn open(saved: &Saved) -> Result<Init> {
        let pid = saved.pid;
        // No process of the container may open this one's fds (the detached trees, the root)
        // through /proc while it works in the container's namespace.
        sys::set_non_dumpable()?;
        let pidfd = sys::pidfd_open(pid).with_context(|| "opening the container's init".into())?;
        let path = |p: String| PathBuf::from(p);
        let root = sys::openat2(
            None,
            &path(format!("/proc/{pid}/root")),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )?;
        let fd_dir = sys::openat2(
            None,
            Path::new("/proc/thread-self/fd"),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )?;
        let proc_dir = sys::openat2(
            None,
            &path(format!("/proc/{pid}")),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )?;
        // Opened after the pidfd and the root: the pid is still the container's init.
        if sys::process_start_time(pid) != Some(saved.start_time) {
            return Err(Error::State(
                "container not running (its init is gone)".into(),
            ));
        }
        let ns = |n: &str| std::fs::metadata(format!("/proc/{pid}/ns/{n}")).ok();
        let own_userns = match (ns("user"), std::fs::metadata("/proc/self/ns/user").ok()) {
            (Some(a), Some(b)) => {
                use std::os::unix::fs::MetadataExt;
                a.ino() != b.ino()
            }
            _ => false,
        };
        Ok(Init {
            pid,
            pidfd,
            root,
            fd_dir,
            proc_dir,
            own_userns,
        })
    }

    /// The init's user namespace when it has one of its own (for idmaps taking its mappings).
    fn userns(&self) -> Result<Option<OwnedFd>> {
        if !self.own_userns {
            return Ok(None);
        }
        let p = PathBuf::from(format!("/proc/{}/ns/user", self.pid));
        Ok(Some(sys::openat2(
            None,
            &p,
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
            0,
        )?))
    }

    /// Runs `f` inside the init's mount namespace with its root.
    fn inside<T>(&self, f: impl FnOnce(&Root, &OwnedFd) -> Result<T>) -> Result<T> {
        let root = Root::from_fd(
            self.root
                .try_clone()
                .map_err(|e| io_err("dup", Path::new("root"), e))?,
            format!("/proc/{}/root", self.pid),
        );
        crate::process::inside_mount_ns(self.pidfd.as_fd(), "pidfd of the init", || {
            f(&root, &self.fd_dir)
        })
    }

    /// Where mount `id` is mounted now, as the init sees it (its mountinfo, read on the host's
    /// procfs), or None when the container has no such mount.
    fn mount_point(&self, id: u64) -> Result<Option<PathBuf>> {
        let path = PathBuf::from(format!("/proc/{}/mountinfo", self.pid));
        let fd = sys::openat2(
            Some(self.proc_dir.as_fd()),
            Path::new("mountinfo"),
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )?;
        // Bytes, not text: a mount made inside the container may be named with bytes that are not
        // UTF-8, and must neither fail this read nor be found under another name.
        let info =
            sys::read_proc_file(std::fs::File::from(fd)).map_err(|e| io_err("read", &path, e))?;
        Ok(info.split(|&b| b == b'\n').find_map(|l| {
            let mut f = l.split(|&b| b == b' ');
            let this: u64 = std::str::from_utf8(f.next()?).ok()?.parse().ok()?;
            let at = f.nth(3)?;
            (this == id).then(|| unescape(at))
        }))
    }
}

/// mountinfo's octal escapes (`\040` for a space) undone, the path's bytes as they are.
fn unescape(b: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) if b[i] == b'\\' => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            _ => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Opens the live volume `v` inside `root` by what was recorded: where the kernel says mount
/// `v.mount_id` is, opened without following any symlink, and only if statx says the fd is the root
/// of that very mount. None when the container has no such mount any more.
fn find(v: &LiveVolume, root: &Root, init: &Init) -> Result<Option<OwnedFd>> {
    // A container renaming directories meanwhile can make the path stale: asked again (a container
    // swapping a directory in a tight loop is caught between two swaps within a few hundred tries).
    for _ in 0..1000 {
        let Some(at) = init.mount_point(v.mount_id)? else {
            return Ok(None);
        };
        let Ok(fd) = root.open_no_symlinks(&at, libc::O_PATH | libc::O_CLOEXEC) else {
            continue;
        };
        let m = sys::mount_of(&fd)?;
        let same = m.id == v.mount_id
            && (v.mount_id_unique.is_none() || m.unique == v.mount_id_unique)
            && m.is_root != Some(false)
            && (m.dev, m.ino) == (v.root_dev, v.root_ino);
        if same {
            return Ok(Some(fd));
        }
    }
    Err(Error::State(format!(
        "live volume {}: mount {} is not where the kernel says it is (the container keeps moving it, or covered it with a mount of its own)",
        v.destination.display(),
        v.mount_id
    )))
}

/// Settles records a killed `add` left `attaching`: adopted (with the mount's ids) when the mount
/// at the recorded destination is the root of the recorded tree, else marked for dropping (an
/// empty status).
fn settle(live: &mut [LiveVolume], root: &Root, _init: &Init) -> Result<()> {
    for v in live.iter_mut().filter(|v| v.status == ATTACHING) {
        let found = root
            .open_no_symlinks(&v.destination, libc::O_PATH | libc::O_CLOEXEC)
            .ok()
            .and_then(|fd| sys::mount_of(&fd).ok())
            .filter(|m| m.is_root != Some(false) && (m.dev, m.ino) == (v.root_dev, v.root_ino));
        match found {
            Some(m) => {
                v.status = ATTACHED.into();
                v.mount_id = m.id;
                v.mount_id_unique = m.unique;
            }
            None => v.status = String::new(),
        }
    }
    Ok(())
}

/// `berth mounts remove`: detaches the live volumes at the requested destinations (only those
/// `add` attached); returns what was removed.
pub fn remove(ctx: &Context, id: &str, req: &LiveRequest) -> Result<Vec<LiveVolume>> {
    let mut t = target(ctx, id)?;
    if req.mounts.is_empty() {
        return Err(Error::InvalidSpec("mounts: the list is empty".into()));
    }
    let mut wanted = Vec::new();
    for (i, m) in req.mounts.iter().enumerate() {
        let dest = crate::mount::plan::lexical(Path::new(&m.destination));
        let Some(at) = t
            .live
            .iter()
            .position(|v| crate::mount::plan::lexical(&v.destination) == dest)
        else {
            return Err(Error::InvalidSpec(format!(
                "mounts[{i}] ({}): no live volume there (only volumes `berth mounts add` attached can be removed; the spec's own mounts cannot)",
                dest.display()
            )));
        };
        wanted.push(at);
    }
    let init = Init::open(&t.saved)?;
    let live = &mut t.live;
    let result = init.inside(|root, fd_dir| {
        settle(live, root, &init)?;
        for &at in &wanted {
            let v = &live[at];
            if v.status == ATTACHED
                && let Some(fd) = find(v, root, &init)?
            {
                detach(fd_dir, &fd)
                    .with_context(|| format!("live volume {}", v.destination.display()))?;
            }
            live[at].status = String::new();
        }
        Ok(())
    });
    let removed: Vec<LiveVolume> = wanted.iter().map(|&at| t.live[at].clone()).collect();
    t.live.retain(|v| !v.status.is_empty());
    t.container.save_live_volumes(&t.live)?;
    result?;
    Ok(removed
        .into_iter()
        .map(|mut v| {
            v.status = "removed".into();
            v
        })
        .collect())
}
