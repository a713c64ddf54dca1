//! The only module with `unsafe` code: one thin wrapper per system call that neither libc's safe
//! surface nor nix offers (openat2, the new mount API, raw clone, close_range, prctl bits).
//!
//! Each wrapper takes borrowed fds (`impl AsFd`), returns `OwnedFd` with `O_CLOEXEC` already set, and on
//! failure returns a [`SysError`] that reads like a line of strace, naming the fd's path
//! (`[5]</b/rootfs>`) so the message makes sense on its own. What each `unsafe` block relies on is in its
//! `// SAFETY:` comment. Modelled on libpathrs `src/syscalls.rs`.
// syscall(2) returns a c_long that holds the C int the call returns (an fd, a pid), and ioctl
// request numbers are passed in the type libc gives them: the casts here lose no bits.
#![allow(clippy::cast_possible_truncation)]
#![allow(unsafe_code)]

use crate::error::SysError;
use nix::errno::Errno;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub mod alloc;
mod bpf;
pub use bpf::*;

// openat2(2) resolve flags (linux/openat2.h).
/// Do not cross mount points.
pub const RESOLVE_NO_XDEV: u64 = 0x01;
/// Refuse /proc/self/fd-style magic links.
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
/// Refuse every symlink.
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
/// Fail with EXDEV if resolution would leave the directory fd.
pub const RESOLVE_BENEATH: u64 = 0x08;
/// Treat the directory fd as `/` (chroot-like, `..` clamps at it).
pub const RESOLVE_IN_ROOT: u64 = 0x10;

// New mount API (linux/mount.h).
/// open_tree: make a detached copy instead of referring to the mount.
pub const OPEN_TREE_CLONE: u32 = 1;
/// move_mount: the source is the fd itself.
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
/// move_mount: the target is the fd itself.
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
/// Mount attribute bits for mount_setattr / fsmount.
pub const MOUNT_ATTR_RDONLY: u64 = 0x01;
/// nosuid.
pub const MOUNT_ATTR_NOSUID: u64 = 0x02;
/// nodev.
pub const MOUNT_ATTR_NODEV: u64 = 0x04;
/// noexec.
pub const MOUNT_ATTR_NOEXEC: u64 = 0x08;
/// Mask of the atime bits.
pub const MOUNT_ATTR__ATIME: u64 = 0x70;
/// relatime (value 0 inside the atime field).
pub const MOUNT_ATTR_RELATIME: u64 = 0x00;
/// noatime.
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
/// strictatime.
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
/// nodiratime.
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
/// nosymfollow.
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;
/// mount_attr.attr_set: idmap the mount with the user namespace in `userns_fd`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const FSOPEN_CLOEXEC: u32 = 1;
const FSMOUNT_CLOEXEC: u32 = 1;
const FSCONFIG_SET_FLAG: u32 = 0;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;

/// `struct mount_attr` (linux/mount.h), 32 bytes (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MountAttr {
    /// Bits to set.
    pub attr_set: u64,
    /// Bits to clear.
    pub attr_clr: u64,
    /// MS_PRIVATE, MS_SLAVE, MS_SHARED, MS_UNBINDABLE or 0.
    pub propagation: u64,
    /// With MOUNT_ATTR_IDMAP: the user namespace fd whose mappings the mount takes.
    pub userns_fd: u64,
}

/// `struct open_how` (linux/openat2.h), 24 bytes.
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `[N]</path>` for messages; falls back to `[N]` when /proc is not there.
pub fn describe_fd(fd: RawFd) -> String {
    if fd == libc::AT_FDCWD {
        return "AT_FDCWD".into();
    }
    match std::fs::read_link(format!("/proc/self/fd/{fd}")) {
        Ok(p) => format!("[{fd}]<{}>", p.display()),
        Err(_) => format!("[{fd}]"),
    }
}

/// Names the set resolve bits, for messages.
fn describe_resolve(resolve: u64) -> String {
    let names = [
        (RESOLVE_IN_ROOT, "IN_ROOT"),
        (RESOLVE_BENEATH, "BENEATH"),
        (RESOLVE_NO_SYMLINKS, "NO_SYMLINKS"),
        (RESOLVE_NO_MAGICLINKS, "NO_MAGICLINKS"),
        (RESOLVE_NO_XDEV, "NO_XDEV"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| resolve & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "0".into()
    } else {
        set.join("|")
    }
}

fn cpath(p: &Path) -> Result<CString, SysError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| SysError {
        call: format!("path {:?}", p),
        errno: Errno::EINVAL,
    })
}

fn cstr(s: &str) -> Result<CString, SysError> {
    CString::new(s).map_err(|_| SysError {
        call: format!("string {s:?}"),
        errno: Errno::EINVAL,
    })
}

fn raw_or_cwd(dirfd: Option<BorrowedFd<'_>>) -> RawFd {
    dirfd.map_or(libc::AT_FDCWD, |f| f.as_raw_fd())
}

/// Turns a syscall's fd result into an OwnedFd.
fn owned(ret: libc::c_long, call: impl FnOnce() -> String) -> Result<OwnedFd, SysError> {
    if ret < 0 {
        return Err(SysError {
            call: call(),
            errno: Errno::last(),
        });
    }
    // SAFETY: the kernel just returned this fd to us and nothing else refers to it, so the OwnedFd is its
    // sole owner; an fd number always fits in c_int.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) })
}

fn unit(ret: libc::c_long, call: impl FnOnce() -> String) -> Result<(), SysError> {
    if ret < 0 {
        Err(SysError {
            call: call(),
            errno: Errno::last(),
        })
    } else {
        Ok(())
    }
}

/// openat2(2) returning only the errno: for probes whose failure is expected (ENOENT before a
/// create), so no message (and no readlink of the fd for it) is built.
pub fn openat2_errno(
    dirfd: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    // SAFETY: `c` is a NUL-terminated string and `how` a #[repr(C)] open_how of exactly the size passed;
    // both outlive the call, which only reads them. The dirfd is borrowed for the call's duration.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            raw_or_cwd(dirfd),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    owned(ret, String::new).map_err(|e| e.errno)
}

/// The strace-like error of a failed openat2, for messages.
pub fn openat2_error(
    dirfd: Option<BorrowedFd<'_>>,
    path: &Path,
    resolve: u64,
    errno: Errno,
) -> SysError {
    SysError {
        call: format!(
            "openat2({}, {:?}, {})",
            describe_fd(raw_or_cwd(dirfd)),
            path,
            describe_resolve(resolve)
        ),
        errno,
    }
}

/// openat2(2). `flags` get `O_CLOEXEC` added. `dirfd` None means AT_FDCWD.
pub fn openat2(
    dirfd: Option<BorrowedFd<'_>>,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, SysError> {
    openat2_errno(dirfd, path, flags, mode, resolve)
        .map_err(|e| openat2_error(dirfd, path, resolve, e))
}

/// open_tree(2) on the fd itself (AT_EMPTY_PATH); `flags` may add OPEN_TREE_CLONE and AT_RECURSIVE.
pub fn open_tree(fd: impl AsFd, flags: u32) -> Result<OwnedFd, SysError> {
    let raw = fd.as_fd().as_raw_fd();
    let flags = flags | libc::AT_EMPTY_PATH as u32 | libc::O_CLOEXEC as u32;
    // SAFETY: the path is a static empty C string; `raw` is borrowed from a live fd for the call.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, raw, c"".as_ptr(), flags) };
    owned(ret, || {
        let rec = if flags & libc::AT_RECURSIVE as u32 != 0 {
            "|AT_RECURSIVE"
        } else {
            ""
        };
        format!(
            "open_tree({}, \"\", OPEN_TREE_CLONE{rec})",
            describe_fd(raw)
        )
    })
}

/// open_tree(AT_FDCWD, path, flags): a clone of the mount tree at a host path, resolved as the caller
/// sees it (for sources no policy vets: the bundle's own host paths).
pub fn open_tree_path(path: &Path, flags: u32) -> Result<OwnedFd, SysError> {
    let c = cpath(path)?;
    let flags = flags | libc::O_CLOEXEC as u32;
    // SAFETY: `c` is a NUL-terminated string that outlives the call, which only reads it.
    let ret = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    owned(ret, || {
        let rec = if flags & libc::AT_RECURSIVE as u32 != 0 {
            "|AT_RECURSIVE"
        } else {
            ""
        };
        format!("open_tree(AT_FDCWD, {path:?}, OPEN_TREE_CLONE{rec})")
    })
}

/// move_mount(2) of the detached or attached tree `from` onto the file or directory `to` (both fds).
pub fn move_mount(from: impl AsFd, to: impl AsFd) -> Result<(), SysError> {
    let (f, t) = (from.as_fd().as_raw_fd(), to.as_fd().as_raw_fd());
    // SAFETY: both paths are static empty C strings; both fds are borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            f,
            c"".as_ptr(),
            t,
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    unit(ret, || {
        format!("move_mount({}, {})", describe_fd(f), describe_fd(t))
    })
}

/// mount_setattr(2) on the mount that `fd` refers to; `recursive` adds AT_RECURSIVE.
pub fn mount_setattr(fd: impl AsFd, recursive: bool, attr: &MountAttr) -> Result<(), SysError> {
    let raw = fd.as_fd().as_raw_fd();
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: `attr` is a #[repr(C)] mount_attr of the size passed, borrowed for the call, which reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            raw,
            c"".as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit(ret, || {
        format!(
            "mount_setattr({}, set={:#x}, clr={:#x}, propagation={:#x}{})",
            describe_fd(raw),
            attr.attr_set,
            attr.attr_clr,
            attr.propagation,
            if recursive { ", AT_RECURSIVE" } else { "" }
        )
    })
}

/// mount_setattr(2) on an absolute path of the caller's own mount table (used for `/` only).
pub fn mount_setattr_path(path: &Path, recursive: bool, attr: &MountAttr) -> Result<(), SysError> {
    let c = cpath(path)?;
    let flags = if recursive {
        libc::AT_RECURSIVE as u32
    } else {
        0
    };
    // SAFETY: `c` is NUL-terminated and `attr` a #[repr(C)] mount_attr of the size passed; both outlive
    // the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    unit(ret, || {
        format!(
            "mount_setattr({:?}, set={:#x}, propagation={:#x})",
            path, attr.attr_set, attr.propagation
        )
    })
}

/// A filesystem context from fsopen(2), configured with [`FsContext::set`] and turned into a detached
/// mount with [`FsContext::mount`].
#[derive(Debug)]
pub struct FsContext {
    fd: OwnedFd,
    fstype: String,
}

impl FsContext {
    /// fsopen(2).
    pub fn open(fstype: &str) -> Result<FsContext, SysError> {
        let c = cstr(fstype)?;
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        let ret = unsafe { libc::syscall(libc::SYS_fsopen, c.as_ptr(), FSOPEN_CLOEXEC) };
        let fd = owned(ret, || format!("fsopen({fstype:?})"))?;
        Ok(FsContext {
            fd,
            fstype: fstype.to_string(),
        })
    }

    /// fsconfig(2) FSCONFIG_SET_STRING `key=value`, or FSCONFIG_SET_FLAG `key` when `value` is None.
    pub fn set(&self, key: &str, value: Option<&str>) -> Result<(), SysError> {
        let k = cstr(key)?;
        let v = value.map(cstr).transpose()?;
        let (cmd, vptr) = match &v {
            Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
            None => (FSCONFIG_SET_FLAG, std::ptr::null()),
        };
        // SAFETY: `k` and `v` are NUL-terminated strings that outlive the call; a null value is what
        // FSCONFIG_SET_FLAG requires; the context fd is owned by self.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                self.fd.as_raw_fd(),
                cmd,
                k.as_ptr(),
                vptr,
                0,
            )
        };
        unit(ret, || match value {
            Some(v) => format!("fsconfig({}, {key}={v})", self.fstype),
            None => format!("fsconfig({}, {key})", self.fstype),
        })
    }

    /// FSCONFIG_CMD_CREATE then fsmount(2) with the MOUNT_ATTR_* bits in `attr`.
    pub fn mount(&self, attr: u64) -> Result<OwnedFd, SysError> {
        let raw = self.fd.as_raw_fd();
        // SAFETY: CMD_CREATE takes no key or value (null, 0); the context fd is owned by self.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                raw,
                FSCONFIG_CMD_CREATE,
                std::ptr::null::<u8>(),
                std::ptr::null::<u8>(),
                0,
            )
        };
        unit(ret, || format!("fsconfig({}, CMD_CREATE)", self.fstype))?;
        // SAFETY: plain integer arguments; the context fd is owned by self.
        let ret = unsafe { libc::syscall(libc::SYS_fsmount, raw, FSMOUNT_CLOEXEC, attr) };
        owned(ret, || format!("fsmount({}, attr={attr:#x})", self.fstype))
    }
}

/// What a fork-like clone returned.
#[derive(Debug)]
pub enum Forked {
    /// In the parent: the child's pid.
    Parent(libc::pid_t),
    /// In the child.
    Child,
}

/// Whether this process has exactly one thread (its /proc/self/task has one entry).
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

/// clone(2) with fork semantics (no new stack, SIGCHLD on exit) plus namespace `flags`.
///
/// Only a single-threaded process may fork this way (the child gets a copy of the only thread, so
/// no lock can be held by a thread that does not exist there): a process with more threads gets
/// EDEADLK instead of an unsound child, so this function is safe to call from anywhere.
pub fn clone_fork(flags: libc::c_ulong) -> Result<Forked, SysError> {
    let flags = flags | libc::SIGCHLD as libc::c_ulong;
    if !single_threaded() {
        return Err(SysError {
            call: format!("clone({flags:#x}) from a process with more than one thread"),
            errno: Errno::EDEADLK,
        });
    }
    // SAFETY: with a null stack clone behaves like fork: the child continues on a copy of our stack.
    // This process has one thread (checked just above; berth never spawns threads, so none appears
    // in between), so the child's copy of the address space holds no lock owned by another thread. Null ptid/ctid/tls are ignored without the matching flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            flags,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: format!("clone({flags:#x})"),
            errno: Errno::last(),
        });
    }
    Ok(if ret == 0 {
        Forked::Child
    } else {
        Forked::Parent(ret as libc::pid_t)
    })
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): marks every fd from `first` on close-on-exec.
pub fn cloexec_from(first: u32) -> Result<(), SysError> {
    // SAFETY: integer arguments only; CLOSE_RANGE_CLOEXEC closes nothing, so no OwnedFd is invalidated.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    unit(ret, || {
        format!("close_range({first}, ~0, CLOSE_RANGE_CLOEXEC)")
    })
}

/// Leaves the process without running destructors or atexit handlers (the child of a fork must not
/// flush the parent's buffers twice).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

/// prctl(PR_SET_DUMPABLE, 0): no /proc/PID/exe or ptrace access while in the container's namespaces
/// (runc CVE-2019-5736 class).
pub fn set_non_dumpable() -> Result<(), SysError> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    unit(ret as libc::c_long, || "prctl(PR_SET_DUMPABLE, 0)".into())
}

/// Brings the loopback interface of the current network namespace up (SIOCGIFFLAGS, then
/// SIOCSIFFLAGS with IFF_UP on an AF_INET datagram socket).
pub fn loopback_up() -> Result<(), SysError> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: integer arguments only; the fd returned is owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    unit(fd as libc::c_long, || "socket(AF_INET, SOCK_DGRAM)".into())?;
    // SAFETY: fd was just returned by socket(2) and is owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes ifru_flags of the ifreq we own.
    let ret = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )
    };
    unit(ret as libc::c_long, || "ioctl(lo, SIOCGIFFLAGS)".into())?;
    // SAFETY: SIOCGIFFLAGS filled ifru_flags, the union member read and written here.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    let ret = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) };
    unit(ret as libc::c_long, || {
        "ioctl(lo, SIOCSIFFLAGS, IFF_UP)".into()
    })
}

/// fsetxattr(2) on an open file.
pub fn fsetxattr(fd: impl AsFd, name: &str, value: &[u8]) -> Result<(), SysError> {
    let cname = std::ffi::CString::new(name).map_err(|_| SysError {
        call: format!("fsetxattr({name:?})"),
        errno: Errno::EINVAL,
    })?;
    // SAFETY: cname is NUL-terminated and value is a live slice of the length passed; fd is open.
    let ret = unsafe {
        libc::fsetxattr(
            fd.as_fd().as_raw_fd(),
            cname.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    unit(ret as libc::c_long, || format!("fsetxattr({name})"))
}

/// prctl(PR_SET_PDEATHSIG, sig).
pub fn set_parent_death_signal(sig: i32) -> Result<(), SysError> {
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    unit(ret as libc::c_long, || {
        format!("prctl(PR_SET_PDEATHSIG, {sig})")
    })
}

/// ioctl(fd, TIOCSCTTY, 0): make the terminal our controlling terminal.
pub fn set_controlling_tty(fd: impl AsFd) -> Result<(), SysError> {
    let raw = fd.as_fd().as_raw_fd();
    // SAFETY: TIOCSCTTY takes an integer argument; the fd is borrowed for the call.
    let ret = unsafe { libc::ioctl(raw, libc::TIOCSCTTY, 0) };
    unit(ret as libc::c_long, || {
        format!("ioctl({}, TIOCSCTTY)", describe_fd(raw))
    })
}

/// umask(2); returns the old mask.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail and takes an integer.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// execve(2) after resetting the signal mask and dispositions the runtime changed. Returns only on error.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> SysError {
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `a` and `e` are null-terminated arrays of pointers into CStrings that live until the call
    // returns (on success the address space is replaced and nothing is read afterwards).
    unsafe { libc::execve(path.as_ptr(), a.as_ptr(), e.as_ptr()) };
    SysError {
        call: format!("execve({:?})", OsStr::from_bytes(path.to_bytes())),
        errno: Errno::last(),
    }
}

/// fstat(2) on any fd (O_PATH included).
pub fn fstat(fd: impl AsFd) -> Result<libc::stat, SysError> {
    let raw = fd.as_fd().as_raw_fd();
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable buffer of sizeof(struct stat); AT_EMPTY_PATH with "" stats the fd itself.
    let ret = unsafe {
        libc::fstatat(
            raw,
            c"".as_ptr(),
            st.as_mut_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    unit(ret as libc::c_long, || {
        format!("fstat({})", describe_fd(raw))
    })?;
    // SAFETY: fstatat returned 0, so it filled the whole struct.
    Ok(unsafe { st.assume_init() })
}

/// Which mount an fd is on, as statx(2) tells it (see [`mount_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountOf {
    /// The mount's id (mountinfo's first field; reused once the mount is gone).
    pub id: u64,
    /// Its 64-bit id that is never reused (STATX_MNT_ID_UNIQUE, Linux 6.8), when the kernel has it.
    pub unique: Option<u64>,
    /// The fd is the root of that mount (STATX_ATTR_MOUNT_ROOT), when the kernel says.
    pub is_root: Option<bool>,
    /// Device and inode of the file.
    pub dev: u64,
    /// See `dev`.
    pub ino: u64,
}

const STATX_INO: u32 = 0x100;
const STATX_MNT_ID: u32 = 0x1000;
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;
const STATX_ATTR_MOUNT_ROOT: u64 = 0x2000;

/// statx(2) of the fd itself into the 256 bytes of struct statx, as 64-bit words.
fn statx_words(raw: RawFd, mask: u32) -> Result<[u64; 32], SysError> {
    let mut buf = [0u64; 32];
    // SAFETY: `buf` is a writable, 8-aligned buffer of sizeof(struct statx) (256 bytes) that the
    // kernel fills; "" with AT_EMPTY_PATH stats the fd itself.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_statx,
            raw,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            mask,
            buf.as_mut_ptr(),
        )
    };
    unit(ret, || format!("statx({}, {mask:#x})", describe_fd(raw)))?;
    Ok(buf)
}

/// The low and high 32 bits of a word of struct statx.
fn halves(w: u64) -> (u32, u32) {
    let low = u32::try_from(w & 0xffff_ffff).unwrap_or_default();
    let high = u32::try_from(w >> 32).unwrap_or_default();
    (low, high)
}

/// statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) for the mount the fd is on: its id (and the
/// never-reused one where the kernel has it), whether the fd is that mount's root, its dev and inode.
/// Words of struct statx (include/uapi/linux/stat.h): 0 stx_mask, 1 stx_attributes, 4 stx_ino,
/// 7 stx_attributes_mask, 17 stx_dev_major/minor, 18 stx_mnt_id.
pub fn mount_of(fd: impl AsFd) -> Result<MountOf, SysError> {
    let raw = fd.as_fd().as_raw_fd();
    let old = statx_words(raw, STATX_INO | STATX_MNT_ID)?;
    let unique = statx_words(raw, STATX_MNT_ID_UNIQUE)
        .ok()
        .filter(|w| halves(w[0]).0 & STATX_MNT_ID_UNIQUE != 0)
        .map(|w| w[18]);
    let (major, minor) = halves(old[17]);
    Ok(MountOf {
        id: old[18],
        unique,
        is_root: (old[7] & STATX_ATTR_MOUNT_ROOT != 0)
            .then_some(old[1] & STATX_ATTR_MOUNT_ROOT != 0),
        dev: makedev(u64::from(major), u64::from(minor)),
        ino: old[4],
    })
}

/// A /proc file whole, read into a 16 KiB buffer. procfs reports its files' size as 0, so
/// `read_to_string` starts with a 32-byte probe and doubles: nine read(2)s for a container's
/// mountinfo, each of which walks the mount table again in the kernel; this takes it in one or two.
/// The bytes as they are: a mount point or a process name is whatever bytes somebody chose, not
/// always UTF-8.
pub fn read_proc_bytes(path: &str) -> std::io::Result<Vec<u8>> {
    read_proc_file(std::fs::File::open(path)?)
}

/// [`read_proc_bytes`] of a /proc file already opened (through a procfs of berth's own, or beneath
/// a process's directory).
pub fn read_proc_file(mut file: std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(16 * 1024);
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

/// [`read_proc_bytes`] as text, any byte that is not UTF-8 replaced (U+FFFD): for files read for
/// their numeric and keyword fields (status, fdinfo, cgroup), which a process name or cgroup name
/// with such bytes must not make unreadable. Never for a path that is then opened.
pub fn read_proc(path: &str) -> std::io::Result<String> {
    let buf = read_proc_bytes(path)?;
    Ok(match String::from_utf8(buf) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The lines of `b` that are UTF-8 (the others, such as a mountinfo line whose mount point is named
/// with other bytes, left out).
pub fn utf8_lines(b: &[u8]) -> impl Iterator<Item = &str> {
    b.split(|&c| c == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .filter(|l| !l.is_empty())
}

/// Start time of a process (field 22 of /proc/PID/stat, in clock ticks since boot) and whether it
/// still runs (not a zombie); None when there is no such process.
pub fn process_start(pid: i32) -> Option<(u64, bool)> {
    use std::io::Read;
    // One read into a buffer that holds any stat line (52 numeric fields and a 16-byte name), not
    // read_to_string's growing reads of a file whose size procfs reports as 0.
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    // The command name (field 2) is whatever bytes the process chose (spaces, parentheses, bytes
    // that are not UTF-8): split after its last ')', and read only what follows as text, so that
    // no name can make a live process look gone.
    let stat = &buf[..len];
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(stat.get(close + 2..)?).ok()?;
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); field 22 is index 19.
    let alive = !matches!(fields.first(), Some(&"Z") | Some(&"X"));
    Some((fields.get(19)?.parse().ok()?, alive))
}

/// The start time of a live (non-zombie) process.
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_start(pid)
        .filter(|(_, alive)| *alive)
        .map(|(t, _)| t)
}

/// The major/minor device number pair as dev_t.
pub fn makedev(major: u64, minor: u64) -> u64 {
    libc::makedev(major as u32, minor as u32)
}

/// recvmsg(2) of one datagram into `buf` (EINTR retried), with at most one fd passed as SCM_RIGHTS
/// (close-on-exec), returned owned; any further fds in the message are closed. Returns the bytes
/// received and the fd.
pub fn recv_with_fd(
    sock: impl AsFd,
    buf: &mut [u8],
    what: &str,
) -> Result<(usize, Option<OwnedFd>), SysError> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    loop {
        let mut iov = [std::io::IoSliceMut::new(buf)];
        match recvmsg::<()>(
            sock.as_fd().as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(Errno::EINTR) => continue,
            Err(errno) => {
                return Err(SysError {
                    call: format!("recvmsg({what})"),
                    errno,
                });
            }
            Ok(r) => {
                let mut fd = None;
                let cmsgs = r.cmsgs().map_err(|errno| SysError {
                    call: format!("recvmsg({what}) cmsgs"),
                    errno,
                })?;
                for c in cmsgs {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        for f in fds {
                            // SAFETY: the kernel installed this fd in our table for this message
                            // only; nothing else holds it, so the OwnedFd becomes its sole owner
                            // (an earlier one is dropped, and so closed).
                            fd = Some(unsafe { OwnedFd::from_raw_fd(f) });
                        }
                    }
                }
                return Ok((r.bytes, fd));
            }
        }
    }
}

/// setdomainname(2).
pub fn set_domainname(name: &str) -> Result<(), SysError> {
    // SAFETY: the pointer and length describe `name`'s bytes, which outlive the call; the kernel copies.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    unit(ret as libc::c_long, || format!("setdomainname({name:?})"))
}

/// Resets signals before execve: the Rust runtime sets SIGPIPE to SIG_IGN
/// (an ignored disposition survives exec), and `berth run` blocks the signals it forwards.
pub fn reset_signals() {
    // Every disposition back to the default, the ignored ones included (`nohup berth run` or a
    // script's `&` leave SIGINT/SIGHUP/SIGQUIT ignored, and an ignored disposition survives execve).
    // The raw syscall, since glibc refuses the two real-time signals it keeps for itself (32, 33),
    // which a caller may have ignored too.
    /// The kernel's `struct sigaction` on x86_64.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    let dfl = KernelSigaction {
        handler: 0, // SIG_DFL
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: `dfl` is the kernel's 32-byte x86_64 sigaction with the SIG_DFL handler and lives
        // for the call; a null old-action pointer is allowed; sigsetsize is 8 as the kernel expects.
        // The init is single-threaded and about to exec, so no handler of berth's is in use.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null::<KernelSigaction>(),
                8usize,
            )
        };
    }
    let empty = nix::sys::signal::SigSet::empty();
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&empty),
        None,
    );
}

/// Unlocks the pty master `master` and opens its peer (the slave) without a path, via TIOCGPTPEER.
pub fn pty_peer(master: impl AsFd) -> Result<OwnedFd, SysError> {
    let raw = master.as_fd().as_raw_fd();
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int through the pointer, which points at a live local.
    let ret = unsafe { libc::ioctl(raw, libc::TIOCSPTLCK, &unlock as *const libc::c_int) };
    unit(ret as libc::c_long, || {
        format!("ioctl({}, TIOCSPTLCK)", describe_fd(raw))
    })?;
    // TIOCGPTPEER = _IO('T', 0x41).
    const TIOCGPTPEER: libc::c_ulong = 0x5441;
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new fd we then own.
    let ret = unsafe {
        libc::ioctl(
            raw,
            TIOCGPTPEER as _,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    owned(ret as libc::c_long, || {
        format!("ioctl({}, TIOCGPTPEER)", describe_fd(raw))
    })
}

/// dup3(old, n, 0) for n in 0, 1, 2: stdin, stdout and stderr become copies of `old`, without
/// close-on-exec (a terminal's slave end for the container's process). The targets are fixed here,
/// so no caller can make it replace an fd that something else owns.
pub fn dup_onto_stdio(old: impl AsFd) -> Result<(), SysError> {
    let raw = old.as_fd().as_raw_fd();
    for new in 0..3 {
        if raw == new {
            continue;
        }
        // SAFETY: dup3 replaces `new` in our fd table; `new` is 0, 1 or 2 (the loop's range), which
        // no OwnedFd in this process owns (stdio is never wrapped in an OwnedFd by berth), and
        // `raw` is valid for the call since `old` is borrowed for it.
        let ret = unsafe { libc::dup3(raw, new, 0) };
        unit(ret as libc::c_long, || {
            format!("dup3({}, {new})", describe_fd(raw))
        })?;
    }
    Ok(())
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL): a new anonymous session keyring, so the container cannot
/// read the keys of whoever ran berth (runc does the same unless --no-new-keyring).
pub fn join_new_session_keyring() -> Result<(), SysError> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for an anonymous keyring; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<u8>(),
        )
    };
    unit(ret, || "keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)".into())
}

/// [`clone_fork`], with the child running `child`, which never returns (it ends in execve or
/// `_exit`), after closing its copies of the parent's fds in `inherited` (the parent's end of a
/// socketpair, the parent's lock). Returns the child's pid in the parent, where `child` is dropped
/// unrun (so what it captured is closed there). A panic in the child ends it with status 134, never
/// unwinding into the parent's frames it has a copy of.
pub fn clone_child(
    flags: libc::c_ulong,
    inherited: &[BorrowedFd<'_>],
    child: impl FnOnce() -> std::convert::Infallible,
) -> Result<libc::pid_t, SysError> {
    match clone_fork(flags)? {
        Forked::Parent(pid) => Ok(pid),
        Forked::Child => {
            for fd in inherited {
                // SAFETY: this is the freshly cloned child. The values that own these fds live in
                // the parent's frames, of which the child has a copy that it never drops: `child`
                // ends in execve or `_exit` and a panic is caught below and ends in `_exit`, so no
                // frame above this one is left or unwound here, and nothing closes them again.
                unsafe { libc::close(fd.as_raw_fd()) };
            }
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
            exit_now(134)
        }
    }
}

/// The stack a [`clone_vm_child`] runs on: 8 MiB reserved (no swap or memory is committed for it;
/// only the pages the child touches are ever faulted in), the lowest page a guard.
const VM_CHILD_STACK: usize = 8 << 20;

/// What the child of [`clone_vm_child`] runs, behind the one pointer clone(2) passes.
struct VmChild<'a> {
    inherited: &'a [BorrowedFd<'a>],
    run: &'a mut dyn FnMut() -> std::convert::Infallible,
}

extern "C" fn vm_child_entry(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `VmChild` that `clone_vm_child` passed; it lives in that call's frame,
    // which stays put until this child has exec'd or exited (CLONE_VFORK suspends the parent).
    let c = unsafe { &mut *arg.cast::<VmChild<'_>>() };
    for fd in c.inherited {
        // SAFETY: the child has a table of its own (no CLONE_FILES): this closes the child's copy
        // only. The values that own these fds stay the parent's; nothing here drops them.
        unsafe { libc::close(fd.as_raw_fd()) };
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *c.run));
    exit_now(134)
}

/// A child that shares this process's memory until it execs (`CLONE_VM | CLONE_VFORK`, as
/// posix_spawn makes one), running `run` on a stack of its own after closing its copies of the fds in
/// `inherited`; returns its pid once it has exec'd or exited. Unlike [`clone_child`] nothing is
/// copied: no page tables, no copy-on-write faults in either process afterwards, and the child's
/// exec tears nothing down. That is most of what a fork cost an exec (measured with perf: the fork,
/// its faults and the copy's teardown were a quarter of `berth exec`'s CPU time).
///
/// What `run` may do follows from sharing the memory of a suspended parent, and every caller keeps
/// to it: it ends in execve or `_exit` (never returns; a panic ends the child with status 134 without
/// unwinding any frame of the parent's), never waits for the parent (which is suspended), never drops
/// or frees a value the parent owns (it only borrows; what it allocates itself it may free or leave,
/// the allocator's state stays whole), and leaves no process-specific answer in a cache the parent
/// reads later (ask such questions in the parent first). fds, namespaces, root, credentials and
/// signal handlers are the child's own (no CLONE_FILES, CLONE_FS, CLONE_SIGHAND).
pub fn clone_vm_child(
    inherited: &[BorrowedFd<'_>],
    run: &mut dyn FnMut() -> std::convert::Infallible,
) -> Result<libc::pid_t, SysError> {
    if !single_threaded() {
        return Err(SysError {
            call: "clone(CLONE_VM | CLONE_VFORK) from a process with more than one thread".into(),
            errno: Errno::EDEADLK,
        });
    }
    // SAFETY: a fresh anonymous private mapping at an address the kernel picks; nothing aliases it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            VM_CHILD_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(SysError {
            call: format!("mmap({VM_CHILD_STACK}) for a child's stack"),
            errno: Errno::last(),
        });
    }
    // SAFETY: the lowest page of the mapping just made, which nothing uses yet.
    if unsafe { libc::mprotect(stack, 4096, libc::PROT_NONE) } != 0 {
        let errno = Errno::last();
        // SAFETY: the mapping made above, which nothing uses.
        unsafe { libc::munmap(stack, VM_CHILD_STACK) };
        return Err(SysError {
            call: "mprotect(the guard page of a child's stack)".into(),
            errno,
        });
    }
    let mut child = VmChild { inherited, run };
    // SAFETY: the stack is the top of a live mapping of VM_CHILD_STACK bytes (16-aligned, the
    // stack grows down), used by nobody else. CLONE_VFORK keeps this thread suspended until the
    // child has exec'd or exited, so the memory the child shares (this frame's `child` among it)
    // is never used by two at once, and the mapping is unmapped only after. This process has one
    // thread (checked above; berth never spawns one), so no lock the child could need is held
    // by a thread that would not run meanwhile. The rules `run` keeps are the function's doc.
    let ret = unsafe {
        libc::clone(
            vm_child_entry,
            stack.cast::<u8>().add(VM_CHILD_STACK).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw mut child).cast(),
        )
    };
    let errno = Errno::last();
    // SAFETY: the mapping made above; the child no longer runs on it (it exec'd or exited).
    unsafe { libc::munmap(stack, VM_CHILD_STACK) };
    if ret < 0 {
        return Err(SysError {
            call: "clone(CLONE_VM | CLONE_VFORK)".into(),
            errno,
        });
    }
    Ok(ret)
}

/// Copies the window size of terminal `from` to terminal `to` (TIOCGWINSZ / TIOCSWINSZ).
pub fn copy_winsize(from: impl AsFd, to: impl AsFd) -> Result<(), SysError> {
    let mut ws = std::mem::MaybeUninit::<libc::winsize>::uninit();
    let (f, t) = (from.as_fd().as_raw_fd(), to.as_fd().as_raw_fd());
    // SAFETY: TIOCGWINSZ writes one struct winsize into the buffer, which is that size and live.
    let ret = unsafe { libc::ioctl(f, libc::TIOCGWINSZ, ws.as_mut_ptr()) };
    unit(ret as libc::c_long, || {
        format!("ioctl({}, TIOCGWINSZ)", describe_fd(f))
    })?;
    // SAFETY: TIOCSWINSZ reads the struct that TIOCGWINSZ filled just above (it returned 0).
    let ret = unsafe { libc::ioctl(t, libc::TIOCSWINSZ, ws.as_ptr()) };
    unit(ret as libc::c_long, || {
        format!("ioctl({}, TIOCSWINSZ)", describe_fd(t))
    })
}

/// Whether this kernel knows the seccomp filter flags `flags`: seccomp(SECCOMP_SET_MODE_FILTER,
/// flags, NULL) fails with EFAULT (the missing program) once the flags passed the kernel's check,
/// with EINVAL when it does not know one. Installs nothing.
pub fn seccomp_flags_known(flags: u32) -> bool {
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    // SAFETY: a null program pointer: the kernel checks the flags, then fails to copy the program
    // (EFAULT) before it could install anything; no memory of ours is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::c_void>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EFAULT
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog): installs one BPF program. Without no_new_privs the
/// caller needs CAP_SYS_ADMIN. With SECCOMP_FILTER_FLAG_NEW_LISTENER the kernel returns the notify
/// listener, owned here.
pub fn seccomp_set_filter(
    prog: &[seccompiler::sock_filter],
    flags: u32,
) -> Result<Option<OwnedFd>, SysError> {
    /// `struct sock_fprog` (linux/filter.h).
    #[repr(C)]
    struct SockFprog {
        len: libc::c_ushort,
        filter: *const seccompiler::sock_filter,
    }
    let what = || {
        format!(
            "seccomp(SECCOMP_SET_MODE_FILTER, {flags:#x}, {} instructions)",
            prog.len()
        )
    };
    let len = libc::c_ushort::try_from(prog.len()).map_err(|_| SysError {
        call: what(),
        errno: Errno::EINVAL,
    })?;
    let fprog = SockFprog {
        len,
        filter: prog.as_ptr(),
    };
    const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
    const NEW_LISTENER: u32 = 8;
    // SAFETY: `fprog` points at `prog`, a slice of #[repr(C)] sock_filter (8 bytes each, as the kernel's
    // struct sock_filter) whose length fits the u16 `len`, and it outlives the call; the kernel copies
    // the program.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const SockFprog,
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: what(),
            errno: Errno::last(),
        });
    }
    if flags & NEW_LISTENER == 0 {
        return Ok(None);
    }
    // SAFETY: with NEW_LISTENER a successful seccomp(2) returns a new fd (close-on-exec) that nothing
    // else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(ret as RawFd) }))
}

/// personality(persona): the execution domain (PER_LINUX, PER_LINUX32) for this process and its exec.
pub fn set_personality(persona: u32) -> Result<(), SysError> {
    // SAFETY: an integer argument only; personality(2) changes no memory of ours.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    unit(ret as libc::c_long, || format!("personality({persona:#x})"))
}

/// sched_setattr(0, attr, 0): the calling thread's scheduling policy and parameters
/// (`process.scheduler`).
pub fn sched_setattr(a: &crate::spec::attrs::SchedAttr) -> Result<(), SysError> {
    // struct sched_attr, SCHED_ATTR_SIZE_VER1 (with the two utilization clamps, left 0).
    #[repr(C)]
    struct Attr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
        util_min: u32,
        util_max: u32,
    }
    let attr = Attr {
        size: std::mem::size_of::<Attr>() as u32,
        policy: a.policy,
        flags: a.flags,
        nice: a.nice,
        priority: a.priority,
        runtime: a.runtime,
        deadline: a.deadline,
        period: a.period,
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: `attr` is a live, correctly sized struct sched_attr (its size field says so) that the
    // kernel only reads during the call; pid 0 is the calling thread.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const Attr, 0) };
    unit(ret, || {
        format!(
            "sched_setattr(policy {}, priority {}, nice {}, flags {:#x})",
            a.policy, a.priority, a.nice, a.flags
        )
    })
}

/// ioprio_set(IOPRIO_WHO_PROCESS, 0, value): the calling process's I/O priority
/// (`process.ioPriority`).
pub fn ioprio_set(value: u16) -> Result<(), SysError> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    // SAFETY: integer arguments only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            0,
            libc::c_int::from(value),
        )
    };
    unit(ret, || {
        format!(
            "ioprio_set(IOPRIO_WHO_PROCESS, class {}, level {})",
            value >> 13,
            value & 7
        )
    })
}

/// set_mempolicy(mode, mask, bits + 1): the calling thread's NUMA memory policy
/// (`linux.memoryPolicy`); an empty mask passes none.
pub fn set_mempolicy(mode: i32, mask: &[u64]) -> Result<(), SysError> {
    let (ptr, maxnode) = if mask.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (mask.as_ptr(), mask.len() as libc::c_ulong * 64 + 1)
    };
    // SAFETY: `ptr` is null with maxnode 0, or points at `mask`, whose mask.len() * 64 bits are
    // exactly the maxnode - 1 bits the kernel reads; it only reads them during the call.
    let ret = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    unit(ret, || {
        format!("set_mempolicy({mode:#x}, nodes {})", list_of(mask))
    })
}

/// sched_setaffinity(pid, mask): the CPUs thread `pid` may run on (`process.execCPUAffinity`).
pub fn sched_setaffinity(pid: i32, mask: &[u64]) -> Result<(), SysError> {
    // SAFETY: `mask` is live for the call and its byte length is passed with it; the kernel only
    // reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_sched_setaffinity,
            pid,
            std::mem::size_of_val(mask),
            mask.as_ptr(),
        )
    };
    unit(ret, || {
        format!("sched_setaffinity({pid}, cpus {})", list_of(mask))
    })
}

/// A bit mask as the kernel's list format (`0-3,7`), for messages.
fn list_of(mask: &[u64]) -> String {
    let bits: Vec<usize> = (0..mask.len() * 64)
        .filter(|&i| mask[i / 64] >> (i % 64) & 1 == 1)
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bits.len() {
        let start = bits[i];
        while i + 1 < bits.len() && bits[i + 1] == bits[i] + 1 {
            i += 1;
        }
        out.push(if bits[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", bits[i])
        });
        i += 1;
    }
    out.join(",")
}

/// landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the kernel's Landlock ABI, or
/// None when the kernel lacks Landlock or has it disabled.
pub fn landlock_abi() -> Option<i64> {
    const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
    // SAFETY: with the VERSION flag the kernel reads no attribute (null pointer, size 0) and returns
    // an integer, not an fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (ret > 0).then_some(ret)
}

/// ioctl(NS_GET_NSTYPE): the CLONE_NEW* type of the namespace `fd` refers to (an nsfs file: a
/// /proc/PID/ns link or a bind of one); ENOTTY for any other file.
pub fn ns_type(fd: impl AsFd) -> Result<i32, SysError> {
    const NS_GET_NSTYPE: libc::Ioctl = 0xb703; // _IO(0xb7, 0x3)
    // SAFETY: NS_GET_NSTYPE takes no argument and writes no memory; the fd is borrowed for the call.
    let ret = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), NS_GET_NSTYPE) };
    if ret < 0 {
        return Err(SysError {
            call: "ioctl(NS_GET_NSTYPE)".into(),
            errno: Errno::last(),
        });
    }
    Ok(ret)
}

/// The access mode (`O_RDONLY`, `O_WRONLY`, `O_RDWR`) of an fd number berth was handed by its
/// caller on the command line (runc's `--status-fd`); EBADF when it is not open.
pub fn fd_access_mode(fd: RawFd) -> Result<i32, SysError> {
    if fd < 0 {
        return Err(SysError {
            call: format!("fcntl({fd}, F_GETFL)"),
            errno: Errno::EBADF,
        });
    }
    // SAFETY: F_GETFL reads the flags of an fd number and touches no memory; an fd that is not
    // open gives EBADF.
    let mode = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if mode < 0 {
        return Err(SysError {
            call: format!("fcntl({fd}, F_GETFL)"),
            errno: Errno::last(),
        });
    }
    Ok(mode & libc::O_ACCMODE)
}

/// Takes ownership of an fd number berth was handed by its caller for berth to write and close
/// (checked open by [`fd_access_mode`] first).
pub fn adopt_fd(fd: RawFd) -> Result<OwnedFd, SysError> {
    fd_access_mode(fd)?;
    // SAFETY: the fd is open (checked above) and was given to this process by its caller for berth
    // to write and close; nothing else in berth holds it, so the OwnedFd becomes its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// pidfd_open(pid, 0): a handle on the process that stays valid (and never names another process)
/// even if the pid is reused.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, SysError> {
    // SAFETY: integer arguments only; on success the kernel returns a new close-on-exec fd we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    owned(ret, || format!("pidfd_open({pid})"))
}

/// renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE): swaps two paths atomically (the test kit's
/// racing thread; musl's libc has no wrapper, so the raw syscall).
pub fn rename_exchange(a: &Path, b: &Path) -> Result<(), SysError> {
    let (ca, cb) = (cpath(a)?, cpath(b)?);
    // SAFETY: both are NUL-terminated strings that outlive the call, which only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if ret < 0 {
        return Err(SysError {
            call: format!("renameat2({a:?}, {b:?}, RENAME_EXCHANGE)"),
            errno: Errno::last(),
        });
    }
    Ok(())
}

/// Whether this kernel has idmapped mounts: mount_setattr(2) and MOUNT_ATTR_IDMAP came together in
/// Linux 5.12. A call on fd -1 fails with EBADF where the syscall exists, ENOSYS where it does not.
pub fn idmap_supported() -> bool {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    // SAFETY: `attr` is a #[repr(C)] mount_attr of the size passed and outlives the call; fd -1 names
    // no object, so the call can only fail.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            -1,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as u32,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    ret < 0 && Errno::last() == Errno::EBADF
}

/// `struct landlock_path_beneath_attr` (packed: 12 bytes).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// landlock_add_rule(ruleset, LANDLOCK_RULE_PATH_BENEATH, {access, parent}, 0).
pub fn landlock_add_path_rule(
    ruleset: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    access: u64,
) -> Result<(), SysError> {
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: `attr` is the packed #[repr(C)] struct the kernel reads for LANDLOCK_RULE_PATH_BENEATH
    // (1); it outlives the call. Both fds are borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            1,
            &attr as *const PathBeneathAttr,
            0,
        )
    };
    unit(ret, || {
        format!(
            "landlock_add_rule({}, PATH_BENEATH, {access:#x}, {})",
            describe_fd(ruleset.as_raw_fd()),
            describe_fd(parent.as_raw_fd())
        )
    })
}

/// landlock_restrict_self(ruleset, 0): this thread (berth is single-threaded) is confined by it.
pub fn landlock_restrict_self(ruleset: BorrowedFd<'_>) -> Result<(), SysError> {
    // SAFETY: integer arguments only; the fd is borrowed for the call.
    let ret = unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) };
    unit(ret, || {
        format!(
            "landlock_restrict_self({})",
            describe_fd(ruleset.as_raw_fd())
        )
    })
}

/// Fds closed in batches: contiguous runs of them with one close_range(2) each, instead of one close
/// per fd (a container's volumes open two fds each, closed as soon as the volume is attached).
#[derive(Debug, Default)]
pub struct FdBatch {
    fds: Vec<RawFd>,
}

impl FdBatch {
    /// How many fds wait before they are closed: well under any RLIMIT_NOFILE.
    const MAX: usize = 64;

    /// Takes `fd` over; it is closed at the next flush.
    pub fn defer(&mut self, fd: OwnedFd) {
        self.fds.push(std::os::fd::IntoRawFd::into_raw_fd(fd));
        if self.fds.len() >= Self::MAX {
            self.flush();
        }
    }

    /// Closes every fd taken over, one close_range per contiguous run.
    pub fn flush(&mut self) {
        self.fds.sort_unstable();
        let mut i = 0;
        while i < self.fds.len() {
            let first = self.fds[i];
            let mut last = first;
            while i + 1 < self.fds.len() && self.fds[i + 1] == last + 1 {
                i += 1;
                last = self.fds[i];
            }
            // SAFETY: every fd in [first, last] was taken over by `defer` (into_raw_fd: this batch owns
            // it, nothing else refers to it) and is closed exactly once, here.
            let ret = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0) };
            if ret < 0 {
                for fd in first..=last {
                    // SAFETY: as above; close_range failed (an old kernel), so each is closed alone.
                    unsafe { libc::close(fd) };
                }
            }
            i += 1;
        }
        self.fds.clear();
    }
}

impl Drop for FdBatch {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The seals of berth's sealed copy (security::sealed): no write, no size change, no further change
/// of the seals.
pub const SEALS_OF_COPY: i32 =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC): an executable file in memory whose
/// seals can be set. MFD_EXEC (Linux 6.3) is dropped where the kernel does not know it (EINVAL).
pub fn memfd_exec(name: &CStr) -> Result<OwnedFd, SysError> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    for flags in [base | MFD_EXEC, base] {
        // SAFETY: `name` is NUL-terminated and outlives the call; the fd returned is owned below.
        let ret = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        if ret < 0 && Errno::last() == Errno::EINVAL && flags & MFD_EXEC != 0 {
            continue;
        }
        return owned(ret as libc::c_long, || {
            format!("memfd_create({name:?}, MFD_CLOEXEC|MFD_ALLOW_SEALING|MFD_EXEC)")
        });
    }
    unreachable!("the loop returns on its second pass")
}

/// fcntl(fd, F_ADD_SEALS, seals).
pub fn add_seals(fd: impl AsFd, seals: i32) -> Result<(), SysError> {
    let raw = fd.as_fd().as_raw_fd();
    // SAFETY: integer arguments only, on an fd borrowed for the call.
    let ret = unsafe { libc::fcntl(raw, libc::F_ADD_SEALS, seals) };
    unit(ret as libc::c_long, || {
        format!("fcntl({}, F_ADD_SEALS, {seals:#x})", describe_fd(raw))
    })
}

/// fcntl(fd, F_GET_SEALS): the seals of a memfd (EINVAL for a file that cannot have any).
pub fn get_seals(fd: impl AsFd) -> Result<i32, Errno> {
    // SAFETY: integer arguments only, on an fd borrowed for the call.
    let ret = unsafe { libc::fcntl(fd.as_fd().as_raw_fd(), libc::F_GET_SEALS) };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

/// execveat(fd, "", argv, envp, AT_EMPTY_PATH): runs the file behind `fd`. Returns only on error.
pub fn execveat_fd(fd: impl AsFd, argv: &[CString], envp: &[CString]) -> SysError {
    let raw = fd.as_fd().as_raw_fd();
    let mut a: Vec<*const libc::c_char> = argv.iter().map(|s| s.as_ptr()).collect();
    a.push(std::ptr::null());
    let mut e: Vec<*const libc::c_char> = envp.iter().map(|s| s.as_ptr()).collect();
    e.push(std::ptr::null());
    // SAFETY: `a` and `e` are null-terminated arrays of pointers into CStrings that live until the call
    // returns (on success the address space is replaced); "" is a static NUL-terminated string.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            raw,
            c"".as_ptr(),
            a.as_ptr(),
            e.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    SysError {
        call: format!("execveat({}, \"\", AT_EMPTY_PATH)", describe_fd(raw)),
        errno: Errno::last(),
    }
}

/// Removes a variable from this process's environment. Called only at the start of `main`, before
/// any thread exists (the environment is not thread-safe to change).
pub fn take_env(name: &str) -> Option<std::ffi::OsString> {
    let v = std::env::var_os(name)?;
    // SAFETY: berth is single-threaded when this runs (the first thing main does), so no other thread
    // reads the environment concurrently, which is std::env::remove_var's only requirement.
    unsafe { std::env::remove_var(name) };
    Some(v)
}
