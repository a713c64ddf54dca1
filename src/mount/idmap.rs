//! Idmapped bind mounts: `mount_setattr(MOUNT_ATTR_IDMAP)` on the detached tree, between `open_tree`
//! and `move_mount`, never on a path. The user namespace that carries a mount's mapping is the
//! container's own when the mount takes the container's mappings (`idmap` without any), else one
//! berth makes: a helper process cloned into a new user namespace, its maps written, its namespace
//! opened, the helper ended. One namespace per distinct mapping; every fd is closed after use.

use super::plan::{Idmap, MountOp};
use crate::error::{Error, Result, io_err};
use crate::spec::IdMapping;
use crate::sys::{self, Forked, MountAttr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// The user namespaces idmapped mounts take, made as needed.
#[derive(Debug, Default)]
pub struct Usernses {
    /// The container's user namespace, when the caller has it (the parent, after writing its maps).
    container: Option<OwnedFd>,
    made: Vec<(Mappings, OwnedFd)>,
}

/// A uid and a gid mapping.
type Mappings = (Vec<IdMapping>, Vec<IdMapping>);

/// `uid_map`/`gid_map` text.
pub fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

impl Usernses {
    /// With the container's user namespace fd, if it has one and the caller holds it.
    pub fn new(container: Option<OwnedFd>) -> Usernses {
        Usernses {
            container,
            made: Vec::new(),
        }
    }

    fn fd_for(&mut self, idmap: &Idmap) -> Result<BorrowedFd<'_>> {
        if idmap.from_container && self.container.is_some() {
            return Ok(self.container.as_ref().map(AsFd::as_fd).expect("checked"));
        }
        let key = (idmap.uid.clone(), idmap.gid.clone());
        let i = match self.made.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                let fd = make_userns(&idmap.uid, &idmap.gid)?;
                self.made.push((key, fd));
                self.made.len() - 1
            }
        };
        Ok(self.made[i].1.as_fd())
    }

    /// Idmaps the detached `tree` of `op` if it asks for it.
    pub fn apply(&mut self, tree: &OwnedFd, op: &MountOp) -> Result<()> {
        let Some(idmap) = &op.idmap else {
            return Ok(());
        };
        let userns = self.fd_for(idmap)?;
        let attr = MountAttr {
            attr_set: sys::MOUNT_ATTR_IDMAP,
            userns_fd: userns.as_raw_fd() as u64,
            ..Default::default()
        };
        sys::mount_setattr(tree, idmap.recursive, &attr).map_err(|e| {
            let why = match e.errno {
                nix::errno::Errno::EINVAL => {
                    let fs = nix::sys::statfs::fstatfs(tree)
                        .map(|s| fs_name(s.filesystem_type().0 as i64))
                        .unwrap_or_else(|_| "its filesystem".into());
                    let what = match &op.kind {
                        super::plan::OpKind::Bind { source, .. } => {
                            format!("the source {}", source.display())
                        }
                        super::plan::OpKind::Fs { fstype, .. } => format!("this {fstype}"),
                    };
                    format!(
                        "{what} is on {fs}, which this kernel cannot idmap (or a mount of the tree already is idmapped)"
                    )
                }
                _ => "idmapped mount".into(),
            };
            Error::NotSupported(format!("{why}: {e}"))
        })
    }
}

/// A filesystem's name by its magic (statfs f_type), for messages.
fn fs_name(magic: i64) -> String {
    let name = match magic {
        0x9fa0 => "procfs",
        0x6265_6572 => "sysfs",
        0x0102_1994 => "tmpfs",
        0xef53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683e => "btrfs",
        0x794c_7630 => "overlayfs",
        0x6969 => "nfs",
        0x6573_5546 => "fuse",
        0x6367_7270 => "cgroup2",
        0x0027_e0eb => "cgroup",
        0x1cd1 => "devpts",
        0x7371_7368 => "squashfs",
        0x4d44 => "vfat",
        0x2fc1_2fc1 => "zfs",
        0x6462_6720 => "debugfs",
        0x7472_6163 => "tracefs",
        _ => return format!("a filesystem of type {magic:#x}"),
    };
    name.into()
}

/// A user namespace with these maps, held by an fd (its helper process is gone when this returns).
///
/// The helper tells its pid as the mounted /proc sees it (the target of its `/proc/self`): in a child
/// already in a new pid namespace, the pid clone returned is not the one /proc knows.
fn make_userns(uid: &[IdMapping], gid: &[IdMapping]) -> Result<OwnedFd> {
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| Error::sys("pipe2(O_CLOEXEC)", e))
    };
    let (told_r, told_w) = pipe()?;
    let (done_r, done_w) = pipe()?;
    let helper = match sys::clone_fork(libc::CLONE_NEWUSER as libc::c_ulong)? {
        Forked::Child => {
            drop((told_r, done_w));
            let me = std::fs::read_link("/proc/self").unwrap_or_default();
            let _ = nix::unistd::write(&told_w, me.as_os_str().as_encoded_bytes());
            drop(told_w);
            // Then it waits for the parent to be done with its namespace (EOF), and ends.
            let mut b = [0u8; 1];
            let _ = nix::unistd::read(done_r.as_raw_fd(), &mut b);
            sys::exit_now(0)
        }
        Forked::Parent(pid) => pid,
    };
    drop((told_w, done_r));
    let made = (|| {
        let mut buf = [0u8; 32];
        let n = nix::unistd::read(told_r.as_raw_fd(), &mut buf)
            .map_err(|e| Error::sys("read(the helper's pid)", e))?;
        let pid = std::str::from_utf8(&buf[..n])
            .ok()
            .and_then(|t| t.parse::<u32>().ok())
            .ok_or_else(|| Error::State("the idmap helper could not read /proc/self".into()))?;
        let write = |file: &str, text: String| {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, text).map_err(|e| io_err("write", Path::new(&path), e))
        };
        write("uid_map", map_text(uid))?;
        write("gid_map", map_text(gid))?;
        Ok(sys::openat2(
            None,
            Path::new(&format!("/proc/{pid}/ns/user")),
            libc::O_RDONLY,
            0,
            0,
        )?)
    })();
    drop(done_w);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), None);
    made.map_err(|e: Error| {
        Error::InvalidSpec(format!(
            "an idmapped mount's mappings (uid {}) cannot be set up: {e}",
            map_text(uid).trim().replace('\n', ", ")
        ))
    })
}
