//! [`Root`]: a handle on a directory that every container-controlled path is resolved beneath.
//!
//! Lookups use `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so the kernel clamps `..` and absolute
//! symlinks at the root and refuses `/proc/self/...`-style magic links; a rename race makes the kernel
//! answer EAGAIN, which is retried a bounded number of times and then fails closed.
//!
//! Creating a missing destination ([`Root::mkdir_all`], [`Root::create_file`]) cannot be done by the
//! kernel in one call, so it walks one component at a time: every parent is re-opened from the root
//! with `RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS` just before use, each component is opened with
//! `O_NOFOLLOW` so a symlink is seen rather than followed, and symlinks are expanded here, inside the
//! root (absolute ones restart at the root), up to 40 of them. A dangling symlink is therefore resolved
//! inside the root and its target created there (images ship /etc/localtime like that). The finished
//! path is opened once more from the root, and that fd is what the caller gets. Modelled on libpathrs
//! `src/resolvers/openat2.rs` and crun's `safe_openat`.

use crate::error::{Error, Result};
use crate::sys::{self, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS};
use nix::errno::Errno;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// How often an EAGAIN is retried before giving up (fail closed). RESOLVE_IN_ROOT answers EAGAIN when
/// any rename or mount anywhere raced the lookup, so a busy host needs more than a handful.
const EAGAIN_RETRIES: usize = 128;
/// Symlinks followed in one creating walk, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;
/// Steps in one creating walk before it is taken for a livelock.
const MAX_STEPS: usize = 4096;

/// The parent directory [`Root::open_or_create_stat`] last created in (its path in the root and fd).
/// The caller reports each mount attached ([`ParentCache::mounted_at`]); any but one strictly inside
/// the cached parent clears it.
#[derive(Debug, Default)]
pub struct ParentCache(Option<(PathBuf, OwnedFd)>);

impl ParentCache {
    /// Forgets the parent unless a mount attached at `dest` (a path in the root) went inside it:
    /// one at the parent, above it, or elsewhere (a symlink may lead anywhere) may cover it.
    pub fn mounted_at(&mut self, dest: &Path) {
        if self
            .0
            .as_ref()
            .is_some_and(|(p, _)| !is_strictly_below(dest, p))
        {
            self.0 = None;
        }
    }
}

/// `a` is inside `b` (and not `b` itself), component-wise.
fn is_strictly_below(a: &Path, b: &Path) -> bool {
    a != b && a.starts_with(b)
}

/// What a path must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// Anything but a directory (a bind-mount target for a file).
    File,
}

/// An O_PATH handle on a directory used as `/` for path resolution.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    /// The host path, for messages only: never used to reach the directory.
    display: PathBuf,
    /// (st_dev, st_ino) of the root, read once when first asked.
    id: std::cell::OnceCell<(u64, u64)>,
}

fn file_type(fd: impl AsFd) -> Result<u32> {
    Ok(sys::fstat(fd)?.st_mode & libc::S_IFMT)
}

/// Components of `path` as names and `..`, without `/` and `.`.
fn parts(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// `path` relative to the root, for openat2 (empty means the root itself, spelled ".").
fn rel(path: &Path) -> std::borrow::Cow<'_, Path> {
    // The common case, an absolute path of plain names (`/mnt/v1`), is borrowed as is without its
    // leading slashes; anything else is rebuilt from its components.
    let bytes = path.as_os_str().as_bytes();
    let trimmed = &bytes[bytes.iter().take_while(|b| **b == b'/').count()..];
    let plain = !trimmed.is_empty()
        && !trimmed.ends_with(b"/")
        && trimmed
            .split(|b| *b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..");
    if plain {
        return std::borrow::Cow::Borrowed(Path::new(std::ffi::OsStr::from_bytes(trimmed)));
    }
    let p: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if p.as_os_str().is_empty() {
        std::borrow::Cow::Owned(PathBuf::from("."))
    } else {
        std::borrow::Cow::Owned(p)
    }
}

impl Root {
    /// Opens `path` (a host path the caller trusts, e.g. the bundle's rootfs) as a root.
    pub fn open(path: &Path) -> Result<Root> {
        let fd = sys::openat2(None, path, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        Ok(Root {
            fd,
            display: path.to_path_buf(),
            id: Default::default(),
        })
    }

    /// Wraps an fd already known to be a directory (e.g. the root of a mount berth just made).
    pub fn from_fd(fd: OwnedFd, display: impl Into<PathBuf>) -> Root {
        Root {
            fd,
            display: display.into(),
            id: Default::default(),
        }
    }

    /// (st_dev, st_ino) of the root directory, to recognise it behind another fd.
    pub fn id(&self) -> Result<(u64, u64)> {
        if let Some(id) = self.id.get() {
            return Ok(*id);
        }
        let st = sys::fstat(self.fd())?;
        Ok(*self.id.get_or_init(|| (st.st_dev, st.st_ino)))
    }

    /// The handle.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// openat2 from the root with bounded EAGAIN retries; errors carry only the errno (see
    /// [`Root::err`] for the message).
    fn openat2_retry(&self, path: &Path, flags: i32, resolve: u64) -> Result<OwnedFd, Errno> {
        let path = rel(path);
        let mut tries = 0;
        loop {
            match sys::openat2_errno(Some(self.fd()), &path, flags, 0, resolve) {
                Err(Errno::EAGAIN) if tries < EAGAIN_RETRIES => {
                    tries += 1;
                    std::thread::yield_now();
                }
                other => return other,
            }
        }
    }

    /// The error for a failed lookup of `path` in this root.
    fn err(&self, path: &Path, resolve: u64, errno: Errno) -> Error {
        let how = if resolve & RESOLVE_NO_SYMLINKS != 0 {
            "IN_ROOT|NO_SYMLINKS"
        } else {
            "IN_ROOT|NO_MAGICLINKS"
        };
        Error::sys(
            format!(
                "openat2([{}], {:?}, {how})",
                self.display.display(),
                rel(path)
            ),
            errno,
        )
    }

    fn lookup(&self, path: &Path, flags: i32, resolve: u64) -> Result<OwnedFd> {
        self.openat2_retry(path, flags, resolve)
            .map_err(|e| self.err(path, resolve, e))
    }

    /// Opens `path` inside the root with `flags` (O_PATH for a handle), following symlinks only inside
    /// the root and refusing magic links.
    pub fn open_at(&self, path: &Path, flags: i32) -> Result<OwnedFd> {
        self.lookup(path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    }

    /// Opens `path` inside the root refusing every symlink on the way (for proc and sysfs targets, which
    /// must be real directories).
    pub fn open_no_symlinks(&self, path: &Path, flags: i32) -> Result<OwnedFd> {
        self.lookup(path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
    }

    /// An O_PATH handle on the directory `path`, creating it and its parents (mode 0755) if missing.
    pub fn mkdir_all(&self, path: &Path) -> Result<OwnedFd> {
        self.open_or_create(path, Kind::Dir)
    }

    /// An O_PATH handle on the non-directory `path`, creating an empty file (and parent directories) if
    /// missing.
    pub fn create_file(&self, path: &Path) -> Result<OwnedFd> {
        self.open_or_create(path, Kind::File)
    }

    fn check_kind(&self, fd: OwnedFd, path: &Path, kind: Kind) -> Result<OwnedFd> {
        let is_dir = file_type(&fd)? == libc::S_IFDIR;
        match (kind, is_dir) {
            (Kind::Dir, false) => Err(Error::sys(
                format!(
                    "{:?} in {}: expected a directory",
                    path,
                    self.display.display()
                ),
                Errno::ENOTDIR,
            )),
            (Kind::File, true) => Err(Error::sys(
                format!(
                    "{:?} in {}: expected a file, found a directory",
                    path,
                    self.display.display()
                ),
                Errno::EISDIR,
            )),
            _ => Ok(fd),
        }
    }

    /// The fast path is one openat2. A missing last component whose parent exists (the common case:
    /// a mount point in a fresh tmpfs) is created in that parent and the result re-opened from the
    /// root; anything else takes the component walk.
    pub fn open_or_create(&self, path: &Path, kind: Kind) -> Result<OwnedFd> {
        const R: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        match self.openat2_retry(path, libc::O_PATH, R) {
            Ok(fd) => return self.check_kind(fd, path, kind),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.err(path, R, e)),
        }
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name())
            && name != ".."
            && let Ok(dir) = self.openat2_retry(parent, libc::O_PATH | libc::O_DIRECTORY, R)
            && self.create_in(&dir, Path::new(name), kind).is_ok()
        {
            let fd = self.lookup(path, libc::O_PATH, R)?;
            return self.check_kind(fd, path, kind);
        }
        let done = self.walk_create(path, kind)?;
        let fd = self.lookup(&done, libc::O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)?;
        self.check_kind(fd, path, kind)
    }

    /// [`Root::open_or_create`] for many destinations in a row (a container's volumes): also returns
    /// the destination's stat, asks `kind` only when the destination must be created, and keeps the
    /// last parent directory it created in (`cache`), so volumes side by side cost one mkdirat each.
    /// What is mounted on is always the fd of a lookup from the root (IN_ROOT, no magic links), made
    /// after the creation: a stale or swapped parent can at worst leave an empty directory behind,
    /// never steer a mount.
    pub fn open_or_create_stat(
        &self,
        path: &Path,
        kind: &mut dyn FnMut() -> Result<Kind>,
        cache: &mut ParentCache,
    ) -> Result<(OwnedFd, libc::stat)> {
        const R: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
        match self.openat2_retry(path, libc::O_PATH, R) {
            Ok(fd) => {
                let st = sys::fstat(&fd)?;
                return Ok((fd, st));
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(self.err(path, R, e)),
        }
        let k = kind()?;
        if let (Some(parent), Some(name)) = (path.parent(), path.file_name())
            && name != ".."
        {
            if cache.0.as_ref().is_none_or(|(p, _)| p != parent) {
                cache.0 = self
                    .openat2_retry(parent, libc::O_PATH | libc::O_DIRECTORY, R)
                    .ok()
                    .map(|fd| (parent.to_path_buf(), fd));
            }
            if let Some((_, dir)) = &cache.0
                && self.create_in(dir, Path::new(name), k).is_ok()
                && let Ok(fd) = self.openat2_retry(path, libc::O_PATH, R)
            {
                let st = sys::fstat(&fd)?;
                return Ok((self.check_kind_stat(fd, &st, path, k)?, st));
            }
            cache.0 = None;
        }
        let fd = self.open_or_create(path, k)?;
        let st = sys::fstat(&fd)?;
        Ok((fd, st))
    }

    fn check_kind_stat(
        &self,
        fd: OwnedFd,
        st: &libc::stat,
        path: &Path,
        kind: Kind,
    ) -> Result<OwnedFd> {
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir == (kind == Kind::Dir) {
            return Ok(fd);
        }
        self.check_kind(fd, path, kind)
    }

    /// Creates `name` (a single component) in the directory `dir`: a directory, or an empty file.
    /// Never follows a symlink at `name` (EEXIST instead).
    fn create_in(
        &self,
        dir: &OwnedFd,
        name: &Path,
        kind: Kind,
    ) -> Result<(), crate::error::SysError> {
        match kind {
            Kind::File => sys::openat2(
                Some(dir.as_fd()),
                name,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW,
                0o644,
                RESOLVE_NO_SYMLINKS | sys::RESOLVE_BENEATH,
            )
            .map(drop),
            Kind::Dir => nix::sys::stat::mkdirat(
                Some(std::os::fd::AsRawFd::as_raw_fd(dir)),
                name,
                nix::sys::stat::Mode::from_bits_truncate(0o755),
            )
            .map_err(|errno| crate::error::SysError {
                call: format!("mkdirat({:?} in {})", name, self.display.display()),
                errno,
            }),
        }
    }

    /// Creates what is missing of `path`; returns the symlink-free path (relative to the root) it made.
    fn walk_create(&self, path: &Path, kind: Kind) -> Result<PathBuf> {
        let mut pending = parts(path);
        pending.reverse();
        let mut done = PathBuf::new();
        let (mut links, mut steps) = (0, 0);
        while let Some(name) = pending.pop() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(Error::SafetyViolation(format!(
                    "creating {:?} in {}: the tree kept changing under berth",
                    path,
                    self.display.display()
                )));
            }
            if name == ".." {
                done.pop();
                continue;
            }
            let parent = self.lookup(
                &done,
                libc::O_PATH | libc::O_DIRECTORY,
                RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
            )?;
            let last = pending.is_empty();
            let opened = sys::openat2_errno(
                Some(parent.as_fd()),
                Path::new(&name),
                libc::O_PATH | libc::O_NOFOLLOW,
                0,
                RESOLVE_NO_SYMLINKS | sys::RESOLVE_BENEATH,
            );
            match opened {
                Ok(fd) => {
                    let t = file_type(&fd)?;
                    if t == libc::S_IFLNK {
                        links += 1;
                        if links > MAX_SYMLINKS {
                            return Err(Error::sys(
                                format!(
                                    "resolving {:?} in {}: too many symlinks",
                                    path,
                                    self.display.display()
                                ),
                                Errno::ELOOP,
                            ));
                        }
                        let target =
                            nix::fcntl::readlinkat(Some(std::os::fd::AsRawFd::as_raw_fd(&fd)), "")
                                .map_err(|e| {
                                    Error::sys(format!("readlinkat({:?})", done.join(&name)), e)
                                })?;
                        if target.as_bytes().starts_with(b"/") {
                            done.clear();
                        }
                        let mut more = parts(Path::new(&target));
                        more.reverse();
                        pending.extend(more);
                        continue;
                    }
                    if !last && t != libc::S_IFDIR {
                        return Err(Error::sys(
                            format!(
                                "{:?} in {}: a path component is not a directory",
                                done.join(&name),
                                self.display.display()
                            ),
                            Errno::ENOTDIR,
                        ));
                    }
                    done.push(&name);
                }
                Err(Errno::ENOENT) => {
                    let made = self.create_in(
                        &parent,
                        Path::new(&name),
                        if last { kind } else { Kind::Dir },
                    );
                    match made {
                        // Open it again on the next round: that checks what is there now.
                        Ok(()) => pending.push(name),
                        Err(e) if e.errno == Errno::EEXIST => pending.push(name),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => {
                    return Err(sys::openat2_error(
                        Some(parent.as_fd()),
                        Path::new(&name),
                        RESOLVE_NO_SYMLINKS,
                        e,
                    )
                    .into());
                }
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn rel_borrows_plain_paths_and_rebuilds_the_rest() {
        for (p, want, borrowed) in [
            ("/mnt/v1", "mnt/v1", true),
            ("mnt", "mnt", true),
            ("//a/b", "a/b", true),
            ("/", ".", false),
            ("", ".", false),
            ("/a/./b", "a/b", false),
            ("/a//b/", "a/b", false),
            ("/a/../b", "a/../b", false),
        ] {
            let r = rel(Path::new(p));
            assert_eq!(r.as_ref(), Path::new(want), "{p}");
            assert_eq!(matches!(r, std::borrow::Cow::Borrowed(_)), borrowed, "{p}");
        }
    }

    fn tree() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let r = Root::open(&root).unwrap();
        (t, r)
    }

    #[test]
    fn absolute_symlink_stays_inside() {
        let (t, r) = tree();
        let root = t.path().join("root");
        symlink(t.path(), root.join("escape")).unwrap();
        r.mkdir_all(Path::new("/escape/made")).unwrap();
        assert!(!t.path().join("made").exists());
        assert!(
            root.join(t.path().strip_prefix("/").unwrap())
                .join("made")
                .is_dir()
        );
    }

    #[test]
    fn dotdot_clamps_at_root() {
        let (t, r) = tree();
        r.mkdir_all(Path::new("/../../x/../y")).unwrap();
        assert!(t.path().join("root/y").is_dir());
        assert!(!t.path().join("y").exists());
    }

    #[test]
    fn relative_symlink_escape_clamped() {
        let (t, r) = tree();
        let root = t.path().join("root");
        symlink("../../../../..", root.join("etc/up")).unwrap();
        r.create_file(Path::new("/etc/up/file")).unwrap();
        assert!(root.join("file").is_file());
    }

    #[test]
    fn dangling_symlink_created_inside() {
        let (t, r) = tree();
        let root = t.path().join("root");
        symlink("/usr/share/zoneinfo/UTC", root.join("etc/localtime")).unwrap();
        r.create_file(Path::new("/etc/localtime")).unwrap();
        assert!(root.join("usr/share/zoneinfo/UTC").is_file());
    }

    #[test]
    fn loop_is_eloop() {
        let (t, r) = tree();
        let root = t.path().join("root");
        symlink("b", root.join("a")).unwrap();
        symlink("a", root.join("b")).unwrap();
        let e = r.mkdir_all(Path::new("/a/x")).unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ELOOP), "{e}");
    }

    #[test]
    fn magic_link_refused() {
        let (t, r) = tree();
        let root = t.path().join("root");
        symlink("/proc/self/root", root.join("magic")).unwrap();
        // Inside the root, /proc/self/root does not exist: resolution must not reach the host's procfs.
        assert!(r.open_at(Path::new("/magic/etc"), libc::O_PATH).is_err());
    }

    #[test]
    fn kind_mismatch() {
        let (_t, r) = tree();
        assert_eq!(
            r.create_file(Path::new("/etc")).unwrap_err().errno(),
            Some(Errno::EISDIR)
        );
        r.create_file(Path::new("/f")).unwrap();
        assert_eq!(
            r.mkdir_all(Path::new("/f")).unwrap_err().errno(),
            Some(Errno::ENOTDIR)
        );
    }
}
