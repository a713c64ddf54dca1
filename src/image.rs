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
pub fn cache_dir() -> PathBuf {
    std::env::var_os("BERTH_IMAGE_CACHE")
        .map_or_else(|| PathBuf::from("/var/lib/berth/layers"), PathBuf::from)
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
    if !nix::unistd::geteuid().is_root() {
        return Err(bad(
            dir,
            "images need root (layers keep their owners, and overlay whiteouts are device nodes)",
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
    let cache = cache_dir();
    let layers = manifest
        .layers
        .iter()
        .map(|l| unpack_layer(dir, l, &cache))
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

/// The layer's directory in the cache, unpacked now unless it already is.
fn unpack_layer(dir: &Path, l: &Descriptor, cache: &Path) -> Result<PathBuf> {
    let want = hex_of(dir, &l.digest)?;
    let done = cache.join("sha256").join(want);
    if done.is_dir() {
        return Ok(done);
    }
    let media = l.media_type.as_deref().unwrap_or("");
    let gzip = media.ends_with("+gzip") || media.ends_with(".gzip");
    if media.ends_with("+zstd") {
        return Err(bad(
            dir,
            format!("layer {}: zstd layers are not supported", l.digest),
        ));
    }
    std::fs::create_dir_all(cache.join("sha256")).map_err(|e| io_err("mkdir", cache, e))?;
    let tmp = cache.join(format!("tmp-{want}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).map_err(|e| io_err("mkdir", &tmp, e))?;
    let result = (|| {
        let path = blob_path(dir, &l.digest)?;
        let file = std::fs::File::open(&path).map_err(|e| io_err("open", &path, e))?;
        let mut src = Hashing {
            inner: file,
            hash: Sha256::new(),
        };
        let root = sys::openat2(None, &tmp, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        if gzip {
            let mut gz = flate2::read::MultiGzDecoder::new(&mut src);
            unpack(&mut gz, root.as_fd())?;
            std::io::copy(&mut gz, &mut std::io::sink()).map_err(|e| io_err("read", &path, e))?;
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
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(bad(dir, format!("layer {}: {e}", l.digest)));
    }
    match std::fs::rename(&tmp, &done) {
        Ok(()) => Ok(done),
        // Unpacked meanwhile by another berth: theirs is as good.
        Err(_) if done.is_dir() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(done)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            Err(io_err("rename", &done, e))
        }
    }
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

/// Unpacks a tar stream into the directory `root`.
fn unpack(src: &mut dyn Read, root: BorrowedFd<'_>) -> Result<()> {
    let mut ar = tar::Archive::new(src);
    let entries = ar
        .entries()
        .map_err(|e| Error::State(format!("tar: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::State(format!("tar: {e}")))?;
        let path = clean(&entry.path_bytes())?;
        let what = || path.display().to_string();
        unpack_entry(&mut entry, &path, root).map_err(|e| match e {
            Error::SafetyViolation(m) => Error::SafetyViolation(format!("entry {:?}: {m}", what())),
            other => Error::State(format!("entry {:?}: {other}", what())),
        })?;
    }
    Ok(())
}

fn unpack_entry(
    entry: &mut tar::Entry<'_, &mut dyn Read>,
    path: &Path,
    root: BorrowedFd<'_>,
) -> Result<()> {
    let Some(name) = path.file_name().map(Path::new) else {
        return Ok(()); // the layer's root itself
    };
    let parent = dir_at(root, path.parent().unwrap_or(Path::new("")))?;
    let h = entry.header();
    let mode = h.mode().unwrap_or(0o644) & 0o7777;
    let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
    let mtime = h.mtime().unwrap_or(0) as i64;
    let kind = h.entry_type();
    // Whiteouts.
    let n = name.as_os_str().as_encoded_bytes();
    if n == b".wh..wh..opq" {
        let dir = sys::openat2(
            Some(parent.as_fd()),
            Path::new("."),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
            BENEATH,
        )?;
        return Ok(sys::fsetxattr(&dir, "trusted.overlay.opaque", b"y")?);
    }
    if let Some(hidden) = n.strip_prefix(b".wh.") {
        let hidden = Path::new(OsStr::from_bytes(hidden));
        replace(parent.as_fd(), hidden);
        return mknod(parent.as_fd(), hidden, libc::S_IFCHR, 0, 0);
    }
    use tar::EntryType as T;
    match kind {
        T::Directory => {
            match nix::sys::stat::fstatat(
                at(parent.as_fd()),
                name,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                Ok(_) => {
                    replace(parent.as_fd(), name);
                    mkdir(parent.as_fd(), name)?;
                }
                Err(_) => mkdir(parent.as_fd(), name)?,
            }
            let d = sys::openat2(
                Some(parent.as_fd()),
                name,
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
                BENEATH,
            )?;
            owner_mode(&d, uid, gid, mode)?;
        }
        T::Regular | T::Continuous => {
            replace(parent.as_fd(), name);
            let f = sys::openat2(
                Some(parent.as_fd()),
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
                BENEATH,
            )?;
            let mut file = std::fs::File::from(f);
            std::io::copy(entry, &mut file).map_err(|e| Error::State(format!("write: {e}")))?;
            owner_mode(&file, uid, gid, mode)?;
            let t = nix::sys::time::TimeSpec::new(mtime, 0);
            nix::sys::stat::futimens(file.as_raw_fd(), &t, &t)
                .map_err(|e| Error::sys("futimens", e))?;
        }
        T::Symlink => {
            let target = entry
                .link_name_bytes()
                .ok_or_else(|| Error::State("a symlink without a target".into()))?;
            replace(parent.as_fd(), name);
            nix::unistd::symlinkat(
                Path::new(OsStr::from_bytes(&target)),
                at(parent.as_fd()),
                name,
            )
            .map_err(|e| Error::sys("symlinkat", e))?;
            lchown(parent.as_fd(), name, uid, gid)?;
        }
        T::Link => {
            let target = clean(
                &entry
                    .link_name_bytes()
                    .ok_or_else(|| Error::State("a hardlink without a target".into()))?,
            )?;
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
            replace(parent.as_fd(), name);
            nix::unistd::linkat(
                at(tparent.as_fd()),
                tname,
                at(parent.as_fd()),
                name,
                nix::fcntl::AtFlags::empty(),
            )
            .map_err(|e| {
                Error::SafetyViolation(format!("hardlink to {:?}: {e}", target.display()))
            })?;
        }
        T::Char | T::Block | T::Fifo => {
            let t = match kind {
                T::Char => libc::S_IFCHR,
                T::Block => libc::S_IFBLK,
                _ => libc::S_IFIFO,
            };
            let (maj, min) = (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            );
            replace(parent.as_fd(), name);
            mknod(parent.as_fd(), name, t, maj, min)?;
            lchown(parent.as_fd(), name, uid, gid)?;
            nix::sys::stat::fchmodat(
                at(parent.as_fd()),
                name,
                nix::sys::stat::Mode::from_bits_truncate(mode),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .map_err(|e| Error::sys("fchmodat", e))?;
        }
        // PAX and GNU headers are folded in by the reader; anything else carries nothing to make.
        _ => {}
    }
    Ok(())
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
    let run = cache_dir().join("run");
    std::fs::create_dir_all(&run).map_err(|e| io_err("mkdir", &run, e))?;
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
    let ovl = ctx.mount(0)?;
    let rootfs = run.join("rootfs");
    let mnt = sys::openat2(None, &rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
    sys::move_mount(&ovl, &mnt)?;
    Ok(rootfs)
}

#[cfg(test)]
mod tests {
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
