//! The container's init, from clone to execve: one linear recipe of named steps.
//!
//! The order is the point, so each step says why it stands where it does. Every failure is sent to the
//! parent as one `Error{errno, msg}` frame naming the step, then the init exits; the parent kills and
//! reaps it and removes the state, so a failed create leaves nothing behind. Modelled on firecracker's
//! jailer `Env::run` and nsjail's `contain.cc`.

use super::sync::{Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::mount::plan::MountOp;
use crate::resolve::Root;
use crate::rootfs;
use crate::spec::ValidSpec;
use crate::spec::validate::JoinNs;
use crate::sys;
use nix::sched::CloneFlags;
use nix::unistd::{Gid, Uid};
use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How the init waits for start.
#[derive(Debug)]
pub enum Gate {
    /// `create`: open `exec.fifo` in this state directory for writing, which blocks until `start`
    /// opens it for reading.
    Fifo(OwnedFd),
    /// `run`: a Continue frame on the sync socket.
    Socket,
}

/// What the parent hands to the init.
#[derive(Debug)]
pub struct InitArgs<'a> {
    /// The validated spec.
    pub vs: &'a ValidSpec,
    /// The mount plan.
    pub plan: &'a [MountOp],
    /// The child's end of the sync socket.
    pub chan: Channel,
    /// How to wait for start.
    pub gate: Gate,
    /// `--console-socket`, connected.
    pub console: Option<OwnedFd>,
    /// Fds 3..3+N stay open for the process.
    pub preserve_fds: u32,
    /// `--no-pivot`.
    pub no_pivot: bool,
    /// A user namespace to join first.
    pub join_user: Option<&'a JoinNs>,
    /// Namespaces to create after joining that user namespace.
    pub unshare_later: CloneFlags,
    /// The spec has hooks: stop at sync point 2.
    pub hooks: bool,
    /// The parent's lock on the state directory, which the init must not hold while it waits.
    pub lock_fd: Option<std::os::fd::RawFd>,
    /// Join a new session keyring (not with --no-new-keyring).
    pub new_keyring: bool,
    /// The host mount policy, enforced again on the fds actually mounted.
    pub policy: Option<&'a crate::policy::Enforcer>,
    /// How hard to apply Landlock.
    pub landlock: crate::security::landlock::Mode,
}

/// Runs the recipe; never returns.
pub fn run(a: InitArgs<'_>) -> ! {
    let err = match recipe(&a) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let msg = Msg::Error {
        errno: err.errno().map_or(0, |e| e as i32),
        msg: err.to_string(),
    };
    let _ = a.chan.send(&msg);
    sys::exit_now(1)
}

fn step<T>(name: &str, r: Result<T>) -> Result<T> {
    r.with_context(|| name.to_string())
}

/// The recipe: four stages in this order, each a run of numbered steps. Why the order: namespaces
/// before anything that depends on them; every mount before pivot_root (host paths are reachable only
/// until then) and before Landlock (a Landlocked process cannot mount); identity and confinement before
/// "ready", so every error still reaches the caller of create; the exec fifo last.
fn recipe(a: &InitArgs<'_>) -> Result<Infallible> {
    enter_namespaces(a)?;
    let (root, state) = build_rootfs(a)?;
    confine(a, &root)?;
    ready_and_exec(a, root, &state)
}

/// Steps 1-4: hygiene, id maps, joined user namespace, session.
fn enter_namespaces(a: &InitArgs<'_>) -> Result<()> {
    let vs = a.vs;
    // 1. Drop the parent's lock on the state directory (an inherited copy would block `start`).
    //    Not dumpable: while this process holds the runtime's memory inside the container's namespaces,
    //    nothing there may ptrace it or open /proc/<pid>/exe (runc CVE-2019-5736). execve resets it.
    //    Die with the parent until ready, so an interrupted create leaves no orphan.
    if let Some(fd) = a.lock_fd {
        sys::close_inherited(fd);
    }
    step("prctl", sys::set_non_dumpable().map_err(Into::into))?;
    step(
        "prctl",
        sys::set_parent_death_signal(libc::SIGKILL).map_err(Into::into),
    )?;
    // Modes of what berth creates are exact; the process's umask is set just before exec.
    sys::umask(0);

    // 2. Sync point 1: in a new user namespace, wait for the parent's id maps, then become root there.
    if vs.clone_flags.contains(CloneFlags::CLONE_NEWUSER) {
        a.chan.expect(Msg::Continue)?;
        become_root()?;
    }

    // 3. A user namespace given by path is joined before any namespace it should own is created.
    if let Some(j) = a.join_user {
        let fd = sys::openat2(None, &j.path, libc::O_RDONLY, 0, 0)?;
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| Error::sys(format!("setns({}, user)", j.path.display()), e))?;
        become_root()?;
        nix::sched::unshare(a.unshare_later)
            .map_err(|e| Error::sys(format!("unshare({:?})", a.unshare_later), e))?;
    }

    // 4. A session of our own: the container is nobody's job-control child; and a session keyring of
    //    its own, so it cannot read the caller's keys.
    nix::unistd::setsid().map_err(|e| Error::sys("setsid()", e))?;
    if a.new_keyring {
        sys::join_new_session_keyring()?;
    }
    Ok(())
}

/// Steps 5-8: the rootfs on fds, hooks, sysctls and read-only/masked paths, pivot_root. Returns the
/// container's `/` and the state JSON for in-container hooks.
fn build_rootfs(a: &InitArgs<'_>) -> Result<(Root, String)> {
    let vs = a.vs;
    let p = &vs.process;
    let linux = vs.linux();
    // 5. The rootfs, all on fds: propagation, rootfs bound onto itself, the spec's mounts in order,
    //    /dev, devices. Host paths (the verified /dev/null) are opened now, while the host is reachable.
    let root = step("rootfs", rootfs::bind_rootfs(vs))?;
    let policed = a.policy.map(|enforcer| crate::mount::apply::Policed {
        enforcer,
        rootfs: &vs.rootfs,
    });
    let dev = crate::mount::apply::apply_all(&root, a.plan, policed.as_ref())?;
    if let Some(dev) = &dev {
        step("populating /dev", rootfs::populate_dev(dev, vs.userns))?;
    }
    rootfs::create_devices(&root, &linux.devices, vs.userns)?;
    if p.terminal {
        step("process.terminal", setup_terminal(a, &root, dev.as_ref()))?;
    }
    let null = step("masking paths", rootfs::host_null())?;
    drop(step("process.cwd", root.mkdir_all(Path::new(&p.cwd)))?);

    // 6. Sync point 2: prestart/createRuntime hooks run in the parent now; createContainer hooks run
    //    here, in the container's mount namespace before pivot_root, as the runtime-spec says.
    let mut state = String::new();
    if a.hooks {
        a.chan.send(&Msg::RunHooks)?;
        match a.chan.recv()? {
            Msg::State(s) => state = s,
            other => {
                return Err(Error::State(format!(
                    "sync socket: expected the state, got {other:?}"
                )));
            }
        }
        if let Some(h) = &vs.spec.hooks {
            crate::hooks::run_list("createContainer", &h.create_container, &state)?;
        }
    }

    // 7. Sysctls (through berth's own procfs, so the read-only /proc/sys below does not stop them), then
    //    read-only and masked paths. Before pivot_root: cloning the host's /dev/null onto masked files
    //    needs its mount in our namespace, which ends when the old root is detached.
    rootfs::write_sysctls(vs)?;
    rootfs::readonly_paths(&root, &linux.readonly_paths)?;
    rootfs::mask_paths(&root, &linux.masked_paths, &null)?;
    drop(null);

    // 8. Into the root. From here on `/` is the container's; the root turns read-only last, since the
    //    steps before may create mount points in it.
    step("entering the rootfs", rootfs::enter(&root, a.no_pivot))?;
    let root = step("opening /", Root::open(Path::new("/")))?;
    if let Some(h) = vs.spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::sys(format!("sethostname({h:?})"), e))?;
    }
    if let Some(d) = vs.spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        sys::set_domainname(d)?;
    }
    if vs.spec.root.as_ref().is_some_and(|r| r.readonly) {
        rootfs::make_root_readonly()?;
    }
    Ok((root, state))
}

/// Steps 9-10: AppArmor, limits, identity, no_new_privs, Landlock (and seccomp without
/// no_new_privs).
fn confine(a: &InitArgs<'_>, root: &Root) -> Result<()> {
    let vs = a.vs;
    let p = &vs.process;
    // 9. The AppArmor label for the next execve, first of the security layers (the ones after it can
    //    only narrow what the process may do), through berth's own procfs.
    if let Some(profile) = p.apparmor_profile.as_deref().filter(|s| !s.is_empty()) {
        crate::security::apparmor::apply(profile, &rootfs::private_proc()?)?;
    }

    // 10. Limits, then identity: rlimits while still privileged (raising a hard limit needs
    //    CAP_SYS_RESOURCE), capabilities' bounding set while CAP_SETPCAP is effective, the uid change
    //    with keepcaps, the other capability sets, then no_new_privs.
    //    Landlock and seccomp come after no_new_privs (Landlock from the final mount table, now that
    //    every mount exists: a Landlocked process cannot mount). Without no_new_privs both need
    //    CAP_SYS_ADMIN, which the identity step may drop: then they go in before it (and a seccomp
    //    profile must allow what berth still does, as with runc).
    set_rlimits(vs)?;
    if !p.no_new_privileges {
        apply_landlock(a, root)?;
        if let Some(c) = &vs.seccomp {
            crate::security::seccomp::install(c)?;
        }
    }
    set_identity(vs)?;
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
        apply_landlock(a, root)?;
    }
    Ok(())
}

/// Steps 11-18: cwd, program, fds, ready, the wait for start, startContainer hooks, seccomp, execve.
fn ready_and_exec(a: &InitArgs<'_>, root: Root, state: &str) -> Result<Infallible> {
    let vs = a.vs;
    let p = &vs.process;
    // 11. The working directory, resolved inside the root, as the process's user; then check it is
    //     inside the container (a leaked host fd as cwd is runc CVE-2024-21626).
    let cwd = step(
        "process.cwd",
        root.open_at(Path::new(&p.cwd), libc::O_PATH | libc::O_DIRECTORY),
    )?;
    nix::unistd::fchdir(cwd.as_raw_fd())
        .map_err(|e| Error::sys(format!("fchdir({})", p.cwd), e))?;
    drop(cwd);
    let here = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd()", e))?;
    if !here.is_absolute() || here.starts_with("(unreachable)") {
        return Err(Error::SafetyViolation(format!(
            "process.cwd {:?} is outside the container",
            p.cwd
        )));
    }
    drop(root);

    // 12. The program, found now so a typo fails create rather than start.
    let (path, argv, envp) = program(vs)?;

    // 13. Every fd but stdio and the preserved ones is close-on-exec (leaked-fd CVE class).
    sys::cloexec_from(3 + a.preserve_fds)?;

    // 14. Sync point 3: ready. From here the parent (create) may exit, so stop dying with it.
    sys::set_parent_death_signal(0)?;
    a.chan.send(&Msg::Ready)?;

    // 15. Wait for start.
    match &a.gate {
        Gate::Fifo(dir) => {
            let fifo = sys::openat2(
                Some(dir.as_fd()),
                Path::new(crate::state::EXEC_FIFO),
                libc::O_WRONLY,
                0,
                sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
            )?;
            nix::unistd::write(&fifo, b"0").map_err(|e| Error::sys("write(exec.fifo)", e))?;
        }
        Gate::Socket => a.chan.expect(Msg::Continue)?,
    }

    // 16. startContainer hooks, in the container, before the user's program.
    if let Some(h) = &vs.spec.hooks {
        crate::hooks::run_list("startContainer", &h.start_container, state)?;
    }

    // 17. The umask and signals the process should start with.
    sys::umask(p.user.umask.unwrap_or(0o022));
    sys::reset_signals();
    // 18. seccomp last, so that it filters the user's program and nothing of berth's but execve; then
    //     exec.
    if let Some(c) = vs.seccomp.as_ref().filter(|_| p.no_new_privileges) {
        crate::security::seccomp::install(c)?;
    }
    Err(sys::execve(&path, &argv, &envp).into())
}

/// Landlock rules derived from the mount plan, applied inside the root; the exec fifo stays writable
/// for start. What was enforced goes to the parent's log.
fn apply_landlock(a: &InitArgs<'_>, root: &Root) -> Result<()> {
    let fifo = match &a.gate {
        Gate::Fifo(dir) => Some(sys::openat2(
            Some(dir.as_fd()),
            Path::new(crate::state::EXEC_FIFO),
            libc::O_PATH,
            0,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )?),
        Gate::Socket => None,
    };
    let rules = crate::security::landlock::derive(a.vs, a.plan);
    let note = crate::security::landlock::apply(a.landlock, root, &rules, fifo.as_ref())?;
    a.chan.send(&Msg::Note(note))
}

/// setresgid/setresuid 0 inside a new user namespace (the process was unmapped until now).
fn become_root() -> Result<()> {
    let root_g = Gid::from_raw(0);
    let root_u = Uid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g).map_err(|e| Error::sys("setresgid(0)", e))?;
    nix::unistd::setresuid(root_u, root_u, root_u).map_err(|e| Error::sys("setresuid(0)", e))
}

fn set_rlimits(vs: &ValidSpec) -> Result<()> {
    for (i, r) in vs.process.rlimits.iter().enumerate() {
        let res = crate::spec::validate::rlimit_resource(&r.typ).expect("validated");
        nix::sys::resource::setrlimit(res, r.soft, r.hard)
            .map_err(|e| {
                Error::sys(
                    format!("setrlimit({}, soft={}, hard={})", r.typ, r.soft, r.hard),
                    e,
                )
            })
            .with_context(|| format!("process.rlimits[{i}]"))?;
    }
    Ok(())
}

fn set_identity(vs: &ValidSpec) -> Result<()> {
    let u = &vs.process.user;
    let caps = vs.process.capabilities.as_ref();
    if let Some(c) = caps {
        step(
            "process.capabilities.bounding",
            crate::security::caps::apply_bounding(c),
        )?;
    }
    nix::sys::prctl::set_keepcaps(true).map_err(|e| Error::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    let groups: Vec<Gid> = u
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says deny; then only an empty list
    // is possible and the kernel already has it.
    if !(vs.userns && groups.is_empty()) {
        nix::unistd::setgroups(&groups)
            .map_err(|e| Error::sys(format!("setgroups({:?})", u.additional_gids), e))
            .with_context(|| "process.user.additionalGids".into())?;
    }
    let g = Gid::from_raw(u.gid);
    nix::unistd::setresgid(g, g, g)
        .map_err(|e| Error::sys(format!("setresgid({})", u.gid), e))
        .with_context(|| "process.user.gid".into())?;
    let uid = Uid::from_raw(u.uid);
    nix::unistd::setresuid(uid, uid, uid)
        .map_err(|e| Error::sys(format!("setresuid({})", u.uid), e))
        .with_context(|| "process.user.uid".into())?;
    nix::sys::prctl::set_keepcaps(false).map_err(|e| Error::sys("prctl(PR_SET_KEEPCAPS, 0)", e))?;
    if let Some(c) = caps {
        step("process.capabilities", crate::security::caps::apply_sets(c))?;
    }
    Ok(())
}

fn cstring(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec(format!("{what}: contains a NUL byte")))
}

/// The path to exec (args[0], or found in the process's PATH), argv and envp.
fn program(vs: &ValidSpec) -> Result<(CString, Vec<CString>, Vec<CString>)> {
    let p = &vs.process;
    let argv = p
        .args
        .iter()
        .map(|a| cstring(a.as_bytes(), "process.args"))
        .collect::<Result<Vec<_>>>()?;
    let envp = p
        .env
        .iter()
        .map(|e| cstring(e.as_bytes(), "process.env"))
        .collect::<Result<Vec<_>>>()?;
    let arg0 = &p.args[0];
    let found =
        |c: &Path| nix::unistd::access(c, nix::unistd::AccessFlags::X_OK).is_ok() && !c.is_dir();
    let path = if arg0.contains('/') {
        let c = PathBuf::from(arg0);
        if !found(&c) {
            return Err(Error::sys(
                format!("process.args[0]: {arg0:?} is not an executable file"),
                nix::errno::Errno::ENOENT,
            ));
        }
        c
    } else {
        let path_var = p
            .env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        path_var
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .find(|c| found(c))
            .ok_or_else(|| {
                Error::sys(
                    format!("process.args[0]: {arg0:?} not found in $PATH ({path_var})"),
                    nix::errno::Errno::ENOENT,
                )
            })?
    };
    Ok((
        cstring(path.as_os_str().as_bytes(), "process.args[0]")?,
        argv,
        envp,
    ))
}

/// A pseudo-terminal from the container's own devpts: the master goes to the console socket (or to
/// the parent for `run`), the slave becomes stdio, the controlling terminal and /dev/console.
fn setup_terminal(a: &InitArgs<'_>, root: &Root, dev: Option<&OwnedFd>) -> Result<()> {
    // The master comes from the devpts instance mounted at /dev/pts, never from a node the image put
    // there (a "ptmx" with another device number would open that device).
    let pts = root.open_at(Path::new("/dev/pts"), libc::O_PATH | libc::O_DIRECTORY)?;
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    let fs = nix::sys::statfs::fstatfs(&pts).map_err(|e| Error::sys("fstatfs(/dev/pts)", e))?;
    if fs.filesystem_type().0 as i64 != DEVPTS_SUPER_MAGIC {
        return Err(Error::SafetyViolation(
            "process.terminal needs a devpts mount at /dev/pts; the image's own /dev/pts is not used".into(),
        ));
    }
    let master = sys::openat2(
        Some(pts.as_fd()),
        Path::new("ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
    )?;
    let slave = sys::pty_peer(&master)?;
    if let Some(dev) = dev {
        let console = sys::openat2(
            Some(dev.as_fd()),
            Path::new("console"),
            libc::O_CREAT | libc::O_WRONLY | libc::O_NOFOLLOW,
            0o600,
            sys::RESOLVE_BENEATH | sys::RESOLVE_NO_SYMLINKS,
        )?;
        let tree = crate::mount::apply::clone_tree(&slave, false)?;
        sys::move_mount(&tree, &console)?;
    }
    match &a.console {
        Some(sock) => {
            let ch = Channel::from_fd(sock.try_clone().map_err(|e| {
                Error::sys(
                    "dup(console socket)",
                    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            })?);
            ch.send_raw_fd(b"/dev/ptmx", master.as_raw_fd())?;
        }
        None => a.chan.send_with(&Msg::Fd, Some(master.as_raw_fd()))?,
    }
    drop(master);
    for fd in 0..3 {
        sys::dup_onto(&slave, fd)?;
    }
    sys::set_controlling_tty(&slave)?;
    Ok(())
}
