//! `tmpcopyup` (Podman's `--read-only` /run, `--tmpfs`, `--mount type=tmpfs`): what the image has at a
//! tmpfs destination is copied into the new tmpfs before the tmpfs is attached over it.
//!
//! The image is hostile: the walk goes only through fds, one component at a time with `O_NOFOLLOW`,
//! symlinks are copied as symlinks (never followed), anything that is not a directory, regular file or
//! symlink is skipped, and the depth is bounded. Modes and owners are kept.

use crate::error::Context;
use crate::error::{Error, Result};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat};
use nix::unistd::{Gid, Uid, fchown, fchownat};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const MAX_DEPTH: usize = 64;

fn open(dir: BorrowedFd<'_>, name: &std::ffi::OsStr, flags: OFlag) -> Result<OwnedFd> {
    // One name, never followed: openat2 with O_NOFOLLOW and no resolve flags is openat's lookup.
    crate::sys::openat2(
        Some(dir),
        std::path::Path::new(name),
        (flags | OFlag::O_NOFOLLOW).bits(),
        0,
        0,
    )
    .with_context(|| "tmpcopyup".into())
}

fn keep_owner(fd: &OwnedFd, st: &FileStat) -> Result<()> {
    fchown(
        fd.as_raw_fd(),
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )
    .map_err(|e| Error::sys("fchown (tmpcopyup)", e))?;
    fchmod(
        fd.as_raw_fd(),
        Mode::from_bits_truncate(st.st_mode & 0o7777),
    )
    .map_err(|e| Error::sys("fchmod (tmpcopyup)", e))
}

/// What the tmpfs's own options already decided for its root, which the copy leaves alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct Given {
    /// `mode=` was given: the requested mode wins over the image directory's.
    pub mode: bool,
    /// `uid=` was given.
    pub uid: bool,
    /// `gid=` was given.
    pub gid: bool,
}

impl Given {
    /// From a tmpfs's filesystem parameters.
    pub fn of(params: &[(String, Option<String>)]) -> Given {
        let has = |k: &str| params.iter().any(|(p, _)| p == k);
        Given {
            mode: has("mode"),
            uid: has("uid"),
            gid: has("gid"),
        }
    }
}

/// Copies the directory `src` (an O_PATH fd in the rootfs) into the root of the tmpfs `dst`. The
/// root takes the image directory's owner and mode, except what the tmpfs's own options set
/// (`mode=1777` from `--tmpfs /x:mode=1777` stays 1777).
pub fn copy_up(src: impl AsFd, dst: impl AsFd, given: Given) -> Result<()> {
    let src = open(
        src.as_fd(),
        ".".as_ref(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )?;
    let dst = open(
        dst.as_fd(),
        ".".as_ref(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )?;
    let st =
        nix::sys::stat::fstat(src.as_raw_fd()).map_err(|e| Error::sys("fstat (tmpcopyup)", e))?;
    let uid = (!given.uid).then(|| Uid::from_raw(st.st_uid));
    let gid = (!given.gid).then(|| Gid::from_raw(st.st_gid));
    fchown(dst.as_raw_fd(), uid, gid).map_err(|e| Error::sys("fchown (tmpcopyup)", e))?;
    if !given.mode {
        fchmod(
            dst.as_raw_fd(),
            Mode::from_bits_truncate(st.st_mode & 0o7777),
        )
        .map_err(|e| Error::sys("fchmod (tmpcopyup)", e))?;
    }
    copy_dir(&src, &dst, 0)
}

fn copy_dir(src: &OwnedFd, dst: &OwnedFd, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::InvalidSpec(format!(
            "tmpcopyup: the image's tree is deeper than {MAX_DEPTH} directories"
        )));
    }
    let dup = src
        .try_clone()
        .map_err(|e| crate::error::io_err("dup", Path::new("tmpcopyup"), e))?;
    let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
        .map_err(|e| Error::sys("fdopendir (tmpcopyup)", e))?;
    let names: Vec<std::ffi::CString> = dir
        .iter()
        .flatten()
        .map(|e| e.file_name().to_owned())
        .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
        .collect();
    for name in names {
        let name = std::ffi::OsStr::from_bytes(name.as_bytes());
        let st = fstatat(Some(src.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Error::sys(format!("fstatat({name:?}) for tmpcopyup"), e))?;
        match SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT) {
            SFlag::S_IFDIR => {
                nix::sys::stat::mkdirat(
                    Some(dst.as_raw_fd()),
                    name,
                    Mode::from_bits_truncate(0o700),
                )
                .map_err(|e| Error::sys(format!("mkdirat({name:?}) for tmpcopyup"), e))?;
                let s = open(src.as_fd(), name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                let d = open(dst.as_fd(), name, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                copy_dir(&s, &d, depth + 1)?;
                keep_owner(&d, &st)?;
            }
            SFlag::S_IFREG => {
                let s = open(src.as_fd(), name, OFlag::O_RDONLY)?;
                let d = open(
                    dst.as_fd(),
                    name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL,
                )?;
                let mut from = std::fs::File::from(s);
                let mut to = std::fs::File::from(d);
                std::io::copy(&mut from, &mut to)
                    .map_err(|e| crate::error::io_err("copy", Path::new(name), e))?;
                keep_owner(&OwnedFd::from(to), &st)?;
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(src.as_raw_fd()), name)
                    .map_err(|e| Error::sys(format!("readlinkat({name:?}) for tmpcopyup"), e))?;
                nix::unistd::symlinkat(target.as_os_str(), Some(dst.as_raw_fd()), name)
                    .map_err(|e| Error::sys(format!("symlinkat({name:?}) for tmpcopyup"), e))?;
                fchownat(
                    Some(dst.as_raw_fd()),
                    name,
                    Some(Uid::from_raw(st.st_uid)),
                    Some(Gid::from_raw(st.st_gid)),
                    AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .map_err(|e| Error::sys(format!("fchownat({name:?}) for tmpcopyup"), e))?;
            }
            _ => crate::logging::debug(&format!("tmpcopyup: special file {name:?} not copied")),
        }
    }
    Ok(())
}
