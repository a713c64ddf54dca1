//! OCI image layouts for the front end (`berth run --rootfs oci:DIR[:TAG]`): what `skopeo copy ...
//! oci:DIR:TAG` or `podman save --format oci-dir` write. The manifest, the config and every layer
//! are read by digest and checked against it; each layer is unpacked once into a content-addressed
//! cache (`/var/lib/berth/layers/sha256/<digest>`), and the container runs on an overlay of the
//! layers with a tmpfs upper layer, mounted in a mount namespace of berth's own, so the host never
//! sees it and nothing is left when the container is gone.
//!
//! Unpacking resolves every entry beneath the layer's directory with openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS): an entry with `..`, or one reached through a symlink (an absolute one to
//! the host, say), or a hardlink to anything outside the layer, refuses the whole layer, which then
//! leaves nothing in the cache. Whiteouts (`.wh.NAME`, `.wh..wh..opq`) become overlayfs whiteouts
//! (a 0:0 character device, the `trusted.overlay.opaque` xattr); owners, modes and device nodes are
//! kept (root only; the container's own /dev is a fresh tmpfs all the same).

use crate::error::{Error, Result, io_err};
use crate::sys;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// The image's defaults for the process (the config's `config` object).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    /// `KEY=VALUE` entries.
    #[serde(default)]
    pub env: Option<Vec<String>>,
    /// The entrypoint.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The default arguments.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// `user[:group]`.
    #[serde(default)]
    pub user: Option<String>,
}

/// An image ready to run: its layers in the cache (bottom first) and its config.
#[derive(Debug)]
pub struct Image {
    /// Unpacked layer directories, bottom first.
    pub layers: Vec<PathBuf>,
    /// The process defaults.
    pub config: Config,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: Option<String>,
    digest: String,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<Config>,
}

/// `oci:DIR[:TAG]` → the layout directory and the tag. As skopeo reads it, the tag is all after
/// the first ':' (it may hold more: `localhost/bb:1`), so DIR cannot contain one.
pub fn parse_ref(s: &str) -> Option<(PathBuf, Option<String>)> {
    let rest = s.strip_prefix("oci:")?;
    match rest.split_once(':') {
        Some((dir, tag)) if !tag.is_empty() => Some((PathBuf::from(dir), Some(tag.to_string()))),
        Some((dir, _)) => Some((PathBuf::from(dir), None)),
        None => Some((PathBuf::from(rest), None)),
    }
}

/// Where unpacked layers are kept.
///
/// Host root's: `/var/lib/berth/layers`. Without host root (a user's own user namespace):
/// `$XDG_CACHE_HOME/berth/layers`, else `$HOME/.cache/berth/layers`, the user's own (its layers'
/// owners are the user's subordinate ids, their overlay metadata in `user.` xattrs).
pub fn cache_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_IMAGE_CACHE") {
        return PathBuf::from(p);
    }
    if !crate::spec::rootless::active() {
        return PathBuf::from("/var/lib/berth/layers");
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    base.join("berth/layers")
}

/// The xattr namespace of overlay metadata: `trusted.` for host root, `user.` in a user namespace
/// (where `trusted.` cannot be set; the overlay is then mounted with `userxattr`).
fn overlay_xattr(name: &str) -> String {
    if crate::spec::rootless::in_user_namespace() {
        format!("user.overlay.{name}")
    } else {
        format!("trusted.overlay.{name}")
    }
}

/// The most bytes one layer may unpack to (data plus 512 per entry): `BERTH_IMAGE_MAX_LAYER_BYTES`,
/// else 16 GiB. A decompression bomb stops here with an error, leaving nothing in the cache.
fn max_layer_bytes() -> u64 {
    std::env::var("BERTH_IMAGE_MAX_LAYER_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 << 30)
}

/// The most entries one layer may have (an inode bomb of empty files stops here).
const MAX_ENTRIES: u64 = 4 << 20;
/// The longest entry name or link target (a GNU long name or PAX path included): PATH_MAX.
const MAX_NAME: u64 = 4096;
/// The largest PAX extended header.
const MAX_PAX: u64 = 1 << 20;

/// The layer cache: a root-owned 0700 directory, and every directory of its own (`sha256/`, each
/// layer's `sha256/<hex>/`, `tmp-*`, `run/`) likewise, checked on the fd at every use, so no other
/// user can reach an unpacked layer (its set-uid files) or plant one.
struct Cache {
    path: PathBuf,
    fd: OwnedFd,
}

/// A directory of the cache is root's, not reachable by anyone else, and not a symlink (the fd was
/// opened with O_NOFOLLOW / RESOLVE_NO_SYMLINKS).
fn vet_dir(fd: &OwnedFd, path: &Path) -> Result<()> {
    let st = sys::fstat(fd)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR || st.st_uid != 0 || st.st_mode & 0o077 != 0 {
        return Err(Error::SafetyViolation(format!(
            "image cache {}: owned by uid {} with mode {:o}; it must be a directory of root's with mode 0700 (one someone else made or can reach is never used: remove it)",
            path.display(),
            st.st_uid,
            st.st_mode & 0o7777
        )));
    }
    Ok(())
}

impl Cache {
    /// Opens (making it 0700 when missing) and vets the cache root.
    fn open() -> Result<Cache> {
        let path = cache_dir();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err("mkdir", parent, e))?;
        }
        match nix::unistd::mkdir(&path, nix::sys::stat::Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkdir({})", path.display()), e)),
        }
        let fd = sys::openat2(
            None,
            &path,
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
            0,
        )
        .map_err(|e| {
            Error::SafetyViolation(format!(
                "image cache {}: not a directory (a symlink?): {e}",
                path.display()
            ))
        })?;
        vet_dir(&fd, &path)?;
        Ok(Cache { path, fd })
    }

    /// `rel` (one or more names) below the cache root, made 0700 when missing, vetted.
    fn make_dir(&self, rel: &str) -> Result<OwnedFd> {
        match nix::sys::stat::mkdirat(
            at(self.fd.as_fd()),
            rel,
            nix::sys::stat::Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => {
                let path = self.path.join(rel);
                return Err(Error::sys(format!("mkdirat({})", path.display()), e));
            }
        }
        self.find_dir(rel)?
            .ok_or_else(|| Error::State(format!("{rel} vanished from the image cache")))
    }

    /// `rel` below the cache root, vetted, if it exists.
    fn find_dir(&self, rel: &str) -> Result<Option<OwnedFd>> {
        let path = self.path.join(rel);
        match sys::openat2_errno(
            Some(self.fd.as_fd()),
            Path::new(rel),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            BENEATH,
        ) {
            Ok(fd) => vet_dir(&fd, &path).map(|()| Some(fd)),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(Error::SafetyViolation(format!(
                "image cache {}: not a directory of its own (a symlink?): {}",
                path.display(),
                sys::openat2_error(Some(self.fd.as_fd()), Path::new(rel), BENEATH, e)
            ))),
        }
    }

    /// Removes `rel` below the cache root (a half-unpacked layer); errors are only logged.
    fn remove(&self, rel: &str) {
        let path = self.path.join(rel);
        if let Err(e) = std::fs::remove_dir_all(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            crate::logging::warn(&format!("removing {}: {e}", path.display()));
        }
    }

    /// Half-unpacked layers (`tmp-<hex>-<pid>`) left by a berth that was killed: every one whose
    /// unpacker is gone.
    fn remove_stale(&self) {
        let Ok(rd) = std::fs::read_dir(&self.path) else {
            return;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name
                .strip_prefix("tmp-")
                .and_then(|p| p.rsplit_once('-'))
                .and_then(|(_, p)| p.parse::<i32>().ok())
            else {
                continue;
            };
            if sys::process_start_time(pid).is_none() {
                self.remove(&name);
            }
        }
    }
}

fn bad(dir: &Path, why: impl std::fmt::Display) -> Error {
    Error::InvalidSpec(format!("--rootfs oci:{}: {why}", dir.display()))
}

/// `sha256:<64 hex>` → the hex (the only form used in paths).
fn hex_of<'a>(dir: &Path, digest: &'a str) -> Result<&'a str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| {
            h.len() == 64
                && h.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        })
        .ok_or_else(|| bad(dir, format!("digest {digest:?} is not sha256:<64 hex>")))
}

fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf> {
    Ok(dir.join("blobs/sha256").join(hex_of(dir, digest)?))
}

/// A small JSON blob, checked against its digest.
fn read_blob<T: serde::de::DeserializeOwned>(dir: &Path, digest: &str, what: &str) -> Result<T> {
    let path = blob_path(dir, digest)?;
    let f = std::fs::File::open(&path).map_err(|e| io_err("open", &path, e))?;
    let mut bytes = Vec::new();
    f.take(4 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| io_err("read", &path, e))?;
    let got = hex(&Sha256::digest(&bytes));
    if got != hex_of(dir, digest)? {
        return Err(bad(
            dir,
            format!("{what} {digest} does not match its content (sha256 {got})"),
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| bad(dir, format!("{what} {digest}: {e}")))
}

/// Reads the layout, picks the manifest (by tag; the only one without), unpacks missing layers.
pub fn load(dir: &Path, tag: Option<&str>) -> Result<Image> {
    if crate::spec::rootless::unprivileged() {
        return Err(bad(
            dir,
            "images need root, or root of a user namespace (the front end enters one)",
        ));
    }
    let index_path = dir.join("index.json");
    let text = std::fs::read(&index_path).map_err(|e| io_err("read", &index_path, e))?;
    let index: Index =
        serde_json::from_slice(&text).map_err(|e| bad(dir, format!("index.json: {e}")))?;
    let pick = |ms: &[Descriptor]| -> Result<String> {
        let found: Vec<&Descriptor> = match tag {
            Some(t) => ms
                .iter()
                .filter(|m| {
                    m.annotations
                        .get("org.opencontainers.image.ref.name")
                        .map(String::as_str)
                        == Some(t)
                })
                .collect(),
            None => ms.iter().collect(),
        };
        match found.as_slice() {
            [one] => Ok(one.digest.clone()),
            [] => Err(bad(
                dir,
                format!("no manifest tagged {:?}", tag.unwrap_or("")),
            )),
            _ => Err(bad(dir, "several manifests: name one with oci:DIR:TAG")),
        }
    };
    let mut digest = pick(&index.manifests)?;
    let is_index = |d: &str| {
        index.manifests.iter().any(|m| {
            m.digest == d
                && m.media_type.as_deref() == Some("application/vnd.oci.image.index.v1+json")
        })
    };
    if is_index(&digest) {
        // A multi-platform index: this machine's entry.
        let inner: Index = read_blob(dir, &digest, "index")?;
        digest = inner
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .map(|m| m.digest.clone())
            .ok_or_else(|| bad(dir, "the index has no linux/amd64 manifest"))?;
    }
    let manifest: Manifest = read_blob(dir, &digest, "manifest")?;
    let config: ImageConfig = read_blob(dir, &manifest.config.digest, "config")?;
    let cache = Cache::open()?;
    let total = manifest.layers.len();
    let layers = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| unpack_layer(dir, l, &cache, (i + 1, total)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Image {
        layers,
        config: config.config.unwrap_or_default(),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A raw fd for nix's `*at` calls.
fn at(fd: BorrowedFd<'_>) -> Option<std::os::fd::RawFd> {
    Some(fd.as_raw_fd())
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The layer's directory in the cache (`sha256/<hex>/fs`), unpacked now unless it already is: into
/// `tmp-<hex>-<pid>/fs`, renamed to `sha256/<hex>` only once whole and checked, so an entry there is
/// always complete; on any error the half-unpacked copy is removed.
/// Whether the layer is gzip-compressed, by its media type; zstd is refused.
fn is_gzip(dir: &Path, l: &Descriptor) -> Result<bool> {
    let media = l.media_type.as_deref().unwrap_or("");
    if media.ends_with("+zstd") {
        return Err(bad(
            dir,
            format!("layer {}: zstd layers are not supported", l.digest),
        ));
    }
    Ok(media.ends_with("+gzip") || media.ends_with(".gzip"))
}

/// On a terminal (a person waiting), one line per layer berth unpacks: which, how big, and then how
/// long it took; nothing when stderr is not a terminal (orchestrators, scripts, logs).
struct Progress {
    on: bool,
    start: std::time::Instant,
}

impl Progress {
    fn begin(dir: &Path, l: &Descriptor, (n, of): (usize, usize)) -> Progress {
        use std::io::IsTerminal;
        let on = std::io::stderr().is_terminal();
        if on {
            let short = l.digest.get(..19).unwrap_or(&l.digest);
            let bytes = blob_path(dir, &l.digest)
                .ok()
                .and_then(|p| std::fs::metadata(p).ok())
                .map_or(0, |m| m.len());
            crate::logging::to_stderr(&format!(
                "berth: unpacking layer {n}/{of} {short} ({:.1} MB)...",
                bytes as f64 / 1e6
            ));
        }
        Progress {
            on,
            start: std::time::Instant::now(),
        }
    }

    fn end(&self, ok: bool) {
        if self.on {
            let secs = self.start.elapsed().as_secs_f64();
            crate::logging::to_stderr(&if ok {
                format!(" done in {secs:.1} s\n")
            } else {
                " failed\n".to_string()
            });
        }
    }
}

fn unpack_layer(
    dir: &Path,
    l: &Descriptor,
    cache: &Cache,
    position: (usize, usize),
) -> Result<PathBuf> {
    let want = hex_of(dir, &l.digest)?;
    let name = format!("sha256/{want}");
    let done = cache.path.join(&name).join("fs");
    let sha = cache.make_dir("sha256")?;
    if let Some(layer) = cache.find_dir(&name)? {
        match check_files(&layer) {
            Ok(()) => return Ok(done),
            // A damaged layer (a file truncated, gone or replaced since) is rebuilt, never trusted.
            Err(why) => {
                crate::logging::warn(&format!(
                    "image cache {}: {why}; unpacking the layer again",
                    cache.path.join(&name).display()
                ));
                cache.remove(&name);
            }
        }
    }
    let gzip = is_gzip(dir, l)?;
    cache.remove_stale();
    let progress = Progress::begin(dir, l, position);
    let tmp = format!("tmp-{want}-{}", std::process::id());
    cache.remove(&tmp);
    let result = cache.make_dir(&tmp).and_then(|t| {
        mkdir(t.as_fd(), Path::new("fs"))?;
        let root = sys::openat2(
            Some(t.as_fd()),
            Path::new("fs"),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            BENEATH,
        )?;
        owner_mode(&root, 0, 0, 0o755)?;
        let path = blob_path(dir, &l.digest)?;
        let file = std::fs::File::open(&path).map_err(|e| io_err("open", &path, e))?;
        let mut src = Hashing {
            inner: file,
            hash: Sha256::new(),
        };
        if gzip {
            // What follows the tar stream is hashed, never decompressed (a bomb after the end).
            let mut gz = flate2::read::MultiGzDecoder::new(&mut src);
            unpack(&mut gz, root.as_fd())?;
        } else {
            unpack(&mut src, root.as_fd())?;
        }
        std::io::copy(&mut src, &mut std::io::sink()).map_err(|e| io_err("read", &path, e))?;
        let got = hex(&src.hash.finalize());
        if got != want {
            return Err(Error::InvalidSpec(format!(
                "does not match its content (sha256 {got})"
            )));
        }
        // The record of its files, then everything durable before the layer gets its name: a
        // layer at sha256/<hex> is whole even after a power loss.
        record_files(&t, &cache.path.join(&tmp))?;
        nix::unistd::syncfs(root.as_raw_fd()).map_err(|e| Error::sys("syncfs(image cache)", e))?;
        nix::fcntl::renameat(at(cache.fd.as_fd()), tmp.as_str(), at(sha.as_fd()), want)
            .map_err(|e| Error::sys(format!("renameat({tmp}, sha256/{want})"), e))
    });
    progress.end(result.is_ok());
    match result {
        Ok(()) => Ok(done),
        // Unpacked meanwhile by another berth: theirs is as good.
        Err(_) if cache.find_dir(&name).is_ok_and(|d| d.is_some()) => {
            cache.remove(&tmp);
            Ok(done)
        }
        Err(e) => {
            cache.remove(&tmp);
            Err(bad(dir, format!("layer {}: {e}", l.digest)))
        }
    }
}

/// The record of a layer's regular files (`sha256/<hex>/files`: size and hex path per line), checked
/// each time the layer is used.
const FILES_RECORD: &str = "files";

/// Walks the unpacked layer `<dir>/fs` (berth's own, in the 0700 cache: no symlink is followed) and
/// records every regular file's size in `dir_fd`.
fn record_files(dir_fd: &OwnedFd, dir: &Path) -> Result<()> {
    fn walk(p: &Path, rel: &mut PathBuf, out: &mut String) -> Result<()> {
        let rd = std::fs::read_dir(p).map_err(|e| io_err("readdir", p, e))?;
        for e in rd {
            let e = e.map_err(|e| io_err("readdir", p, e))?;
            let t = e.file_type().map_err(|x| io_err("stat", &e.path(), x))?;
            rel.push(e.file_name());
            if t.is_dir() {
                walk(&e.path(), rel, out)?;
            } else if t.is_file() {
                let len = e
                    .metadata()
                    .map_err(|x| io_err("stat", &e.path(), x))?
                    .len();
                out.push_str(&format!("{len} {}\n", hex(rel.as_os_str().as_bytes())));
            }
            rel.pop();
        }
        Ok(())
    }
    let mut out = String::new();
    walk(&dir.join("fs"), &mut PathBuf::new(), &mut out)?;
    let f = sys::openat2(
        Some(dir_fd.as_fd()),
        Path::new(FILES_RECORD),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
        0o600,
        BENEATH,
    )?;
    use std::io::Write;
    std::fs::File::from(f)
        .write_all(out.as_bytes())
        .map_err(|e| io_err("write", &dir.join(FILES_RECORD), e))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Every file the record names is there, a regular file of its recorded size (opened beneath the
/// layer without following a symlink); the reason otherwise.
fn check_files(layer: &OwnedFd) -> std::result::Result<(), String> {
    let f = sys::openat2(
        Some(layer.as_fd()),
        Path::new(FILES_RECORD),
        libc::O_RDONLY,
        0,
        BENEATH,
    )
    .map_err(|e| format!("no record of its files ({e})"))?;
    let mut text = String::new();
    std::fs::File::from(f)
        .read_to_string(&mut text)
        .map_err(|e| format!("its file record: {e}"))?;
    let fs = sys::openat2(
        Some(layer.as_fd()),
        Path::new("fs"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        BENEATH,
    )
    .map_err(|e| format!("no fs/ ({e})"))?;
    for line in text.lines() {
        let (len, path) = line
            .split_once(' ')
            .and_then(|(l, p)| Some((l.parse::<u64>().ok()?, unhex(p)?)))
            .ok_or("its file record is damaged")?;
        let path = Path::new(OsStr::from_bytes(&path));
        let st = sys::openat2(Some(fs.as_fd()), path, libc::O_PATH, 0, BENEATH)
            .and_then(sys::fstat)
            .map_err(|e| format!("{} is missing ({e})", path.display()))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size as u64 != len {
            return Err(format!(
                "{} is not the file it was unpacked as ({} bytes, recorded {len})",
                path.display(),
                st.st_size
            ));
        }
    }
    Ok(())
}

/// An entry's path inside the layer: `./` and a leading `/` dropped, `..` refused.
fn clean(raw: &[u8]) -> Result<PathBuf> {
    let p = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::SafetyViolation(format!(
                    "entry {:?} climbs out of the layer with '..'",
                    p.display()
                )));
            }
        }
    }
    Ok(out)
}

const BENEATH: u64 = sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS;

/// The directory `rel` below `root`, made (0755, root's) where missing; no symlink is followed.
fn dir_at(root: BorrowedFd<'_>, rel: &Path) -> Result<OwnedFd> {
    let mut cur = sys::openat2(
        Some(root),
        Path::new("."),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        BENEATH,
    )?;
    for c in rel.components() {
        let name = Path::new(c.as_os_str());
        match nix::sys::stat::mkdirat(
            at(cur.as_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkdirat({})", rel.display()), e)),
        }
        cur = sys::openat2(
            Some(cur.as_fd()),
            name,
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            BENEATH,
        )
        .map_err(|e| {
            Error::SafetyViolation(format!(
                "{} is reached through a symlink or is not a directory ({e})",
                rel.display()
            ))
        })?;
    }
    Ok(cur)
}

/// Removes `name` in `parent` if it exists (a later entry of the same layer replaces it).
fn replace(parent: BorrowedFd<'_>, name: &Path) {
    let flags =
        match nix::sys::stat::fstatat(at(parent), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {
                nix::unistd::UnlinkatFlags::RemoveDir
            }
            Ok(_) => nix::unistd::UnlinkatFlags::NoRemoveDir,
            Err(_) => return,
        };
    let _ = nix::unistd::unlinkat(at(parent), name, flags);
}

/// What extension headers (GNU long name and link, PAX) say of the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<i64>,
    size: Option<u64>,
}

/// The data of an extension header, refused beyond `max` bytes (before any is read).
#[allow(
    clippy::cast_possible_truncation,
    reason = "size is at most `max` (1 MiB), checked above"
)]
fn read_ext(entry: &mut tar::Entry<'_, &mut dyn Read>, max: u64, what: &str) -> Result<Vec<u8>> {
    let size = entry.size();
    if size > max {
        return Err(Error::SafetyViolation(format!(
            "a {what} of {size} bytes (at most {max})"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut data)
        .map_err(|e| Error::State(format!("tar: {what}: {e}")))?;
    Ok(data)
}

/// A GNU long name: the name and its trailing NULs dropped.
fn long_name(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v
}

/// PAX records (`LEN KEY=VALUE\n`) into `p`. Keys berth does not use are ignored, as GNU tar does;
/// sparse files are refused (never made by image builders).
fn parse_pax(data: &[u8], p: &mut Pending) -> Result<()> {
    let mut rest = data;
    let bad = |why: &str| Error::SafetyViolation(format!("a malformed PAX header ({why})"));
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| bad("no length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|l| l.parse().ok())
            .filter(|l| *l > sp + 1 && *l <= rest.len())
            .ok_or_else(|| bad("a bad length"))?;
        let rec = &rest[sp + 1..len];
        rest = &rest[len..];
        let rec = rec
            .strip_suffix(b"\n")
            .ok_or_else(|| bad("a record without a newline"))?;
        let eq = rec
            .iter()
            .position(|b| *b == b'=')
            .ok_or_else(|| bad("no '='"))?;
        let (key, value) = (&rec[..eq], &rec[eq + 1..]);
        let num = || -> Result<u64> {
            std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.split('.').next()?.parse().ok())
                .ok_or_else(|| bad("a number"))
        };
        match key {
            b"path" => p.path = Some(value.to_vec()),
            b"linkpath" => p.link = Some(value.to_vec()),
            b"uid" => p.uid = Some(u32::try_from(num()?).map_err(|_| bad("uid"))?),
            b"gid" => p.gid = Some(u32::try_from(num()?).map_err(|_| bad("gid"))?),
            b"mtime" => p.mtime = Some(i64::try_from(num()?).map_err(|_| bad("mtime"))?),
            b"size" => p.size = Some(num()?),
            k if k.starts_with(b"GNU.sparse") => {
                return Err(Error::NotSupported("sparse files in a layer".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Unpacks a tar stream into the directory `root`. The entries are read raw, so that extension
/// headers are bounded before they are read (a 256 MiB long name is refused, not buffered), and
/// everything is counted against the layer's limits.
fn unpack(src: &mut dyn Read, root: BorrowedFd<'_>) -> Result<()> {
    let mut ar = tar::Archive::new(src);
    let entries = ar
        .entries()
        .map_err(|e| Error::State(format!("tar: {e}")))?
        .raw(true);
    let max_bytes = max_layer_bytes();
    let (mut bytes, mut count) = (0u64, 0u64);
    let mut pending = Pending::default();
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::State(format!("tar: {e}")))?;
        bytes = bytes.saturating_add(512).saturating_add(entry.size());
        count += 1;
        if bytes > max_bytes || count > MAX_ENTRIES {
            return Err(Error::SafetyViolation(format!(
                "unpacks to more than {max_bytes} bytes or {MAX_ENTRIES} entries (BERTH_IMAGE_MAX_LAYER_BYTES sets the byte limit)"
            )));
        }
        use tar::EntryType as T;
        match entry.header().entry_type() {
            T::GNULongName => {
                pending.path = Some(long_name(read_ext(
                    &mut entry,
                    MAX_NAME + 1,
                    "GNU long name",
                )?));
                continue;
            }
            T::GNULongLink => {
                pending.link = Some(long_name(read_ext(
                    &mut entry,
                    MAX_NAME + 1,
                    "GNU long link",
                )?));
                continue;
            }
            T::XHeader => {
                parse_pax(&read_ext(&mut entry, MAX_PAX, "PAX header")?, &mut pending)?;
                continue;
            }
            T::XGlobalHeader => {
                read_ext(&mut entry, MAX_PAX, "PAX global header")?;
                continue;
            }
            _ => {}
        }
        let p = std::mem::take(&mut pending);
        if p.size.is_some_and(|s| s != entry.size()) {
            return Err(Error::NotSupported(
                "a PAX size that differs from the header's (an entry over 8 GiB)".into(),
            ));
        }
        let raw = p
            .path
            .clone()
            .unwrap_or_else(|| entry.path_bytes().into_owned());
        if raw.len() as u64 > MAX_NAME {
            return Err(Error::SafetyViolation(format!(
                "an entry name of {} bytes (at most {MAX_NAME})",
                raw.len()
            )));
        }
        let path = clean(&raw)?;
        let what = || path.display().to_string();
        unpack_entry(&mut entry, &path, &p, root).map_err(|e| match e {
            Error::SafetyViolation(m) => Error::SafetyViolation(format!("entry {:?}: {m}", what())),
            Error::NotSupported(m) => Error::NotSupported(format!("entry {:?}: {m}", what())),
            other => Error::State(format!("entry {:?}: {other}", what())),
        })?;
    }
    Ok(())
}

/// An entry's owner, mode and mtime, PAX overrides applied.
#[derive(Debug)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
}

fn unpack_entry(
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    path: &Path,
    ext: &Pending,
    root: BorrowedFd<'_>,
) -> Result<()> {
    let Some(name) = path.file_name().map(Path::new) else {
        return Ok(()); // the layer's root itself
    };
    if name.as_os_str().len() > 255 {
        return Err(Error::SafetyViolation(
            "a name longer than 255 bytes".into(),
        ));
    }
    let parent = dir_at(root, path.parent().unwrap_or(Path::new("")))?;
    let meta = meta_of(entry.header(), ext)?;
    let kind = entry.header().entry_type();
    let link = || -> Result<Vec<u8>> {
        let l = match &ext.link {
            Some(l) => l.clone(),
            None => entry
                .header()
                .link_name_bytes()
                .ok_or_else(|| Error::State("a link without a target".into()))?
                .into_owned(),
        };
        if l.len() as u64 > MAX_NAME {
            return Err(Error::SafetyViolation("a link target over PATH_MAX".into()));
        }
        Ok(l)
    };
    if let Some(done) = whiteout(parent.as_fd(), name) {
        return done;
    }
    use tar::EntryType as T;
    match kind {
        T::Directory => make_dir(parent.as_fd(), name, &meta),
        T::Regular | T::Continuous => make_file(entry, parent.as_fd(), name, &meta),
        T::Symlink => make_symlink(parent.as_fd(), name, &link()?, &meta),
        T::Link => make_hardlink(root, parent.as_fd(), name, &clean(&link()?)?),
        T::Fifo => make_fifo(parent.as_fd(), name, &meta),
        // A device node in a layer would be a host device to whoever reaches the cache or the
        // container; the container's /dev is its own tmpfs (and linux.devices) instead.
        T::Char | T::Block => Err(Error::SafetyViolation(
            "a device node (an image brings no devices: the container gets its own /dev)".into(),
        )),
        T::GNUSparse => Err(Error::NotSupported("sparse files in a layer".into())),
        // Anything else (GNU volume labels, multi-volume parts) carries nothing to make.
        _ => Ok(()),
    }
}

/// The owner, mode and mtime of an entry: its PAX records over its header. An id that does not fit
/// in 32 bits is an error, never truncated onto another user.
fn meta_of(h: &tar::Header, ext: &Pending) -> Result<Meta> {
    let id = |what: &str, pax: Option<u32>, raw: std::io::Result<u64>| match pax {
        Some(v) => Ok(v),
        None => u32::try_from(raw.unwrap_or(0)).map_err(|_| {
            Error::SafetyViolation(format!("a {what} over 32 bits in an entry's header"))
        }),
    };
    Ok(Meta {
        uid: id("uid", ext.uid, h.uid())?,
        gid: id("gid", ext.gid, h.gid())?,
        mode: h.mode().unwrap_or(0o644) & 0o7777,
        mtime: ext
            .mtime
            .unwrap_or(i64::try_from(h.mtime().unwrap_or(0)).unwrap_or(0)),
    })
}

/// An overlay whiteout entry: `.wh..wh..opq` makes its directory opaque, `.wh.NAME` hides NAME
/// (a 0:0 character device, as overlayfs reads it). None when `name` is no whiteout.
fn whiteout(parent: BorrowedFd<'_>, name: &Path) -> Option<Result<()>> {
    let n = name.as_os_str().as_encoded_bytes();
    if n == b".wh..wh..opq" {
        let opaque = sys::openat2(
            Some(parent),
            Path::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            BENEATH,
        )
        .and_then(|dir| sys::fsetxattr(&dir, &overlay_xattr("opaque"), b"y"));
        return Some(opaque.map_err(Into::into));
    }
    let hidden = Path::new(OsStr::from_bytes(n.strip_prefix(b".wh.")?));
    replace(parent, hidden);
    Some(mknod(parent, hidden, libc::S_IFCHR, 0, 0))
}

fn make_symlink(parent: BorrowedFd<'_>, name: &Path, target: &[u8], meta: &Meta) -> Result<()> {
    replace(parent, name);
    nix::unistd::symlinkat(Path::new(OsStr::from_bytes(target)), at(parent), name)
        .map_err(|e| Error::sys("symlinkat", e))?;
    lchown(parent, name, meta.uid, meta.gid)
}

fn make_fifo(parent: BorrowedFd<'_>, name: &Path, meta: &Meta) -> Result<()> {
    replace(parent, name);
    mknod(parent, name, libc::S_IFIFO, 0, 0)?;
    lchown(parent, name, meta.uid, meta.gid)?;
    nix::sys::stat::fchmodat(
        at(parent),
        name,
        nix::sys::stat::Mode::from_bits_truncate(meta.mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(|e| Error::sys("fchmodat", e))
}

fn make_dir(parent: BorrowedFd<'_>, name: &Path, meta: &Meta) -> Result<()> {
    match nix::sys::stat::fstatat(at(parent), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
        Ok(_) => {
            replace(parent, name);
            mkdir(parent, name)?;
        }
        Err(_) => mkdir(parent, name)?,
    }
    let d = sys::openat2(
        Some(parent),
        name,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
        BENEATH,
    )?;
    owner_mode(&d, meta.uid, meta.gid, meta.mode)
}

fn make_file(
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    parent: BorrowedFd<'_>,
    name: &Path,
    meta: &Meta,
) -> Result<()> {
    replace(parent, name);
    let f = sys::openat2(
        Some(parent),
        name,
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        0o600,
        BENEATH,
    )?;
    let mut file = std::fs::File::from(f);
    std::io::copy(entry, &mut file).map_err(|e| Error::State(format!("write: {e}")))?;
    owner_mode(&file, meta.uid, meta.gid, meta.mode)?;
    let t = nix::sys::time::TimeSpec::new(meta.mtime, 0);
    nix::sys::stat::futimens(file.as_raw_fd(), &t, &t).map_err(|e| Error::sys("futimens", e))
}

fn make_hardlink(
    root: BorrowedFd<'_>,
    parent: BorrowedFd<'_>,
    name: &Path,
    target: &Path,
) -> Result<()> {
    let tname = target
        .file_name()
        .map(Path::new)
        .ok_or_else(|| Error::SafetyViolation("a hardlink to the layer's root".into()))?;
    let tparent = sys::openat2(
        Some(root),
        target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        BENEATH,
    )
    .map_err(|e| {
        Error::SafetyViolation(format!(
            "hardlink target {:?} is not a path inside the layer ({e})",
            target.display()
        ))
    })?;
    replace(parent, name);
    nix::unistd::linkat(
        at(tparent.as_fd()),
        tname,
        at(parent),
        name,
        nix::fcntl::AtFlags::empty(),
    )
    .map_err(|e| Error::SafetyViolation(format!("hardlink to {:?}: {e}", target.display())))
}

/// The owner of `name` in `parent`, the link itself when it is one.
fn lchown(parent: BorrowedFd<'_>, name: &Path, uid: u32, gid: u32) -> Result<()> {
    nix::unistd::fchownat(
        at(parent),
        name,
        Some(uid.into()),
        Some(gid.into()),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::sys("fchownat", e))
}

fn mkdir(parent: BorrowedFd<'_>, name: &Path) -> Result<()> {
    nix::sys::stat::mkdirat(
        at(parent),
        name,
        nix::sys::stat::Mode::from_bits_truncate(0o700),
    )
    .map_err(|e| Error::sys("mkdirat", e))
}

fn mknod(
    parent: BorrowedFd<'_>,
    name: &Path,
    kind: libc::mode_t,
    maj: u32,
    min: u32,
) -> Result<()> {
    nix::sys::stat::mknodat(
        at(parent),
        name,
        nix::sys::stat::SFlag::from_bits_truncate(kind),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(maj.into(), min.into()),
    )
    .map_err(|e| Error::sys("mknodat", e))
}

/// chown then chmod (chown clears set-id bits).
fn owner_mode(fd: &impl AsFd, uid: u32, gid: u32, mode: u32) -> Result<()> {
    nix::unistd::fchown(fd.as_fd().as_raw_fd(), Some(uid.into()), Some(gid.into()))
        .map_err(|e| Error::sys("fchown", e))?;
    nix::sys::stat::fchmod(
        fd.as_fd().as_raw_fd(),
        nix::sys::stat::Mode::from_bits_truncate(mode),
    )
    .map_err(|e| Error::sys("fchmod", e))
}

/// Mounts the image's root in a mount namespace of this process's own: a tmpfs on
/// `<cache>/run` (an empty directory on the host) holding the overlay of the layers with an upper
/// layer in the tmpfs. Returns the rootfs path (valid in this process and the containers it makes).
pub fn mount_rootfs(img: &Image) -> Result<PathBuf> {
    if img.layers.is_empty() {
        return Err(Error::InvalidSpec(
            "--rootfs oci: the image has no layers".into(),
        ));
    }
    let cache = Cache::open()?;
    cache.make_dir("run")?;
    let run = cache.path.join("run");
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::sys("unshare(CLONE_NEWNS)", e))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Error::sys("mount(/, MS_REC|MS_PRIVATE)", e))?;
    let ctx = sys::FsContext::open("tmpfs")?;
    ctx.set("mode", Some("0755"))?;
    let tmpfs = ctx.mount(sys::MOUNT_ATTR_NODEV | sys::MOUNT_ATTR_NOSUID)?;
    let mnt = sys::openat2(None, &run, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
    sys::move_mount(&tmpfs, &mnt)?;
    for d in ["rootfs", "upper", "work"] {
        nix::sys::stat::mkdirat(
            at(tmpfs.as_fd()),
            d,
            nix::sys::stat::Mode::from_bits_truncate(0o755),
        )
        .map_err(|e| Error::sys(format!("mkdirat({d})"), e))?;
    }
    let lower: Vec<String> = img
        .layers
        .iter()
        .rev()
        .map(|l| l.display().to_string())
        .collect();
    let ctx = sys::FsContext::open("overlay")?;
    ctx.set("source", Some("berth-image"))?;
    ctx.set("lowerdir", Some(&lower.join(":")))?;
    ctx.set("upperdir", Some(&run.join("upper").display().to_string()))?;
    ctx.set("workdir", Some(&run.join("work").display().to_string()))?;
    if crate::spec::rootless::in_user_namespace() {
        ctx.set("userxattr", None)?;
    }
    // nodev, as Podman mounts image roots: no device node of a layer opens a host device.
    let ovl = ctx.mount(sys::MOUNT_ATTR_NODEV)?;
    let rootfs = run.join("rootfs");
    let mnt = sys::openat2(None, &rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
    sys::move_mount(&ovl, &mnt)?;
    Ok(rootfs)
}

/// Entry points for the fuzz targets (fuzz/): not part of berth's interface.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Parses `bytes` as an index, a manifest and an image config, and a reference and a digest.
    pub fn json(bytes: &[u8]) {
        let _ = serde_json::from_slice::<Index>(bytes);
        let _ = serde_json::from_slice::<Manifest>(bytes);
        let _ = serde_json::from_slice::<ImageConfig>(bytes);
        if let Ok(s) = std::str::from_utf8(bytes) {
            let _ = parse_ref(s);
            let _ = hex_of(Path::new("d"), s);
        }
        let _ = parse_pax(bytes, &mut Pending::default());
    }

    /// Unpacks `bytes` as a layer into the directory `root` (what the cache does with a layer).
    pub fn unpack_layer(bytes: &[u8], root: BorrowedFd<'_>) -> Result<()> {
        unpack(&mut &bytes[..], root)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_owner_over_32_bits_is_refused_never_truncated_to_root() {
        // 2^32 would become uid 0 by a plain `as u32`.
        let mut h = tar::Header::new_gnu();
        h.set_uid(1 << 32);
        let e = super::meta_of(&h, &super::Pending::default()).unwrap_err();
        assert!(e.to_string().contains("uid over 32 bits"), "{e}");
        h.set_uid(1000);
        h.set_gid((1 << 32) + 5);
        let e = super::meta_of(&h, &super::Pending::default()).unwrap_err();
        assert!(e.to_string().contains("gid over 32 bits"), "{e}");
        h.set_gid(1000);
        let m = super::meta_of(&h, &super::Pending::default()).unwrap();
        assert_eq!((m.uid, m.gid), (1000, 1000));
    }

    use super::*;

    #[test]
    fn references_and_entry_paths() {
        assert_eq!(
            parse_ref("oci:/a/b:latest"),
            Some((PathBuf::from("/a/b"), Some("latest".into())))
        );
        assert_eq!(parse_ref("oci:img"), Some((PathBuf::from("img"), None)));
        assert_eq!(
            parse_ref("oci:d:localhost/bb:1"),
            Some((PathBuf::from("d"), Some("localhost/bb:1".into())))
        );
        assert_eq!(parse_ref("/a/b"), None);
        assert_eq!(clean(b"./a/b").unwrap(), Path::new("a/b"));
        assert_eq!(clean(b"/etc/x").unwrap(), Path::new("etc/x"));
        assert!(clean(b"a/../../x").is_err());
        assert!(hex_of(Path::new("d"), "sha256:../../etc").is_err());
        assert!(hex_of(Path::new("d"), &format!("sha256:{}", "a".repeat(64))).is_ok());
    }
}
