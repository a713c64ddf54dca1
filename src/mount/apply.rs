//! Performs a mount plan inside the container's mount namespace, on file descriptors only.
//!
//! Bind: the source is opened once (O_PATH), cloned into a detached tree with
//! `open_tree(OPEN_TREE_CLONE [| AT_RECURSIVE])`, its attributes set on the detached tree with
//! `mount_setattr` (attributes are only ever added or cleared as asked, so flags the kernel locked on the
//! source, e.g. nodev from a user namespace, are kept), and attached with `move_mount` onto the fd of the
//! destination that [`Root`] resolved inside the rootfs. Other filesystems go through
//! fsopen → fsconfig → fsmount → move_mount. No path string is ever handed to the kernel to mount on, so
//! a symlink swapped into the rootfs after resolution has nothing to redirect (runc CVE-2021-30465
//! class). Each fd is dropped as soon as its mount is attached, so the number of mounts is not bounded
//! by RLIMIT_NOFILE.

use super::idmap::Usernses;
use super::plan::{MountOp, OpKind};
use crate::error::{Context, Error, Result};
use crate::resolve::{Kind, ParentCache, Root};
use crate::sys::{self, FsContext, MountAttr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// A detached copy of the mount tree at `src` (only its top mount unless `recursive`).
pub fn clone_tree(src: impl AsFd, recursive: bool) -> Result<OwnedFd> {
    let flags = sys::OPEN_TREE_CLONE
        | if recursive {
            libc::AT_RECURSIVE as u32
        } else {
            0
        };
    Ok(sys::open_tree(src, flags)?)
}

fn set_attrs(tree: &OwnedFd, op: &MountOp) -> Result<()> {
    if op.attr != MountAttr::default() {
        sys::mount_setattr(tree, false, &op.attr)?;
    }
    if op.rattr != MountAttr::default() {
        sys::mount_setattr(tree, true, &op.rattr)?;
    }
    Ok(())
}

/// Where bind sources come from: opened as an fd that is then cloned and mounted, so whoever vets
/// a source (the host mount policy) vets the very fd that is mounted. `mount/` depends on no policy.
pub trait OpenSource {
    /// Opens the source of the bind mount `op` (O_PATH).
    fn open_source(&self, op: &MountOp, source: &std::path::Path) -> Result<OwnedFd>;

    /// A detached clone of the source's tree: of the fd [`OpenSource::open_source`] vetted.
    fn clone_source(
        &self,
        op: &MountOp,
        source: &std::path::Path,
        recursive: bool,
    ) -> Result<OwnedFd> {
        let src = self.open_source(op, source)?;
        clone_tree(&src, recursive)
    }
}

/// Sources opened as the bundle names them (no policy: plain OCI behaviour).
#[derive(Debug, Clone, Copy)]
pub struct HostPath;

impl OpenSource for HostPath {
    fn open_source(&self, _op: &MountOp, source: &std::path::Path) -> Result<OwnedFd> {
        Ok(sys::openat2(None, source, libc::O_PATH, 0, 0)?)
    }

    /// With nothing to vet, the tree is cloned straight from the path (one syscall, no O_PATH fd).
    fn clone_source(
        &self,
        _op: &MountOp,
        source: &std::path::Path,
        recursive: bool,
    ) -> Result<OwnedFd> {
        let rec = if recursive {
            libc::AT_RECURSIVE as u32
        } else {
            0
        };
        Ok(sys::open_tree_path(source, sys::OPEN_TREE_CLONE | rec)?)
    }
}

/// The detached, configured mount of `op`, not attached anywhere yet: a bind mount's tree, or a
/// tmpfs (idmapped when asked). The parent makes these for a container in a new user namespace, whose root may not
/// reach bind sources, and whose own tmpfs could only be idmapped with a namespace it does not own;
/// see process::spawn.
pub fn detached_tree(
    op: &MountOp,
    sources: &dyn OpenSource,
    usernses: &mut Usernses,
) -> Result<OwnedFd> {
    let tree = match &op.kind {
        OpKind::Bind { source, recursive } => {
            let tree = sources.clone_source(op, source, *recursive)?;
            set_attrs(&tree, op)?;
            tree
        }
        OpKind::Fs {
            fstype,
            source,
            params,
        } if fstype == "tmpfs" => make_fs(
            fstype,
            source.as_deref(),
            params,
            op.effective_top().attr_set,
        )?,
        OpKind::Fs { .. } => {
            return Err(Error::State(format!(
                "{}: not a bind mount or tmpfs",
                op.label()
            )));
        }
    };
    usernses.apply(&tree, op)?;
    Ok(tree)
}

/// What mounts are made from, beyond the plan.
#[allow(missing_debug_implementations)]
pub struct Env<'a> {
    /// Where bind sources come from.
    pub sources: &'a dyn OpenSource,
    /// Detached mounts the parent made ([`detached_tree`]), by mount index.
    pub made: std::collections::HashMap<usize, OwnedFd>,
    /// Those of `made` cloned early (peers of their sources, see process::init): cloned once more
    /// when their turn comes, so that mount ids, and so the order of mountinfo, follow the spec.
    pub early: std::collections::HashSet<usize>,
    /// The user namespaces of idmapped binds made here.
    pub usernses: Usernses,
    /// The parent directory destinations were last created in.
    pub dests: ParentCache,
    /// Fds of attached mounts and their destinations, closed in batches.
    pub closer: sys::FdBatch,
    /// Whether the rootfs is on procfs or sysfs (asked once: a destination on the rootfs's own
    /// filesystem needs no fstatfs of its own).
    pub root_special: Option<bool>,
    /// On a cgroup v1 host: the container's directory in each hierarchy, by name (`memory`,
    /// `cpu,cpuacct`); a `cgroup` mount becomes a tmpfs with each of them bound in, as runc does.
    pub cgroup_v1: Vec<(String, std::path::PathBuf)>,
    /// On cgroup v2 without a cgroup namespace: the container's cgroup directory, bound (read-only
    /// unless asked rw) where the spec mounts cgroup, so it sees its own cgroup and not the host's.
    pub cgroup_v2_bind: Option<std::path::PathBuf>,
}

fn bind(root: &Root, op: &MountOp, env: &mut Env<'_>) -> Result<(OwnedFd, bool)> {
    let tree = match env.made.remove(&op.index) {
        Some(t) if env.early.contains(&op.index) => {
            // A clone of the early clone: the same peer group and attributes, a mount id of now.
            // A kernel that cannot clone a detached mount gets the early clone
            // itself, listed earlier in mountinfo than its turn.
            let recursive = matches!(
                op.kind,
                OpKind::Bind {
                    recursive: true,
                    ..
                }
            );
            clone_tree(&t, recursive).unwrap_or(t)
        }
        Some(t) => t,
        None => detached_tree(op, env.sources, &mut env.usernses)?,
    };
    // The source's kind is asked only when the destination must be created; once attached, the
    // destination's kind is the source's.
    let mut kind = || {
        Ok(
            if sys::fstat(&tree)?.st_mode & libc::S_IFMT == libc::S_IFDIR {
                Kind::Dir
            } else {
                Kind::File
            },
        )
    };
    let (dest, st) = root.open_or_create_stat(&op.dest, &mut kind, &mut env.dests)?;
    check_destination(root, op, &dest, &st, &mut env.root_special)?;
    sys::move_mount(&tree, &dest)?;
    env.closer.defer(dest);
    Ok((tree, st.st_mode & libc::S_IFMT == libc::S_IFDIR))
}

fn new_fs(
    root: &Root,
    op: &MountOp,
    fstype: &str,
    source: Option<&str>,
    params: &[(String, Option<String>)],
    env: &mut Env<'_>,
) -> Result<OwnedFd> {
    if fstype == "cgroup2" && !env.cgroup_v1.is_empty() {
        return cgroup_v1_tree(root, op, &env.cgroup_v1);
    }
    if let Some(mnt) = env.made.remove(&op.index) {
        return attach_fs(root, op, fstype, mnt);
    }
    if op.idmap.is_some() {
        let mnt = detached_tree(op, env.sources, &mut env.usernses)?;
        return attach_fs(root, op, fstype, mnt);
    }
    let mnt = match make_fs(fstype, source, params, op.effective_top().attr_set) {
        // cgroup2 in a user namespace without a cgroup namespace of its own is refused; as runc, the
        // container gets a read-only stand-in rather than no container at all.
        Err(e) if fstype == "cgroup2" && e.errno == nix::errno::Errno::EPERM => {
            crate::logging::debug(&format!(
                "{}: {e}; an empty read-only tmpfs stands in",
                op.label()
            ));
            make_fs(
                "tmpfs",
                Some("cgroup"),
                &[("mode".into(), Some("0555".into()))],
                op.effective_top().attr_set | sys::MOUNT_ATTR_RDONLY,
            )?
        }
        r => r?,
    };
    attach_fs(root, op, fstype, mnt)
}

/// Attaches the new filesystem `mnt` at the destination (tmpcopyup first).
fn attach_fs(root: &Root, op: &MountOp, fstype: &str, mnt: OwnedFd) -> Result<OwnedFd> {
    let dest = if matches!(fstype, "proc" | "sysfs") {
        // proc and sysfs only onto real directories: a symlink here is refused, not followed.
        drop(root.mkdir_all(&op.dest)?);
        root.open_no_symlinks(&op.dest, libc::O_PATH | libc::O_DIRECTORY)
            .with_context(|| {
                format!("{fstype} must be mounted on a real directory, not through a symlink")
            })?
    } else {
        root.mkdir_all(&op.dest)?
    };
    check_destination(root, op, &dest, &sys::fstat(&dest)?, &mut None)?;
    if op.copy_up {
        let given = match &op.kind {
            OpKind::Fs { params, .. } => super::copyup::Given::of(params),
            OpKind::Bind { .. } => super::copyup::Given::default(),
        };
        super::copyup::copy_up(&dest, &mnt, given).with_context(|| "tmpcopyup".into())?;
    }
    sys::move_mount(&mnt, &dest)?;
    Ok(mnt)
}

/// cgroup v2 without a cgroup namespace: the container's own cgroup directory bound in.
fn cgroup_v2_bind(root: &Root, op: &MountOp, host: &std::path::Path) -> Result<OwnedFd> {
    let src = sys::openat2(None, host, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
    let tree = clone_tree(&src, false)?;
    let attr = MountAttr {
        attr_set: op.effective_top().attr_set
            | sys::MOUNT_ATTR_NOSUID
            | sys::MOUNT_ATTR_NODEV
            | sys::MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    sys::mount_setattr(&tree, false, &attr)?;
    let dest = root.mkdir_all(&op.dest)?;
    check_destination(root, op, &dest, &sys::fstat(&dest)?, &mut None)?;
    sys::move_mount(&tree, &dest)?;
    Ok(tree)
}

/// cgroup v1: a tmpfs at the destination with the container's directory of each hierarchy bound in
/// (read-only unless the mount asks rw), and a link for each controller of a combined hierarchy.
fn cgroup_v1_tree(
    root: &Root,
    op: &MountOp,
    dirs: &[(String, std::path::PathBuf)],
) -> Result<OwnedFd> {
    let attr = op.effective_top().attr_set;
    let tmpfs = make_fs(
        "tmpfs",
        Some("cgroup"),
        &[("mode".into(), Some("0755".into()))],
        attr & !sys::MOUNT_ATTR_RDONLY,
    )?;
    for (name, host) in dirs {
        nix::sys::stat::mkdirat(
            Some(std::os::fd::AsRawFd::as_raw_fd(&tmpfs)),
            name.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .map_err(|e| Error::sys(format!("mkdirat(cgroup/{name})"), e))?;
        let dest = sys::openat2(
            Some(tmpfs.as_fd()),
            std::path::Path::new(name),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )?;
        let src = sys::openat2(None, host, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        let tree = clone_tree(&src, false)?;
        let ro = MountAttr {
            attr_set: attr
                | sys::MOUNT_ATTR_NOSUID
                | sys::MOUNT_ATTR_NODEV
                | sys::MOUNT_ATTR_NOEXEC,
            ..Default::default()
        };
        sys::mount_setattr(&tree, false, &ro)?;
        sys::move_mount(&tree, &dest)?;
        if name.contains(',') {
            for c in name.split(',') {
                let _ = nix::unistd::symlinkat(
                    name.as_str(),
                    Some(std::os::fd::AsRawFd::as_raw_fd(&tmpfs)),
                    c,
                );
            }
        }
    }
    if attr & sys::MOUNT_ATTR_RDONLY != 0 {
        let ro = MountAttr {
            attr_set: sys::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        sys::mount_setattr(&tmpfs, false, &ro)?;
    }
    let dest = root.mkdir_all(&op.dest)?;
    check_destination(root, op, &dest, &sys::fstat(&dest)?, &mut None)?;
    sys::move_mount(&tmpfs, &dest)?;
    Ok(tmpfs)
}

fn make_fs(
    fstype: &str,
    source: Option<&str>,
    params: &[(String, Option<String>)],
    attr: u64,
) -> std::result::Result<OwnedFd, crate::error::SysError> {
    let ctx = FsContext::open(fstype)?;
    if let Some(s) = source {
        ctx.set("source", Some(s))?;
    }
    for (k, v) in params {
        ctx.set(k, v.as_deref())?;
    }
    ctx.mount(attr)
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;
const SYSFS_MAGIC: i64 = 0x6265_6572;

/// Files under /proc a spec may bind over (lxcfs and friends); the list runc settled on after
/// CVE-2019-19921. Everything else in procfs is refused as a destination.
const PROC_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

fn file_kind(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFSOCK => "a socket",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFLNK => "a symlink",
        _ => "not a file or directory",
    }
}

/// What a destination may be, checked on the fd that will be mounted on:
/// - a directory or a regular file (never a FIFO, socket, device node or symlink left in the image);
/// - not inside procfs or sysfs (where a mount can hide or redirect kernel interfaces, runc
///   CVE-2019-19921 and the 2025 /proc CVEs), except the few files in [`PROC_ALLOWED`] and the cgroup
///   mount under /sys/fs/cgroup, and then only when the path has no symlink in it.
fn check_destination(
    root: &Root,
    op: &MountOp,
    dest: &OwnedFd,
    st: &libc::stat,
    root_special: &mut Option<bool>,
) -> Result<()> {
    let root_id = root.id()?;
    if (st.st_dev, st.st_ino) == root_id {
        return Err(Error::SafetyViolation(
            "the destination resolves to the rootfs itself; a mount there would cover it".into(),
        ));
    }
    let t = st.st_mode & libc::S_IFMT;
    if t != libc::S_IFDIR && t != libc::S_IFREG {
        return Err(Error::SafetyViolation(format!(
            "the destination is {} in the image; refusing to mount on it",
            file_kind(st.st_mode)
        )));
    }
    let fstype = |fd: BorrowedFd<'_>, what: &Path| -> Result<i64> {
        Ok(nix::sys::statfs::fstatfs(fd)
            .map_err(|e| Error::sys(format!("fstatfs({})", what.display()), e))?
            .filesystem_type()
            .0 as i64)
    };
    // On the rootfs's own filesystem (same device), the answer is the rootfs's, asked once.
    if st.st_dev == root_id.0 {
        let special = match *root_special {
            Some(s) => s,
            None => {
                let fs = fstype(root.fd(), Path::new("/"))?;
                *root_special.insert(fs == PROC_SUPER_MAGIC || fs == SYSFS_MAGIC)
            }
        };
        if !special {
            return Ok(());
        }
    }
    let fs = fstype(dest.as_fd(), &op.dest)?;
    if fs != PROC_SUPER_MAGIC && fs != SYSFS_MAGIC {
        return Ok(());
    }
    // Decided on where the path really points (`..` taken, and no symlink on the way, checked below),
    // never on the raw string: `/sys/fs/cgroup/../../kernel` is /sys/kernel.
    let at = super::plan::lexical(&op.dest);
    let allowed = if fs == PROC_SUPER_MAGIC {
        PROC_ALLOWED.iter().any(|p| at == std::path::Path::new(p))
    } else {
        at.starts_with("/sys/fs/cgroup")
    };
    // The allow-list speaks of real paths: the destination must be reached without any symlink.
    let literal = root
        .open_no_symlinks(&op.dest, libc::O_PATH)
        .ok()
        .and_then(|fd| sys::fstat(&fd).ok())
        .is_some_and(|s| s.st_ino == st.st_ino && s.st_dev == st.st_dev);
    if allowed && literal {
        Ok(())
    } else {
        Err(Error::SafetyViolation(format!(
            "the destination resolves into {}; mounts there are refused",
            if fs == PROC_SUPER_MAGIC {
                "procfs"
            } else {
                "sysfs"
            }
        )))
    }
}

/// The likely cause of a failed mount, put before the failed call so the one line an orchestrator
/// shows (a kubelet event) says it: a destination component that is a file (ENOTDIR), a flag the
/// host set on a bind's source that a container with its own user namespace cannot clear (EPERM).
/// `root` is the container's root when the destination was being resolved in it.
pub fn explain(root: Option<&Root>, op: &MountOp, e: Error) -> Error {
    let cause = match e.errno() {
        Some(nix::errno::Errno::ENOTDIR) => root.and_then(|r| file_in_the_way(r, &op.dest)),
        Some(nix::errno::Errno::EPERM) => locked_flags(op),
        Some(nix::errno::Errno::EROFS) => Some(
            "the mount point is missing and its parent directory is on a read-only filesystem (such as a read-only root), so it cannot be made: mount on a directory or file that exists"
                .into(),
        ),
        _ => None,
    };
    match cause {
        Some(c) => e.within(c),
        None => e,
    }
}

/// The first component of `dest` that exists inside `root` and is not a directory.
fn file_in_the_way(root: &Root, dest: &Path) -> Option<String> {
    let mut prefix = std::path::PathBuf::new();
    let parts: Vec<_> = dest.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        prefix.push(c);
        if prefix.as_os_str() == "/" {
            continue;
        }
        let st = root
            .open_at(&prefix, libc::O_PATH)
            .ok()
            .and_then(|fd| sys::fstat(&fd).ok())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Some(format!(
                "{} in the rootfs is a file, not a directory, so nothing can be mounted below it",
                prefix.display()
            ));
        }
    }
    None
}

/// For a bind asking to clear flags (`suid`, `dev`, `exec`, `rw`, atime options): which of them the
/// host's mount of the source has, which the kernel locks for a less privileged mount namespace.
fn locked_flags(op: &MountOp) -> Option<String> {
    let OpKind::Bind { source, .. } = &op.kind else {
        return None;
    };
    let clr = op.attr.attr_clr | op.rattr.attr_clr;
    let st = nix::sys::statvfs::statvfs(source.as_path()).ok()?;
    use nix::sys::statvfs::FsFlags;
    let host: Vec<&str> = [
        (sys::MOUNT_ATTR_RDONLY, FsFlags::ST_RDONLY, "ro (option rw)"),
        (
            sys::MOUNT_ATTR_NOSUID,
            FsFlags::ST_NOSUID,
            "nosuid (option suid)",
        ),
        (
            sys::MOUNT_ATTR_NODEV,
            FsFlags::ST_NODEV,
            "nodev (option dev)",
        ),
        (
            sys::MOUNT_ATTR_NOEXEC,
            FsFlags::ST_NOEXEC,
            "noexec (option exec)",
        ),
    ]
    .iter()
    .filter(|(bit, flag, _)| clr & bit != 0 && st.flags().contains(*flag))
    .map(|(_, _, what)| *what)
    .collect();
    (!host.is_empty()).then(|| {
        format!(
            "the host mounts the source {} {}, and a container with a user namespace of its own cannot clear a flag the host set (the kernel locks it): drop the option",
            source.display(),
            host.join(", ")
        )
    })
}

/// Makes one mount; returns the fd of the attached mount and whether it is a directory.
pub fn apply_one(root: &Root, op: &MountOp, env: &mut Env<'_>) -> Result<(OwnedFd, bool)> {
    let (mnt, dir) = match &op.kind {
        OpKind::Bind { .. } => bind(root, op, env),
        OpKind::Fs { fstype, .. } if fstype == "cgroup2" && env.cgroup_v2_bind.is_some() => {
            let host = env.cgroup_v2_bind.clone().unwrap_or_default();
            cgroup_v2_bind(root, op, &host).map(|m| (m, true))
        }
        OpKind::Fs {
            fstype,
            source,
            params,
        } => new_fs(root, op, fstype, source.as_deref(), params, env).map(|m| (m, true)),
    }
    .map_err(|e| explain(Some(root), op, e))
    .with_context(|| op.label())?;
    if let Some((flag, recursive)) = op.propagation {
        let attr = MountAttr {
            propagation: flag,
            ..Default::default()
        };
        sys::mount_setattr(&mnt, recursive, &attr).with_context(|| op.label())?;
    }
    Ok((mnt, dir))
}

/// Makes every mount in order (binds from `env.made`, the trees the parent made, when there is one),
/// calling `mounted` with each one as attached (its fd, whether it is a directory) before the fd is
/// closed (in batches). Returns the root of the tmpfs mounted on /dev, if the plan has one, so that /dev is
/// populated through that fd rather than through a path.
pub fn apply_all(
    root: &Root,
    ops: &[MountOp],
    env: &mut Env<'_>,
    mounted: &mut dyn FnMut(&MountOp, &OwnedFd, bool) -> Result<()>,
) -> Result<Option<OwnedFd>> {
    let mut dev = None;
    for op in ops {
        let (mnt, dir) = apply_one(root, op, env)?;
        env.dests.mounted_at(&op.dest);
        mounted(op, &mnt, dir).with_context(|| op.label())?;
        let is_dev_tmpfs = matches!(&op.kind, OpKind::Fs { fstype, .. } if fstype == "tmpfs")
            && op.dest == std::path::Path::new("/dev");
        if is_dev_tmpfs {
            dev = Some(mnt);
        } else {
            env.closer.defer(mnt);
        }
    }
    env.closer.flush();
    Ok(dev)
}
