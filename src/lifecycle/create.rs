//! Create: validate what the spec and the policy ask, plan the mounts, make the state directory and
//! the cgroup, spawn the init, save the state. Every refusal is found before a state directory or a
//! process exists; on a later error the init is killed and reaped (its guard), its cgroup and the
//! state directory removed, so nothing is half-done.

use super::{Context, Launch, Start};
use crate::cgroups::{Cgroup, Setup};
use crate::error::{Error, Result, io_err};
use crate::mount::plan::MountOp;
use crate::policy::Enforcer;
use crate::process::spawn::{self, Request, Spawned};
use crate::process::sync::Msg;
use crate::security::Confinement;
use crate::spec::{self, ValidSpec};
use crate::state::{Container, Saved};

/// A created container: its state (locked) and its init, guarded until the caller lets it go.
#[derive(Debug)]
pub struct Created {
    /// The container's state directory, still locked by this process.
    pub container: Container,
    /// The init, ready; its guard is disarmed once the state is saved.
    pub init: Spawned,
}

/// What was checked and prepared before anything exists.
pub(super) struct Prepared {
    pub(super) plan: Vec<MountOp>,
    pub(super) enforcer: Option<Enforcer>,
    pub(super) confinement: Confinement,
    pub(super) cgroup: Option<(Cgroup, Setup)>,
}

/// Every check that can fail before anything exists: the policy (every refusal), the confinement
/// (seccomp compiled, labels checked), the mount plan with the policy's hardening, the cgroup.
pub(super) fn prepare(ctx: &Context, launch: &Launch, vs: &mut ValidSpec) -> Result<Prepared> {
    let enforcer = ctx.enforcer(launch.tenant.as_deref(), vs)?;
    let floor = enforcer.as_ref().and_then(|e| e.policy.landlock);
    let confinement = crate::security::prepare(vs, floor)?;
    // In a joined mount namespace berth mounts nothing (see rootfs::chroot_joined).
    let mut plan = if vs.joins_mount() {
        Vec::new()
    } else {
        crate::mount::plan::plan_for(vs)?
    };
    if let Some(e) = &enforcer {
        if vs.joins_mount() {
            return Err(Error::Policy(
                "linux.namespaces: joining a mount namespace by path is refused under a host mount policy (its mounts are not the bundle's to check)".into(),
            ));
        }
        if let Some(err) = e
            .bundle_findings(vs, &plan)
            .iter()
            .find_map(|f| f.to_error())
        {
            return Err(err);
        }
        e.check_all(&plan, &vs.rootfs)?;
        // The policy's hardening: recursive ro/nosuid/nodev, a read-only rootfs.
        e.harden(&mut plan);
        e.harden_root(vs);
    }
    // From here on the plan is the mounts: the spec keeps none, so the copy kept in the state
    // directory for exec and update (which use no mounts) is not thousands of volumes long.
    vs.spec.mounts = Vec::new();
    let cgroup = Cgroup::for_spec(vs, &launch.id, ctx.systemd_cgroup)?;
    Ok(Prepared {
        plan,
        enforcer,
        confinement,
        cgroup,
    })
}

/// Creates the container `launch.id` from `vs`. With [`Start::Create`] the init then waits for
/// [`super::start`] and outlives this process; with [`Start::Run`] the caller starts it over
/// `init.channel` (see [`super::run`]).
pub fn create(ctx: &Context, launch: &Launch, vs: &mut ValidSpec) -> Result<Created> {
    let p = prepare(ctx, launch, vs)?;
    let vs: &ValidSpec = vs;
    let (container, init) = with_state(ctx, &launch.id, &p, "create", |c| {
        spawn_and_save(c, launch, vs, &p)
    })?;
    Ok(Created { container, init })
}

/// Makes the state directory of `id` and the prepared cgroup (recorded in the state directory before
/// it exists, so a delete after a berth killed at any moment removes it), then runs `f`; when
/// anything fails, the cgroup and the state directory are removed again (`f` has killed what it
/// started by then, so the cgroup is empty). `verb` names the step in the warning a failed cleanup
/// gives.
pub(super) fn with_state<T>(
    ctx: &Context,
    id: &str,
    p: &Prepared,
    verb: &str,
    f: impl FnOnce(&mut Container) -> Result<T>,
) -> Result<(Container, T)> {
    let mut c = Container::create(&ctx.root, id)?;
    let cgroup = p.cgroup.as_ref();
    let made = match cgroup {
        Some((cg, setup)) => c.record_cgroup(cg).and_then(|()| cg.create(setup)),
        None => Ok(()),
    };
    match made.and_then(|()| f(&mut c)) {
        Ok(t) => Ok((c, t)),
        Err(e) => {
            let cleanup = cgroup
                .map_or(Ok(()), |(cg, _)| cg.remove())
                .and_then(|()| c.remove());
            if let Err(e2) = cleanup {
                crate::logging::warn(&format!("cleaning up after a failed {verb}: {e2}"));
            }
            Err(e)
        }
    }
}

/// The state JSON hooks are given, for the init's pid and a status.
fn state_json(launch: &Launch, vs: &ValidSpec, created: &str, pid: i32, status: &str) -> String {
    let s = spec::State {
        oci_version: spec::OCI_VERSION.into(),
        id: launch.id.clone(),
        status: status.into(),
        pid,
        bundle: vs.bundle.display().to_string(),
        rootfs: vs.rootfs.display().to_string(),
        created: created.to_string(),
        owner: String::new(),
        annotations: vs.spec.annotations.clone(),
        live_volumes: Vec::new(),
    };
    serde_json::to_string(&s).unwrap_or_default()
}

fn spawn_and_save(
    c: &mut Container,
    launch: &Launch,
    vs: &ValidSpec,
    p: &Prepared,
) -> Result<Spawned> {
    let created = crate::logging::now_rfc3339();
    let dir = c.dir.clone();
    let on_init = |pid: i32| {
        let r = crate::state::InitRecord {
            pid,
            start_time: crate::sys::process_start(pid).map_or(0, |(t, _)| t),
            bundle: vs.bundle.clone(),
            rootfs: vs.rootfs.clone(),
            created: created.clone(),
        };
        crate::state::record_init(&dir, &r)
    };
    let req = Request {
        vs,
        plan: &p.plan,
        options: &launch.options,
        confinement: &p.confinement,
        policy: p.enforcer.as_ref(),
        cgroup: p.cgroup.as_ref().map(|(cg, setup)| (cg, setup)),
        state_dir: &dir,
        fifo_gate: launch.start == Start::Create,
        lock_fd: c.lock_fd(),
        state_json: &|pid, status| state_json(launch, vs, &created, pid, status),
        on_init: &on_init,
    };
    let mut s = spawn::spawn(&req)?;
    save(c, launch, vs, p, &s, &created)?;
    if launch.start == Start::Create {
        // Once the state is durable the init may outlive this process: it stops dying with us and
        // says so, and only then may create exit.
        s.channel.send(&Msg::Saved)?;
        s.channel.expect(Msg::Detached)?;
    }
    s.guard.disarm();
    Ok(s)
}

/// What state.json records of a container made from `vs` and `p` whose init is `pid`, started at
/// `start_time` (Landlock as the confinement has it).
pub(super) fn saved_state(
    launch: &Launch,
    vs: &ValidSpec,
    p: &Prepared,
    (pid, start_time): (i32, u64),
    created: &str,
) -> Saved {
    Saved {
        id: launch.id.clone(),
        pid,
        start_time,
        bundle: vs.bundle.clone(),
        rootfs: vs.rootfs.clone(),
        created: created.to_string(),
        annotations: vs.spec.annotations.clone(),
        hooks: vs.spec.hooks.clone(),
        own_pid_ns: vs
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWPID),
        cgroup: p.cgroup.as_ref().map(|(cg, _)| cg.clone()),
        landlock: Some(p.confinement.landlock),
        tenant: p.enforcer.as_ref().and_then(|e| e.tenant.clone()),
        binds: p
            .plan
            .iter()
            .filter(|op| matches!(op.kind, crate::mount::plan::OpKind::Bind { .. }))
            .count(),
        root_readonly: vs.spec.root.as_ref().is_some_and(|r| r.readonly),
    }
}

/// Saves what later verbs need: the spec as created (policy hardening included, mounts left out) for
/// exec and update, what the confinement enforced, state.json, and the pid file.
fn save(
    c: &mut Container,
    launch: &Launch,
    vs: &ValidSpec,
    p: &Prepared,
    s: &Spawned,
    created: &str,
) -> Result<()> {
    let saved = saved_state(launch, vs, p, (s.pid(), s.start_time), created);
    let write = |name: &str, bytes: Vec<u8>| {
        let path = c.dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| io_err("write", &path, e))
    };
    let config = serde_json::to_vec(&vs.spec)
        .map_err(|e| Error::State(format!("encoding the config: {e}")))?;
    write(crate::state::CONFIG_FILE, config)?;
    if let Some(r) = &s.report {
        write(
            crate::state::CONFINEMENT_FILE,
            serde_json::to_vec(r).unwrap_or_default(),
        )?;
    }
    c.save(saved, launch.start.durable())?;
    match &launch.pid_file {
        Some(path) => super::write_pid_file(path, s.pid()),
        None => Ok(()),
    }
}
