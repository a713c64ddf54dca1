//! The parent side of container creation: clone the init into its namespaces, write its id maps, run
//! the runtime-namespace hooks, and wait until it reports ready (or the error that stopped it).
//!
//! One clone, no re-exec of berth and no intermediate process: the init is cloned straight into new
//! pid/mount/... namespaces (it is pid 1 there), which is most of berth's start-up advantage over runc's
//! three-stage nsexec. Namespaces joined by path (other than user) are joined by this short-lived parent
//! before the clone, so the child inherits them and its new user namespace (if any) is created after
//! them, as the runtime-spec expects. A user namespace given by path is joined by the child first thing.
//! If anything fails, the child is killed and reaped before the error is returned; its mount namespace
//! and every mount in it die with it, so nothing is left on the host.

use super::init::{self, Gate, InitArgs};
use super::sync::{self, Channel, Msg};
use crate::error::{Context, Error, Result, io_err};
use crate::mount::plan::MountOp;
use crate::spec::{IdMapping, ValidSpec};
use crate::sys::{self, Forked};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// What the caller asks of the init beyond the spec.
pub struct Options<'a> {
    /// The container's state directory; with `fifo_gate`, the exec fifo is made in it.
    pub state_dir: &'a Path,
    /// Block the init on `<state_dir>/exec.fifo` until `berth start` (create); otherwise on the sync
    /// socket (run, which starts at once).
    pub fifo_gate: bool,
    /// `--console-socket`: where the terminal's master side is sent.
    pub console_socket: Option<&'a Path>,
    /// `--preserve-fds` plus LISTEN_FDS.
    pub preserve_fds: u32,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// The state directory's lock fd, closed in the child.
    pub lock_fd: Option<std::os::fd::RawFd>,
    /// Join a new session keyring.
    pub new_keyring: bool,
    /// The host mount policy.
    pub policy: Option<&'a crate::policy::Enforcer>,
    /// How hard to apply Landlock.
    pub landlock: crate::security::landlock::Mode,
    /// The state JSON for hooks, given the init's pid and a status.
    pub state_json: &'a dyn Fn(i32, &str) -> String,
}

impl std::fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("state_dir", &self.state_dir)
            .field("fifo_gate", &self.fifo_gate)
            .finish_non_exhaustive()
    }
}

/// A cloned init that reported ready.
#[derive(Debug)]
pub struct Spawned {
    /// Its pid on the host.
    pub pid: i32,
    /// Its start time, to recognise it later.
    pub start_time: u64,
    /// The parent's end of the sync socket (run: used to start it and to read a late error).
    pub channel: Channel,
    /// The terminal's master side, when the parent must relay it (run with process.terminal and no
    /// console socket).
    pub pty: Option<OwnedFd>,
}

/// Kills and reaps the child unless disarmed.
struct ChildGuard(Option<Pid>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

fn write_proc(pid: i32, file: &str, content: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, content).map_err(|e| io_err("write", Path::new(&path), e))
}

fn map_text(maps: &[IdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// Joins the namespaces given by path that the parent can join for the child (all but user).
fn join_in_parent(vs: &ValidSpec) -> Result<()> {
    for j in vs.joins.iter().filter(|j| j.typ != "user") {
        let label = || format!("joining the {} namespace {}", j.typ, j.path.display());
        let fd = sys::openat2(None, &j.path, libc::O_RDONLY, 0, 0).with_context(label)?;
        nix::sched::setns(fd.as_fd(), j.flag)
            .map_err(|e| Error::sys(format!("setns({}, {})", j.path.display(), j.typ), e))
            .with_context(label)?;
    }
    Ok(())
}

/// A new time namespace: unshare affects only children, and its offsets must be written before any
/// process enters it, so the parent does both before the clone.
fn new_time_ns(vs: &ValidSpec) -> Result<()> {
    if !vs.new_time {
        return Ok(());
    }
    nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
        .map_err(|e| Error::sys("unshare(CLONE_NEWTIME)", e))?;
    let offsets: String = vs
        .linux()
        .time_offsets
        .iter()
        .flatten()
        .map(|(clock, o)| format!("{clock} {} {}\n", o.secs, o.nanosecs))
        .collect();
    if !offsets.is_empty() {
        std::fs::write("/proc/self/timens_offsets", offsets)
            .map_err(|e| io_err("write", Path::new("/proc/self/timens_offsets"), e))
            .with_context(|| "linux.timeOffsets".into())?;
    }
    Ok(())
}

fn has_any_hooks(vs: &ValidSpec) -> bool {
    vs.spec.hooks.as_ref().is_some_and(|h| {
        !(h.prestart.is_empty()
            && h.create_runtime.is_empty()
            && h.create_container.is_empty()
            && h.start_container.is_empty())
    })
}

/// The state directory's fd (with the exec fifo made in it for create) and the connected console
/// socket, checked before anything else happens.
fn prepare(vs: &ValidSpec, opts: &Options<'_>) -> Result<(OwnedFd, Option<OwnedFd>)> {
    let state_dir = sys::openat2(None, opts.state_dir, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
    if opts.fifo_gate {
        nix::unistd::mkfifo(
            &opts.state_dir.join(crate::state::EXEC_FIFO),
            nix::sys::stat::Mode::from_bits_truncate(0o622),
        )
        .map_err(|e| {
            Error::sys(
                format!(
                    "mkfifo({})",
                    opts.state_dir.join(crate::state::EXEC_FIFO).display()
                ),
                e,
            )
        })?;
    }
    let console = match opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            std::os::unix::net::UnixStream::connect(p)
                .map_err(|e| io_err("connect", p, e))
                .with_context(|| "--console-socket".into())?,
        )),
        None => None,
    };
    if vs.process.terminal && console.is_none() && opts.fifo_gate {
        return Err(Error::InvalidSpec(
            "process.terminal is true: create needs --console-socket to hand the terminal over"
                .into(),
        ));
    }
    Ok((state_dir, console))
}

/// The parent's side of sync points 1-3; returns the terminal's master side when the parent relays it.
fn drive(
    vs: &ValidSpec,
    opts: &Options<'_>,
    pid: i32,
    parent_end: &Channel,
    hooks: bool,
) -> Result<Option<OwnedFd>> {
    // Sync point 1: the id maps are written, the child may become root in its user namespace.
    if vs.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
        let l = vs.linux();
        write_proc(pid, "uid_map", &map_text(&l.uid_mappings))
            .with_context(|| "linux.uidMappings".into())?;
        write_proc(pid, "gid_map", &map_text(&l.gid_mappings))
            .with_context(|| "linux.gidMappings".into())?;
        parent_end.send(&Msg::Continue)?;
    }
    if let Some(adj) = vs.process.oom_score_adj {
        write_proc(pid, "oom_score_adj", &adj.to_string())
            .with_context(|| "process.oomScoreAdj".into())?;
    }
    // Sync point 2: namespaces and mounts exist; prestart and createRuntime run here, in the runtime's
    // namespaces; the child gets the state for the hooks it runs itself.
    if hooks {
        parent_end.expect(Msg::RunHooks)?;
        let state = (opts.state_json)(pid, "creating");
        let h = vs.spec.hooks.as_ref().expect("hooks checked above");
        crate::hooks::run_list("prestart", &h.prestart, &state)?;
        crate::hooks::run_list("createRuntime", &h.create_runtime, &state)?;
        parent_end.send(&Msg::State(state))?;
    }
    // The child hands the terminal to us when nobody else takes it.
    let mut pty = None;
    if vs.process.terminal && opts.console_socket.is_none() {
        match parent_end.recv_with()? {
            (Msg::Fd, Some(fd)) => pty = Some(fd),
            (Msg::Error { errno, msg }, _) => return Err(Error::Child { msg, errno }),
            (m, _) => {
                return Err(Error::State(format!(
                    "sync socket: expected the terminal, got {m:?}"
                )));
            }
        }
    }
    // Sync point 3: everything that can fail before the user's program has succeeded.
    loop {
        match parent_end.recv()? {
            Msg::Ready => break,
            Msg::Note(n) => crate::logging::info(&n),
            Msg::Error { errno, msg } => return Err(Error::Child { msg, errno }),
            other => {
                return Err(Error::State(format!(
                    "sync socket: expected Ready, got {other:?}"
                )));
            }
        }
    }
    Ok(pty)
}

/// Clones the init and drives it to ready. On error nothing is left running.
pub fn spawn(vs: &ValidSpec, plan: &[MountOp], opts: &Options<'_>) -> Result<Spawned> {
    let (parent_end, child_end) = sync::pair()?;
    let (state_dir, console) = prepare(vs, opts)?;
    join_in_parent(vs)?;
    new_time_ns(vs)?;
    let join_user = vs.joins.iter().find(|j| j.typ == "user");
    // With a user namespace to join, the child must join it before it creates the others.
    let (clone_flags, unshare_later) = match join_user {
        Some(_) => (
            vs.clone_flags & CloneFlags::CLONE_NEWPID,
            vs.clone_flags - CloneFlags::CLONE_NEWPID,
        ),
        None => (vs.clone_flags, CloneFlags::empty()),
    };
    let hooks = has_any_hooks(vs);
    let pid = match sys::clone_fork(clone_flags.bits() as libc::c_ulong)? {
        Forked::Child => {
            drop(parent_end);
            init::run(InitArgs {
                vs,
                plan,
                chan: child_end,
                gate: if opts.fifo_gate {
                    Gate::Fifo(state_dir)
                } else {
                    Gate::Socket
                },
                console,
                preserve_fds: opts.preserve_fds,
                no_pivot: opts.no_pivot,
                join_user,
                unshare_later,
                hooks,
                lock_fd: opts.lock_fd,
                new_keyring: opts.new_keyring,
                policy: opts.policy,
                landlock: opts.landlock,
            })
        }
        Forked::Parent(pid) => pid,
    };
    drop(child_end);
    drop(console);
    let mut guard = ChildGuard(Some(Pid::from_raw(pid)));
    // A zombie still has its start time; if the child already failed, its error is on the socket.
    let start_time = sys::process_start(pid).map_or(0, |(t, _)| t);

    let pty = drive(vs, opts, pid, &parent_end, hooks)?;
    guard.0 = None;
    Ok(Spawned {
        pid,
        start_time,
        channel: parent_end,
        pty,
    })
}
