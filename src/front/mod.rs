//! berth's front end (`berth run --rootfs DIR|oci:DIR[:TAG] -v HOST:CTR ...`): a spec built in memory,
//! no bundle needed. The flags are named as `podman run`/`docker run` name them, grouped as their
//! help headings are; each group changes the in-memory spec of [`volumes::front_end_spec`], and a bad
//! value is a one-line error naming the flag. Defaults stay strict: read-only root and volumes, no
//! new privileges, a new network namespace with only loopback (up), berth's default seccomp profile,
//! every device denied. An OCI image layout is unpacked into berth's image cache (crate::image) and
//! mounted as an overlay; its config gives the defaults the flags override.

// The flags' doc comments are their --help text, where UID[:GID] is no link.
#![allow(rustdoc::broken_intra_doc_links)]

pub mod volumes;

use crate::error::{Error, Result, io_err};
use crate::spec::{Mount, Spec, ValidSpec};
use std::path::{Path, PathBuf};

/// What the front end builds a spec from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// A root filesystem directory, or an OCI image layout (`oci:DIR[:TAG]`).
    pub rootfs: &'a Path,
    /// `-v HOST:CTR[:ro|rw]`, in order.
    pub volumes: &'a [String],
    /// `--volumes FILE`: a JSON list of volumes.
    pub volumes_file: Option<&'a Path>,
    /// The command (default: the image's, else sh).
    pub command: &'a [String],
    /// The run is detached.
    pub detach: bool,
    /// The other flags.
    pub flags: &'a FrontArgs,
}

/// Builds and validates the spec for `r`.
pub fn build(r: &Request<'_>) -> Result<ValidSpec> {
    let mut volumes = volumes::all(r.volumes, r.volumes_file)?;
    for m in &r.flags.mounts.mount {
        // Binds join the volumes (hardened as they are); tmpfs mounts are MountFlags::apply's.
        if let MountArg::Bind(v) = parse_mount(m)? {
            volumes.push(v);
        }
    }
    // An OCI image layout: its layers unpacked (once) and mounted as an overlay in a mount
    // namespace of this process's own; its config gives the defaults the flags override.
    let (rootfs, image) = match crate::image::parse_ref(&r.rootfs.to_string_lossy()) {
        Some((dir, tag)) => {
            // An ordinary user unpacks and mounts the image as root of a user namespace of its
            // own, its subordinate ids mapped (as rootless Podman does).
            if crate::spec::rootless::unprivileged() {
                crate::spec::rootless::enter_user_namespace()?;
            }
            let img = crate::image::load(&dir, tag.as_deref())?;
            (crate::image::mount_rootfs(&img)?, Some(img.config))
        }
        None => (r.rootfs.to_path_buf(), None),
    };
    let init = if r.flags.process.init {
        Some(host_init()?)
    } else {
        None
    };
    let command = command_of(r, image.as_ref(), init.is_some())?;
    volumes::front_end_spec(&rootfs, &volumes, &command, &|spec| {
        if let Some(host) = &init {
            spec.mounts.push(crate::spec::Mount {
                destination: INIT_PATH.into(),
                typ: Some("bind".into()),
                source: Some(host.display().to_string()),
                options: ["bind", "ro", "nosuid", "nodev"].map(String::from).to_vec(),
                ..Default::default()
            });
        }
        match &image {
            Some(c) => apply_image(c, spec, &rootfs)?,
            // A DIR is the caller's own files: the mount points of a read-only root go into an
            // overlay's tmpfs, never into it (see rootfs::bind_rootfs).
            None => {
                spec.annotations.insert(
                    crate::spec::ROOTFS_OVERLAY_ANNOTATION.into(),
                    "tmpfs".into(),
                );
            }
        }
        apply(r.flags, spec, &rootfs, r.detach)
    })
}

/// The container's command: `--entrypoint` (which replaces the image's entrypoint and its default
/// command, as docker and podman: the words after `--` are its arguments), else the image's
/// entrypoint and command with the words after `--` over its command, else those words; behind
/// `/dev/init --` with `--init` (sh when there is no command).
fn command_of(
    r: &Request<'_>,
    image: Option<&crate::image::Config>,
    init: bool,
) -> Result<Vec<String>> {
    let entrypoint = r
        .flags
        .process
        .entrypoint
        .as_deref()
        .map(entrypoint_words)
        .transpose()?;
    let command = match (image, entrypoint) {
        (_, Some(mut words)) => {
            words.extend(r.command.iter().cloned());
            words
        }
        (Some(c), None) => {
            let mut cmd = c.entrypoint.clone().unwrap_or_default();
            if r.command.is_empty() {
                cmd.extend(c.cmd.clone().unwrap_or_default());
            } else {
                cmd.extend(r.command.iter().cloned());
            }
            cmd
        }
        (None, None) => r.command.to_vec(),
    };
    if !init {
        return Ok(command);
    }
    let mut c = vec![INIT_PATH.to_string(), "--".into()];
    if command.is_empty() {
        c.push("sh".into());
    } else {
        c.extend(command);
    }
    Ok(c)
}

/// Front-end options of `berth run` (all need `--rootfs`), one group per help heading, each applied
/// to the spec by its own `apply`.
#[derive(Debug, Default, clap::Args)]
pub struct FrontArgs {
    /// The process: environment, working directory, user, terminal, hostname.
    #[command(flatten)]
    pub process: ProcessFlags,
    /// Mounts beyond the volumes: tmpfs, the root read-only or writable.
    #[command(flatten)]
    pub mounts: MountFlags,
    /// The network.
    #[command(flatten)]
    pub network: NetworkFlags,
    /// Capabilities, Landlock and seccomp.
    #[command(flatten)]
    pub security: SecurityFlags,
    /// Resource limits (the container's cgroup).
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// What happens around the run.
    #[command(flatten)]
    pub lifecycle: LifecycleFlags,
}

/// The process: environment, working directory, user, terminal, hostname.
#[derive(Debug, Default, clap::Args)]
pub struct ProcessFlags {
    /// Set an environment variable (KEY=VALUE; KEY alone takes the caller's value).
    #[arg(
        long = "env",
        short = 'e',
        value_name = "KEY=VALUE",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub env: Vec<String>,
    /// Read environment variables from a file (KEY=VALUE lines; # comments).
    #[arg(
        long,
        value_name = "FILE",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container (absolute).
    #[arg(
        long,
        short = 'w',
        value_name = "DIR",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub workdir: Option<String>,
    /// User and group to run as: UID[:GID] or NAME[:GROUP] (names from the rootfs's /etc/passwd).
    #[arg(
        long,
        short = 'u',
        value_name = "USER[:GROUP]",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub user: Option<String>,
    /// Allocate a terminal (default: when stdin is a terminal).
    #[arg(
        long,
        short = 't',
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub tty: bool,
    /// Keep stdin open (it always is; accepted for podman/docker habits).
    #[arg(
        long,
        short = 'i',
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub interactive: bool,
    /// The container's hostname.
    #[arg(
        long,
        value_name = "NAME",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub hostname: Option<String>,
    /// A resource limit: TYPE=SOFT[:HARD] (nofile, nproc, core, stack, memlock, ...; -1 or
    /// unlimited for none), as podman's --ulimit (repeatable).
    #[arg(
        long,
        value_name = "TYPE=SOFT[:HARD]",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub ulimit: Vec<String>,
    /// The caller's whole environment, under --env-file and --env (as podman's --env-host).
    #[arg(long, requires = "rootfs", help_heading = "Front end: process")]
    pub env_host: bool,
    /// The program to run, replacing the image's entrypoint (and its default command): a word, or
    /// a JSON list of words; the command after `--` follows it as its arguments.
    #[arg(
        long,
        value_name = "CMD",
        requires = "rootfs",
        help_heading = "Front end: process"
    )]
    pub entrypoint: Option<String>,
    /// A minimal init as the container's pid 1 that reaps orphans and forwards signals: the host's
    /// static catatonit or tini (`BERTH_INIT` names another), bound read-only at /dev/init, never
    /// berth's own binary.
    #[arg(long, requires = "rootfs", help_heading = "Front end: process")]
    pub init: bool,
}

/// Where `--init` binds its init in the container (a tmpfs of berth's, so nothing is written into
/// the rootfs), as Docker binds docker-init.
const INIT_PATH: &str = "/dev/init";

/// The host's static init for `--init`: `BERTH_INIT`, else the first of Podman's catatonit,
/// catatonit, tini-static and Docker's docker-init that is a regular file.
fn host_init() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_INIT") {
        return Ok(PathBuf::from(p));
    }
    [
        "/usr/libexec/podman/catatonit",
        "/usr/bin/catatonit",
        "/usr/bin/tini-static",
        "/usr/bin/docker-init",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
    .ok_or_else(|| {
        Error::NotSupported(
            "--init: no static init on this host (catatonit or tini-static; BERTH_INIT names another)"
                .into(),
        )
    })
}

/// Mounts beyond the volumes: tmpfs, the root read-only or writable.
#[derive(Debug, Default, clap::Args)]
pub struct MountFlags {
    /// A tmpfs at PATH with mount options (e.g. /scratch:size=64m,mode=1777), nosuid,nodev.
    #[arg(
        long,
        value_name = "PATH[:OPTS]",
        requires = "rootfs",
        help_heading = "Front end: mounts"
    )]
    pub tmpfs: Vec<String>,
    /// Read-only root filesystem (the default).
    #[arg(
        long,
        requires = "rootfs",
        conflicts_with = "rw_root",
        help_heading = "Front end: mounts"
    )]
    pub read_only: bool,
    /// Writable root filesystem (a directory is changed in place; an image's changes are discarded).
    #[arg(long, requires = "rootfs", help_heading = "Front end: mounts")]
    pub rw_root: bool,
    /// A mount in Podman's syntax: type=bind,source=HOST,target=CTR[,readonly] (writable unless
    /// readonly, as Podman's) or type=tmpfs,target=CTR[,tmpfs-size=SIZE][,tmpfs-mode=MODE]
    /// (repeatable).
    #[arg(
        long = "mount",
        value_name = "type=bind|tmpfs,...",
        requires = "rootfs",
        help_heading = "Front end: mounts"
    )]
    pub mount: Vec<String>,
}

/// One `--mount`, as Podman reads it.
#[derive(Debug, PartialEq, Eq)]
enum MountArg {
    /// A bind: a volume (writable unless `readonly`).
    Bind(volumes::Volume),
    /// A tmpfs, as `--tmpfs PATH:OPTS` writes it.
    Tmpfs(String),
}

/// Parses `--mount type=...,key=value,...` (keys as Podman names them; an unknown one is an error).
fn parse_mount(m: &str) -> Result<MountArg> {
    let mut typ = None;
    let (mut source, mut target, mut readonly) = (None, None, false);
    let mut tmpfs_opts: Vec<String> = Vec::new();
    for part in m.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (part, None),
        };
        match (k, v) {
            ("type", Some(t)) => typ = Some(t),
            ("source" | "src", Some(s)) => source = Some(s),
            ("target" | "destination" | "dst", Some(t)) => target = Some(t),
            ("readonly" | "ro", None | Some("true" | "1")) => readonly = true,
            ("readonly" | "ro", Some("false" | "0")) => readonly = false,
            ("tmpfs-size", Some(s)) => tmpfs_opts.push(format!("size={s}")),
            ("tmpfs-mode", Some(s)) => tmpfs_opts.push(format!("mode={s}")),
            _ => {
                return Err(bad(
                    "--mount",
                    m,
                    format!(
                        "unknown or malformed key {k:?} (type, source, target, readonly, tmpfs-size, tmpfs-mode)"
                    ),
                ));
            }
        }
    }
    let target = target.ok_or_else(|| bad("--mount", m, "no target"))?;
    match typ {
        Some("bind") => {
            let source = source.ok_or_else(|| bad("--mount", m, "a bind needs a source"))?;
            Ok(MountArg::Bind(volumes::Volume {
                host_path: source.into(),
                container_path: target.to_string(),
                read_only: readonly,
            }))
        }
        Some("tmpfs") if source.is_none() && !readonly => Ok(MountArg::Tmpfs(format!(
            "{target}:{}",
            tmpfs_opts.join(",")
        ))),
        Some("tmpfs") => Err(bad("--mount", m, "a tmpfs takes no source and is writable")),
        Some(t) => Err(bad(
            "--mount",
            m,
            format!("type {t:?} is not supported here (bind or tmpfs)"),
        )),
        None => Err(bad("--mount", m, "no type= (bind or tmpfs)")),
    }
}

/// The network.
#[derive(Debug, Default, clap::Args)]
pub struct NetworkFlags {
    /// Network: none (a new namespace with loopback up; the default) or host.
    #[arg(
        long = "net",
        alias = "network",
        value_name = "none|host",
        requires = "rootfs",
        help_heading = "Front end: network"
    )]
    pub net: Option<String>,
}

/// Capabilities, Landlock and seccomp.
#[derive(Debug, Default, clap::Args)]
pub struct SecurityFlags {
    /// Add a capability (CAP_NAME or NAME; ALL for every one).
    #[arg(
        long,
        value_name = "CAP",
        requires = "rootfs",
        help_heading = "Front end: security"
    )]
    pub cap_add: Vec<String>,
    /// Drop a capability (CAP_NAME or NAME; ALL for every one).
    #[arg(
        long,
        value_name = "CAP",
        requires = "rootfs",
        help_heading = "Front end: security"
    )]
    pub cap_drop: Vec<String>,
    /// landlock=off|best-effort|enforce, seccomp=default|unconfined|FILE (linux.seccomp JSON).
    #[arg(
        long,
        value_name = "OPT=VALUE",
        requires = "rootfs",
        help_heading = "Front end: security"
    )]
    pub security_opt: Vec<String>,
}

/// Resource limits (the container's cgroup).
#[derive(Debug, Default, clap::Args)]
pub struct ResourceFlags {
    /// Memory limit (bytes, or with k, m, g: 512m).
    #[arg(
        long,
        short = 'm',
        value_name = "SIZE",
        requires = "rootfs",
        help_heading = "Front end: resources"
    )]
    pub memory: Option<String>,
    /// CPUs the container may use (1.5: one and a half CPUs' time).
    #[arg(
        long,
        value_name = "N",
        requires = "rootfs",
        help_heading = "Front end: resources"
    )]
    pub cpus: Option<String>,
    /// Most processes the container may have (-1: no limit).
    #[arg(
        long,
        value_name = "N",
        requires = "rootfs",
        allow_hyphen_values = true,
        help_heading = "Front end: resources"
    )]
    pub pids_limit: Option<String>,
    /// A host device node in the container: HOST[:CTR][:PERMS] (PERMS from rwm, default rwm),
    /// allowed by the device cgroup for that node alone (repeatable; under a host policy only when
    /// its container.devices allows devices).
    #[arg(
        long,
        value_name = "HOST[:CTR][:rwm]",
        requires = "rootfs",
        help_heading = "Front end: resources"
    )]
    pub device: Vec<String>,
}

/// One `--device HOST[:CTR][:PERMS]`: the node as linux.devices has it, and its cgroup access.
fn device(d: &str) -> Result<(crate::spec::Device, String)> {
    let parts: Vec<&str> = d.split(':').collect();
    let perms_ok = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if perms_ok(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if perms_ok(p) => (*h, *c, *p),
        _ => {
            return Err(bad(
                "--device",
                d,
                "expected HOST[:CTR][:PERMS], PERMS from rwm",
            ));
        }
    };
    if !host.starts_with('/') || !ctr.starts_with('/') {
        return Err(bad("--device", d, "paths must be absolute"));
    }
    let st = nix::sys::stat::stat(host)
        .map_err(|e| Error::sys(format!("--device {d:?}: stat({host})"), e))?;
    let typ = match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR => "c",
        libc::S_IFBLK => "b",
        _ => return Err(bad("--device", d, format!("{host} is not a device node"))),
    };
    let dev = crate::spec::Device {
        typ: typ.into(),
        path: ctr.into(),
        // Device numbers are 32 bits (12 + 20): they fit an i64.
        major: i64::try_from(nix::sys::stat::major(st.st_rdev)).unwrap_or(i64::MAX),
        minor: i64::try_from(nix::sys::stat::minor(st.st_rdev)).unwrap_or(i64::MAX),
        file_mode: Some(st.st_mode & 0o777),
        uid: Some(st.st_uid),
        gid: Some(st.st_gid),
    };
    Ok((dev, perms.into()))
}

/// What happens around the run.
#[derive(Debug, Default, clap::Args)]
pub struct LifecycleFlags {
    /// Remove the container when its process exits (the default when not detached).
    #[arg(long, requires = "rootfs", help_heading = "Front end: lifecycle")]
    pub rm: bool,
    /// Print the generated config.json and run nothing.
    #[arg(long, requires = "rootfs", help_heading = "Front end: lifecycle")]
    pub dry_run: bool,
}

use crate::spec::LOOPBACK_ANNOTATION as LOOPBACK;

fn bad(flag: &str, value: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidSpec(format!("{flag} {value:?}: {why}"))
}

/// `512m` → bytes.
#[allow(
    clippy::cast_possible_truncation,
    reason = "checked to lie in 4096..9e18 just above"
)]
pub fn parse_size(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| bad(flag, s, "not a size (bytes, or a number with k, m or g)"))?;
    let bytes = n * mul as f64;
    if !(4096.0..9.0e18).contains(&bytes) {
        return Err(bad(flag, s, "must be at least 4k"));
    }
    Ok(bytes as i64)
}

fn cap_name(flag: &str, c: &str) -> Result<String> {
    let up = c.to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    crate::security::caps::parse(&name).map_err(|_| bad(flag, c, "unknown capability"))?;
    Ok(name)
}

/// A file of the rootfs, resolved inside it (a symlink in the image cannot lead out).
fn read_in_root(rootfs: &Path, file: &str) -> Option<String> {
    let root = crate::resolve::Root::open(rootfs).ok()?;
    let fd = root.open_at(Path::new(file), libc::O_RDONLY).ok()?;
    std::io::read_to_string(std::fs::File::from(fd)).ok()
}

/// The id (and primary group, for passwd) of the entry whose field `key` (0: name, 2: id) is
/// `value` in the rootfs's `file`.
fn lookup(rootfs: &Path, file: &str, key: usize, value: &str) -> Option<(u32, u32)> {
    read_in_root(rootfs, file)?.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.get(key) != Some(&value) {
            return None;
        }
        let id = f.get(2)?.parse().ok()?;
        let gid = f.get(3).and_then(|v| v.parse().ok()).unwrap_or(id);
        Some((id, gid))
    })
}

fn user(rootfs: &Path, s: &str) -> Result<(u32, u32)> {
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let (uid, primary) = match u.parse::<u32>() {
        Ok(n) => (n, lookup(rootfs, "etc/passwd", 2, u).map_or(n, |(_, g)| g)),
        Err(_) => lookup(rootfs, "etc/passwd", 0, u)
            .ok_or_else(|| bad("--user", s, "no such user in the rootfs's /etc/passwd"))?,
    };
    let gid = match g {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup(rootfs, "etc/group", 0, g)
                    .ok_or_else(|| bad("--user", s, "no such group in the rootfs's /etc/group"))?
                    .0
            }
        },
    };
    Ok((uid, gid))
}

/// `--entrypoint`: a JSON list of words, or one word.
fn entrypoint_words(e: &str) -> Result<Vec<String>> {
    let words: Vec<String> = if e.trim_start().starts_with('[') {
        serde_json::from_str(e).map_err(|err| {
            bad(
                "--entrypoint",
                e,
                format!("not a JSON list of strings: {err}"),
            )
        })?
    } else {
        vec![e.to_string()]
    };
    if words.first().is_none_or(|w| w.is_empty()) {
        return Err(bad("--entrypoint", e, "names no program"));
    }
    Ok(words)
}

/// `--ulimit TYPE=SOFT[:HARD]` as podman reads it (HARD defaults to SOFT; -1 or `unlimited`).
fn ulimit(u: &str) -> Result<crate::spec::Rlimit> {
    let (name, values) = u
        .split_once('=')
        .ok_or_else(|| bad("--ulimit", u, "expected TYPE=SOFT[:HARD]"))?;
    let typ = format!("RLIMIT_{}", name.to_ascii_uppercase());
    if crate::spec::validate::rlimit_resource(&typ).is_none() {
        return Err(bad(
            "--ulimit",
            u,
            "unknown type (nofile, nproc, core, cpu, data, fsize, locks, memlock, msgqueue, nice, rss, rtprio, rttime, sigpending, stack, as)",
        ));
    }
    let num = |s: &str| -> Result<u64> {
        match s {
            "-1" | "unlimited" => Ok(u64::MAX),
            n => n
                .parse()
                .map_err(|_| bad("--ulimit", u, "a limit is a number, -1 or unlimited")),
        }
    };
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => {
            let n = num(values)?;
            (n, n)
        }
    };
    if soft > hard {
        return Err(bad("--ulimit", u, "the soft limit is above the hard one"));
    }
    Ok(crate::spec::Rlimit { typ, hard, soft })
}

fn set_env(env: &mut Vec<String>, kv: String) {
    let key = kv.split('=').next().unwrap_or("").to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(kv);
}

fn env_entry(flag: &str, e: &str) -> Result<Option<String>> {
    let key = e.split('=').next().unwrap_or("");
    if key.is_empty() || key.contains('\0') || e.contains('\0') {
        return Err(bad(flag, e, "expected KEY=VALUE"));
    }
    if e.contains('=') {
        return Ok(Some(e.to_string()));
    }
    // KEY alone: the caller's value, or nothing when the caller has none (as docker).
    Ok(std::env::var(key).ok().map(|v| format!("{key}={v}")))
}

/// Applies an image's config (environment, working directory, user) to `spec`; the flags come after.
pub fn apply_image(c: &crate::image::Config, spec: &mut Spec, rootfs: &Path) -> Result<()> {
    let process = spec.process.get_or_insert_with(Default::default);
    for e in c.env.iter().flatten() {
        set_env(&mut process.env, e.clone());
    }
    if let Some(w) = c.working_dir.as_deref().filter(|w| w.starts_with('/')) {
        process.cwd = w.to_string();
    }
    if let Some(u) = c.user.as_deref().filter(|u| !u.is_empty()) {
        let (uid, gid) = user(rootfs, u)
            .map_err(|e| Error::InvalidSpec(format!("the image's config User {u:?}: {e}")))?;
        process.user.uid = uid;
        process.user.gid = gid;
    }
    Ok(())
}

/// Applies the front end's flags to `spec` (rootfs already set), group by group. `detach`: the run
/// is detached.
pub fn apply(f: &FrontArgs, spec: &mut Spec, rootfs: &Path, detach: bool) -> Result<()> {
    f.lifecycle.check(detach)?;
    f.process.apply(spec, rootfs)?;
    f.security.apply_caps(spec)?;
    f.mounts.apply(spec)?;
    f.network.apply(spec)?;
    f.resources.apply(spec)?;
    f.security.apply_profiles(spec)
}

impl LifecycleFlags {
    fn check(&self, detach: bool) -> Result<()> {
        if self.rm && detach {
            return Err(Error::InvalidSpec(
                "--rm with --detach: berth keeps no daemon to remove a detached container when it exits; remove it with `berth delete`".into(),
            ));
        }
        Ok(())
    }
}

impl ProcessFlags {
    /// Terminal, environment (files, then -e over them, as podman and docker), working directory,
    /// user, hostname.
    fn apply(&self, spec: &mut Spec, rootfs: &Path) -> Result<()> {
        let process = spec.process.get_or_insert_with(Default::default);
        if self.tty {
            process.terminal = true;
        }
        if self.env_host {
            for (k, v) in std::env::vars_os() {
                if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                    set_env(&mut process.env, format!("{k}={v}"));
                }
            }
        }
        for file in &self.env_file {
            let text = std::fs::read_to_string(file).map_err(|e| io_err("read", file, e))?;
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some(kv) = env_entry(&format!("--env-file {}:", file.display()), line)? {
                    set_env(&mut process.env, kv);
                }
            }
        }
        for e in &self.env {
            if let Some(kv) = env_entry("--env", e)? {
                set_env(&mut process.env, kv);
            }
        }
        if let Some(w) = &self.workdir {
            if !w.starts_with('/') {
                return Err(bad("--workdir", w, "must be an absolute path"));
            }
            process.cwd = w.clone();
        }
        if let Some(u) = &self.user {
            let (uid, gid) = user(rootfs, u)?;
            process.user.uid = uid;
            process.user.gid = gid;
        }
        for u in &self.ulimit {
            let r = ulimit(u)?;
            process.rlimits.retain(|x| x.typ != r.typ);
            process.rlimits.push(r);
        }
        if let Some(h) = &self.hostname {
            let ok = !h.is_empty()
                && h.len() <= 64
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(bad(
                    "--hostname",
                    h,
                    "expected letters, digits, '-' and '.' (at most 64)",
                ));
            }
            spec.hostname = Some(h.clone());
        }
        Ok(())
    }
}

impl MountFlags {
    /// A writable root, and tmpfs mounts (always nosuid,nodev; no option that would undo that).
    fn apply(&self, spec: &mut Spec) -> Result<()> {
        if self.rw_root {
            spec.root.get_or_insert_with(Default::default).readonly = false;
        }
        let from_mount = self.mount.iter().filter_map(|m| match parse_mount(m) {
            Ok(MountArg::Tmpfs(t)) => Some(t),
            _ => None,
        });
        for t in self.tmpfs.iter().cloned().chain(from_mount) {
            let t = t.as_str();
            let (path, opts) = t.split_once(':').unwrap_or((t, ""));
            if !path.starts_with('/') {
                return Err(bad("--tmpfs", t, "the path must be absolute"));
            }
            let mut options = vec!["nosuid".to_string(), "nodev".to_string()];
            for o in opts.split(',').filter(|o| !o.is_empty()) {
                if matches!(o, "suid" | "dev" | "exec" | "bind" | "rbind") {
                    return Err(bad("--tmpfs", t, format!("option {o:?} is not allowed")));
                }
                options.push(o.to_string());
            }
            spec.mounts.retain(|m| m.destination != path);
            spec.mounts.push(Mount {
                destination: path.to_string(),
                typ: Some("tmpfs".into()),
                source: Some("tmpfs".into()),
                options,
                ..Default::default()
            });
        }
        Ok(())
    }
}

impl NetworkFlags {
    /// none: a network namespace of its own with loopback up (the default); host: the host's.
    fn apply(&self, spec: &mut Spec) -> Result<()> {
        match self.net.as_deref().unwrap_or("none") {
            "none" => {
                spec.annotations.insert(LOOPBACK.into(), "up".into());
            }
            "host" => spec
                .linux
                .get_or_insert_with(Default::default)
                .namespaces
                .retain(|n| n.typ != "network"),
            other => return Err(bad("--net", other, "expected none or host")),
        }
        Ok(())
    }
}

impl ResourceFlags {
    /// linux.resources: every device denied but the standard ones (cgroups::devices appends them),
    /// as Podman does, so that a device node an image or a volume brings opens nothing; memory,
    /// CPU quota, pids.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "--cpus is at most 4096, so the quota is at most 4.1e8"
    )]
    fn apply(&self, spec: &mut Spec) -> Result<()> {
        let mut resources = serde_json::Map::new();
        let mut rules = vec![serde_json::json!({"allow": false, "access": "rwm"})];
        for d in &self.device {
            let (dev, access) = device(d)?;
            rules.push(
                serde_json::json!({"allow": true, "type": dev.typ, "major": dev.major,
                                          "minor": dev.minor, "access": access}),
            );
            let linux = spec.linux.get_or_insert_with(Default::default);
            linux.devices.retain(|x| x.path != dev.path);
            linux.devices.push(dev);
        }
        resources.insert("devices".into(), serde_json::Value::Array(rules));
        if let Some(m) = &self.memory {
            resources.insert(
                "memory".into(),
                serde_json::json!({"limit": parse_size("--memory", m)?}),
            );
        }
        if let Some(c) = &self.cpus {
            let n: f64 = c
                .parse()
                .ok()
                .filter(|n: &f64| *n >= 0.01 && *n <= 4096.0)
                .ok_or_else(|| bad("--cpus", c, "expected a number of CPUs from 0.01"))?;
            resources.insert(
                "cpu".into(),
                serde_json::json!({"quota": (n * 100_000.0).round() as i64, "period": 100_000}),
            );
        }
        if let Some(p) = &self.pids_limit {
            let n: i64 = p
                .parse()
                .ok()
                .filter(|n: &i64| *n > 0 || *n == -1)
                .ok_or_else(|| bad("--pids-limit", p, "expected a positive number or -1"))?;
            resources.insert("pids".into(), serde_json::json!({"limit": n}));
        }
        spec.linux.get_or_insert_with(Default::default).resources =
            Some(serde_json::Value::Object(resources));
        Ok(())
    }
}

impl SecurityFlags {
    /// --cap-add and --cap-drop: every set the default spec lists, changed alike.
    fn apply_caps(&self, spec: &mut Spec) -> Result<()> {
        if self.cap_add.is_empty() && self.cap_drop.is_empty() {
            return Ok(());
        }
        let adds = self
            .cap_add
            .iter()
            .map(|c| cap_name("--cap-add", c))
            .collect::<Result<Vec<_>>>()?;
        let drops = self
            .cap_drop
            .iter()
            .map(|c| cap_name("--cap-drop", c))
            .collect::<Result<Vec<_>>>()?;
        let all: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
        let process = spec.process.get_or_insert_with(Default::default);
        let caps = process.capabilities.get_or_insert_with(Default::default);
        for set in [
            &mut caps.bounding,
            &mut caps.effective,
            &mut caps.permitted,
            &mut caps.ambient,
        ] {
            let mut list = set.take().unwrap_or_default();
            if drops.iter().any(|d| d == "ALL") {
                list.clear();
            }
            list.retain(|c| !drops.contains(c));
            for a in &adds {
                let add = if a == "ALL" {
                    all.clone()
                } else {
                    vec![a.clone()]
                };
                for c in add {
                    if !list.contains(&c) {
                        list.push(c);
                    }
                }
            }
            list.sort();
            *set = Some(list);
        }
        Ok(())
    }

    /// --security-opt: Landlock's mode, and seccomp (berth's default profile unless asked otherwise).
    fn apply_profiles(&self, spec: &mut Spec) -> Result<()> {
        let mut seccomp = Some(crate::security::seccomp::default_profile());
        for o in &self.security_opt {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                bad(
                    "--security-opt",
                    o,
                    "expected landlock=MODE or seccomp=PROFILE",
                )
            })?;
            match (k, v) {
                ("landlock", "off" | "best-effort" | "enforce") => {
                    spec.annotations
                        .insert(crate::security::landlock::ANNOTATION.into(), v.into());
                }
                ("landlock", _) => {
                    return Err(bad(
                        "--security-opt",
                        o,
                        "expected landlock=off|best-effort|enforce",
                    ));
                }
                ("seccomp", "default") => {
                    seccomp = Some(crate::security::seccomp::default_profile());
                }
                ("seccomp", "unconfined") => seccomp = None,
                ("seccomp", file) => seccomp = Some(seccomp_file(o, file)?),
                _ => {
                    return Err(bad(
                        "--security-opt",
                        o,
                        "unknown option (landlock=, seccomp=)",
                    ));
                }
            }
        }
        spec.linux.get_or_insert_with(Default::default).seccomp = seccomp;
        Ok(())
    }
}

/// A linux.seccomp JSON file, checked by compiling it.
fn seccomp_file(opt: &str, file: &str) -> Result<serde_json::Value> {
    let bytes = std::fs::read(file).map_err(|e| io_err("read", Path::new(file), e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| bad("--security-opt", opt, format!("not JSON: {e}")))?;
    crate::security::seccomp::compile(&v).map_err(|e| bad("--security-opt", opt, e))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("--memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("--memory", "1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("--memory", "1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("--memory", "65536").unwrap(), 65536);
        for b in ["", "m", "-1m", "12x", "1k0", "1"] {
            let e = parse_size("--memory", b).unwrap_err().to_string();
            assert!(e.contains("--memory"), "{b}: {e}");
        }
    }

    #[test]
    fn capabilities_and_env() {
        assert_eq!(cap_name("--cap-add", "net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(cap_name("--cap-add", "CAP_KILL").unwrap(), "CAP_KILL");
        assert!(
            cap_name("--cap-add", "FLY")
                .unwrap_err()
                .to_string()
                .contains("--cap-add")
        );
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "A=2".into());
        assert_eq!(env, ["PATH=/bin", "A=2"]);
        assert!(env_entry("--env", "=x").is_err());
    }
}
