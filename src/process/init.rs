//! The container's init, from clone to execve: one linear recipe of named steps.
//!
//! The order is the point, so each step says why it stands where it does. Every failure is sent to the
//! parent as one `Error{errno, msg}` frame naming the step, then the init exits; the parent kills and
//! reaps it and removes the state, so a failed create leaves nothing behind. Modelled on firecracker's
//! jailer `Env::run` and nsjail's `contain.cc`.

use super::spawn::{Layout, Request};
use super::sync::{Channel, Msg};
use crate::error::{Context, Error, Result};
use crate::mount::apply::{HostPath, OpenSource};
use crate::resolve::Root;
use crate::rootfs;
use crate::security::landlock::{Builder as Landlock, Grant, Key};
use crate::security::{Confinement, Enforced, Report};
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
    /// `create`: `exec.fifo`, opened read-write by the parent before the clone; the init reads one
    /// byte from it, which `start` writes.
    Fifo(OwnedFd),
    /// `run`: a Continue frame on the sync socket.
    Socket,
}

/// What the parent hands to the init: the request (spec, plan, options, confinement), by reference,
/// beside what only the child has.
#[derive(Debug)]
pub struct InitArgs<'a> {
    /// What to make (shared with the parent, which cloned this process with it).
    pub req: &'a Request<'a>,
    /// Decisions the parent made before the clone.
    pub(crate) layout: Layout,
    /// The child's end of the sync socket.
    pub chan: Channel,
    /// How to wait for start.
    pub gate: Gate,
    /// `--console-socket`, connected.
    pub console: Option<OwnedFd>,
    /// A user namespace to join first.
    pub join_user: Option<&'a JoinNs>,
    /// Namespaces to create after joining that user namespace.
    pub unshare_later: CloneFlags,
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
        program: err.is_program(),
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
/// "ready", so every error still reaches the caller of create; seccomp as late as it can go (see
/// [`confine`]); the exec fifo last.
fn recipe(a: &InitArgs<'_>) -> Result<Infallible> {
    let mut made = enter_namespaces(a)?;
    let mut landlock = Landlock::new(a.req.confinement.landlock)?;
    let (root, state) = build_rootfs(a, &mut landlock, &mut made)?;
    writable_submounts(a.req, &root, &mut landlock)?;
    let program = confine(
        a.req.vs,
        a.req.confinement,
        &a.chan,
        root,
        landlock,
        a.req.options.preserve_fds,
    )?;
    ready_and_exec(a, program, &state)
}

/// Steps 1-4: hygiene, id maps, joined user namespace, session.
fn enter_namespaces(a: &InitArgs<'_>) -> Result<Made> {
    let vs = a.req.vs;
    // 1. The parent's lock on the state directory is already closed here (sys::clone_child: an
    //    inherited copy would block `start`).
    //    Not dumpable: while this process holds the runtime's memory inside the container's namespaces,
    //    nothing there may ptrace it or open /proc/<pid>/exe (runc CVE-2019-5736). execve resets it.
    //    Die with the parent until ready, so an interrupted create leaves no orphan.
    // Rootless, the parent (not root) writes the id maps, which the kernel lets it do only while this
    // process is dumpable (its /proc files are then the user's): until sync point 1, as runc does.
    // Nothing else is in its namespaces yet, and the user owns berth itself anyway.
    let new_user = vs.clone_flags.contains(CloneFlags::CLONE_NEWUSER);
    let dumpable_until_mapped = new_user && a.layout.rootless;
    if !dumpable_until_mapped {
        step("prctl", sys::set_non_dumpable().map_err(Into::into))?;
    }
    step(
        "prctl",
        sys::set_parent_death_signal(libc::SIGKILL).map_err(Into::into),
    )?;
    // Modes of what berth creates are exact; the process's umask is set just before exec.
    sys::umask(0);

    // 2. Sync point 1: wait until the parent has put this process into the container's cgroup (so
    //    its device rules hold before anything is opened) and, in a new user namespace, written the
    //    id maps; then become root there.
    //    In a new user namespace the parent also hands over the bind mounts it made with the host's
    //    view of their sources (this process's root may not reach them).
    let mut made = std::collections::HashMap::new();
    wait_continue(&a.chan, &mut made)?;
    if dumpable_until_mapped {
        step("prctl", sys::set_non_dumpable().map_err(Into::into))?;
    }
    if new_user {
        become_root()?;
    }
    if a.layout.cgroupns_later {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| Error::sys("unshare(CLONE_NEWCGROUP)", e))?;
    }

    // 3. A user namespace given by path is joined before any namespace it should own is created; a
    //    mount namespace given by path is joined by the init itself (never by the parent, which still
    //    has the state directory to write on the host), after the user namespace that may own it.
    //    Both are opened first, while the paths still resolve in the runtime's namespaces.
    let open_ns = |j: &JoinNs| sys::openat2(None, &j.path, libc::O_RDONLY, 0, 0);
    let user_fd = a.join_user.map(open_ns).transpose()?;
    let mount = vs.joins.iter().find(|j| j.typ == "mount");
    let mount_fd = mount.map(open_ns).transpose()?;
    if let (Some(j), Some(fd)) = (a.join_user, user_fd) {
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWUSER)
            .map_err(|e| Error::sys(format!("setns({}, user)", j.path.display()), e))?;
        check_joined_maps(vs, j)?;
        become_root()?;
        nix::sched::unshare(a.unshare_later)
            .map_err(|e| Error::sys(format!("unshare({:?})", a.unshare_later), e))?;
        after_joined_user(a, &mut made)?;
    }
    if let (Some(j), Some(fd)) = (mount, mount_fd) {
        nix::sched::setns(fd.as_fd(), CloneFlags::CLONE_NEWNS)
            .map_err(|e| Error::sys(format!("setns({}, mount)", j.path.display()), e))
            .with_context(|| format!("joining the mount namespace {}", j.path.display()))?;
    }

    // 4. A session of our own: the container is nobody's job-control child; and a session keyring of
    //    its own, so it cannot read the caller's keys.
    nix::unistd::setsid().map_err(|e| Error::sys("setsid()", e))?;
    if !a.req.options.no_new_keyring {
        sys::join_new_session_keyring()?;
    }
    Ok(made)
}

/// The bind mounts the parent made, by mount index.
type Made = std::collections::HashMap<usize, OwnedFd>;

/// Steps 5-8: the rootfs on fds, hooks, sysctls and read-only/masked paths, pivot_root. Returns the
/// container's `/` and the state JSON for in-container hooks.
fn build_rootfs(
    a: &InitArgs<'_>,
    landlock: &mut Landlock,
    made: &mut Made,
) -> Result<(Root, String)> {
    let vs = a.req.vs;
    // 5. The rootfs, all on fds (see mount_rootfs).
    let (root, null) = mount_rootfs(a, landlock, made)?;
    // 6. Sync point 2: prestart/createRuntime hooks run in the parent now; createContainer hooks run
    //    here, in the container's mount namespace before pivot_root, as the runtime-spec says.
    let state = container_hooks(a)?;
    // 7. Sysctls and the loopback, then read-only and masked paths (see harden_paths).
    // 8. Into the root, unless a joined mount namespace already is the container's.
    let root = match null {
        Some(null) => {
            harden_paths(vs, &root, null)?;
            enter_root(root, a.req.options.no_pivot)?
        }
        None => {
            settings(vs)?;
            root
        }
    };
    names(vs)?;
    if !vs.joins_mount() {
        // The root turns read-only last, since the steps before may create mount points in it.
        if vs.spec.root.as_ref().is_some_and(|r| r.readonly) {
            rootfs::make_root_readonly()?;
        }
        rootfs::set_root_propagation(vs)?;
    }
    Ok((root, state))
}

/// Step 5. The rootfs, all on fds: propagation, rootfs bound onto itself, the spec's mounts in order,
/// /dev, devices, the terminal, the working directory. Host paths (the verified /dev/null, returned)
/// are opened now, while the host is reachable. In a joined mount namespace nothing is mounted (its
/// mounts are shared with whoever made it): the init only chroots into root.path as that namespace
/// sees it. Landlock rules are taken from the mounts as they are attached (see security::landlock).
fn mount_rootfs(
    a: &InitArgs<'_>,
    landlock: &mut Landlock,
    made: &mut Made,
) -> Result<(Root, Option<OwnedFd>)> {
    let vs = a.req.vs;
    let joined = vs.joins_mount();
    let vetted = a.req.policy.map(|enforcer| crate::policy::Vetted {
        enforcer,
        rootfs: &vs.rootfs,
    });
    let sources: &dyn OpenSource = match &vetted {
        Some(v) => v,
        None => &HostPath,
    };
    let root = if joined {
        step("rootfs", rootfs::chroot_joined(vs))?
    } else {
        peer_binds(a, sources, made)?;
        // Under a policy the rootfs is the fd the policy opened beneath its allowed root.
        let vetted = match a.req.policy {
            Some(e) => Some(e.open_rootfs(&vs.rootfs).map_err(Error::Refused)?.0),
            None => None,
        };
        step("rootfs", rootfs::bind_rootfs(vs, vetted))?
    };
    let root_grant = if vs.spec.root.as_ref().is_some_and(|r| r.readonly) {
        Grant::Read
    } else {
        Grant::Write
    };
    landlock.allow_root(root.fd(), root_grant)?;
    let mut env = mount_env(a, sources, std::mem::take(made));
    let dev = crate::mount::apply::apply_all(&root, a.req.plan, &mut env, &mut |op, fd, dir| {
        let grant = if op.top_read_only() {
            Grant::Read
        } else {
            Grant::Write
        };
        // One rule per bind source (its clones are one inode to Landlock); a new filesystem is its
        // own object.
        let key = || match &op.kind {
            crate::mount::plan::OpKind::Bind { source, .. } => Key::Source(source.clone()),
            crate::mount::plan::OpKind::Fs { .. } => Key::Mount(op.index),
        };
        landlock.allow_known(fd.as_fd(), dir, key, grant)
    })?;
    if let Some(dev) = &dev {
        step(
            "populating /dev",
            rootfs::populate_dev(dev, binds_devices(vs)),
        )?;
    }
    if !joined {
        rootfs::create_devices(&root, &vs.linux().devices, binds_devices(vs))?;
    }
    if vs.process.terminal {
        step("process.terminal", setup_terminal(a, &root, dev.as_ref()))?;
    }
    let null = if joined {
        None
    } else {
        Some(step("masking paths", rootfs::host_null())?)
    };
    drop(step(
        "process.cwd",
        root.mkdir_all(Path::new(&vs.process.cwd)),
    )?);
    Ok((root, null))
}

/// Binds asked `shared` or `rshared` (Kubernetes' `mountPropagation: Bidirectional`, what CSI node
/// plugins use): their trees are cloned now, before `/` becomes a slave of the host, while this
/// namespace's copy of each source is still a peer of the host's mount, so the clone is a peer too
/// and a mount the container makes inside it appears on the host (as with runc). Everything else
/// stays a slave of the host during setup. In a new user namespace the copies are already slaves
/// (the kernel's rule for a less privileged namespace), and nothing flows back, as with runc.
fn peer_binds(a: &InitArgs<'_>, sources: &dyn OpenSource, made: &mut Made) -> Result<()> {
    if a.req.vs.userns {
        return Ok(());
    }
    let mut usernses = crate::mount::idmap::Usernses::default();
    for op in a.req.plan.iter().filter(|op| is_peer_bind(op)) {
        if let std::collections::hash_map::Entry::Vacant(e) = made.entry(op.index) {
            let tree = crate::mount::apply::detached_tree(op, sources, &mut usernses)
                .map_err(|e| crate::mount::apply::explain(None, op, e))
                .with_context(|| op.label())?;
            e.insert(tree);
        }
    }
    Ok(())
}

/// Device nodes are bound from the host's instead of made with mknod when the container has a user
/// namespace, or berth runs in one (rootless Podman, `unshare -Ur`): mknod needs host root.
fn binds_devices(vs: &ValidSpec) -> bool {
    vs.userns || crate::spec::rootless::in_user_namespace()
}

/// A bind asked `shared` or `rshared`.
fn is_peer_bind(op: &crate::mount::plan::MountOp) -> bool {
    matches!(op.kind, crate::mount::plan::OpKind::Bind { .. })
        && matches!(op.propagation, Some((flag, _)) if flag == libc::MS_SHARED)
}

/// What mount::apply needs beyond the plan: where bind sources come from (the policy's vetted fds,
/// or the host path), the trees the parent handed over, and the container's cgroup directories
/// (bound where the spec mounts cgroup).
fn mount_env<'a>(
    a: &InitArgs<'_>,
    sources: &'a dyn OpenSource,
    made: Made,
) -> crate::mount::apply::Env<'a> {
    let vs = a.req.vs;
    let cgroup = a.req.cgroup.map(|(c, _)| c);
    let (cgroup_v1, cgroup_v2_bind) = cgroup_view(a);
    crate::mount::apply::Env {
        sources,
        early: a
            .req
            .plan
            .iter()
            .filter(|op| is_peer_bind(op) && !vs.userns)
            .map(|op| op.index)
            .collect(),
        made,
        usernses: Default::default(),
        dests: Default::default(),
        closer: Default::default(),
        root_special: None,
        cgroup_v1,
        cgroup_v2_bind: cgroup_v2_bind.or_else(|| {
            cgroup
                .filter(|c| c.version == crate::cgroups::Version::V2)
                .filter(|_| !own_cgroupns(a))
                .and_then(|c| c.dirs.first())
                .map(|d| d.path.clone())
        }),
    }
}

/// Whether the init gets a cgroup namespace that is not the runtime's own: a new one, or one
/// joined by path that is another's.
fn own_cgroupns(a: &InitArgs<'_>) -> bool {
    let vs = a.req.vs;
    if vs.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP) || a.layout.cgroupns_later {
        return true;
    }
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &std::path::Path| std::fs::metadata(p).ok().map(|m| m.ino());
    vs.joins
        .iter()
        .find(|j| j.typ == "cgroup")
        .is_some_and(|j| ino(&j.path) != ino(std::path::Path::new("/proc/self/ns/cgroup")))
}

/// What a `cgroup` mount shows: on cgroup v1, a tmpfs with the container's directory of each
/// hierarchy bound in (first), or on v2 its directory bound (second). A container without a cgroup
/// of its own and without a cgroup namespace is shown the cgroup it runs in, bound the same way:
/// a fresh cgroup2 mount made from the host's cgroup namespace would re-apply the hierarchy-wide
/// root options (nsdelegate, memory_recursiveprot, ...) from its own mount options, clearing the
/// host's, and waits in synchronize_rcu (5-13 ms here) on every start. In a user namespace such a
/// mount is refused anyway (an empty tmpfs stands in, see mount::apply).
fn cgroup_view(
    a: &InitArgs<'_>,
) -> (
    Vec<(String, std::path::PathBuf)>,
    Option<std::path::PathBuf>,
) {
    let vs = a.req.vs;
    match a.req.cgroup.map(|(c, _)| c) {
        Some(c) if c.version == crate::cgroups::Version::V1 => (c.named_dirs(), None),
        Some(_) => (Vec::new(), None),
        None if vs.userns || own_cgroupns(a) => (Vec::new(), None),
        None => match crate::cgroups::own_dirs() {
            Ok((crate::cgroups::Version::V2, dirs)) => {
                (Vec::new(), dirs.into_iter().next().map(|(_, p)| p))
            }
            Ok((crate::cgroups::Version::V1, dirs)) => (dirs, None),
            Err(e) => {
                crate::logging::debug(&format!("the cgroup berth runs in: {e}"));
                (Vec::new(), None)
            }
        },
    }
}

/// Step 6: sync point 2 and the createContainer hooks; returns the state JSON the parent sent.
fn container_hooks(a: &InitArgs<'_>) -> Result<String> {
    if !a.layout.hooks {
        return Ok(String::new());
    }
    a.chan.send(&Msg::RunHooks)?;
    let state = match a.chan.recv()? {
        Msg::State(s) => s,
        other => {
            return Err(Error::State(format!(
                "sync socket: expected the state, got {other:?}"
            )));
        }
    };
    if let Some(h) = &a.req.vs.spec.hooks {
        crate::hooks::run_list("createContainer", &h.create_container, &state)?;
    }
    Ok(state)
}

/// Sysctls (through berth's own procfs, so the read-only /proc/sys below does not stop them), and
/// for the front end's `--net none` a network namespace of its own with loopback up (as crun does).
fn settings(vs: &ValidSpec) -> Result<()> {
    rootfs::write_sysctls(vs)?;
    let loopback = vs
        .spec
        .annotations
        .get(crate::spec::LOOPBACK_ANNOTATION)
        .map(String::as_str)
        == Some("up");
    if loopback && vs.clone_flags.contains(CloneFlags::CLONE_NEWNET) {
        step("loopback", sys::loopback_up().map_err(Into::into))?;
    }
    Ok(())
}

/// Step 7: [`settings`], then read-only and masked paths. Before pivot_root: cloning the host's
/// /dev/null onto masked files needs its mount in our namespace, which ends when the old root is
/// detached.
fn harden_paths(vs: &ValidSpec, root: &Root, null: OwnedFd) -> Result<()> {
    settings(vs)?;
    let linux = vs.linux();
    rootfs::readonly_paths(root, &linux.readonly_paths)?;
    rootfs::mask_paths(root, &linux.masked_paths, &null)
}

/// Step 8: into the root. From here on `/` is the container's.
fn enter_root(root: Root, no_pivot: bool) -> Result<Root> {
    step("entering the rootfs", rootfs::enter(&root, no_pivot))?;
    drop(root);
    step("opening /", Root::open(Path::new("/")))
}

/// The container's hostname and domain name (its own UTS namespace: validate).
fn names(vs: &ValidSpec) -> Result<()> {
    if let Some(h) = vs.spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| Error::sys(format!("sethostname({h:?})"), e))?;
    }
    if let Some(d) = vs.spec.domainname.as_deref().filter(|d| !d.is_empty()) {
        sys::set_domainname(d)?;
    }
    Ok(())
}

/// What is ready to exec: the program's path, argv and envp.
pub(crate) type Program = (CString, Vec<CString>, Vec<CString>);

/// Steps 9-14: AppArmor, limits, everything berth still does with syscalls an old seccomp profile may
/// lack (cwd, program lookup, close_range), then identity and the confinement layers.
///
/// Why this order: seccomp goes in as late as possible, so that a profile only has to allow what
/// every profile allows (runc's rule). Without no_new_privs installing it needs CAP_SYS_ADMIN, which
/// the identity step may drop, so it comes right before identity; with no_new_privs it comes last,
/// right before "ready" (a SCMP_ACT_NOTIFY listener fd still has to reach the parent). After it berth
/// makes only setgroups/setres[ug]id/capset/prctl (identity), sendmsg (sync), read (exec fifo),
/// rt_sigaction/umask and execve. Landlock, like seccomp, needs CAP_SYS_ADMIN without no_new_privs and
/// comes after every mount (a Landlocked process cannot mount).
pub(crate) fn confine(
    vs: &ValidSpec,
    c: &Confinement,
    chan: &Channel,
    root: Root,
    landlock: Landlock,
    preserve_fds: u32,
) -> Result<Program> {
    let p = &vs.process;
    let mut report = Report {
        landlock_mode: Some(c.landlock),
        ..Report::default()
    };
    // 9. The AppArmor label for the next execve, first of the security layers (the ones after it can
    //    only narrow what the process may do), through berth's own procfs.
    //    SELinux's domain likewise (the label is only still set when SELinux is on: security::prepare).
    if let Some(profile) = p.apparmor_profile.as_deref().filter(|s| !s.is_empty()) {
        crate::security::apparmor::apply(profile, &rootfs::private_proc()?)?;
        report.apparmor = Enforced::Full;
    }
    if let Some(label) = p.selinux_label.as_deref().filter(|s| !s.is_empty()) {
        crate::security::selinux::apply(label, &rootfs::private_proc()?)?;
        report.selinux = Enforced::Full;
    }
    // 10. rlimits while still privileged (raising a hard limit needs CAP_SYS_RESOURCE), and the
    //     execution domain (linux.personality), before seccomp could refuse personality(2).
    //     Then memory policy, scheduler and I/O priority, while still privileged.
    set_rlimits(vs)?;
    super::attrs::apply(vs)?;
    if let Some(persona) = vs.personality {
        step(
            "linux.personality",
            sys::set_personality(persona).map_err(Into::into),
        )?;
    }
    let mut landlock = landlock;
    allow_handed_in(&mut landlock, preserve_fds)?;
    let mut landlock = Some(landlock);
    if !p.no_new_privileges {
        report.landlock = restrict_landlock(landlock.take())?;
    }
    // 11. The working directory (openat2, getcwd), the program (PATH lookup) and close-on-exec for every
    //     fd but stdio and the preserved ones (close_range), before seccomp can refuse those calls.
    enter_cwd(vs, &root)?;
    let program = program(vs)?;
    sys::cloexec_from(3 + preserve_fds)?;
    // 12. Without no_new_privs: seccomp while CAP_SYS_ADMIN is still effective.
    if !p.no_new_privileges {
        report.seccomp = install_seccomp(c, chan)?;
    }
    // 13. Identity: bounding set while CAP_SETPCAP is effective, the uid change with keepcaps, the other
    //     capability sets.
    report.capabilities = set_identity(vs)?;
    // 14. With no_new_privs: set it, then Landlock (on the fds of the final mount table, reopened
    //     taken while mounting) and seccomp last. (`root` is dropped on return: nothing after this
    //     resolves a path.)
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| Error::sys("prctl(PR_SET_NO_NEW_PRIVS)", e))?;
        report.no_new_privs = Enforced::Full;
        report.landlock = restrict_landlock(landlock.take())?;
        report.seccomp = install_seccomp(c, chan)?;
    }
    chan.send(&Msg::Report(report))?;
    Ok(program)
}

/// The working directory, resolved inside the root (as root, before identity, as runc's first chdir
/// attempt; the process's own permission is the kernel's business once it runs), then checked to be
/// inside the container (a leaked host fd as cwd is runc CVE-2024-21626).
fn enter_cwd(vs: &ValidSpec, root: &Root) -> Result<()> {
    let cwd_path = &vs.process.cwd;
    let cwd = step(
        "process.cwd",
        root.open_at(Path::new(cwd_path), libc::O_PATH | libc::O_DIRECTORY),
    )?;
    nix::unistd::fchdir(cwd.as_raw_fd())
        .map_err(|e| Error::sys(format!("fchdir({cwd_path})"), e))?;
    drop(cwd);
    let here = nix::unistd::getcwd().map_err(|e| Error::sys("getcwd()", e))?;
    if !here.is_absolute() || here.starts_with("(unreachable)") {
        return Err(Error::SafetyViolation(format!(
            "process.cwd {cwd_path:?} is outside the container"
        )));
    }
    Ok(())
}

/// Installs linux.seccomp, if any; a SCMP_ACT_NOTIFY listener fd goes to the parent, which hands it to
/// the agent at listenerPath.
fn install_seccomp(c: &Confinement, chan: &Channel) -> Result<Enforced> {
    let Some(c) = &c.seccomp else {
        return Ok(Enforced::Off);
    };
    if let Some(listener) = crate::security::seccomp::install(c)? {
        chan.send_with(&Msg::SeccompFd, Some(listener.as_raw_fd()))?;
    }
    Ok(Enforced::Full)
}

/// Steps 15-18: ready, the wait for start, startContainer hooks, execve. Only syscalls every seccomp
/// profile allows from here on.
fn ready_and_exec(a: &InitArgs<'_>, program: Program, state: &str) -> Result<Infallible> {
    let vs = a.req.vs;
    let p = &vs.process;
    // 15. Sync point 3: ready. The init still dies with the parent until the parent says the state
    //     that names it is saved: a create killed at any moment before leaves no orphan, one killed
    //     after leaves a container `state`, `kill` and `delete` know. (The identity change cleared the
    //     parent-death signal, so it is set again; a parent that died before that fails the send.)
    sys::set_parent_death_signal(libc::SIGKILL)?;
    a.chan.send(&Msg::Ready)?;

    // 16. Wait for start: for create, after the parent's word that the state is saved (answered once
    //     the parent-death signal is off, so create may exit), a byte on the exec fifo, which this
    //     process has held open read-write since the clone (so the read blocks until `start` writes,
    //     and no permission check depends on the user the process has become); for run, a Continue
    //     frame, sent once the state is saved.
    match &a.gate {
        Gate::Fifo(fifo) => {
            a.chan.expect(Msg::Saved)?;
            sys::set_parent_death_signal(0)?;
            a.chan.send(&Msg::Detached)?;
            let mut b = [0u8; 1];
            loop {
                match nix::unistd::read(fifo.as_raw_fd(), &mut b) {
                    Ok(1) => break,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Ok(_) => {
                        return Err(Error::State("exec.fifo: closed before start".into()));
                    }
                    Err(e) => return Err(Error::sys("read(exec.fifo)", e)),
                }
            }
        }
        Gate::Socket => {
            a.chan.expect(Msg::Continue)?;
            sys::set_parent_death_signal(0)?;
        }
    }

    // 17. startContainer hooks, in the container, before the user's program.
    if let Some(h) = &vs.spec.hooks {
        crate::hooks::run_start_container(&h.start_container, state, &p.env)?;
    }

    // 18. The umask and signals the process should start with; then exec.
    sys::umask(p.user.umask.unwrap_or(0o022));
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

/// Applies the Landlock ruleset filled while mounting; returns what was enforced.
/// Under a read-only root, an rbind whose top is read-only but not its tree (`ro` without `rro`)
/// keeps its writable submounts writable, as the kernel's mount flags say: the rule taken from the
/// bind's fd grants its whole tree read/exec only, so each writable submount below it gets a rule of
/// its own, from the mount table as the container sees it (after pivot_root). Landlock never makes
/// a mount narrower than its flags.
fn writable_submounts(req: &Request<'_>, root: &Root, landlock: &mut Landlock) -> Result<()> {
    let root_ro = req.vs.spec.root.as_ref().is_some_and(|r| r.readonly);
    let dests: Vec<String> = req
        .plan
        .iter()
        .filter(|op| {
            matches!(
                op.kind,
                crate::mount::plan::OpKind::Bind {
                    recursive: true,
                    ..
                }
            ) && op.top_read_only()
                && !op.tree_read_only()
        })
        .map(|op| format!("{}/", op.dest.display()))
        .collect();
    if !root_ro || dests.is_empty() || !landlock.active() {
        return Ok(());
    }
    let proc = rootfs::private_proc()?;
    let file = proc.open_at(Path::new("thread-self/mountinfo"), libc::O_RDONLY)?;
    let buf = sys::read_proc_file(std::fs::File::from(file))
        .map_err(|e| crate::error::io_err("read", Path::new("/proc/thread-self/mountinfo"), e))?;
    super::exec::mount_rules(landlock, root, &buf, |point| {
        dests.iter().any(|d| point.starts_with(d.as_bytes()))
    })
}

/// The fds the caller handed in (`--preserve-fds`: 3, 4, ...) stay usable under Landlock, as they
/// are without it: each file or directory among them gets a rule granting what the kernel's own
/// checks then decide (reopening it through /proc/self/fd/N, or opening beneath a directory fd),
/// while `..` out of such a directory still reaches nothing the ruleset allows. Reached through
/// berth's own procfs: the container's /proc may be masked or absent.
fn allow_handed_in(landlock: &mut Landlock, preserve_fds: u32) -> Result<()> {
    if preserve_fds == 0 || !landlock.active() {
        return Ok(());
    }
    let proc = rootfs::private_proc()?;
    for n in 3..3 + preserve_fds {
        // O_PATH through the magic link: the same file, whatever mode the fd was opened with.
        match sys::openat2(
            Some(proc.fd()),
            Path::new(&format!("thread-self/fd/{n}")),
            libc::O_PATH,
            0,
            0,
        ) {
            Ok(fd) => landlock
                .allow_handed_in(fd.as_fd())
                .with_context(|| format!("--preserve-fds: fd {n}"))?,
            // Not open: nothing to allow.
            Err(e) if e.errno == nix::errno::Errno::ENOENT => {}
            Err(e) => return Err(Error::from(e).within(format!("--preserve-fds: fd {n}"))),
        }
    }
    Ok(())
}

fn restrict_landlock(landlock: Option<Landlock>) -> Result<Enforced> {
    landlock.map_or(Ok(Enforced::Off), Landlock::restrict)
}

/// setresgid/setresuid 0 inside a new user namespace (the process was unmapped until now).
/// Mappings given beside a joined user namespace (containerd 2.x passes both) must be that
/// namespace's: its maps as this process, now inside it, reads them (relative to its parent).
fn check_joined_maps(vs: &ValidSpec, j: &JoinNs) -> Result<()> {
    let l = vs.linux();
    for (field, file, want) in [
        ("linux.uidMappings", "uid_map", &l.uid_mappings),
        ("linux.gidMappings", "gid_map", &l.gid_mappings),
    ] {
        if want.is_empty() {
            continue;
        }
        let path = format!("/proc/self/{file}");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::error::io_err("read", Path::new(&path), e))?;
        let mut have: Vec<(u32, u32, u32)> = text
            .lines()
            .filter_map(|line| {
                let n: Vec<u32> = line
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect();
                (n.len() == 3).then(|| (n[0], n[1], n[2]))
            })
            .collect();
        let mut want: Vec<(u32, u32, u32)> = want
            .iter()
            .map(|m| (m.container_id, m.host_id, m.size))
            .collect();
        have.sort_unstable();
        want.sort_unstable();
        if have != want {
            return Err(Error::InvalidSpec(format!(
                "{field}: {want:?} (containerID, hostID, size) do not match the joined user namespace {}, whose {file} is {have:?}",
                j.path.display()
            )));
        }
    }
    Ok(())
}

/// Waits for the parent's go, keeping the bind mounts it hands over on the way.
fn wait_continue(chan: &Channel, made: &mut Made) -> Result<()> {
    loop {
        match chan.recv_with()? {
            (Msg::Continue, _) => return Ok(()),
            (Msg::Tree(i), Some(fd)) => {
                made.insert(i as usize, fd);
            }
            (other, _) => {
                return Err(Error::State(format!(
                    "sync socket: expected Continue, got {other:?}"
                )));
            }
        }
    }
}

/// The sync point after joining a user namespace and making the namespaces it owns (sync point 1b):
/// the parent hands over the bind mounts it opened with the host's view (this process's root, a
/// mapped uid, may not reach their sources), as for a new user namespace.
///
/// A pid namespace made here is owned by that user namespace (its root may mount /proc there), but
/// unshare moves only children into it: this process forks the init, tells the parent its pid and
/// exits; the init goes on once the parent (a child subreaper) has reaped this process, and so become
/// the init's parent, and then dies with it again until ready. Without a new pid namespace this
/// process goes on itself (pid 0 in the message).
fn after_joined_user(a: &InitArgs<'_>, made: &mut Made) -> Result<()> {
    if !a.unshare_later.contains(CloneFlags::CLONE_NEWPID) {
        a.chan.send(&Msg::Pid(0))?;
        return wait_continue(&a.chan, made);
    }
    match sys::clone_fork(0)? {
        sys::Forked::Parent(pid) => {
            let sent = a.chan.send(&Msg::Pid(pid as u32));
            sys::exit_now(i32::from(sent.is_err()))
        }
        sys::Forked::Child => {
            wait_continue(&a.chan, made)?;
            step(
                "prctl",
                sys::set_parent_death_signal(libc::SIGKILL).map_err(Into::into),
            )
        }
    }
}

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

fn set_identity(vs: &ValidSpec) -> Result<Enforced> {
    let u = &vs.process.user;
    // An absent process.capabilities (or set) grants nothing, as in runc.
    let none = crate::spec::Capabilities::default();
    let caps = vs.process.capabilities.as_ref().unwrap_or(&none);
    step(
        "process.capabilities.bounding",
        crate::security::caps::apply_bounding(caps),
    )?;
    nix::sys::prctl::set_keepcaps(true).map_err(|e| Error::sys("prctl(PR_SET_KEEPCAPS)", e))?;
    let groups: Vec<Gid> = u
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // setgroups is refused in a user namespace whose setgroups file says deny; then only an empty list
    // is possible and the kernel already has it.
    if !((vs.userns || crate::spec::rootless::in_user_namespace()) && groups.is_empty()) {
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
    step(
        "process.capabilities",
        crate::security::caps::apply_sets(caps),
    )
}

fn cstring(s: &[u8], what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec(format!("{what}: contains a NUL byte")))
}

/// The path to exec (args[0], or found in the process's PATH), argv and envp.
fn program(vs: &ValidSpec) -> Result<Program> {
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
            // A file that is there but cannot be run is EACCES (the front end's 126), one that is
            // not there ENOENT (its 127), as the shell and Podman tell them apart.
            let errno = if std::fs::symlink_metadata(&c).is_ok() {
                nix::errno::Errno::EACCES
            } else {
                nix::errno::Errno::ENOENT
            };
            return Err(Error::Program {
                what: format!("process.args[0]: {arg0:?} is not an executable file"),
                errno,
            });
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
            .ok_or_else(|| Error::Program {
                what: format!("process.args[0]: {arg0:?} not found in $PATH ({path_var})"),
                errno: nix::errno::Errno::ENOENT,
            })?
    };
    crate::security::exe::check(&path)?;
    Ok((
        cstring(path.as_os_str().as_bytes(), "process.args[0]")?,
        argv,
        envp,
    ))
}

/// A pseudo-terminal from the container's own devpts: the master goes to the console socket (or to
/// the parent for `run`), the slave becomes stdio, the controlling terminal and /dev/console.
fn setup_terminal(a: &InitArgs<'_>, root: &Root, dev: Option<&OwnedFd>) -> Result<()> {
    terminal(&a.chan, a.console.as_ref(), root, dev)
}

/// The terminal, for the init or an exec'd process: see [`setup_terminal`].
pub(crate) fn terminal(
    chan: &Channel,
    console_socket: Option<&OwnedFd>,
    root: &Root,
    dev: Option<&OwnedFd>,
) -> Result<()> {
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
    match console_socket {
        Some(sock) => {
            let ch = Channel::from_fd(sock.try_clone().map_err(|e| {
                Error::sys(
                    "dup(console socket)",
                    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            })?);
            ch.send_raw_fd(b"/dev/ptmx", master.as_raw_fd())?;
        }
        None => chan.send_with(&Msg::Fd, Some(master.as_raw_fd()))?,
    }
    drop(master);
    sys::dup_onto_stdio(&slave)?;
    sys::set_controlling_tty(&slave)?;
    Ok(())
}
