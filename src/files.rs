//! Files berth writes on its caller's behalf (`--pid-file`, `--log`, the console socket it connects
//! to, state.json, the cgroup record) and the directories it keeps state in, made so that nothing
//! another local user planted is followed: a symlink at the final or the temporary name is never
//! written through, a state root someone else made or can write is never used.
//!
//! - [`replace_file`]: the temporary name is created with `O_CREAT | O_EXCL | O_NOFOLLOW` under an fd
//!   of the directory (a leftover is unlinked first, never followed), then renamed over the final
//!   name, which replaces a symlink there instead of writing through it.
//! - [`open_log`]: appended to with `O_NOFOLLOW`; a symlink is followed only to what is not a regular
//!   file (`--log /dev/stderr`), since a symlink to a file is how a decoy gets written.
//! - [`connect_socket`]: the socket is opened `O_PATH | O_NOFOLLOW`, checked to be a socket, and
//!   connected through that fd (`/proc/self/fd/N`), so the path is resolved once, without a symlink
//!   at its end.
//! - [`vet_state_root`]: the state root is a directory (lstat, not a symlink) owned by the caller and
//!   writable by nobody else — mode 0700 for a caller other than root, as runc and crun require.

use crate::error::{Error, Result, io_err};
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

fn dir_fd(dir: &Path) -> Result<OwnedFd> {
    crate::sys::openat2(
        None,
        if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        },
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .map_err(Error::from)
}

/// Writes `bytes` to `path` atomically: `<name>.<tmp_suffix>` made exclusively (no symlink
/// followed), fsynced when `durable`, renamed over `path`.
pub fn replace_file(
    path: &Path,
    tmp_suffix: &str,
    bytes: &[u8],
    mode: u32,
    durable: bool,
) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidSpec(format!("{}: not a file name", path.display())))?;
    let dir = dir_fd(path.parent().unwrap_or(Path::new(".")))?;
    let mut tmp = name.to_os_string();
    tmp.push(".");
    tmp.push(tmp_suffix);
    let tmp = Path::new(&tmp);
    let tmp_path = path.with_file_name(tmp);
    // A leftover (a crashed writer's, or a symlink someone planted) is removed, never followed.
    match nix::unistd::unlinkat(
        Some(dir.as_raw_fd()),
        tmp,
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    ) {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(Error::sys(format!("unlink({})", tmp_path.display()), e)),
    }
    let fd = crate::sys::openat2(
        Some(dir.as_fd()),
        tmp,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        mode,
        crate::sys::RESOLVE_BENEATH | crate::sys::RESOLVE_NO_SYMLINKS,
    )?;
    let mut f = std::fs::File::from(fd);
    let written = f
        .write_all(bytes)
        .and_then(|()| if durable { f.sync_data() } else { Ok(()) });
    let renamed = written
        .map_err(|e| io_err("write", &tmp_path, e))
        .and_then(|()| {
            nix::fcntl::renameat(Some(dir.as_raw_fd()), tmp, Some(dir.as_raw_fd()), name).map_err(
                |e| {
                    Error::sys(
                        format!("rename({}, {})", tmp_path.display(), path.display()),
                        e,
                    )
                },
            )
        });
    if renamed.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dir.as_raw_fd()),
            tmp,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    renamed
}

/// Opens `--log` for appending (made 0600 when missing), never through a symlink to a file.
pub fn open_log(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let open = |follow: bool| {
        let mut o = std::fs::OpenOptions::new();
        o.append(true);
        if !follow {
            o.create(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        }
        o.open(path)
    };
    match open(false) {
        Ok(f) => Ok(f),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            let f = open(true).map_err(|e| io_err("open log", path, e))?;
            let st = crate::sys::fstat(&f)?;
            if st.st_mode & libc::S_IFMT == libc::S_IFREG {
                return Err(Error::SafetyViolation(format!(
                    "--log {}: a symlink to a regular file; refusing to write through it (name the file itself)",
                    path.display()
                )));
            }
            Ok(f)
        }
        Err(e) => Err(io_err("open log", path, e)),
    }
}

/// Connects to the Unix socket at `path` without following a symlink at its end.
pub fn connect_socket(path: &Path, what: &str) -> Result<std::os::unix::net::UnixStream> {
    let fd = crate::sys::openat2(None, path, libc::O_PATH | libc::O_NOFOLLOW, 0, 0)
        .map_err(|e| Error::InvalidSpec(format!("{what} {}: {e}", path.display())))?;
    let st = crate::sys::fstat(&fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Error::SafetyViolation(format!(
            "{what} {}: not a socket (a symlink or another file; berth connects only to the socket itself)",
            path.display()
        )));
    }
    let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
    std::os::unix::net::UnixStream::connect(&via).map_err(|e| io_err("connect", path, e))
}

/// Checks the state root (`--root`) before it is used: a real directory, owned by the caller, that
/// nobody else can write; for a caller other than root nobody else may enter it at all (0700). A
/// directory another user made where berth would make its own (`/tmp/berth-UID`) is refused, never
/// adopted: it could hold their containers and hooks.
pub fn vet_state_root(root: &Path) -> Result<()> {
    let st = match nix::sys::stat::lstat(root) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(Error::sys(format!("lstat({})", root.display()), e)),
    };
    let me = nix::unistd::geteuid().as_raw();
    let mode = st.st_mode & 0o7777;
    let allowed = if me == 0 { 0o022 } else { 0o077 };
    let why = if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        "is not a directory (a symlink?)".to_string()
    } else if st.st_uid != me {
        format!(
            "is owned by uid {}, not by the caller (uid {me})",
            st.st_uid
        )
    } else if mode & allowed != 0 {
        format!(
            "has mode {mode:o}: others can {}",
            if me == 0 {
                "write it"
            } else {
                "reach it (it must be 0700)"
            }
        )
    } else {
        return Ok(());
    };
    Err(Error::SafetyViolation(format!(
        "state root {} {why}; refusing to use it (another user may have made it: remove it, or pass --root)",
        root.display()
    )))
}

/// Makes the state root (0700, its missing parents too) and vets it.
pub fn make_state_root(root: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    vet_state_root(root)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|e| io_err("mkdir", root, e))?;
    vet_state_root(root)
}
