//! The runc CVE-2019-5736 class: no process in the container may ever have the host's berth binary
//! as its executable (a process holding it could, once berth exits, write the binary through
//! /proc/PID/exe and own the next `berth` the host runs).
//!
//! Two layers, each sufficient on its own:
//!
//! 1. **A sealed copy** ([`run_sealed`]). Before `create`, `run` or `exec` does anything, berth
//!    re-executes itself from a copy nobody can write, as runc and crun do: as root a read-only,
//!    detached bind mount of its binary (open_tree(OPEN_TREE_CLONE) + mount_setattr(RDONLY), dissolved
//!    once the new berth runs, so it is in no mount namespace and can never be remounted writable: the
//!    role runc 1.2's private overlayfs plays), otherwise a memfd holding its bytes with every seal
//!    (no write, grow, shrink or reseal). Every process berth makes (the init before its execve, an
//!    exec'd process before its own) runs from that copy, so /proc/PID/exe of any of them is a file
//!    nobody can write (EROFS, or EPERM from the seals); the host binary is never the executable of
//!    anything in the container, even if the check below were fooled. Cost: one extra execve per
//!    create/run/exec as root (no bytes copied); the memfd adds a copy of the binary (README,
//!    Performance).
//! 2. **The check** ([`check`]) of the program about to be executed: the program and its interpreters
//!    (`#!` lines and ELF PT_INTERP, to the kernel's recursion limit) are opened inside the container
//!    with `RESOLVE_NO_MAGICLINKS` and compared with berth's binary (the original and the copy); any
//!    of them is refused, as is any open error other than "no such file". The `#!` line is read
//!    exactly as the kernel's binfmt_script reads it (the first 256 bytes; the name ends at a space,
//!    a tab, a NUL or the newline; bytes, not UTF-8), and PT_INTERP as binfmt_elf does (the first
//!    one, 32- or 64-bit, a C string of at most PATH_MAX), so a name the kernel would open is never
//!    read differently here.

use crate::error::{Error, Result};
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;

/// Passes the original binary's identity (`dev:ino`, and for a read-only clone the fd of its mount)
/// to the re-executed berth; taken out of the environment at once, so nothing berth starts inherits
/// it.
const ORIGIN_ENV: &str = "_BERTH_SEALED_FROM";

/// (device, inode) of the original binary, when this process is the sealed copy.
static ORIGIN: OnceLock<Option<(u64, u64)>> = OnceLock::new();
/// (device, inode) of /proc/self/exe (the sealed copy once [`run_sealed`] has run).
static SELF_EXE: OnceLock<Option<(u64, u64)>> = OnceLock::new();

fn mnt_id_of(fd: std::os::fd::RawFd) -> Option<String> {
    let info = crate::sys::read_proc(&format!("/proc/self/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .map(|v| v.trim().to_string())
}

/// Whether this process already runs from a copy: a sealed memfd, or the read-only detached clone
/// whose fd the previous berth passed (the same inode, the same mount, read-only), which is closed
/// here, dissolving the clone so nobody can ever remount it writable.
fn already_sealed(exe: &std::fs::File, origin: Option<&OsStr>) -> Result<Option<(u64, u64)>> {
    let parts: Vec<&str> = origin
        .and_then(OsStr::to_str)
        .map(|o| o.split(':').collect())
        .unwrap_or_default();
    let id = match parts.as_slice() {
        [d, i, ..] => d.parse().ok().zip(i.parse().ok()),
        _ => None,
    };
    let seals = crate::sys::get_seals(exe).unwrap_or(0);
    if seals & crate::sys::SEALS_OF_COPY == crate::sys::SEALS_OF_COPY {
        return Ok(Some(id.unwrap_or((0, 0))));
    }
    let Some(raw) = parts.get(2).and_then(|f| f.parse::<i32>().ok()) else {
        return Ok(None);
    };
    // The clone's fd, inherited across the execveat: looked at through /proc/self/fd (never
    // adopted as an owned fd: it is only a number from the environment), then closed.
    if raw < 3 {
        return Ok(None);
    }
    let via = format!("/proc/self/fd/{raw}");
    let (Ok(a), Ok(b)) = (
        nix::sys::stat::stat(via.as_str()),
        crate::sys::fstat(exe).map_err(Error::from),
    ) else {
        return Ok(None);
    };
    let read_only = nix::sys::statvfs::statvfs(via.as_str())
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    let theirs = mnt_id_of(raw);
    let same = (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        && theirs.is_some()
        && theirs == mnt_id_of(exe.as_raw_fd());
    let _ = nix::unistd::close(raw);
    Ok((read_only && same).then(|| id.unwrap_or((0, 0))))
}

/// A read-only, detached bind mount of the binary (open_tree(OPEN_TREE_CLONE) + mount_setattr):
/// no copy, and writes through /proc/PID/exe fail with EROFS. Needs CAP_SYS_ADMIN over berth's mount
/// namespace (root); None where it cannot be made.
fn readonly_clone() -> Option<std::os::fd::OwnedFd> {
    let fd = crate::sys::open_tree_path(Path::new("/proc/self/exe"), crate::sys::OPEN_TREE_CLONE)
        .ok()?;
    let attr = crate::sys::MountAttr {
        attr_set: crate::sys::MOUNT_ATTR_RDONLY
            | crate::sys::MOUNT_ATTR_NOSUID
            | crate::sys::MOUNT_ATTR_NODEV,
        ..Default::default()
    };
    crate::sys::mount_setattr(&fd, false, &attr).ok()?;
    Some(fd)
}

/// Makes sure this process runs from a sealed copy of its binary: returns when it does, else
/// re-executes itself from one (and returns only on error); a second call returns at once. Called
/// first thing in `main` for the verbs that put processes into containers. As root the copy is a
/// read-only detached clone of the binary's mount (no bytes copied: one execve is the whole cost);
/// otherwise a memfd holding the bytes, sealed against writing, growing, shrinking and resealing.
pub fn run_sealed() -> Result<()> {
    if ORIGIN.get().is_some() {
        return Ok(()); // checked already: this process runs from its copy
    }
    let origin = crate::sys::take_env(ORIGIN_ENV);
    let exe = std::fs::File::open("/proc/self/exe")
        .map_err(|e| crate::error::io_err("open", Path::new("/proc/self/exe"), e))?;
    if let Some(id) = already_sealed(&exe, origin.as_deref())? {
        ORIGIN.get_or_init(|| Some(id));
        return Ok(());
    }
    if origin.is_some() {
        // Re-executed, yet not from a copy that checks out: never loop.
        return Err(Error::SafetyViolation(
            "the re-executed berth does not run from its sealed copy".into(),
        ));
    }
    let st = crate::sys::fstat(&exe)?;
    let mut marker = format!("{ORIGIN_ENV}={}:{}", st.st_dev, st.st_ino);
    let copy = match readonly_clone() {
        Some(fd) => {
            // The clone's fd goes across the execveat (the next berth checks and closes it).
            nix::fcntl::fcntl(
                fd.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(|e| Error::sys("fcntl(F_SETFD, 0) on berth's read-only clone", e))?;
            marker.push_str(&format!(":{}", fd.as_raw_fd()));
            fd
        }
        None => {
            let copy = crate::sys::memfd_exec(c"berth")?;
            let mut out = std::fs::File::from(copy);
            std::io::copy(&mut &exe, &mut out).map_err(|e| {
                crate::error::io_err("copy", Path::new("/proc/self/exe (to a memfd)"), e)
            })?;
            crate::sys::add_seals(&out, crate::sys::SEALS_OF_COPY)?;
            out.into()
        }
    };
    let argv = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::InvalidSpec("an argument holds a NUL byte".into()))?;
    let mut envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect();
    envp.push(CString::new(marker).map_err(|_| Error::InvalidSpec("environment".into()))?);
    Err(crate::sys::execveat_fd(copy.as_fd(), &argv, &envp).into())
}

/// Notes berth's own binary (device, inode) while /proc/self/exe still names it (before the
/// container's root is entered).
pub fn remember() {
    SELF_EXE.get_or_init(|| {
        std::fs::metadata("/proc/self/exe").ok().map(|m| {
            (
                std::os::unix::fs::MetadataExt::dev(&m),
                std::os::unix::fs::MetadataExt::ino(&m),
            )
        })
    });
}

fn is_berth(dev: u64, ino: u64) -> bool {
    [SELF_EXE.get(), ORIGIN.get()]
        .into_iter()
        .flatten()
        .any(|id| *id == Some((dev, ino)))
}

fn refuse(what: &str, path: &[u8], why: &str) -> Error {
    Error::SafetyViolation(format!(
        "{what} {:?}: {why}; refusing to run berth's own binary in the container (runc CVE-2019-5736 class)",
        OsStr::from_bytes(path)
    ))
}

/// Checks the program about to be executed (see the module header).
pub fn check(program: &Path) -> Result<()> {
    walk(program.as_os_str().as_bytes(), "process.args[0]", 0)
}

/// BINPRM_BUF_SIZE: what the kernel reads of a file to pick its binary format.
const BINPRM_BUF_SIZE: usize = 256;
/// The kernel's limit on interpreter nesting (bprm->have_execfd aside: 4 levels, then ELOOP).
const MAX_DEPTH: usize = 4;

fn walk(path: &[u8], what: &str, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(refuse(
            what,
            path,
            "interpreters nest deeper than the kernel allows",
        ));
    }
    use nix::errno::Errno;
    // Looked at first without opening it for reading: a FIFO would block the read open (a program
    // that hangs create), a device's open could act. execve takes regular files only.
    let probe = |flags: i32| {
        crate::sys::openat2_errno(
            None,
            Path::new(OsStr::from_bytes(path)),
            flags,
            0,
            crate::sys::RESOLVE_NO_MAGICLINKS,
        )
    };
    let pathfd = match probe(libc::O_PATH) {
        Ok(fd) => fd,
        Err(Errno::ELOOP) | Err(Errno::EXDEV) => {
            return Err(refuse(what, path, "resolves through a /proc magic link"));
        }
        // Genuinely absent: the kernel's execve fails on it the same way.
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => return Ok(()),
        Err(e) => {
            return Err(refuse(
                what,
                path,
                &format!("cannot be opened to be checked ({e})"),
            ));
        }
    };
    let st = crate::sys::fstat(&pathfd)?;
    if is_berth(st.st_dev, st.st_ino) {
        return Err(refuse(what, path, "is berth's own binary"));
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Ok(()); // execve refuses anything but a regular file (EACCES)
    }
    let fd = probe(libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY)
        .map_err(|e| refuse(what, path, &format!("cannot be opened to be checked ({e})")))?;
    let again = crate::sys::fstat(&fd)?;
    if (again.st_dev, again.st_ino) != (st.st_dev, st.st_ino) {
        return Err(refuse(what, path, "changed while it was checked"));
    }
    let file = std::fs::File::from(fd);
    let mut head = [0u8; BINPRM_BUF_SIZE];
    let n = read_full_at(&file, &mut head, 0)
        .map_err(|e| refuse(what, path, &format!("cannot be read to be checked ({e})")))?;
    if let Some(interp) = script_interpreter(&head[..n]) {
        return walk(&interp, "the #! interpreter", depth + 1);
    }
    if let Some(interp) = elf_interpreter(&file, &head[..n]) {
        return walk(&interp, "the ELF interpreter (PT_INTERP)", depth + 1);
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends.
fn read_full_at(file: &std::fs::File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], at + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The interpreter name of a `#!` script exactly as fs/binfmt_script.c's load_script finds it in the
/// first BINPRM_BUF_SIZE bytes (the rest zero): the line ends at the first newline before any NUL (else
/// the buffer's last byte, provided a space, tab or NUL ends the name before it); trailing spaces and
/// tabs are trimmed; the name starts after leading spaces and tabs and ends at a space, a tab or a NUL.
/// None where the kernel answers ENOEXEC.
pub fn script_interpreter(head: &[u8]) -> Option<Vec<u8>> {
    let mut buf = [0u8; BINPRM_BUF_SIZE];
    let n = head.len().min(BINPRM_BUF_SIZE);
    buf[..n].copy_from_slice(&head[..n]);
    if !buf.starts_with(b"#!") {
        return None;
    }
    let spacetab = |c: u8| c == b' ' || c == b'\t';
    let terminator = |c: u8| spacetab(c) || c == 0;
    let last = BINPRM_BUF_SIZE - 1;
    // strnchr(buf, sizeof buf, '\n') stops at a NUL.
    let newline = buf
        .iter()
        .position(|&c| c == b'\n' || c == 0)
        .filter(|&i| buf[i] == b'\n');
    let mut end = match newline {
        Some(i) => i,
        None => {
            let first = (2..=last).find(|&i| !spacetab(buf[i]))?;
            (first..=last).find(|&i| terminator(buf[i]))?;
            last
        }
    };
    // buf[1] is '!', so this stops by index 2.
    while spacetab(buf[end - 1]) {
        end -= 1;
    }
    let name = (2..=end).find(|&i| !spacetab(buf[i]))?;
    if name == end {
        return None;
    }
    let stop = (name..end).find(|&i| terminator(buf[i])).unwrap_or(end);
    Some(buf[name..stop].to_vec())
}

/// PT_INTERP as fs/binfmt_elf.c reads it: the first PT_INTERP program header of a little-endian ELF
/// of either class (x86-64 runs 32-bit ELF too), its p_filesz in 2..=PATH_MAX, the name the C string
/// at its start. Program headers are read up to the kernel's 64 KiB limit, whatever e_phentsize claims
/// beyond the class's own size (the kernel refuses other sizes; so does this, by finding nothing).
#[allow(
    clippy::cast_possible_truncation,
    reason = "filesz is checked to be at most 4096 above"
)]
pub fn elf_interpreter(file: &std::fs::File, head: &[u8]) -> Option<Vec<u8>> {
    if head.len() < 52 || !head.starts_with(b"\x7fELF") || head[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    // (phoff, phentsize, phnum) and, per header, (type, offset, filesz).
    let (phoff, phentsize, phnum, entry): (u64, u16, u16, usize) = match head[4] {
        2 if head.len() >= 64 => (
            u64_at(head, 0x20)?,
            u16_at(head, 0x36)?,
            u16_at(head, 0x38)?,
            56,
        ),
        1 => (
            u32_at(head, 0x1c)?.into(),
            u16_at(head, 0x2a)?,
            u16_at(head, 0x2c)?,
            32,
        ),
        _ => return None,
    };
    if usize::from(phentsize) != entry {
        return None;
    }
    let size = entry * usize::from(phnum);
    if size == 0 || size > 65536 {
        return None;
    }
    let mut phs = vec![0u8; size];
    if read_full_at(file, &mut phs, phoff).ok()? != size {
        return None;
    }
    let ph = phs
        .chunks_exact(entry)
        .find(|ph| u32_at(ph, 0) == Some(3))?;
    let (off, filesz) = if entry == 56 {
        (u64_at(ph, 8)?, u64_at(ph, 32)?)
    } else {
        (u32_at(ph, 4)?.into(), u32_at(ph, 16)?.into())
    };
    if !(2..=4096).contains(&filesz) {
        return None;
    }
    let mut buf = vec![0u8; filesz as usize];
    if read_full_at(file, &mut buf, off).ok()? != buf.len() || buf.last() != Some(&0) {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0)?;
    Some(buf[..end].to_vec())
}

#[cfg(test)]
mod tests {
    use super::script_interpreter as si;

    fn s(b: &[u8]) -> Option<String> {
        si(b).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn shebang_as_binfmt_script_reads_it() {
        assert_eq!(s(b"#!/bin/sh\n"), Some("/bin/sh".into()));
        assert_eq!(s(b"#! \t/bin/sh -e\n"), Some("/bin/sh".into()));
        assert_eq!(s(b"#!/bin/sh"), Some("/bin/sh".into()));
        // A NUL ends the name (and the line, before any newline).
        assert_eq!(
            s(b"#!/proc/self/exe\0junk\n"),
            Some("/proc/self/exe".into())
        );
        // A vertical tab, a form feed, CR and invalid UTF-8 are part of the name.
        assert_eq!(
            s(b"#!/x\x0b/../proc/self/exe\n"),
            Some("/x\x0b/../proc/self/exe".into())
        );
        assert_eq!(s(b"#!/bin/sh\r\n"), Some("/bin/sh\r".into()));
        assert_eq!(si(b"#!/\xff\xfe/a b\n").unwrap(), b"/\xff\xfe/a");
        assert_eq!(s(b"#!\n"), None);
        assert_eq!(s(b"#!   \n"), None);
        assert_eq!(s(b"not a script"), None);
        // No newline in 256 bytes and no terminator: a truncated name, ENOEXEC.
        let mut long = b"#!/".to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        assert_eq!(s(&long), None);
        // No newline, but a space ends the name: it counts.
        let mut spaced = b"#!/proc/self/exe ".to_vec();
        spaced.extend(std::iter::repeat_n(b'a', 300));
        assert_eq!(s(&spaced), Some("/proc/self/exe".into()));
    }
}
