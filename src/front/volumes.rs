//! The front end for people and simple orchestrators: `berth run --rootfs DIR -v HOST:CTR[:ro|rw]
//! [--volumes FILE] [--id ID] -- CMD ARGS...` builds the spec in memory from `berth spec`'s defaults, so
//! no bundle directory is needed. Volumes are read-only unless `:rw` is given (least privilege);
//! relative host paths are taken against the current directory (lexically: the host mount policy, not
//! a canonicalised string, decides what a path may reach).

use crate::error::{Error, Result, io_err};
use crate::spec::{Mount, ValidSpec, default::default_spec};
use serde::Deserialize;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// One volume of a `--volumes` file.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// Host path (relative to the current directory when not absolute).
    pub host_path: PathBuf,
    /// Absolute path in the container.
    pub container_path: String,
    /// Read-only (the default).
    #[serde(default = "yes")]
    pub read_only: bool,
}

fn yes() -> bool {
    true
}

/// Parses `HOST:CTR[:ro|rw]`.
pub fn parse_volume(arg: &str) -> Result<Volume> {
    let bad =
        |why: &str| Error::InvalidSpec(format!("-v {arg:?}: {why} (expected HOST:CTR[:ro|rw])"));
    let parts: Vec<&str> = arg.split(':').collect();
    let (host, ctr, mode) = match parts.as_slice() {
        [h, c] => (*h, *c, "ro"),
        [h, c, m] => (*h, *c, *m),
        _ => return Err(bad("wrong number of ':'")),
    };
    let read_only = match mode {
        "ro" => true,
        "rw" => false,
        _ => return Err(bad("the mode must be ro or rw")),
    };
    if host.is_empty() {
        return Err(bad("empty host path"));
    }
    Ok(Volume {
        host_path: PathBuf::from(host),
        container_path: ctr.to_string(),
        read_only,
    })
}

/// Reads a `--volumes` file: a JSON list of `{host_path, container_path, read_only}`.
pub fn read_volumes(path: &Path) -> Result<Vec<Volume>> {
    let bytes = std::fs::read(path).map_err(|e| io_err("read", path, e))?;
    let de = &mut serde_json::Deserializer::from_slice(&bytes);
    serde_path_to_error::deserialize(de)
        .map_err(|e| Error::InvalidSpec(format!("{}: {}: {}", path.display(), e.path(), e.inner())))
}

/// Parses the volumes of `-v` and `--volumes`.
pub fn all(v: &[String], file: Option<&Path>) -> Result<Vec<Volume>> {
    let mut out = v
        .iter()
        .map(|v| parse_volume(v))
        .collect::<Result<Vec<_>>>()?;
    if let Some(f) = file {
        out.extend(read_volumes(f)?);
    }
    Ok(out)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| io_err("absolute", p, e))
}

/// The spec for `berth run --rootfs`: `berth spec`'s defaults, the rootfs read-only with a tmpfs on
/// /tmp, terminal when stdin is one, the volumes as nosuid,nodev bind mounts; `adjust` (the front
/// end's other flags) changes it before it is adapted (rootless) and validated.
pub fn front_end_spec(
    rootfs: &Path,
    volumes: &[Volume],
    command: &[String],
    adjust: &dyn Fn(&mut crate::spec::Spec) -> Result<()>,
) -> Result<ValidSpec> {
    let mut spec = default_spec();
    let root = spec.root.get_or_insert_with(Default::default);
    root.path = absolute(rootfs)?.display().to_string();
    root.readonly = true;
    let process = spec.process.get_or_insert_with(Default::default);
    process.terminal = std::io::stdin().is_terminal();
    if !command.is_empty() {
        process.args = command.to_vec();
    }
    spec.mounts.push(Mount {
        destination: "/tmp".into(),
        typ: Some("tmpfs".into()),
        source: Some("tmpfs".into()),
        options: vec!["nosuid".into(), "nodev".into(), "mode=1777".into()],
        ..Default::default()
    });
    for (i, v) in volumes.iter().enumerate() {
        if !v.container_path.starts_with('/') {
            return Err(Error::InvalidSpec(format!(
                "volume {i}: container path {:?} is not absolute",
                v.container_path
            )));
        }
        // Named as the user wrote it, before the mount says it with the syscall (a friendlier
        // first look; the mount itself checks again, on the fd it mounts).
        if let Err(e) = std::fs::symlink_metadata(&v.host_path) {
            let why = if e.kind() == std::io::ErrorKind::NotFound {
                "the source does not exist".to_string()
            } else {
                format!("the source cannot be reached ({e})")
            };
            return Err(Error::InvalidSpec(format!(
                "-v {}:{}: {why}: lstat({}): {}",
                v.host_path.display(),
                v.container_path,
                v.host_path.display(),
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
            )));
        }
        // Whole trees: a read-only volume is read-only in every submount too (rro), and no volume
        // brings set-uid binaries or device nodes into the container (rnosuid, rnodev).
        let access = if v.read_only { "rro" } else { "rrw" };
        spec.mounts.push(Mount {
            destination: v.container_path.clone(),
            typ: Some("bind".into()),
            source: Some(absolute(&v.host_path)?.display().to_string()),
            options: vec![
                "rbind".into(),
                access.into(),
                "rnosuid".into(),
                "rnodev".into(),
            ],
            ..Default::default()
        });
    }
    adjust(&mut spec)?;
    let cwd = std::env::current_dir().map_err(|e| io_err("getcwd", Path::new("."), e))?;
    crate::spec::rootless::adapt(&mut spec);
    ValidSpec::new(spec, &cwd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_syntax() {
        let v = parse_volume("/a:/b").unwrap();
        assert!(v.read_only);
        assert!(!parse_volume("data:/b:rw").unwrap().read_only);
        assert!(parse_volume("/a:/b:rx").is_err());
        assert!(parse_volume("/a").is_err());
        assert!(parse_volume(":/b").is_err());
    }

    #[test]
    fn read_only_by_default_and_relative_paths_absolute() {
        let vs = front_end_spec(
            Path::new("rootfs"),
            &[parse_volume("src:/d").unwrap()],
            &["true".into()],
            &|_| Ok(()),
        )
        .unwrap();
        let m = vs.spec.mounts.last().unwrap();
        for o in ["rro", "rnosuid", "rnodev"] {
            assert!(m.options.contains(&o.to_string()), "{o}");
        }
        assert!(Path::new(m.source.as_deref().unwrap()).is_absolute());
        assert!(
            front_end_spec(
                Path::new("r"),
                &[parse_volume("/a:rel").unwrap()],
                &[],
                &|_| Ok(())
            )
            .is_err()
        );
    }
}
