//! Checkpoint and restore through CRIU's RPC (`criu swrk`, [`super::criu`]), with runc's options
//! and berth's guarantees kept across the restore:
//!
//! - **Landlock** domains cannot be dumped or restored by CRIU: a container whose init is confined
//!   by Landlock is refused at checkpoint (naming the reason), and a restore whose spec asks
//!   Landlock to be enforced is refused; otherwise the restored container runs without it, and its
//!   state says so (exec then gives its processes none either, as the init has none).
//! - **Volumes** are external mounts of the image (`mnt[DEST]:DEST` at dump, recorded in
//!   `berth-externals.json` beside the image): at restore each is taken from the bundle's mounts,
//!   its source opened again (beneath its root under a host mount policy, which checks the whole
//!   bundle again), cloned from that fd and bound from the restoring berth's private mount
//!   namespace, never a path from the image; a masked file's /dev/null is berth's verified one.
//! - At CRIU's **post-restore** notification, when the whole tree is restored but not yet resumed,
//!   the tree is moved into its **cgroup** (made again from the bundle with its limits) and each
//!   bind's attributes and a read-only root are set again on the restored mounts (read-only stays
//!   read-only whatever the image says); a failure there makes CRIU kill the tree.
//! - **Namespaces joined by path** (a pod's) are the bundle's again: network and pid as CRIU
//!   externals (the bundle's fd inherited under runc's keys), ipc and uts joined (`join_ns`), each
//!   checked to be a namespace of its type and to match what the checkpoint joined.
//! - A **terminal**: its master side is outside the container (the console socket's receiver holds
//!   it), so the slave is dumped as an orphan (`orphan_pts_master`) and at restore CRIU makes a new
//!   master, which it hands to berth in a notification and berth sends to `--console-socket`.
//! - CRIU restores seccomp filters and capabilities itself; no_new_privs, which CRIU 3.17 does not,
//!   is checked after the restore and its absence refused.
//!
//! The container's root for CRIU is a bind of the rootfs onto itself in a private mount namespace of
//! the restoring berth (gone when it returns): nothing is mounted on the host.

use super::criu;
use super::{Context, Launch};
use crate::error::{Context as _, Error, Result, io_err};
use crate::mount::plan::{MountOp, OpKind};
use crate::state::{Container, Saved, Status};
use crate::sys;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// runc's checkpoint and restore options, as Podman and containerd pass them.
#[derive(Debug, Default)]
pub struct CriuOptions {
    /// `--image-path`: where the images are written (checkpoint) or read (restore).
    pub image_path: PathBuf,
    /// `--work-path`: CRIU's logs and work files (default: the image path).
    pub work_path: Option<PathBuf>,
    /// `--leave-running`.
    pub leave_running: bool,
    /// `--tcp-established`.
    pub tcp_established: bool,
    /// `--ext-unix-sk`.
    pub ext_unix_sk: bool,
    /// `--shell-job`.
    pub shell_job: bool,
    /// `--file-locks`.
    pub file_locks: bool,
    /// `--pre-dump`: memory only, the container keeps running.
    pub pre_dump: bool,
    /// `--parent-path`: a pre-dump's images, relative to the image path.
    pub parent_path: Option<PathBuf>,
    /// `--manage-cgroups-mode`: soft, full, strict or ignore (berth remakes the cgroup itself;
    /// CRIU's own handling is `ignore` unless asked).
    pub manage_cgroups_mode: Option<String>,
    /// `--empty-ns`: namespaces CRIU leaves empty (`network`).
    pub empty_ns: Vec<String>,
    /// `--auto-dedup`.
    pub auto_dedup: bool,
    /// `--lazy-pages`.
    pub lazy_pages: bool,
    /// restore's `--console-socket`: where a restored terminal's new master side is sent.
    pub console_socket: Option<PathBuf>,
    /// checkpoint's `--page-server ADDR:PORT` ([`parse_page_server`]): where CRIU serves (lazy) or
    /// sends the pages.
    pub page_server: Option<(String, u16)>,
    /// checkpoint's `--status-fd`: a zero byte is written there, and the fd closed, once the lazy
    /// pages are being served.
    pub status_fd: std::sync::Mutex<Option<OwnedFd>>,
}

/// What berth records beside a dump: the external mounts it declared, by mount point.
const EXTERNALS: &str = "berth-externals.json";

/// Filesystems CRIU dumps and restores itself (their contents, for tmpfs); every other mount in the
/// container is a bind from the host, declared external.
const CRIU_OWN_FS: &[&str] = &[
    "proc",
    "sysfs",
    "tmpfs",
    "devpts",
    "mqueue",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
];

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct External {
    /// The mount point inside the container (also the key CRIU knows it by).
    point: String,
    /// `bind` (a volume, taken from the bundle at restore) or `null` (a masked file).
    kind: String,
}

fn criu() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_CRIU").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into())
        .to_string_lossy()
        .split(':')
        .map(|d| Path::new(d).join("criu"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::NotSupported(
                "checkpoint/restore need CRIU (criu not found in $PATH; BERTH_CRIU names it)"
                    .into(),
            )
        })
}

/// CRIU needs host root (CAP_SYS_ADMIN; CRIU 3.18's --unprivileged still needs
/// CAP_CHECKPOINT_RESTORE), which a rootless berth lacks: refused up front, naming the reason, rather
/// than left to fail inside CRIU.
fn refuse_rootless(verb: &str) -> Result<()> {
    if crate::spec::rootless::active() {
        return Err(Error::NotSupported(format!(
            "{verb}: berth runs without host root (rootless), and CRIU needs it (CAP_SYS_ADMIN) to dump or restore a process tree"
        )));
    }
    Ok(())
}

fn confined_by_landlock(c: &Container) -> bool {
    let path = c.dir.join(crate::state::CONFINEMENT_FILE);
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::security::Report>(&b).ok())
        .is_some_and(|r| r.landlock != crate::security::Enforced::Off)
}

/// The container's mounts CRIU cannot make itself, from its init's mountinfo: binds from the host
/// (a filesystem CRIU does not make, or a subtree of one whose root is mounted nowhere in the
/// container, such as a volume on the host's tmpfs).
fn externals(pid: i32) -> Result<Vec<External>> {
    let path = PathBuf::from(format!("/proc/{pid}/mountinfo"));
    let info = crate::sys::read_proc_bytes(&format!("/proc/{pid}/mountinfo"))
        .map_err(|e| io_err("read", &path, e))?;
    // (device, root, mount point, fstype) of each mount. A mount the container named with bytes that
    // are not UTF-8 cannot be named to CRIU (its RPC takes strings) and is left out, so CRIU refuses
    // it as a mount it was not told of: never read under another name.
    let mounts: Vec<(&str, &str, &str, &str)> = crate::sys::utf8_lines(&info)
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            Some((*f.get(2)?, *f.get(3)?, *f.get(4)?, post.split(' ').next()?))
        })
        .collect();
    let mut out = Vec::new();
    for &(dev, root, point, fstype) in &mounts {
        if point == "/" {
            continue;
        }
        let whole = mounts
            .iter()
            .any(|m| m.0 == dev && m.1 == "/" && m.2 != "/");
        let own = CRIU_OWN_FS.contains(&fstype) && (root == "/" || whole);
        if own {
            continue;
        }
        let kind = if fstype == "devtmpfs" && root == "/null" {
            "null"
        } else if fstype == "cgroup" || fstype == "cgroup2" {
            // The container's own cgroup directory, bound (see mount::apply): at restore the
            // directory of the cgroup made again.
            "cgroup"
        } else {
            "bind"
        };
        out.push(External {
            point: point.to_string(),
            kind: kind.into(),
        });
    }
    Ok(out)
}

/// The init's stdio as CRIU keys them, for those it cannot reopen inside the container: a pipe or
/// socket (`pipe:[INODE]`), or a file on a mount outside the container (`file[MNT_ID:INODE]`, hex),
/// which the dump declares external. At restore each is the restoring berth's own fd of that
/// number (`--inherit-fd`), as runc and crun reconnect stdio.
fn stdio_keys(pid: i32, inside: &[(String, String)]) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    for fd in 0..3 {
        let Ok(link) = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")) else {
            continue;
        };
        let link = link.to_string_lossy().into_owned();
        if link.starts_with("pipe:[") || link.starts_with("socket:[") {
            out.push((fd, link));
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).unwrap_or_default();
        let mnt_id = info
            .lines()
            .find_map(|l| l.strip_prefix("mnt_id:"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        let ino = std::fs::metadata(format!("/proc/{pid}/fd/{fd}"))
            .ok()
            .map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.ino()
            });
        if let (Some(m), Some(i)) = (mnt_id, ino)
            && !inside.iter().any(|(id, _)| id == &m.to_string())
        {
            out.push((fd, format!("file[{m:x}:{i:x}]")));
        }
    }
    out
}

/// The container's mount ids (and mount points), from its init's mountinfo.
fn mount_ids(pid: i32) -> Vec<(String, String)> {
    let info = crate::sys::read_proc_bytes(&format!("/proc/{pid}/mountinfo")).unwrap_or_default();
    crate::sys::utf8_lines(&info)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((f.first()?.to_string(), f.get(4)?.to_string()))
        })
        .collect()
}

/// What berth records beside a dump.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The external mounts, by mount point.
    mounts: Vec<External>,
    /// The init's stdio CRIU cannot reopen itself, by fd number.
    stdio: Vec<(i32, String)>,
    /// The namespaces the container joined by path (OCI types): at restore the bundle's paths of
    /// the same types are joined instead of namespaces CRIU would make.
    #[serde(default)]
    namespaces: Vec<String>,
}

/// Namespaces a container may have joined by path, and how CRIU takes them: network and pid as
/// externals (`TYPE[INODE]:KEY` at dump, the fd inherited under KEY at restore, runc's keys), ipc
/// and uts joined at restore (`join_ns`). (OCI type, CRIU's name, external key.)
const JOINABLE: &[(&str, &str, Option<&str>)] = &[
    ("network", "net", Some("extRootNetNS")),
    ("pid", "pid", Some("extRootPidNS")),
    ("ipc", "ipc", None),
    ("uts", "uts", None),
];

fn joinable(typ: &str) -> Result<&'static (&'static str, &'static str, Option<&'static str>)> {
    JOINABLE.iter().find(|j| j.0 == typ).ok_or_else(|| {
        Error::NotSupported(format!(
            "linux.namespaces: the {typ} namespace is joined by path, which CRIU can neither dump nor restore as an external (only network, pid, ipc and uts)"
        ))
    })
}

/// The container's namespaces joined by path, from its config: checked joinable, and, for the
/// externals, CRIU's `TYPE[INODE]:KEY` of the init's own namespace.
fn joined_namespaces(c: &Container, pid: i32) -> Result<(Vec<String>, Vec<String>)> {
    let path = c.dir.join(crate::state::CONFIG_FILE);
    let bytes = std::fs::read(&path).map_err(|e| io_err("read", &path, e))?;
    let spec = crate::spec::parse(&bytes)?;
    let joined: Vec<String> = spec
        .linux
        .as_ref()
        .map(|l| l.namespaces.iter())
        .into_iter()
        .flatten()
        .filter(|n| n.path.is_some())
        .map(|n| n.typ.clone())
        .collect();
    let mut external = Vec::new();
    for typ in &joined {
        let (_, name, key) = joinable(typ)?;
        if let Some(key) = key {
            use std::os::unix::fs::MetadataExt;
            let ns = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let ino = std::fs::metadata(&ns)
                .map_err(|e| io_err("stat", &ns, e))?
                .ino();
            external.push(format!("{name}[{ino}]:{key}"));
        }
    }
    Ok((joined, external))
}

/// The options both directions share, with the images and work directories as berth's fds (CRIU
/// opens them through /proc/<berth>/fd) and CRIU's log `log` in the work directory.
fn base_opts(o: &CriuOptions, dirs: &Dirs, log: &str) -> criu::Opts {
    use criu::Flag;
    let flags = [
        (o.tcp_established, Flag::TcpEstablished),
        (o.ext_unix_sk, Flag::ExtUnixSk),
        (o.shell_job, Flag::ShellJob),
        (o.file_locks, Flag::FileLocks),
        (o.auto_dedup, Flag::AutoDedup),
        (o.lazy_pages, Flag::LazyPages),
        // A terminal's master side is outside the container (the console socket's receiver holds
        // it): dumped as an orphan slave, and at restore CRIU makes a new master and hands it over.
        (true, Flag::OrphanPtsMaster),
    ]
    .into_iter()
    .filter_map(|(on, f)| on.then_some(f))
    .collect();
    criu::Opts {
        images_dir_fd: dirs.images.as_raw_fd(),
        work_dir_fd: dirs.work.as_raw_fd(),
        log_file: log.into(),
        flags,
        manage_cgroups_mode: criu::cg_mode(o.manage_cgroups_mode.as_deref().unwrap_or("ignore")),
        empty_ns: if o.empty_ns.is_empty() {
            0
        } else {
            libc::CLONE_NEWNET as u32
        },
        ..criu::Opts::default()
    }
}

/// The images and work directories, opened (made first, 0700, where missing).
struct Dirs {
    images: OwnedFd,
    work: OwnedFd,
    work_path: PathBuf,
}

impl Dirs {
    fn open(o: &CriuOptions) -> Result<Dirs> {
        let work_path = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
        let open = |p: &Path| -> Result<OwnedFd> {
            mkdir_private(p)?;
            Ok(sys::openat2(
                None,
                p,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
                0,
                0,
            )?)
        };
        Ok(Dirs {
            images: open(&o.image_path)?,
            work: open(&work_path)?,
            work_path,
        })
    }
}

/// `--page-server ADDR:PORT` (an IPv6 address in brackets or bare: the port is after the last
/// colon) as (address, port).
pub fn parse_page_server(ps: &str) -> Result<(String, u16)> {
    let bad = || {
        Error::InvalidSpec(format!(
            "--page-server {ps:?}: ADDRESS:PORT, the port a number 1-65535"
        ))
    };
    let (addr, port) = ps.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    if addr.is_empty() {
        return Err(bad());
    }
    Ok((addr.to_string(), port))
}

fn validate(o: &CriuOptions) -> Result<()> {
    if let Some(m) = &o.manage_cgroups_mode
        && !matches!(m.as_str(), "soft" | "full" | "strict" | "ignore")
    {
        return Err(Error::InvalidSpec(format!(
            "--manage-cgroups-mode {m:?}: one of soft, full, strict, ignore"
        )));
    }
    if let Some(ns) = o.empty_ns.iter().find(|n| n.as_str() != "network") {
        return Err(Error::InvalidSpec(format!(
            "--empty-ns {ns:?}: only network can be left empty"
        )));
    }
    Ok(())
}

/// `berth checkpoint`: dumps the running container `id` into `o.image_path`. Without
/// `--leave-running` (and without `--pre-dump`) the container is gone afterwards, as with runc.
pub fn checkpoint(ctx: &Context, id: &str, o: &CriuOptions) -> Result<()> {
    refuse_rootless("checkpoint")?;
    validate(o)?;
    let c = Container::load(&ctx.root, id)?;
    if !matches!(c.status(), Status::Running | Status::Paused) {
        return Err(Error::State(format!(
            "container not running ({id:?} is {})",
            c.status().as_str()
        )));
    }
    if confined_by_landlock(&c) {
        return Err(Error::NotSupported(format!(
            "checkpoint {id:?}: its processes are confined by Landlock, whose domain CRIU can neither dump nor restore (a restored container would run unconfined); create it with the annotation berth.landlock=off to checkpoint it"
        )));
    }
    let criu = criu()?;
    let saved = c
        .saved
        .clone()
        .ok_or_else(|| Error::State("no state".into()))?;
    let made = !o.image_path.exists();
    let (joined, ns_external) = joined_namespaces(&c, saved.pid)?;
    let result =
        Dirs::open(o).and_then(|dirs| dump(&criu, &saved, o, &dirs, (joined, ns_external)));
    if let Err(e) = result {
        // A failed dump leaves the container running (CRIU resumes it) and no images: a directory
        // berth made goes, but for CRIU's log when it is there (the error names it).
        if made && o.work_path.is_some() {
            let _ = std::fs::remove_dir_all(&o.image_path);
        } else if made {
            for e in std::fs::read_dir(&o.image_path)
                .into_iter()
                .flatten()
                .flatten()
            {
                if !e.file_name().to_string_lossy().ends_with("dump.log") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        return Err(e);
    }
    drop(c);
    if !o.leave_running && !o.pre_dump {
        // CRIU killed the tree; the container goes, as runc's checkpoint destroys it.
        super::delete(ctx, id, true)?;
    }
    Ok(())
}

fn dump(
    criu: &Path,
    saved: &Saved,
    o: &CriuOptions,
    dirs: &Dirs,
    (namespaces, ns_external): (Vec<String>, Vec<String>),
) -> Result<()> {
    let record = Record {
        mounts: externals(saved.pid)?,
        stdio: stdio_keys(saved.pid, &mount_ids(saved.pid)),
        namespaces,
    };
    let bytes = serde_json::to_vec(&record).map_err(|e| Error::State(format!("encoding: {e}")))?;
    crate::files::replace_file(&o.image_path.join(EXTERNALS), "tmp", &bytes, 0o600, true)?;
    let log = if o.pre_dump {
        "pre-dump.log"
    } else {
        "dump.log"
    };
    let mut opts = base_opts(o, dirs, log);
    opts.pid = Some(saved.pid);
    opts.root = Some(saved.rootfs.to_string_lossy().into_owned());
    if o.leave_running {
        opts.flags.push(criu::Flag::LeaveRunning);
    }
    if o.pre_dump || o.parent_path.is_some() {
        opts.flags.push(criu::Flag::TrackMem);
    }
    opts.parent_img = o
        .parent_path
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    opts.external = record
        .mounts
        .iter()
        .map(|e| format!("mnt[{}]:{}", e.point, e.point))
        .chain(
            record
                .stdio
                .iter()
                .filter(|(_, k)| k.starts_with("file["))
                .map(|(_, k)| k.clone()),
        )
        .chain(ns_external)
        .collect();
    let kind = if o.pre_dump {
        criu::Kind::PreDump
    } else {
        criu::Kind::Dump
    };
    opts.page_server.clone_from(&o.page_server);
    // Notifications: "status-ready" says the lazy pages are being served.
    opts.flags.push(criu::Flag::NotifyScripts);
    let mut on_notify = |n: criu::Notification| -> Result<()> {
        if n.script == "status-ready" {
            let fd = o.status_fd.lock().ok().and_then(|mut f| f.take());
            if let Some(fd) = fd {
                nix::unistd::write(&fd, &[0]).map_err(|e| Error::sys("write(--status-fd)", e))?;
            }
        }
        Ok(())
    };
    let log = dirs.work_path.join(log);
    criu::call(criu, kind, &opts, &log, "checkpoint", &mut on_notify)?;
    Ok(())
}

fn mkdir_private(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .map_err(|e| io_err("mkdir", p, e))
}

/// `berth restore`: the container `launch.id` again from the images in `o.image_path` and the
/// bundle's config.json (policy, volumes, cgroup), detached; returns the restored init's pid.
pub fn restore(
    ctx: &Context,
    launch: &Launch,
    vs: &mut crate::spec::ValidSpec,
    o: &CriuOptions,
) -> Result<i32> {
    refuse_rootless("restore")?;
    validate(o)?;
    let criu = criu()?;
    let record: Record = match std::fs::read(o.image_path.join(EXTERNALS)) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::InvalidSpec(format!("{}: {e}", o.image_path.join(EXTERNALS).display()))
        })?,
        Err(e) => return Err(io_err("read", &o.image_path.join(EXTERNALS), e)),
    };
    if vs.process.terminal && o.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "process.terminal is true: restore needs --console-socket to hand the terminal over"
                .into(),
        ));
    }
    let p = super::create::prepare(ctx, launch, vs)?;
    if p.confinement.landlock == crate::security::landlock::Mode::Enforce {
        return Err(Error::NotSupported(
            "restore: the spec asks Landlock to be enforced (berth.landlock=enforce or the policy), and CRIU cannot restore a Landlock domain".into(),
        ));
    }
    let vs: &crate::spec::ValidSpec = vs;
    let vetted = p.enforcer.as_ref().map(|enforcer| crate::policy::Vetted {
        enforcer,
        rootfs: &vs.rootfs,
    });
    let sources: &dyn crate::mount::apply::OpenSource = match &vetted {
        Some(v) => v,
        None => &crate::mount::apply::HostPath,
    };
    let console = match &o.console_socket {
        Some(path) => Some(crate::process::sync::Channel::from_fd(OwnedFd::from(
            crate::files::connect_socket(path, "--console-socket")?,
        ))),
        None => None,
    };
    let cgroup = p.cgroup.as_ref();
    let restored = super::create::with_state(ctx, &launch.id, &p, "restore", |c| {
        let fds = external_fds(&record, &p, sources)?;
        let namespaces = namespace_fds(&record, vs)?;
        let root_readonly = vs.spec.root.as_ref().is_some_and(|r| r.readonly);
        let mut post_restore =
            |pid: i32| join_and_harden(cgroup.map(|(c, _)| c), pid, &p.plan, root_readonly);
        let pid = run_restore(
            &criu,
            vs,
            o,
            Given {
                volumes: &fds,
                namespaces: &namespaces,
                stdio: &record.stdio,
                console: console.as_ref(),
            },
            &c.dir,
            &mut post_restore,
        )?;
        let mut guard = crate::process::ChildGuard::new(pid);
        check_restored_confinement(pid, vs)?;
        save(c, launch, vs, &p, pid)?;
        guard.disarm();
        Ok(pid)
    });
    restored.map(|(_, pid)| pid)
}

/// At CRIU's post-restore, before the tree resumes: every task into the cgroup, the mounts hardened.
fn join_and_harden(
    cgroup: Option<&crate::cgroups::Cgroup>,
    pid: i32,
    plan: &[MountOp],
    root_readonly: bool,
) -> Result<()> {
    if let Some(cg) = cgroup {
        // A task of the tree may be gone meanwhile (CRIU's helpers): ESRCH is not an error.
        for t in tree(pid) {
            match cg.join(t) {
                Err(e) if e.errno() == Some(nix::errno::Errno::ESRCH) => {}
                r => r.with_context(|| "moving the restored tree into its cgroup".into())?,
            }
        }
    }
    reharden(pid, plan, root_readonly)
}

/// The host directory a restored container's cgroup mount at `point` binds: its (new) cgroup's in
/// that hierarchy (named by the mount point's last component on v1: `memory`, `cpu,cpuacct`), or,
/// with no cgroup of its own, the one berth runs in.
fn cgroup_dir(cg: Option<&crate::cgroups::Cgroup>, point: &str) -> Result<OwnedFd> {
    let name = Path::new(point)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let pick = |dirs: Vec<(String, PathBuf)>| -> Option<PathBuf> {
        if dirs.len() == 1 {
            return dirs.into_iter().next().map(|(_, p)| p);
        }
        dirs.into_iter().find(|(n, _)| *n == name).map(|(_, p)| p)
    };
    let dir = match cg {
        Some(c) => pick(c.named_dirs()),
        None => pick(crate::cgroups::own_dirs()?.1),
    }
    .ok_or_else(|| {
        Error::State(format!(
            "restore: the checkpoint has a cgroup mount at {point}, and no cgroup hierarchy matches it"
        ))
    })?;
    Ok(sys::openat2(
        None,
        &dir,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        0,
        0,
    )?)
}

/// Each external of the image, from the bundle: a volume's source opened again (vetted by the
/// policy when there is one), a masked file's /dev/null berth's own, a cgroup mount the directory of
/// the cgroup made again.
fn external_fds(
    record: &Record,
    p: &super::create::Prepared,
    sources: &dyn crate::mount::apply::OpenSource,
) -> Result<Vec<(String, OwnedFd)>> {
    let mut fds: Vec<(String, OwnedFd)> = Vec::new();
    for e in &record.mounts {
        let fd = match e.kind.as_str() {
            "null" => crate::rootfs::host_null()?,
            "cgroup" => cgroup_dir(p.cgroup.as_ref().map(|(c, _)| c), &e.point)?,
            _ => {
                let op = p
                    .plan
                    .iter()
                    .find(|op| crate::mount::plan::lexical(&op.dest) == Path::new(&e.point))
                    .ok_or_else(|| {
                        Error::InvalidSpec(format!(
                            "restore: the checkpoint has a volume at {}, which the bundle's mounts do not give",
                            e.point
                        ))
                    })?;
                let OpKind::Bind { source, .. } = &op.kind else {
                    return Err(Error::InvalidSpec(format!(
                        "{}: the checkpoint has a bind mount there",
                        op.label()
                    )));
                };
                sources
                    .open_source(op, source)
                    .with_context(|| op.label())?
            }
        };
        fds.push((e.point.clone(), fd));
    }
    Ok(fds)
}

/// The bundle's namespaces joined by path, opened (each checked to be a namespace of its type),
/// which must be exactly those the checkpoint joined: a namespace the image has of its own is not
/// swapped for a path, and one it joined is not made anew.
fn namespace_fds(record: &Record, vs: &crate::spec::ValidSpec) -> Result<Vec<(String, OwnedFd)>> {
    for typ in &record.namespaces {
        if !vs.joins.iter().any(|j| &j.typ == typ) {
            return Err(Error::InvalidSpec(format!(
                "restore: the checkpointed container joined its {typ} namespace by path, and the bundle's linux.namespaces gives no path for it"
            )));
        }
    }
    let mut out = Vec::new();
    for j in &vs.joins {
        joinable(&j.typ)?;
        if !record.namespaces.contains(&j.typ) {
            return Err(Error::InvalidSpec(format!(
                "restore: linux.namespaces joins the {} namespace {}, and the checkpoint has one of its own",
                j.typ,
                j.path.display()
            )));
        }
        let fd = sys::openat2(None, &j.path, libc::O_RDONLY | libc::O_CLOEXEC, 0, 0)?;
        let ty = sys::ns_type(&fd).ok();
        if ty != Some(j.flag.bits()) {
            return Err(Error::InvalidSpec(format!(
                "linux.namespaces: {} is not a {} namespace",
                j.path.display(),
                j.typ
            )));
        }
        out.push((j.typ.clone(), fd));
    }
    Ok(out)
}

/// What CRIU restores of the confinement is checked, not assumed: no_new_privs, which the spec
/// asks and CRIU 3.17 does not bring back (it restores seccomp filters with its own privilege),
/// fails the restore rather than leave the container without it.
fn check_restored_confinement(pid: i32, vs: &crate::spec::ValidSpec) -> Result<()> {
    if !vs.process.no_new_privileges {
        return Ok(());
    }
    let path = format!("/proc/{pid}/status");
    let status = crate::sys::read_proc(&path).map_err(|e| io_err("read", Path::new(&path), e))?;
    let nnp = status
        .lines()
        .find_map(|l| l.strip_prefix("NoNewPrivs:"))
        .map(str::trim);
    if nnp == Some("1") {
        return Ok(());
    }
    Err(Error::NotSupported(
        "restore: CRIU restored the processes without no_new_privs, which the spec asks (process.noNewPrivileges); refused rather than run them without it (CRIU 3.17 does not restore it)".into(),
    ))
}

/// The restored init and its descendants.
fn tree(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        let tasks = std::fs::read_dir(format!("/proc/{p}/task"))
            .into_iter()
            .flatten();
        for t in tasks.flatten() {
            let kids = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            out.extend(
                kids.split_whitespace()
                    .filter_map(|k| k.parse::<i32>().ok()),
            );
        }
        i += 1;
    }
    out
}

/// What the restored tree is given from outside its images.
struct Given<'a> {
    /// Each external mount's point and its vetted source.
    volumes: &'a [(String, OwnedFd)],
    /// The init's stdio CRIU cannot reopen, by fd number (handed on from berth's own).
    stdio: &'a [(i32, String)],
    /// The bundle's namespaces to join, by OCI type.
    namespaces: &'a [(String, OwnedFd)],
    /// Where a terminal's new master goes.
    console: Option<&'a crate::process::sync::Channel>,
}

/// The restore's options: the shared ones, the root, the restored tree as this process's child,
/// notifications, stdio and the bundle's namespaces.
fn restore_opts(
    o: &CriuOptions,
    dirs: &Dirs,
    vs: &crate::spec::ValidSpec,
    stdio: &[(i32, String)],
    namespaces: &[(String, OwnedFd)],
) -> Result<criu::Opts> {
    let mut opts = base_opts(o, dirs, "restore.log");
    opts.root = Some(vs.rootfs.to_string_lossy().into_owned());
    // The restored tree becomes this process's child (CRIU's sibling); notifications come here (the
    // terminal's new master among them); CRIU 3.17's new mount engine fails to remount the bind of
    // the root it is given (EINVAL), and the compatible engine restores the same tree.
    opts.flags.extend([
        criu::Flag::RstSibling,
        criu::Flag::NotifyScripts,
        criu::Flag::MntnsCompatMode,
    ]);
    // CRIU inherits berth's stdio and hands it on to the restored init, as runc and crun reconnect it.
    opts.inherit_fd = stdio.iter().map(|(fd, key)| (key.clone(), *fd)).collect();
    for (typ, fd) in namespaces {
        let (_, name, key) = joinable(typ)?;
        match key {
            // Inherited by CRIU under its key.
            Some(key) => {
                nix::fcntl::fcntl(
                    fd.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )
                .map_err(|e| Error::sys("fcntl(F_SETFD) of a namespace for criu", e))?;
                opts.inherit_fd.push((key.to_string(), fd.as_raw_fd()));
            }
            // Opened by CRIU through this process's fd.
            None => opts.join_ns.push((
                name.to_string(),
                format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd()),
            )),
        }
    }
    Ok(opts)
}

/// A restored terminal's new master (CRIU's orphan-pts-master notification) to the console socket.
fn hand_over_terminal(
    fd: Option<OwnedFd>,
    console: Option<&crate::process::sync::Channel>,
) -> Result<()> {
    let master = fd.ok_or_else(|| {
        Error::State("criu's orphan-pts-master notification came without its fd".into())
    })?;
    let console = console.ok_or_else(|| {
        Error::InvalidSpec(
            "restore: the checkpointed process has a terminal: restore needs --console-socket to hand it over".into(),
        )
    })?;
    console.send_raw_fd(b"/dev/ptmx", master.as_raw_fd())
}

/// CRIU restore in a private mount namespace of this process, where the rootfs is bound onto itself
/// (CRIU wants its root to be a mount point); the namespace goes when this returns.
fn run_restore(
    criu: &Path,
    vs: &crate::spec::ValidSpec,
    o: &CriuOptions,
    given: Given<'_>,
    state_dir: &Path,
    post_restore: &mut dyn FnMut(i32) -> Result<()>,
) -> Result<i32> {
    let Given {
        volumes: fds,
        stdio,
        namespaces,
        console,
    } = given;
    let dirs = Dirs::open(o)?;
    let log = dirs.work_path.join("restore.log");
    let trees = clone_sources(fds)?;
    let mut opts = restore_opts(o, &dirs, vs, stdio, namespaces)?;
    let mut hardened = false;
    // The restored tree's root once CRIU has named it: this process's child (CRIU's sibling).
    let mut root: Option<i32> = None;
    let mut on_notify = |n: criu::Notification| -> Result<()> {
        if n.script == "post-restore" {
            // The whole tree is restored and stopped, not yet resumed: into its cgroup, and its
            // mounts hardened, before any of it runs again (a failure here makes CRIU kill it).
            let pid = n.pid.filter(|p| *p > 0).ok_or_else(|| {
                Error::State("criu's post-restore notification came without the pid".into())
            })?;
            root = Some(pid);
            post_restore(pid)?;
            hardened = true;
            return Ok(());
        }
        if n.script == "orphan-pts-master" {
            return hand_over_terminal(n.fd, console);
        }
        Ok(())
    };
    let ran = crate::process::private_mount_ns(|| {
        let tree = crate::mount::apply::clone_tree(
            sys::openat2(None, &vs.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?,
            true,
        )?;
        let dest = sys::openat2(None, &vs.rootfs, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        sys::move_mount(&tree, &dest)?;
        opts.external = bind_sources(fds, &trees, state_dir)?;
        criu::call(
            criu,
            criu::Kind::Restore,
            &opts,
            &log,
            "restore",
            &mut on_notify,
        )
    });
    let ran = match ran {
        Ok(r) => r,
        Err(e) => {
            // However the conversation ended (CRIU failing, dying, answering garbage), a tree it
            // had restored is killed and reaped here, never left running unrecorded.
            if let Some(pid) = root {
                drop(crate::process::ChildGuard::new(pid));
            }
            return Err(e);
        }
    };
    restored_pid(&ran, hardened)
}

/// Detached clones of the vetted sources, made before the private namespace is entered (a clone
/// needs its source in this namespace) and attached inside it; each with whether it is a directory.
fn clone_sources(fds: &[(String, OwnedFd)]) -> Result<Vec<(OwnedFd, bool)>> {
    fds.iter()
        .map(|(_, fd)| {
            let dir = sys::fstat(fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
            Ok((crate::mount::apply::clone_tree(fd, dir)?, dir))
        })
        .collect()
}

/// The pid CRIU answered with, provided the tree was hardened at post-restore; else the tree is
/// killed and the restore refused.
fn restored_pid(ran: &criu::Response, hardened: bool) -> Result<i32> {
    let pid = ran
        .restored_pid
        .filter(|p| *p > 0)
        .ok_or_else(|| Error::State("restore: criu answered without the restored pid".into()))?;
    if !hardened {
        // Never reached with CRIU's own order (post-restore comes before its answer): the tree,
        // restored but not hardened, is killed rather than kept.
        drop(crate::process::ChildGuard::new(pid));
        return Err(Error::State(
            "restore: criu resumed the tree without a post-restore notification".into(),
        ));
    }
    Ok(pid)
}

/// Each vetted source, cloned from its fd (`trees`) and mounted, in the private namespace only
/// (which CRIU's copies), on a place of its own in the container's state directory (root's, 0700):
/// CRIU binds from there, so the tree that was vetted is the tree that is mounted, and no path a
/// container or another user could swap is resolved.
fn bind_sources(
    fds: &[(String, OwnedFd)],
    trees: &[(OwnedFd, bool)],
    state_dir: &Path,
) -> Result<Vec<String>> {
    let mut external = Vec::new();
    for (i, ((point, _), (tree, dir))) in fds.iter().zip(trees).enumerate() {
        let at = state_dir.join(format!("criu-src-{i}"));
        if *dir {
            std::fs::create_dir(&at).map_err(|e| io_err("mkdir", &at, e))?;
        } else {
            std::fs::write(&at, b"").map_err(|e| io_err("create", &at, e))?;
        }
        let dest = sys::openat2(
            None,
            &at,
            libc::O_PATH | libc::O_CLOEXEC,
            0,
            sys::RESOLVE_NO_SYMLINKS,
        )?;
        sys::move_mount(tree, &dest)?;
        external.push(format!("mnt[{point}]:{}", at.display()));
    }
    Ok(external)
}

/// Sets each bind's attributes again on the restored mount (found inside the container's root
/// without following symlinks, and only where it is a mount's root), and makes a read-only root
/// read-only again (CRIU restores the root as the bind it was given): read-only stays read-only
/// whatever the image recorded.
fn reharden(pid: i32, plan: &[MountOp], root_readonly: bool) -> Result<()> {
    let binds: Vec<&MountOp> = plan
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Bind { .. }))
        .collect();
    if binds.is_empty() && !root_readonly {
        return Ok(());
    }
    let pidfd = sys::pidfd_open(pid)?;
    let root = crate::resolve::Root::from_fd(
        sys::openat2(
            None,
            &PathBuf::from(format!("/proc/{pid}/root")),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )?,
        format!("/proc/{pid}/root"),
    );
    crate::process::inside_mount_ns(pidfd.as_fd(), "pidfd of the restored init", || {
        if root_readonly {
            let ro = sys::MountAttr {
                attr_set: sys::MOUNT_ATTR_RDONLY,
                ..Default::default()
            };
            sys::mount_setattr(root.fd(), false, &ro).with_context(|| "root.readonly".into())?;
        }
        for op in &binds {
            let fd = root
                .open_no_symlinks(&op.dest, libc::O_PATH | libc::O_CLOEXEC)
                .with_context(|| op.label())?;
            if sys::mount_of(&fd)?.is_root == Some(false) {
                return Err(Error::State(format!(
                    "{}: the restored container has no mount there",
                    op.label()
                )));
            }
            for (attr, recursive) in [(&op.attr, false), (&op.rattr, true)] {
                if *attr != sys::MountAttr::default() {
                    sys::mount_setattr(&fd, recursive, attr).with_context(|| op.label())?;
                }
            }
        }
        Ok(())
    })
}

fn save(
    c: &mut Container,
    launch: &Launch,
    vs: &crate::spec::ValidSpec,
    p: &super::create::Prepared,
    pid: i32,
) -> Result<()> {
    let start = sys::process_start_time(pid).unwrap_or(0);
    let mut saved =
        super::create::saved_state(launch, vs, p, (pid, start), &crate::logging::now_rfc3339());
    // CRIU restores no Landlock domain.
    saved.landlock = Some(crate::security::landlock::Mode::Off);
    let config = serde_json::to_vec(&vs.spec)
        .map_err(|e| Error::State(format!("encoding the config: {e}")))?;
    let path = c.dir.join(crate::state::CONFIG_FILE);
    std::fs::write(&path, config).map_err(|e| io_err("write", &path, e))?;
    c.save(saved, true)?;
    if let Some(f) = &launch.pid_file {
        super::write_pid_file(f, pid)?;
    }
    Ok(())
}
