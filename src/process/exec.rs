//! `exec`: a new process inside a running container, with the container's confinement.
//!
//! The parent (berth exec) holds a pidfd of the container's init, checked against the start time in
//! the state (a reused pid is never entered), and an fd of the init's root. It forks a helper, puts it
//! in the container's cgroup, and the helper joins every namespace the init has that berth's own
//! process does not (one `setns` on the pidfd: user first, time and cgroup included), then forks the
//! process itself, which is the one inside the new pid and time namespaces; the helper reports its pid
//! and exits, so the process is reparented to berth exec (a child subreaper). The process chroots into
//! the init's root, resolves its cwd inside it (never a host path: runc CVE-2024-21626), and goes
//! through the same confinement steps as the init ([`super::init::confine`]): rlimits, AppArmor,
//! Landlock (rules on the container's mount points, opened inside its root without following
//! symlinks), seccomp, identity, no_new_privs. It is non-dumpable until its execve (runc
//! CVE-2019-5736): nothing of berth's memory or fds is reachable from the container.

use super::init::{self, Program};
use super::spawn::Spawned;
use super::sync::{self, Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::resolve::Root;
use crate::security::landlock::{Builder as Landlock, Grant, Mode};
use crate::spec::ValidSpec;
use crate::sys::{self, Forked};
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
    /// The container's Landlock mode.
    pub landlock: Mode,
    /// `--console-socket`, connected.
    pub console: Option<OwnedFd>,
    /// `--preserve-fds`.
    pub preserve_fds: u32,
}

/// The namespaces of `pid` that differ from this process's.
fn namespaces_of(pid: i32) -> CloneFlags {
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
    for (name, flag) in types {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}"));
        if let (Ok(t), Ok(o)) = (theirs, ours)
            && t != o
        {
            flags |= flag;
        }
    }
    flags
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
    let flags = namespaces_of(t.pid);
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::sys("prctl(PR_SET_CHILD_SUBREAPER)", e))?;
    let (parent_end, child_end) = sync::pair()?;
    let helper = match sys::clone_fork(0)? {
        Forked::Child => {
            drop(parent_end);
            helper(vs, t, &child_end, &pidfd, flags, &root)
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    let reap = || {
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(helper), None);
    };
    let joined = match t.cgroup {
        Some(cg) => cg
            .join(helper)
            .with_context(|| "joining the container's cgroup".into()),
        None => Ok(()),
    };
    if let Err(e) = joined.and_then(|()| parent_end.send(&Msg::Continue)) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(helper),
            nix::sys::signal::Signal::SIGKILL,
        );
        reap();
        return Err(e);
    }
    // The helper's report of the pid and the process's own frames arrive in either order.
    let mut pid = None;
    let mut guard = KillGuard(None);
    let mut pty = None;
    let mut ready = false;
    while !(ready && pid.is_some()) {
        let frame = parent_end.recv_with();
        let (msg, fd) = match frame {
            Ok(f) => f,
            Err(e) => {
                reap();
                return Err(e);
            }
        };
        match msg {
            Msg::Pid(p) => {
                pid = Some(p as i32);
                guard.0 = Some(p as i32);
                reap();
            }
            Msg::Ready => ready = true,
            Msg::Note(n) => crate::logging::debug(&n),
            Msg::Fd => pty = fd,
            Msg::SeccompFd => {
                reap();
                return Err(Error::NotSupported(
                    "exec: a seccomp profile with SCMP_ACT_NOTIFY (the agent got the init's listener)".into(),
                ));
            }
            Msg::Error { errno, msg } => {
                reap();
                return Err(Error::Child { msg, errno });
            }
            other => {
                reap();
                return Err(Error::State(format!(
                    "sync socket: expected the process's pid or Ready, got {other:?}"
                )));
            }
        }
    }
    let pid = pid.unwrap_or_default();
    guard.disarm();
    Ok(Spawned {
        pid,
        start_time: sys::process_start_time(pid).unwrap_or(0),
        channel: parent_end,
        pty,
    })
}

/// Kills and reaps the exec'd process unless disarmed.
struct KillGuard(Option<i32>);

impl KillGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let p = nix::unistd::Pid::from_raw(pid);
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(p, None);
        }
    }
}

fn report(chan: &Channel, e: Error) -> ! {
    let _ = chan.send(&Msg::Error {
        errno: e.errno().map_or(0, |e| e as i32),
        msg: e.to_string(),
    });
    sys::exit_now(1)
}

/// The helper: joins the namespaces, forks the process, reports its pid, exits.
fn helper(
    vs: &ValidSpec,
    t: &Target<'_>,
    chan: &Channel,
    pidfd: &OwnedFd,
    flags: CloneFlags,
    root: &OwnedFd,
) -> ! {
    let joined = chan.expect(Msg::Continue).and_then(|()| {
        if flags.is_empty() {
            return Ok(());
        }
        nix::sched::setns(pidfd.as_fd(), flags)
            .map_err(|e| Error::sys(format!("setns(pidfd of the init, {flags:?})"), e))
    });
    if let Err(e) = joined {
        report(chan, e);
    }
    match sys::clone_fork(0) {
        Ok(Forked::Child) => {
            let err = match process(vs, t, chan, root) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            report(chan, err)
        }
        Ok(Forked::Parent(pid)) => {
            let _ = chan.send(&Msg::Pid(pid as u32));
            sys::exit_now(0)
        }
        Err(e) => report(chan, e.into()),
    }
}

/// The process: into the container's root, confined as the init is, then exec.
fn process(vs: &ValidSpec, t: &Target<'_>, chan: &Channel, root: &OwnedFd) -> Result<Infallible> {
    sys::set_non_dumpable()?;
    nix::unistd::fchdir(root.as_raw_fd()).map_err(|e| Error::sys("fchdir(container root)", e))?;
    nix::unistd::chroot(".").map_err(|e| Error::sys("chroot(container root)", e))?;
    nix::unistd::chdir("/").map_err(|e| Error::sys("chdir(\"/\")", e))?;
    let root = Root::open(Path::new("/"))?;
    nix::unistd::setsid().map_err(|e| Error::sys("setsid()", e))?;
    if vs.process.terminal {
        init::terminal(chan, t.console.as_ref(), &root, None)
            .with_context(|| "process.terminal".into())?;
    }
    let landlock = container_rules(vs, t.landlock, &root)?;
    let program: Program = init::confine(vs, chan, root, landlock, t.preserve_fds)?;
    chan.send(&Msg::Ready)?;
    sys::umask(vs.process.user.umask.unwrap_or(0o022));
    sys::reset_signals();
    let (path, argv, envp) = program;
    Err(sys::execve(&path, &argv, &envp).into())
}

/// The container's Landlock ruleset again, from its mount table as the process sees it: the root, and
/// each mount point (opened inside the root without following any symlink), read-only where mounted
/// read-only.
fn container_rules(vs: &ValidSpec, mode: Mode, root: &Root) -> Result<Landlock> {
    let mut l = Landlock::new(mode)?;
    if mode == Mode::Off {
        return Ok(l);
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| crate::error::io_err("read", Path::new("/proc/self/mountinfo"), e))?;
    let root_ro = vs.spec.root.as_ref().is_some_and(|r| r.readonly);
    l.allow(
        root.fd(),
        true,
        if root_ro { Grant::Read } else { Grant::Write },
    )?;
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(opts)) = (f.get(4), f.get(5)) else {
            continue;
        };
        if *point == "/" {
            continue;
        }
        // mountinfo escapes spaces and the like as \ooo; such paths are skipped (no rule: no access).
        if point.contains('\\') {
            continue;
        }
        let Ok(fd) = root.open_no_symlinks(Path::new(point), libc::O_PATH) else {
            continue;
        };
        let dir = sys::fstat(&fd)?.st_mode & libc::S_IFMT == libc::S_IFDIR;
        let grant = if opts.split(',').any(|o| o == "ro") {
            Grant::Read
        } else {
            Grant::Write
        };
        l.allow(fd.as_fd(), dir, grant)?;
    }
    Ok(l)
}
