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

use super::ChildGuard;
use super::init::{self, Gate, InitArgs};
use super::sync::{self, Channel, Msg};
use crate::error::{Context, Error, Result, io_err};
use crate::mount::idmap::map_text;
use crate::mount::plan::MountOp;
use crate::spec::{IdMapping, ValidSpec};
use crate::sys;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How the caller wants the container launched, beyond the spec: runc's create/run options, given
/// once by the verb (see `lifecycle::Launch`) and read by reference by the parent and the init.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--console-socket`: where the terminal's master side is sent.
    pub console_socket: Option<PathBuf>,
    /// Fds 3..3+N stay open for the process (`--preserve-fds` plus systemd's LISTEN_FDS).
    pub preserve_fds: u32,
    /// `--no-pivot`: MS_MOVE + chroot instead of pivot_root (ramfs roots).
    pub no_pivot: bool,
    /// `--no-new-keyring`: keep the caller's session keyring.
    pub no_new_keyring: bool,
}

/// Everything the parent and the init need to make one container: the validated spec, its mount
/// plan, its confinement, the launch options, and where its state lives. Built once by the lifecycle;
/// the init reads it through [`InitArgs`], beside what only the child has.
pub struct Request<'a> {
    /// The validated spec.
    pub vs: &'a ValidSpec,
    /// The mount plan (the policy's hardening applied).
    pub plan: &'a [MountOp],
    /// The launch options.
    pub options: &'a Options,
    /// Seccomp, Landlock's mode.
    pub confinement: &'a crate::security::Confinement,
    /// The host mount policy, enforced again on the fds actually mounted.
    pub policy: Option<&'a crate::policy::Enforcer>,
    /// The container's cgroup and what goes into it; the child enters it at sync point 1 (made and
    /// with its rules in place by then, or, with the systemd driver, started with the child in it).
    pub cgroup: Option<(&'a crate::cgroups::Cgroup, &'a crate::cgroups::Setup)>,
    /// The container's state directory; with `fifo_gate`, the exec fifo is made in it.
    pub state_dir: &'a Path,
    /// Block the init on `<state_dir>/exec.fifo` until `berth start` (create); otherwise on the sync
    /// socket (run, which starts at once).
    pub fifo_gate: bool,
    /// The state directory's lock fd, closed in the child.
    pub lock_fd: Option<std::os::fd::BorrowedFd<'a>>,
    /// The state JSON for hooks, given the init's pid and a status.
    pub state_json: &'a dyn Fn(i32, &str) -> String,
    /// Called with the init's final pid as soon as it exists, before any hook runs (the state
    /// directory's init record).
    pub on_init: &'a dyn Fn(i32) -> Result<()>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("options", &self.options)
            .field("state_dir", &self.state_dir)
            .field("fifo_gate", &self.fifo_gate)
            .finish_non_exhaustive()
    }
}

/// A cloned init (or exec'd process) that reported ready. Its guard kills and reaps it if this is
/// dropped before the caller disarms it (once the state that names it is saved).
#[derive(Debug)]
pub struct Spawned {
    /// Kills and reaps the process unless disarmed.
    pub guard: ChildGuard,
    /// Its start time, to recognise it later.
    pub start_time: u64,
    /// The parent's end of the sync socket (run: used to start it and to read a late error).
    pub channel: Channel,
    /// The terminal's master side, when the parent must relay it (run with process.terminal and no
    /// console socket).
    pub pty: Option<OwnedFd>,
    /// What its confinement layers enforced (sent before ready).
    pub report: Option<crate::security::Report>,
}

impl Spawned {
    /// Its pid on the host.
    pub fn pid(&self) -> i32 {
        self.guard.pid()
    }
}

fn write_proc(pid: i32, file: &str, content: &str) -> Result<()> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, content).map_err(|e| io_err("write", Path::new(&path), e))
}

/// The id maps of a child in a new user namespace, written by a parent that is not root: a single
/// mapping of the caller's own id is written directly (gid_map after `setgroups` is denied, as the
/// kernel requires); anything else goes through the setuid helpers newuidmap/newgidmap (package
/// uidmap), which check the ranges against /etc/subuid and /etc/subgid.
fn rootless_maps(pid: i32, uid: &[IdMapping], gid: &[IdMapping]) -> Result<()> {
    let (me, my_gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let own = |maps: &[IdMapping], id: u32| matches!(maps, [m] if m.size == 1 && m.host_id == id);
    if own(uid, me) {
        write_proc(pid, "uid_map", &map_text(uid)).with_context(|| "linux.uidMappings".into())?;
    } else {
        helper("newuidmap", pid, uid).with_context(|| "linux.uidMappings".into())?;
    }
    if own(gid, my_gid) {
        write_proc(pid, "setgroups", "deny").with_context(|| "linux.gidMappings".into())?;
        write_proc(pid, "gid_map", &map_text(gid)).with_context(|| "linux.gidMappings".into())?;
    } else {
        helper("newgidmap", pid, gid).with_context(|| "linux.gidMappings".into())?;
    }
    Ok(())
}

/// newuidmap/newgidmap PID INSIDE OUTSIDE COUNT...
fn helper(tool: &str, pid: i32, maps: &[IdMapping]) -> Result<()> {
    let mut args = vec![pid.to_string()];
    for m in maps {
        args.extend([m.container_id, m.host_id, m.size].map(|n| n.to_string()));
    }
    let out = std::process::Command::new(tool)
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            Error::NotSupported(format!(
                "rootless: mappings other than your own id need {tool} (package uidmap): {e}"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::NotSupported(format!(
            "rootless: {tool} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Joins the namespaces given by path that the parent can join for the child (all but user, which
/// must come before the namespaces the child creates, and mount, which would move the parent's own
/// view of the state directory).
fn join_in_parent(vs: &ValidSpec) -> Result<()> {
    for j in vs
        .joins
        .iter()
        .filter(|j| j.typ != "user" && j.typ != "mount")
    {
        let label = || format!("joining the {} namespace {}", j.typ, j.path.display());
        let fd = sys::openat2(None, &j.path, libc::O_RDONLY, 0, 0).with_context(label)?;
        not_the_hosts_for_sysctls(vs, j, &fd)?;
        nix::sched::setns(fd.as_fd(), j.flag)
            .map_err(|e| Error::sys(format!("setns({}, {})", j.path.display(), j.typ), e))
            .with_context(label)?;
    }
    Ok(())
}

/// A sysctl may be written into a joined namespace only when it is the container's own (a pod's, made
/// by the orchestrator), never the host's: the namespace berth itself runs in, or the initial one
/// (pid 1's). Checked on the very fd that is joined.
fn not_the_hosts_for_sysctls(
    vs: &ValidSpec,
    j: &crate::spec::validate::JoinNs,
    fd: &OwnedFd,
) -> Result<()> {
    let Some(key) = vs.linux().sysctl.keys().find(|k| {
        crate::spec::validate::sysctl_namespace(k).and_then(crate::spec::validate::ns_flag)
            == Some(j.flag)
    }) else {
        return Ok(());
    };
    let file = match j.typ.as_str() {
        "network" => "net",
        other => other,
    };
    let joined = sys::fstat(fd)?;
    for whose in ["self", "1"] {
        let path = format!("/proc/{whose}/ns/{file}");
        let Ok(theirs) = nix::sys::stat::stat(path.as_str()) else {
            continue;
        };
        if (theirs.st_dev, theirs.st_ino) == (joined.st_dev, joined.st_ino) {
            return Err(Error::InvalidSpec(format!(
                "linux.sysctl.{key}: the {} namespace {} is the host's own ({}); refusing to change the host's settings",
                j.typ,
                j.path.display(),
                if whose == "self" {
                    "berth's"
                } else {
                    "the initial one"
                }
            )));
        }
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

/// The exec fifo for create, opened read-write (never blocks; the init then blocks reading it until
/// `start` writes its byte), and the connected console socket, checked before anything else happens.
/// The fifo is 0600 root in a 0700 directory: nobody else on the host can start the container, and the
/// init needs no permission on it whatever user or user namespace it ends up in.
fn prepare(req: &Request<'_>) -> Result<(Option<OwnedFd>, Option<OwnedFd>)> {
    let fifo = if req.fifo_gate {
        let state_dir = sys::openat2(None, req.state_dir, libc::O_PATH | libc::O_DIRECTORY, 0, 0)?;
        let name = Path::new(crate::state::EXEC_FIFO);
        let what = || format!("mkfifo({})", req.state_dir.join(name).display());
        nix::unistd::mkfifoat(
            Some(state_dir.as_raw_fd()),
            name,
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| Error::sys(what(), e))?;
        Some(sys::openat2(
            Some(state_dir.as_fd()),
            name,
            libc::O_RDWR,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )?)
    } else {
        None
    };
    let console = match req.options.console_socket.as_deref() {
        Some(p) => Some(OwnedFd::from(crate::files::connect_socket(
            p,
            "--console-socket",
        )?)),
        None => None,
    };
    if req.vs.process.terminal && console.is_none() && req.fifo_gate {
        return Err(Error::InvalidSpec(
            "process.terminal is true: create needs --console-socket to hand the terminal over"
                .into(),
        ));
    }
    Ok((fifo, console))
}

/// Decisions made before the clone that the parent and the init both follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// The spec has hooks: stop at sync point 2.
    pub hooks: bool,
    /// berth runs rootless (decided before the clone: in the child geteuid() says 0 as soon as its
    /// maps are written).
    pub rootless: bool,
    /// A user namespace is joined by path: sync point 1b follows sync point 1.
    pub user_later: bool,
    /// Make the cgroup namespace after sync point 1 (so the container's cgroup is its root).
    pub cgroupns_later: bool,
}

/// Sync point 1: the child is in its cgroup and, in a new user namespace, its id maps are written
/// and the bind mounts made with the host's view handed over; it may go on (and become root in its
/// user namespace). Unconditional: the child always waits for this go.
fn sync_one(req: &Request<'_>, pid: i32, chan: &Channel, rootless: bool) -> Result<()> {
    let vs = req.vs;
    if let Some((cg, setup)) = req.cgroup {
        cg.enter(pid, setup)
            .with_context(|| "joining the container's cgroup".into())?;
    }
    if vs.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
        let l = vs.linux();
        if !rootless {
            write_proc(pid, "uid_map", &map_text(&l.uid_mappings))
                .with_context(|| "linux.uidMappings".into())?;
            write_proc(pid, "gid_map", &map_text(&l.gid_mappings))
                .with_context(|| "linux.gidMappings".into())?;
            hand_over_trees(req, pid, chan)?;
        } else {
            // Rootless: the maps an unprivileged parent may write (see rootless_maps); the child,
            // root in its own user namespace, makes its bind mounts itself (berth cannot enter its
            // mount namespace to hand them over).
            rootless_maps(pid, &l.uid_mappings, &l.gid_mappings)?;
        }
    }
    chan.send(&Msg::Continue)
}

/// Sync point 1b (init::after_joined_user), after the child joined a user namespace and made the
/// namespaces it owns: the init forked as pid 1 of a new pid namespace adopted (the intermediate
/// reaped: the init is then this process's child, and the one guarded), the bind mounts handed over,
/// the go.
fn sync_one_b(
    req: &Request<'_>,
    guard: &mut ChildGuard,
    chan: &Channel,
    rootless: bool,
) -> Result<()> {
    let init = match chan.recv_with()? {
        (Msg::Pid(p), _) => p as i32,
        (
            Msg::Error {
                errno,
                msg,
                program,
            },
            _,
        ) => {
            return Err(Error::Child {
                msg,
                errno,
                program,
            });
        }
        (m, _) => {
            return Err(Error::State(format!(
                "sync socket: expected the init's pid, got {m:?}"
            )));
        }
    };
    if init != 0 {
        let _ = nix::sys::wait::waitpid(Pid::from_raw(guard.pid()), None);
        guard.replace(init);
    }
    if !rootless {
        hand_over_trees(req, guard.pid(), chan)?;
    }
    chan.send(&Msg::Continue)
}

/// Sync point 2: namespaces and mounts exist; prestart and createRuntime run here, in the runtime's
/// namespaces; the child gets the state for the hooks it runs itself.
fn sync_two(req: &Request<'_>, pid: i32, chan: &Channel) -> Result<()> {
    let Some(h) = req.vs.spec.hooks.as_ref() else {
        return Ok(());
    };
    chan.expect(Msg::RunHooks)?;
    // prestart hooks see status "created", as crun shows them and the runtime-tools suite checks
    // (runc says "creating"); createRuntime and createContainer run while it is "creating".
    let state = (req.state_json)(pid, "creating");
    if !h.prestart.is_empty() {
        crate::hooks::run_list("prestart", &h.prestart, &(req.state_json)(pid, "created"))?;
    }
    crate::hooks::run_list("createRuntime", &h.create_runtime, &state)?;
    chan.send(&Msg::State(state))
}

/// The terminal's master side, which the child hands to the parent when no console socket takes it.
fn take_terminal(chan: &Channel) -> Result<OwnedFd> {
    match chan.recv_with()? {
        (Msg::Fd, Some(fd)) => Ok(fd),
        (
            Msg::Error {
                errno,
                msg,
                program,
            },
            _,
        ) => Err(Error::Child {
            msg,
            errno,
            program,
        }),
        (m, _) => Err(Error::State(format!(
            "sync socket: expected the terminal, got {m:?}"
        ))),
    }
}

/// Sync point 3: everything that can fail before the user's program has succeeded. On the way: what
/// the confinement enforced, and a seccomp listener for the agent.
fn until_ready(
    req: &Request<'_>,
    pid: i32,
    chan: &Channel,
) -> Result<Option<crate::security::Report>> {
    let mut report = None;
    loop {
        let (msg, fd) = chan.recv_with()?;
        match msg {
            Msg::Ready => return Ok(report),
            Msg::Report(r) => {
                crate::logging::info(&r.to_string());
                report = Some(r);
            }
            Msg::SeccompFd => {
                let fd = fd.ok_or_else(|| {
                    Error::State("sync socket: a seccomp listener frame without its fd".into())
                })?;
                send_to_agent(req, pid, fd)?;
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
                    "sync socket: expected Ready, got {other:?}"
                )));
            }
        }
    }
}

/// The parent's side of sync points 1-3, in order; returns the terminal's master side when the
/// parent relays it, and what the confinement enforced.
fn drive(
    req: &Request<'_>,
    guard: &mut ChildGuard,
    chan: &Channel,
    layout: Layout,
    netdevs: Option<&crate::netdev::Prepared>,
) -> Result<(Option<OwnedFd>, Option<crate::security::Report>)> {
    sync_one(req, guard.pid(), chan, layout.rootless)?;
    if layout.user_later {
        sync_one_b(req, guard, chan, layout.rootless)?;
    }
    let pid = guard.pid();
    (req.on_init)(pid)?;
    // The init is in its final network namespace now (also after joining a user namespace).
    if let Some(n) = netdevs {
        n.move_into(pid)?;
    }
    if let Some(adj) = req.vs.process.oom_score_adj {
        write_proc(pid, "oom_score_adj", &adj.to_string())
            .with_context(|| "process.oomScoreAdj".into())?;
    }
    if layout.hooks {
        sync_two(req, pid, chan)?;
    }
    let pty = if req.vs.process.terminal && req.options.console_socket.is_none() {
        Some(take_terminal(chan)?)
    } else {
        None
    };
    let report = until_ready(req, pid, chan)?;
    Ok((pty, report))
}

/// Binds beyond this count are left to the child (each handed-over tree is an fd it holds until it
/// mounts it).
const MAX_HANDED_OVER: usize = 256;

/// For a container in a new user namespace, whose root (an unprivileged host uid) may not reach bind
/// sources below root-only directories (Podman's 0700 userdata, as crun and runc handle it): the
/// parent enters the child's mount namespace, opens each source with the host's credentials (vetted
/// by the policy when there is one), clones and configures the tree there, hands the detached tree
/// to the child, and returns to its own namespace, root and working directory. Idmapped tmpfs
/// instances go the same way (only one made in the host's user namespace can be idmapped).
fn hand_over_trees(req: &Request<'_>, pid: i32, chan: &Channel) -> Result<()> {
    let (vs, plan) = (req.vs, req.plan);
    let is_bind = |op: &&MountOp| matches!(op.kind, crate::mount::plan::OpKind::Bind { .. });
    // Binds up to a bound (beyond it the child opens its sources itself); idmapped tmpfs always
    // (only a mount made in the host's user namespace can be idmapped).
    let few = plan.iter().filter(is_bind).count() <= MAX_HANDED_OVER;
    let binds: Vec<&MountOp> = plan
        .iter()
        .filter(|op| if is_bind(op) { few } else { op.idmap.is_some() })
        .collect();
    if binds.is_empty() {
        return Ok(());
    }
    let open = |p: &str| sys::openat2(None, Path::new(p), libc::O_RDONLY | libc::O_CLOEXEC, 0, 0);
    let theirs = open(&format!("/proc/{pid}/ns/mnt"))?;
    let vetted = req.policy.map(|enforcer| crate::policy::Vetted {
        enforcer,
        rootfs: &vs.rootfs,
    });
    let sources: &dyn crate::mount::apply::OpenSource = match &vetted {
        Some(v) => v,
        None => &crate::mount::apply::HostPath,
    };
    // Idmapped binds taking the container's mappings use its own user namespace.
    let mut usernses =
        crate::mount::idmap::Usernses::new(Some(open(&format!("/proc/{pid}/ns/user"))?));
    super::inside_mount_ns(theirs.as_fd(), &format!("/proc/{pid}/ns/mnt"), || {
        binds.iter().try_for_each(|op| {
            let tree = crate::mount::apply::detached_tree(op, sources, &mut usernses)
                .map_err(|e| crate::mount::apply::explain(None, op, e))
                .with_context(|| op.label())?;
            let index = u32::try_from(op.index)
                .map_err(|_| Error::InvalidSpec(format!("{}: over 2^32 mounts", op.label())))?;
            chan.send_with(&Msg::Tree(index), Some(tree.as_raw_fd()))
        })
    })
}

/// Hands the seccomp notify listener to the agent at linux.seccomp.listenerPath, as runc does: one
/// message on a new connection with the container process state (runtime-spec config-linux.md,
/// "The Container Process State") and the fd as SCM_RIGHTS.
fn send_to_agent(req: &Request<'_>, pid: i32, fd: OwnedFd) -> Result<()> {
    let Some(c) = &req.confinement.seccomp else {
        return Err(Error::State(
            "sync socket: a seccomp listener without linux.seccomp".into(),
        ));
    };
    let path = c.listener_path.as_deref().ok_or_else(|| {
        Error::InvalidSpec("linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath".into())
    })?;
    let state: serde_json::Value =
        serde_json::from_str(&(req.state_json)(pid, "creating")).unwrap_or_default();
    let msg = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": c.listener_metadata.clone().unwrap_or_default(),
        "state": state,
    });
    let label = || "linux.seccomp.listenerPath".to_string();
    let sock = crate::files::connect_socket(path, "linux.seccomp.listenerPath")?;
    Channel::from_fd(OwnedFd::from(sock))
        .send_raw_fd(msg.to_string().as_bytes(), fd.as_raw_fd())
        .with_context(label)
}

/// Clones the init and drives it to ready. On error nothing is left running; on success the init is
/// guarded by the returned [`Spawned`] until the caller disarms it.
pub fn spawn(req: &Request<'_>) -> Result<Spawned> {
    let vs = req.vs;
    crate::security::exe::remember();
    let (parent_end, child_end) = sync::pair()?;
    let (fifo, console) = prepare(req)?;
    // Host interfaces to move in are found in berth's own network namespace, before it joins one.
    let netdevs = crate::netdev::prepare(vs)?;
    join_in_parent(vs)?;
    new_time_ns(vs)?;
    let join_user = vs.joins.iter().find(|j| j.typ == "user");
    // With a user namespace to join, the child must join it before it creates the others, so that
    // it owns them (containerd 2.x's user-namespaced pods): all of them, the pid namespace too, which
    // then needs one more fork (init::after_joined_user); this process is a child subreaper so that
    // the init is its child once the intermediate is gone.
    let (clone_flags, unshare_later) = match join_user {
        Some(_) => (CloneFlags::empty(), vs.clone_flags),
        None => (vs.clone_flags, CloneFlags::empty()),
    };
    if unshare_later.contains(CloneFlags::CLONE_NEWPID) {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|e| Error::sys("prctl(PR_SET_CHILD_SUBREAPER, 1)", e))?;
    }
    // The cgroup namespace is made once the init is in its cgroup (sync point 1), so that cgroup is
    // its root.
    let cgroupns_later = req.cgroup.is_some() && clone_flags.contains(CloneFlags::CLONE_NEWCGROUP);
    let clone_flags = if cgroupns_later {
        clone_flags - CloneFlags::CLONE_NEWCGROUP
    } else {
        clone_flags
    };
    let layout = Layout {
        hooks: has_any_hooks(vs),
        rootless: crate::spec::rootless::unprivileged(),
        user_later: join_user.is_some(),
        cgroupns_later,
    };
    // The child closes the parent's end of the socket and the state lock (an inherited copy would
    // block `start`); the parent drops the child's end, the console and the fifo with the closure.
    let mut inherited = vec![parent_end.as_fd()];
    inherited.extend(req.lock_fd);
    let pid = sys::clone_child(clone_flags.bits() as libc::c_ulong, &inherited, move || {
        init::run(InitArgs {
            req,
            layout,
            chan: child_end,
            gate: fifo.map_or(Gate::Socket, Gate::Fifo),
            console,
            join_user,
            unshare_later,
        })
    })?;
    let mut guard = ChildGuard::new(pid);
    let (pty, report) = drive(req, &mut guard, &parent_end, layout, netdevs.as_ref())?;
    // A zombie still has its start time; if the child already failed, its error is on the socket.
    let start_time = sys::process_start(guard.pid()).map_or(0, |(t, _)| t);
    Ok(Spawned {
        guard,
        start_time,
        channel: parent_end,
        pty,
        report,
    })
}
