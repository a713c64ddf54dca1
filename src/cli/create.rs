//! `berth create`, and the creation shared with `run`: load and validate the bundle, plan the mounts,
//! make the state directory, spawn the init, save the state. On any error the state directory is
//! removed again and the init (if any) is already killed, so nothing is half-done.

use super::Global;
use crate::error::{Context, Error, Result, io_err};
use crate::policy::{Enforcer, Policy};
use crate::process::spawn::{self, Spawned};
use crate::process::sync::Msg;
use crate::security::landlock::Mode;
use crate::spec::{self, ValidSpec};
use crate::state::{Container, Saved};
use std::path::{Path, PathBuf};

/// `create` options (also used by `run`).
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the init's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master side.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for ramfs roots).
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// The tenant whose host mount policy applies (else the `berth.tenant` annotation).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Container id.
    pub id: Option<String>,
}

impl CreateArgs {
    /// The container id (required for create and runc-style run).
    pub fn id(&self) -> Result<&str> {
        self.id
            .as_deref()
            .ok_or_else(|| Error::InvalidSpec("a container id is required".into()))
    }
}

/// The host mount policy for this container, if there is one: `--policy`, `BERTH_POLICY` or
/// /etc/berth/policy.json, with the tenant the caller names (see policy::bundle::resolve_tenant).
pub fn enforcer(g: &Global, tenant: Option<&str>, vs: &ValidSpec) -> Result<Option<Enforcer>> {
    let Some(policy) = Policy::load(g.policy.as_deref())? else {
        if tenant.is_some() {
            return Err(Error::Policy("--tenant given, but there is no policy (--policy, BERTH_POLICY or /etc/berth/policy.json)".into()));
        }
        return Ok(None);
    };
    let tenant = crate::policy::bundle::resolve_tenant(&policy, tenant, vs)?;
    Enforcer::new(policy, tenant).map(Some)
}

/// Reads and validates `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<ValidSpec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path)
        .map_err(|e| io_err("read", &path, e))
        .with_context(|| "loading the bundle".into())?;
    let mut spec = spec::parse(&bytes)?;
    spec::rootless::adapt(&mut spec);
    ValidSpec::new(spec, bundle)
}

fn listen_fds() -> u32 {
    // systemd socket activation: LISTEN_FDS fds from 3 on go to the process when meant for us.
    let pid_ok = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    match std::env::var("LISTEN_FDS") {
        Ok(n) if pid_ok => n.parse().unwrap_or(0),
        _ => 0,
    }
}

/// How the container is being launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launch {
    /// `create`: the init waits on the exec fifo for `start`.
    Create,
    /// `run`: started at once over the sync socket.
    Run {
        /// `--detach`: the state outlives this berth process.
        detach: bool,
    },
}

impl Launch {
    /// The state must survive a power loss only when it outlives this process: a foreground `run`
    /// deletes it on exit, and after a host crash its container is gone anyway (the rename alone keeps
    /// it atomic for readers). Skipping that fsync is ~5% of a `run`'s CPU time.
    fn durable(self) -> bool {
        self != Launch::Run { detach: false }
    }
}

/// Creates the container `id` from `vs`; returns the locked container and its init.
pub fn create_container(
    g: &Global,
    a: &CreateArgs,
    vs: &mut ValidSpec,
    launch: Launch,
) -> Result<(Container, Spawned)> {
    let id = a.id()?;
    // In a joined mount namespace berth mounts nothing (see rootfs::chroot_joined).
    let plan = if vs.joins_mount() {
        Vec::new()
    } else {
        crate::mount::plan::plan_for(vs)?
    };
    let mut plan = plan;
    // Every policy refusal is found here, before a state directory or a process exists; then the
    // policy's hardening (recursive ro/nosuid/nodev, a read-only rootfs) goes into the plan and spec.
    let enforcer = enforcer(g, a.tenant.as_deref(), vs)?;
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
        e.harden(&mut plan);
        e.harden_root(vs);
    }
    // From here on the plan is the mounts: the spec keeps none, so the copy kept in the state
    // directory for exec and update (which use no mounts) is not thousands of volumes long.
    vs.spec.mounts = Vec::new();
    let landlock = Mode::for_spec(vs, enforcer.as_ref().and_then(|e| e.policy.landlock))?;
    let cgroup = crate::cgroups::Cgroup::for_spec(vs, id, g.systemd_cgroup)?;
    let mut c = Container::create(&g.root, id)?;
    let vs: &ValidSpec = vs;
    // The cgroup is recorded in the state directory before it exists, so a delete after a create
    // killed at any moment removes it.
    let made = match &cgroup {
        Some((cg, setup)) => c
            .record_cgroup(cg)
            .and_then(|()| cg.create(setup))
            .map(|()| Some((cg, setup))),
        None => Ok(None),
    };
    let result = made.and_then(|cgroup| {
        let guards = Guards {
            policy: enforcer.as_ref(),
            landlock,
            cgroup,
        };
        spawn_and_save(&mut c, a, vs, &plan, launch, &guards)
    });
    match result {
        Ok(s) => Ok((c, s)),
        Err(e) => {
            // The init is already killed and reaped (spawn's guard), so its cgroup is empty.
            let cleanup = cgroup
                .as_ref()
                .map_or(Ok(()), |(cg, _)| cg.remove())
                .and_then(|()| c.remove());
            if let Err(e2) = cleanup {
                crate::logging::warn(&format!("cleaning up after a failed create: {e2}"));
            }
            Err(e)
        }
    }
}

/// What bounds the container beyond its spec: the host policy, Landlock's mode, its cgroup.
#[derive(Debug, Clone, Copy)]
struct Guards<'a> {
    policy: Option<&'a Enforcer>,
    landlock: Mode,
    /// The cgroup and what goes into it.
    cgroup: Option<(&'a crate::cgroups::Cgroup, &'a crate::cgroups::Setup)>,
}

fn spawn_and_save(
    c: &mut Container,
    a: &CreateArgs,
    vs: &ValidSpec,
    plan: &[crate::mount::plan::MountOp],
    launch: Launch,
    guards: &Guards<'_>,
) -> Result<Spawned> {
    let Guards {
        policy,
        landlock,
        cgroup,
    } = *guards;
    let created = crate::logging::now_rfc3339();
    let id = a.id()?.to_string();
    let state_json = |pid: i32, status: &str| {
        let s = spec::State {
            oci_version: spec::OCI_VERSION.into(),
            id: id.clone(),
            status: status.into(),
            pid,
            bundle: vs.bundle.display().to_string(),
            rootfs: vs.rootfs.display().to_string(),
            created: created.clone(),
            owner: String::new(),
            annotations: vs.spec.annotations.clone(),
        };
        serde_json::to_string(&s).unwrap_or_default()
    };
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
    let opts = spawn::Options {
        state_dir: &c.dir.clone(),
        fifo_gate: launch == Launch::Create,
        console_socket: a.console_socket.as_deref(),
        preserve_fds: a.preserve_fds + listen_fds(),
        no_pivot: a.no_pivot,
        lock_fd: c.lock_fd(),
        new_keyring: !a.no_new_keyring,
        policy,
        landlock,
        cgroup,
        state_json: &state_json,
        on_init: &on_init,
    };
    let s = spawn::spawn(vs, plan, &opts)?;
    let saved = Saved {
        id: id.clone(),
        pid: s.pid,
        start_time: s.start_time,
        bundle: vs.bundle.clone(),
        rootfs: vs.rootfs.clone(),
        created,
        annotations: vs.spec.annotations.clone(),
        hooks: vs.spec.hooks.clone(),
        own_pid_ns: vs
            .clone_flags
            .contains(nix::sched::CloneFlags::CLONE_NEWPID),
        cgroup: cgroup.map(|(cg, _)| cg.clone()),
        landlock: Some(landlock),
    };
    // Once the state is durable the init may outlive this process (create): it stops dying with us
    // and says so, and only then may create exit.
    // The spec as created (policy hardening included, mounts left out), for exec and update.
    let config = c.dir.join(crate::state::CONFIG_FILE);
    let saved_ok = serde_json::to_vec(&vs.spec)
        .map_err(|e| Error::State(format!("encoding the config: {e}")))
        .and_then(|b| std::fs::write(&config, b).map_err(|e| io_err("write", &config, e)))
        .and_then(|()| c.save(saved, launch.durable()))
        .and_then(|()| match &a.pid_file {
            Some(p) => write_pid_file(p, s.pid),
            None => Ok(()),
        })
        .and_then(|()| {
            if launch == Launch::Create {
                s.channel.send(&Msg::Saved)?;
                s.channel.expect(Msg::Detached)?;
            }
            Ok(())
        });
    if let Err(e) = saved_ok {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(s.pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(s.pid), None);
        return Err(e);
    }
    Ok(s)
}

/// Writes the pid file atomically (orchestrators poll for it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    crate::files::replace_file(path, "berth-tmp", pid.to_string().as_bytes(), 0o644, false)
        .with_context(|| "--pid-file".into())
}

/// `berth create`.
pub fn run(g: &Global, a: CreateArgs) -> Result<i32> {
    let mut vs = load_spec(&a.bundle)?;
    create_container(g, &a, &mut vs, Launch::Create)?;
    Ok(0)
}
