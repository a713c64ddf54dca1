//! The runc CVE-2019-5736 class: the container must never get the host's berth binary executed
//! inside it (a process running it could, once berth exits, write the binary through
//! /proc/<pid>/exe and own the next `berth` the host runs).
//!
//! berth never re-executes itself, so the way in is the container's program: `/proc/self/exe`
//! itself, a script whose `#!` interpreter is such a magic link, an ELF whose PT_INTERP is one, or
//! berth's binary bound or linked into the container. Before the final execve the program and its
//! interpreters (the kernel's recursion limit, 4 levels) are opened inside the container with
//! `RESOLVE_NO_MAGICLINKS` and compared with berth's own binary; any of those is refused. Without a
//! process of the container running yet (create/run) nothing can swap the files in between; for
//! `exec` into a running container a racing process could, which only a sealed copy of the binary
//! closes (not built yet; README says so).

use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::OnceLock;

static SELF_EXE: OnceLock<Option<(u64, u64)>> = OnceLock::new();

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

fn refuse(what: &str, path: &Path, why: &str) -> Error {
    Error::SafetyViolation(format!(
        "{what} {}: {why}; refusing to run berth's own binary in the container (runc CVE-2019-5736 class)",
        path.display()
    ))
}

/// Checks the program about to be executed (see the module header).
pub fn check(program: &Path) -> Result<()> {
    walk(program, "process.args[0]", 0)
}

fn walk(path: &Path, what: &str, depth: usize) -> Result<()> {
    if depth > 4 {
        return Err(refuse(
            what,
            path,
            "interpreters nest deeper than the kernel allows",
        ));
    }
    let fd = match crate::sys::openat2_errno(
        None,
        path,
        libc::O_RDONLY,
        0,
        crate::sys::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ELOOP) | Err(nix::errno::Errno::EXDEV) => {
            return Err(refuse(what, path, "resolves through a /proc magic link"));
        }
        // Not readable or gone: execve will say so itself.
        Err(_) => return Ok(()),
    };
    let st = crate::sys::fstat(&fd)?;
    if SELF_EXE.get().copied().flatten() == Some((st.st_dev, st.st_ino)) {
        return Err(refuse(what, path, "is berth's own binary"));
    }
    let mut file = std::fs::File::from(fd);
    let mut head = [0u8; 256];
    let n = file.read(&mut head).unwrap_or(0);
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
        let interp = String::from_utf8_lossy(line);
        if let Some(i) = interp.split_whitespace().next() {
            return walk(Path::new(i), "the #! interpreter", depth + 1);
        }
        return Ok(());
    }
    if head.len() >= 64
        && head.starts_with(b"\x7fELF")
        && head[4] == 2
        && let Some(interp) = elf_interp(&file, head)
    {
        return walk(
            Path::new(&interp),
            "the ELF interpreter (PT_INTERP)",
            depth + 1,
        );
    }
    Ok(())
}

/// PT_INTERP of a 64-bit little-endian ELF.
fn elf_interp(file: &std::fs::File, head: &[u8]) -> Option<String> {
    let u16_at = |b: &[u8], o: usize| Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |b: &[u8], o: usize| Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |b: &[u8], o: usize| Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?));
    let phoff = u64_at(head, 0x20)?;
    let phentsize = u16_at(head, 0x36)? as u64;
    let phnum = u16_at(head, 0x38)?.min(64) as u64;
    // All program headers in one read.
    let mut phs = vec![0u8; (phnum * phentsize).min(64 * 64) as usize];
    file.read_exact_at(&mut phs, phoff).ok()?;
    for ph in phs.chunks(phentsize.max(1) as usize) {
        if ph.len() >= 56 && u32_at(ph, 0)? == 3 {
            let (off, size) = (u64_at(ph, 8)?, u64_at(ph, 32)?.min(4096));
            let mut buf = vec![0u8; size as usize];
            file.read_exact_at(&mut buf, off).ok()?;
            let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
            return Some(String::from_utf8_lossy(&buf[..end]).into_owned());
        }
    }
    None
}
