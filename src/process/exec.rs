//! `exec`: a new process inside a running container, with the container's confinement.
//!
//! The parent (berth exec) holds a pidfd of the container's init, checked against the start time in
//! the state (a reused pid is never entered), and an fd of the init's root. It joins the init's pid
//! namespace for its children only (berth itself stays invisible to the container), becomes
//! non-dumpable and forks the process, which it puts in the container's cgroup; the process then
//! joins every other namespace the init has that berth's own process does not (one `setns` on the
//! pidfd: user first, time and cgroup included). One fork, no helper. The process chroots into
//! the init's root, resolves its cwd inside it (never a host path: runc CVE-2024-21626), and goes
//! through the same confinement steps as the init (`init::confine`): rlimits, AppArmor,
//! Landlock (rules on the container's mount points, opened inside its root without following
//! symlinks), seccomp, identity, no_new_privs. It is non-dumpable until its execve (runc
//! CVE-2019-5736): nothing of berth's memory or fds is reachable from the container.

use super::ChildGuard;
use super::init::{self, Program};
use super::spawn::Spawned;
use super::sync::{self, Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::resolve::Root;
use crate::security::landlock::{Builder as Landlock, Grant, Mode};
use crate::spec::ValidSpec;
use crate::sys;
use nix::sched::CloneFlags;
use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

/// What exec needs beyond the process.
#[derive(Debug)]
pub struct Target<'a> {
    /// The init's pid and start time (from the state).
    pub pid: i32,
    /// Its start time.
    pub start_time: u64,
    /// The container's cgroup, joined by the new process.
    pub cgroup: Option<&'a crate::cgroups::Cgroup>,
    /// The process's confinement (prepared from the container's saved spec; Landlock's mode as the
    /// init had it).
    pub confinement: &'a crate::security::Confinement,
    /// `--console-socket`, connected.
    pub console: Option<OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

/// Bounds a process about to be exec'd into the container whose init is `pid` exactly as that init
/// is bounded, whatever the request (`--cap`, `--process`) asked: no capability outside the init's
/// bounding set (read from the kernel, /proc/PID/status CapBnd, so the policy's cap at create holds
/// too), and no_new_privs when the init has it.
pub fn bound_by_init(p: &mut crate::spec::Process, pid: i32) -> Result<()> {
    let path = format!("/proc/{pid}/status");
    let status = crate::sys::read_proc(&path).map_err(|_| {
        Error::State("cannot exec in a stopped container (its init is gone)".into())
    })?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let bnd = field("CapBnd:")
        .and_then(|v| u64::from_str_radix(v, 16).ok())
        .ok_or_else(|| Error::State(format!("{path}: no CapBnd line")))?;
    if field("NoNewPrivs:") == Some("1") {
        p.no_new_privileges = true;
    }
    if let Some(c) = &mut p.capabilities {
        let dropped = crate::security::caps::clamp(c, bnd);
        if !dropped.is_empty() {
            crate::logging::warn(&format!(
                "exec: {dropped:?} not granted: not in the container's bounding set"
            ));
        }
    }
    Ok(())
}

/// The namespaces of `pid` that differ from this process's. Those the container was created with
/// (`ValidSpec::clone_flags`, `new_time`; the user namespace aside) are its own and differ from
/// every other process's: taken as they are, without reading two links each (twelve procfs lookups
/// for a default spec). The others (joined by path, or shared with whoever created it) are compared.
fn namespaces_of(pid: i32, vs: &ValidSpec) -> Result<CloneFlags> {
    let mut made = vs.clone_flags - CloneFlags::CLONE_NEWUSER;
    if vs.new_time {
        made |= CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);
    }
    let types = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("net", CloneFlags::CLONE_NEWNET),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)),
    ];
    let mut flags = CloneFlags::empty();
    // The two ns directories are looked up once; each link is then read relative to them.
    let dir = |path: &str| {
        sys::openat2(
            None,
            Path::new(path),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            0,
        )
        .ok()
    };
    let (Some(theirs), Some(ours)) = (dir(&format!("/proc/{pid}/ns")), dir("/proc/self/ns")) else {
        // Never an exec in berth's own namespaces because the init went away meanwhile.
        return Err(Error::State(
            "cannot exec in a stopped container (its namespaces are gone)".into(),
        ));
    };
    for (name, flag) in types {
        if made.contains(flag) {
            flags |= flag;
            continue;
        }
        let t = nix::fcntl::readlinkat(Some(theirs.as_raw_fd()), name);
        let o = nix::fcntl::readlinkat(Some(ours.as_raw_fd()), name);
        if let (Ok(t), Ok(o)) = (t, o)
            && t != o
        {
            flags |= flag;
        }
    }
    Ok(flags)
}

/// Starts the process; returns it once it is ready (everything that can fail has succeeded).
pub fn spawn(vs: &ValidSpec, t: &Target<'_>) -> Result<Spawned> {
    crate::security::exe::remember();
    let pidfd = sys::pidfd_open(t.pid).with_context(|| "opening the container's init".into())?;
    if sys::process_start_time(t.pid) != Some(t.start_time) {
        return Err(Error::State(
            "cannot exec in a stopped container (its init is gone)".into(),
        ));
    }
    let root = sys::openat2(
        None,
        Path::new(&format!("/proc/{}/root", t.pid)),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )?;
    let flags = namespaces_of(t.pid, vs)?;
    // The pid namespace is joined here, for children only (the process is the one fork made after
    // it): berth itself stays in the host's and is invisible from the container. Every other
    // namespace is joined by the child.
    // Rootless, joining a pid namespace needs CAP_SYS_ADMIN where berth stands, which only the
    // container's user namespace gives it: berth joins that one too (one setns, user first). It then
    // acts as the container's root, which rootless is the user anyway.
    let mut here = CloneFlags::CLONE_NEWPID;
    if crate::spec::rootless::unprivileged() {
        here |= CloneFlags::CLONE_NEWUSER;
    }
    let here = here & flags;
    if !here.is_empty() {
        nix::sched::setns(pidfd.as_fd(), here)
            .map_err(|e| Error::sys(format!("setns(pidfd of the init, {here:?})"), e))?;
    }
    // Non-dumpable from before the clone: the child is in the container's pid namespace from birth,
    // and no container process may open its /proc/<pid>/exe or memory (runc CVE-2019-5736).
    sys::set_non_dumpable()?;
    // Asked here, where the answer is berth's own: the child shares this process's memory, and a
    // cache it filled after joining the container's namespaces would be read here afterwards.
    crate::spec::rootless::in_user_namespace();
    let (parent_end, child_end) = sync::pair()?;
    // The child shares this process's memory until it execs, and this thread waits meanwhile
    // (sys::clone_vm_child): it joins the cgroup and sets its affinity itself, and every report it
    // sends is read here once it has exec'd (or failed and exited). Only a process that shares its
    // memory with nobody may join a time namespace (setns: EUSERS), so into a container with one
    // of its own (a CRIU restore makes one) the child is forked instead; it does the same and
    // never waits for this process either.
    let join = flags - here;
    let inherited = [parent_end.as_fd()];
    let pid = if join.contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
        sys::clone_child(0, &inherited, || {
            child(vs, t, &child_end, &pidfd, join, &root)
        })?
    } else {
        sys::clone_vm_child(&inherited, &mut || {
            child(vs, t, &child_end, &pidfd, join, &root)
        })?
    };
    drop(child_end);
    // Until the process is ready, and then until the caller disarms it, any failure kills and
    // reaps it.
    let guard = ChildGuard::new(pid);
    let (pty, report) = until_ready(&parent_end)?;
    Ok(Spawned {
        start_time: sys::process_start_time(pid).unwrap_or(0),
        guard,
        channel: parent_end,
        pty,
        report,
    })
}

/// The exec'd process's side of the sync socket until it is ready: its terminal's master side (when
/// berth relays it) and what its confinement enforced.
fn until_ready(parent_end: &Channel) -> Result<(Option<OwnedFd>, Option<crate::security::Report>)> {
    let mut pty = None;
    let mut report = None;
    loop {
        let (msg, fd) = parent_end.recv_with()?;
        match msg {
            Msg::Ready => break,
            Msg::Report(r) => {
                crate::logging::debug(&r.to_string());
                report = Some(r);
            }
            Msg::Fd => pty = fd,
            Msg::SeccompFd => {
                return Err(Error::NotSupported(
                    "exec: a seccomp profile with SCMP_ACT_NOTIFY (the agent got the init's listener)".into(),
                ));
            }
            Msg::Error {
                errno,
                msg,
                program,
            } => {
                return Err(Error::Child {
                    msg,
                    errno,
                    program,
                });
            }
            other => {
                return Err(Error::State(format!(
                    "sync socket: expected Ready from the process, got {other:?}"
                )));
            }
        }
    }
    Ok((pty, report))
}

fn report(chan: &Channel, e: Error) -> ! {
    let _ = chan.send(&Msg::Error {
        errno: e.errno().map_or(0, |e| e as i32),
        msg: e.to_string(),
        program: e.is_program(),
    });
    sys::exit_now(1)
}

/// The child: joins the container's cgroup (`process.execCPUAffinity.initial` before, `final`
/// after, as runtime-spec asks), then its namespaces (one `setns` on the pidfd, user first; the pid
/// namespace was joined by the parent before the clone), then becomes the process. It shares the
/// parent's memory until it execs (sys::clone_vm_child): it only borrows, and never waits for the
/// parent.
fn child(
    vs: &ValidSpec,
    t: &Target<'_>,
    chan: &Channel,
    pidfd: &OwnedFd,
    flags: CloneFlags,
    root: &OwnedFd,
) -> ! {
    let joined = super::attrs::affinity(vs, 0, false)
        .and_then(|()| match t.cgroup {
            Some(cg) => cg
                .join_self()
                .with_context(|| "joining the container's cgroup".into()),
            None => Ok(()),
        })
        .and_then(|()| super::attrs::affinity(vs, 0, true))
        .and_then(|()| {
            if flags.is_empty() {
                return Ok(());
            }
            nix::sched::setns(pidfd.as_fd(), flags)
                .map_err(|e| Error::sys(format!("setns(pidfd of the init, {flags:?})"), e))
        });
    let err = match joined.and_then(|()| process(vs, t, chan, root)) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report(chan, err)
}

/// The process: into the container's root, confined as the init is, then exec.
fn process(vs: &ValidSpec, t: &Target<'_>, chan: &Channel, root: &OwnedFd) -> Result<Infallible> {
    nix::unistd::fchdir(root.as_raw_fd()).map_err(|e| Error::sys("fchdir(container root)", e))?;
    nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(container root)", e))?;
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir(\"/\")", e))?;
    let root = Root::open(Path::new("/"))?;
    nix::unistd::setsid().map_err(|e| Error::sys("setsid()", e))?;
    if vs.process.terminal {
        init::terminal(chan, t.console.as_ref(), &root, None)
            .with_context(|| "process.terminal".into())?;
    }
    let landlock = container_rules(vs, t.confinement.landlock, &root)?;
    let program: Program = init::confine(vs, t.confinement, chan, root, landlock, t.preserve_fds)?;
    chan.send(&Msg::Ready)?;
    sys::umask(vs.process.user.umask.unwrap_or(0o022));
    sys::reset_signals();
    let (path, argv, envp) = program;
    // Only a failure comes back: the program itself could not be run (ENOENT for a missing
    // interpreter, ENOEXEC, EACCES).
    let e = sys::execve(&path, &argv, &envp);
    Err(Error::Program {
        what: e.call,
        errno: e.errno,
    })
}

/// The container's Landlock ruleset again, from its mount table as the process sees it: the root, and
/// (under a read-only root) each mount point (opened inside the root without following any symlink), read-only where mounted
/// read-only.
fn container_rules(vs: &ValidSpec, mode: Mode, root: &Root) -> Result<Landlock> {
    let mut l = Landlock::new(mode)?;
    if mode == Mode::Off {
        return Ok(l);
    }
    let root_ro = vs.spec.root.as_ref().is_some_and(|r| r.readonly);
    l.allow_root(root.fd(), if root_ro { Grant::Read } else { Grant::Write })?;
    if !root_ro {
        // Everything beneath a writable root has every right already: no mount point needs a rule.
        return Ok(l);
    }
    let info = sys::read_proc_bytes("/proc/self/mountinfo")
        .map_err(|e| crate::error::io_err("read", Path::new("/proc/self/mountinfo"), e))?;
    mount_rules(&mut l, root, &info, |_| true)?;
    Ok(l)
}

/// A rule for each mount point of `mountinfo` (as the process sees it, inside its root) that
/// `wanted` names: write where the mount is writable, read/exec where it is read-only. Each is
/// opened inside `root` without following a symlink, by its bytes as they are (a host submount under
/// a volume, or a mount made inside the container, may be named with bytes that are not UTF-8);
/// mount points that mountinfo had to escape (spaces and the like, `\ooo`) or that cannot be opened
/// get no rule (no access).
pub(crate) fn mount_rules(
    l: &mut Landlock,
    root: &Root,
    mountinfo: &[u8],
    wanted: impl Fn(&[u8]) -> bool,
) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    for line in mountinfo.split(|&b| b == b'\n') {
        let mut f = line.split(|&b| b == b' ').skip(4);
        let (Some(point), Some(opts)) = (f.next(), f.next()) else {
            continue;
        };
        let grant = if opts.split(|&b| b == b',').any(|o| o == b"ro") {
            Grant::Read
        } else {
            Grant::Write
        };
        // A read-only mount under a read-only root (procfs's masked and read-only paths, sysfs)
        // needs no rule of its own: not even opened.
        if point == b"/" || point.contains(&b'\\') || l.covers(grant) || !wanted(point) {
            continue;
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(point));
        let Ok(fd) = root.open_no_symlinks(path, libc::O_PATH) else {
            continue;
        };
        l.allow(fd.as_fd(), grant)?;
    }
    Ok(())
}
