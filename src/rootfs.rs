//! The container's root filesystem: propagation, the rootfs bound onto itself, a minimal /dev, masked
//! and read-only paths, sysctls, and the switch into it with `pivot_root(".", ".")`.
//!
//! Defends against an image that points paths at the host: /dev entries are made through the fd of the
//! tmpfs berth just mounted (a symlinked /dev in the image cannot redirect them), masked files are
//! covered with a /dev/null berth opened on the host and verified to be the 1:3 character device (never
//! the container's own /dev/null), and sysctls are written through a private procfs instance berth
//! mounted itself, never through the container's /proc.

use crate::error::{Context, Error, Result};
use crate::mount::apply::clone_tree;
use crate::resolve::Root;
use crate::spec::{Device, ValidSpec};
use crate::sys::{self, FsContext, MountAttr};
use nix::errno::Errno;
use nix::sys::stat::{Mode, SFlag};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

fn propagation_flag(name: &str) -> (u64, bool) {
    match name {
        "private" => (libc::MS_PRIVATE, false),
        "rprivate" => (libc::MS_PRIVATE, true),
        "shared" => (libc::MS_SHARED, false),
        "rshared" => (libc::MS_SHARED, true),
        "slave" => (libc::MS_SLAVE, false),
        "unbindable" => (libc::MS_UNBINDABLE, false),
        "runbindable" => (libc::MS_UNBINDABLE, true),
        _ => (libc::MS_SLAVE, true),
    }
}

/// Makes `/` rslave so nothing the runtime mounts propagates back to the host, then binds the rootfs
/// onto itself, recursively. The returned [`Root`] is the fd of that new mount: every later mount
/// attaches below it rather than below the host's `/` mount (which is quadratic in the kernel for
/// thousands of mounts), and pivot_root needs the new root to be a mount point. Since nothing here is
/// shared, pivot_root's "no shared parent" rule holds too. linux.rootfsPropagation is applied to the
/// container's `/` once it is the root ([`set_root_propagation`]), as runc does, so a `shared` or
/// `unbindable` request never touches the host's mounts.
/// `dir` is the rootfs as a host mount policy opened and vetted it (else it is opened by path).
pub fn bind_rootfs(vs: &ValidSpec, dir: Option<OwnedFd>) -> Result<Root> {
    let slave = MountAttr {
        propagation: libc::MS_SLAVE,
        ..Default::default()
    };
    sys::mount_setattr_path(Path::new("/"), true, &slave)
        .with_context(|| "making / rslave".into())?;
    let dir = match dir {
        Some(d) => d,
        None => sys::openat2(None, &vs.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
            .with_context(|| format!("opening the rootfs {}", vs.rootfs.display()))?,
    };
    let readonly = vs.spec.root.as_ref().is_some_and(|r| r.readonly);
    let overlay = vs
        .spec
        .annotations
        .get(crate::spec::ROOTFS_OVERLAY_ANNOTATION)
        .is_some_and(|v| v == "tmpfs");
    if readonly && overlay {
        // Nothing is attached unless the overlay could be made: else the plain bind below, and
        // mount points in the directory, as without the annotation (said in the log).
        match overlay_rootfs(&dir) {
            Ok(ovl) => return Ok(Root::from_fd(ovl, &vs.rootfs)),
            Err(e) => crate::logging::info(&format!(
                "annotations.{}: the rootfs {} cannot be an overlay's lower layer here ({e}); it is bound as it is",
                crate::spec::ROOTFS_OVERLAY_ANNOTATION,
                vs.rootfs.display()
            )),
        }
    }
    let tree = clone_tree(&dir, true).with_context(|| "binding the rootfs onto itself".into())?;
    sys::move_mount(&tree, &dir).with_context(|| "binding the rootfs onto itself".into())?;
    Ok(Root::from_fd(tree, &vs.rootfs))
}

/// The rootfs `dir` as the lower layer of an overlay whose upper layer is a detached tmpfs of the
/// container's own (in no mount table): the mount points berth then creates for a read-only root go
/// into the tmpfs, and the directory (the front end's `--rootfs DIR`, the caller's own files) is
/// never written. Every layer is named by the fd it was opened as (`/proc/thread-self/fd/N`), never
/// by a path that could be swapped. The overlay, attached over `dir` in the container's mount
/// namespace, is returned as the new root; its root directory keeps `dir`'s mode and, where this
/// user namespace maps them, its owners.
fn overlay_rootfs(dir: &OwnedFd) -> Result<OwnedFd> {
    let ctx = FsContext::open("tmpfs")?;
    ctx.set("mode", Some("0755"))?;
    let tmpfs = ctx.mount(sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOSUID)?;
    let st = sys::fstat(dir)?;
    for d in ["upper", "work"] {
        nix::sys::stat::mkdirat(Some(tmpfs.as_raw_fd()), d, Mode::from_bits_truncate(0o755))
            .map_err(|e| Error::sys(format!("mkdirat(tmpfs, {d:?})"), e))?;
    }
    let upper = sys::openat2(
        Some(tmpfs.as_fd()),
        Path::new("upper"),
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        0,
    )?;
    nix::sys::stat::fchmod(
        upper.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(|e| Error::sys("fchmod(upper)", e))?;
    // Owners the namespace does not map stay the container root's.
    let _ = nix::unistd::fchown(
        upper.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(st.st_uid)),
        Some(nix::unistd::Gid::from_raw(st.st_gid)),
    );
    let work = sys::openat2(
        Some(tmpfs.as_fd()),
        Path::new("work"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )?;
    let by_fd = |fd: &OwnedFd| format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
    let ctx = FsContext::open("overlay")?;
    ctx.set("source", Some("berth-rootfs"))?;
    ctx.set("lowerdir", Some(&by_fd(dir)))?;
    ctx.set("upperdir", Some(&by_fd(&upper)))?;
    ctx.set("workdir", Some(&by_fd(&work)))?;
    let ovl = ctx.mount(0)?;
    sys::move_mount(&ovl, dir).with_context(|| "attaching the overlay".into())?;
    Ok(ovl)
}

/// linux.rootfsPropagation on the container's `/`, after pivot_root (everything was a slave of the
/// host until then). `shared` gives the root a peer group of its own (it stays a slave of the host, so
/// nothing flows back); the default, rslave, is already in place.
pub fn set_root_propagation(vs: &ValidSpec) -> Result<()> {
    let (flag, rec) = propagation_flag(vs.linux().rootfs_propagation.as_deref().unwrap_or(""));
    if flag == libc::MS_SLAVE {
        return Ok(());
    }
    let attr = MountAttr {
        propagation: flag,
        ..Default::default()
    };
    sys::mount_setattr_path(Path::new("/"), rec, &attr)
        .with_context(|| "linux.rootfsPropagation".into())
}

/// In a joined mount namespace: no mount is made (they would be shared with whoever made it); the init
/// chroots into root.path as that namespace sees it (chroot, unlike pivot_root, moves no other
/// process of the namespace) and returns its `/`.
pub fn chroot_joined(vs: &ValidSpec) -> Result<Root> {
    let dir = sys::openat2(None, &vs.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)
        .with_context(|| format!("opening the rootfs {}", vs.rootfs.display()))?;
    nix::unistd::fchdir(dir.as_raw_fd()).map_err(|e| Error::sys("fchdir(rootfs)", e))?;
    nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(\".\")", e))?;
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir(\"/\")", e))?;
    Root::open(Path::new("/"))
}

/// The host's /dev/null, opened by berth and checked to be the 1:3 character device.
pub fn host_null() -> Result<OwnedFd> {
    let fd = sys::openat2(
        None,
        Path::new("/dev/null"),
        libc::O_PATH,
        0,
        sys::RESOLVE_NO_SYMLINKS,
    )?;
    let st = sys::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != sys::makedev(1, 3) {
        return Err(Error::SafetyViolation(
            "the host's /dev/null is not the 1:3 character device".into(),
        ));
    }
    Ok(fd)
}

/// (name, major, minor) of the devices every container gets.
const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

const DEFAULT_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Creates a device node `name` in `dir` (an fd berth trusts); in a user namespace, where mknod is not
/// allowed, bind-mounts the host's node at `host` onto an empty file instead.
fn make_device(
    dir: &OwnedFd,
    name: &Path,
    typ: SFlag,
    mode: u32,
    dev: u64,
    host: &Path,
    userns: bool,
) -> Result<()> {
    let what = || format!("creating device {}", host.display());
    if !userns {
        return nix::sys::stat::mknodat(
            Some(dir.as_raw_fd()),
            name,
            typ,
            Mode::from_bits_truncate(mode),
            dev,
        )
        .map_err(|e| {
            Error::sys(
                format!("mknodat({}, {:?})", sys::describe_fd(dir.as_raw_fd()), name),
                e,
            )
        })
        .with_context(what);
    }
    let src =
        sys::openat2(None, host, libc::O_PATH, 0, sys::RESOLVE_NO_SYMLINKS).with_context(what)?;
    let st = sys::fstat(&src)?;
    if st.st_mode & libc::S_IFMT != typ.bits() || st.st_rdev != dev {
        return Err(Error::SafetyViolation(format!(
            "host {} is not the device the spec names",
            host.display()
        )));
    }
    let target = sys::openat2(
        Some(dir.as_fd()),
        name,
        libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
        0o644,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
    )
    .with_context(what)?;
    let tree = clone_tree(&src, false)?;
    sys::move_mount(&tree, &target).with_context(what)
}

/// Populates the tmpfs berth mounted on /dev (`dev` is that mount's root fd).
pub fn populate_dev(dev: &OwnedFd, userns: bool) -> Result<()> {
    for (name, major, minor) in DEFAULT_DEVICES {
        let host = PathBuf::from("/dev").join(name);
        make_device(
            dev,
            Path::new(name),
            SFlag::S_IFCHR,
            0o666,
            sys::makedev(*major, *minor),
            &host,
            userns,
        )?;
    }
    for (name, target) in DEFAULT_LINKS {
        nix::unistd::symlinkat(*target, Some(dev.as_raw_fd()), *name)
            .map_err(|e| Error::sys(format!("symlinkat({target:?}, /dev/{name})"), e))?;
    }
    for dir in ["pts", "shm"] {
        match nix::sys::stat::mkdirat(Some(dev.as_raw_fd()), dir, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkdirat(/dev/{dir})"), e)),
        }
    }
    Ok(())
}

/// Creates linux.devices inside the root (parents resolved with [`Root`], the node made relative to the
/// parent's fd). An existing node of the same type and number is accepted.
pub fn create_devices(root: &Root, devices: &[Device], userns: bool) -> Result<()> {
    for (i, d) in devices.iter().enumerate() {
        let path = Path::new(&d.path);
        let label = || format!("linux.devices[{i}] ({})", d.path);
        let name = path
            .file_name()
            .ok_or_else(|| Error::InvalidSpec(format!("{}: no file name", label())))?;
        let parent = root
            .mkdir_all(path.parent().unwrap_or(Path::new("/")))
            .with_context(label)?;
        let typ = match d.typ.as_str() {
            "b" => SFlag::S_IFBLK,
            "p" => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let dev = sys::makedev(d.major as u64, d.minor as u64);
        let mode = d.file_mode.unwrap_or(0o666) & 0o7777;
        match make_device(
            &parent,
            Path::new(name),
            typ,
            mode,
            dev,
            path,
            userns && typ != SFlag::S_IFIFO,
        ) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EEXIST) => {
                let st = nix::sys::stat::fstatat(
                    Some(parent.as_raw_fd()),
                    name,
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| Error::sys(format!("fstatat({})", d.path), e))?;
                // /dev/ptmx stays berth's link to the container's own devpts (as runc makes it after
                // the devices), whatever node the spec lists (`--privileged` lists the host's).
                let ptmx_link =
                    path == Path::new("/dev/ptmx") && st.st_mode & libc::S_IFMT == libc::S_IFLNK;
                if ptmx_link {
                    crate::logging::debug(&format!("{}: kept as the link to pts/ptmx", label()));
                    continue;
                }
                if st.st_mode & libc::S_IFMT != typ.bits() || st.st_rdev != dev {
                    return Err(e).with_context(label);
                }
                continue;
            }
            Err(e) => return Err(e).with_context(label),
        }
        if d.uid.is_some() || d.gid.is_some() {
            nix::unistd::fchownat(
                Some(parent.as_raw_fd()),
                name,
                d.uid.map(nix::unistd::Uid::from_raw),
                d.gid.map(nix::unistd::Gid::from_raw),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::sys(format!("fchownat({})", d.path), e))
            .with_context(label)?;
        }
    }
    Ok(())
}

/// Covers each existing masked path: files with the verified host /dev/null, directories with an
/// empty read-only tmpfs. Missing paths are skipped, as runc does.
pub fn mask_paths(root: &Root, paths: &[String], null: &OwnedFd) -> Result<()> {
    // One empty read-only tmpfs for every masked directory (as runc >= 1.3.6 and crun >= 1.24):
    // the first is made and attached, the others are binds of it. A superblock per directory costs
    // about 0.1 ms each, and Kubernetes masks one directory per CPU on big nodes.
    let mut shared: Option<OwnedFd> = None;
    for p in paths {
        let label = || format!("linux.maskedPaths: {p}");
        let target = match root.open_at(Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(label),
        };
        let dir = sys::fstat(&target)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let tree = match (&shared, dir) {
            (Some(tmpfs), true) => clone_tree(tmpfs, false).with_context(label)?,
            (None, true) => empty_tmpfs().with_context(label)?,
            (_, false) => clone_tree(null, false).with_context(label)?,
        };
        sys::move_mount(&tree, &target).with_context(label)?;
        if dir && shared.is_none() {
            // Attached now, so binds of it are of a mount in this namespace.
            shared = Some(tree);
        }
    }
    Ok(())
}

/// An empty, read-only tmpfs that can hold nothing (`size=0,nr_inodes=1`), detached. A kernel
/// that refuses `nr_inodes=1` gets `size=0` alone (still read-only and empty).
fn empty_tmpfs() -> Result<OwnedFd> {
    let attrs = sys::MOUNT_ATTR_RDONLY
        | sys::MOUNT_ATTR_NOSUID
        | sys::MOUNT_ATTR_NODEV
        | sys::MOUNT_ATTR_NOEXEC;
    let make = |inodes: bool| -> Result<OwnedFd> {
        let ctx = FsContext::open("tmpfs")?;
        ctx.set("size", Some("0"))?;
        if inodes {
            ctx.set("nr_inodes", Some("1"))?;
        }
        Ok(ctx.mount(attrs)?)
    };
    match make(true) {
        Err(e) if e.errno() == Some(Errno::EINVAL) => {
            crate::logging::debug("tmpfs refused nr_inodes=1: masking with size=0 only");
            make(false)
        }
        r => r,
    }
}

/// Makes each existing read-only path a recursive read-only (and nosuid, nodev, noexec) bind of itself.
pub fn readonly_paths(root: &Root, paths: &[String]) -> Result<()> {
    let attr = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY
            | sys::MOUNT_ATTR_NOSUID
            | sys::MOUNT_ATTR_NODEV
            | sys::MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    for p in paths {
        let label = || format!("linux.readonlyPaths: {p}");
        let target = match root.open_at(Path::new(p), libc::O_PATH) {
            Ok(fd) => fd,
            Err(e) if e.errno() == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(label),
        };
        let tree = clone_tree(&target, true).with_context(label)?;
        sys::mount_setattr(&tree, true, &attr).with_context(label)?;
        sys::move_mount(&tree, &target).with_context(label)?;
    }
    Ok(())
}

/// A procfs instance of berth's own, detached from every mount table: what sysctls are written through.
pub fn private_proc() -> Result<Root> {
    let ctx = FsContext::open("proc")?;
    let mnt = ctx.mount(sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOEXEC)?;
    Ok(Root::from_fd(mnt, "proc"))
}

/// Writes linux.sysctl through berth's own procfs (`net.ipv4.ip_forward` → `sys/net/ipv4/ip_forward`).
pub fn write_sysctls(vs: &ValidSpec) -> Result<()> {
    let sysctl = &vs.linux().sysctl;
    if sysctl.is_empty() {
        return Ok(());
    }
    let proc = private_proc()?;
    for (key, value) in sysctl {
        let label = || format!("linux.sysctl.{key}");
        if key
            .split('.')
            .any(|c| c.is_empty() || c == ".." || c.contains('/'))
        {
            return Err(Error::InvalidSpec(format!(
                "{}: not a sysctl name",
                label()
            )));
        }
        let rel = PathBuf::from("sys").join(key.replace('.', "/"));
        let fd = sys::openat2(
            Some(proc.fd()),
            &rel,
            libc::O_WRONLY | libc::O_TRUNC,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS,
        )
        .with_context(label)?;
        nix::unistd::write(&fd, value.as_bytes())
            .map_err(|e| Error::sys(format!("write({}, {value:?})", rel.display()), e))
            .with_context(label)?;
    }
    Ok(())
}

/// Enters the root: `pivot_root(".", ".")` then a lazy unmount of the old root stacked beneath, as runc
/// and crun do (no directory for the old root is needed in the image). With `no_pivot` (ramfs roots),
/// moves the root mount over `/` and chroots into it instead.
pub fn enter(root: &Root, no_pivot: bool) -> Result<()> {
    nix::unistd::fchdir(root.fd().as_raw_fd()).map_err(|e| Error::sys("fchdir(rootfs)", e))?;
    if no_pivot {
        let slash = sys::openat2(None, Path::new("/"), libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        sys::move_mount(root.fd(), &slash)
            .with_context(|| "moving the rootfs over / (--no-pivot)".into())?;
        nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(\".\")", e))?;
    } else {
        nix::unistd::pivot_root(".", ".").map_err(|e| Error::sys("pivot_root(\".\", \".\")", e))?;
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH)
            .map_err(|e| Error::sys("umount2(old root, MNT_DETACH)", e))?;
    }
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir(\"/\")", e))
}

/// root.readonly: the root mount (only the top, as runc) becomes read-only.
pub fn make_root_readonly() -> Result<()> {
    let attr = MountAttr {
        attr_set: sys::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    sys::mount_setattr_path(Path::new("/"), false, &attr).with_context(|| "root.readonly".into())
}
