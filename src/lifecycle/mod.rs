//! berth's engine, and its library API: create, start, run, exec, kill, delete, pause, resume and
//! update,
//! with their state transitions, callable from Rust without the command line (the CRI tests, a shim,
//! an orchestrator). The CLI's verbs parse their arguments, build a [`Launch`] or an [`ExecRequest`]
//! once, call one function here and print the result.
//!
//! Every function takes a [`Context`]: where state lives, which host mount policy applies, which
//! cgroup driver (crun's `libcrun_context_s`). Errors are berth's [`Error`], with a kind
//! to branch on; on an error nothing is left behind (no state directory, process, cgroup or mount).
//!
//! ```no_run
//! use berth::lifecycle::{self, Context, Launch, Start};
//!
//! let ctx = Context::new("/run/berth");
//! let mut vs = lifecycle::load_bundle("/path/to/bundle".as_ref())?;
//! let launch = Launch::new("web", Start::Create);
//! let created = lifecycle::create(&ctx, &launch, &mut vs)?;
//! drop(created); // the init waits on its exec fifo; the state is saved
//! lifecycle::start(&ctx, "web")?;
//! lifecycle::kill(&ctx, "web", nix::sys::signal::Signal::SIGKILL, false)?;
//! lifecycle::delete(&ctx, "web", true)?;
//! # Ok::<(), berth::Error>(())
//! ```

mod check;
mod checkpoint;
mod create;
mod criu;
mod delete;
mod exec;
mod features;
mod pause;
mod run;
mod start;
mod update;
mod volumes;

pub use check::{Report as CheckReport, check};
pub use checkpoint::{CriuOptions, checkpoint, parse_page_server, restore};
pub use create::{Created, create};
pub use delete::{delete, kill, parse_signal};
pub use exec::{ExecProcess, ExecRequest, Overrides, exec};
pub use features::features;
pub use pause::{pause, resume};
pub use run::{Ran, run};
pub use start::start;
pub use update::update;
pub use volumes::{LiveRequest, add as add_volumes, check_live, remove as remove_volumes};

pub use crate::process::ChildGuard;
pub use crate::process::spawn::Options;

use crate::error::{Context as _, Error, Result, io_err};
use crate::policy::{Enforcer, Policy};
use crate::spec::ValidSpec;
use std::path::{Path, PathBuf};

/// What every lifecycle call needs beyond its own arguments: runc's global options.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The state root (`--root`): `<root>/<id>/state.json` and the container's lock.
    pub root: PathBuf,
    /// The host mount policy file (`--policy`); else `BERTH_POLICY`, else /etc/berth/policy.json
    /// when present.
    pub policy: Option<PathBuf>,
    /// The systemd cgroup driver (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
}

impl Context {
    /// A context with state under `root`, the default policy look-up and the cgroupfs driver.
    pub fn new(root: impl Into<PathBuf>) -> Context {
        Context {
            root: root.into(),
            ..Context::default()
        }
    }

    /// The host mount policy for a container, if there is one, with the tenant the caller names (see
    /// policy::bundle::resolve_tenant).
    pub fn enforcer(&self, tenant: Option<&str>, vs: &ValidSpec) -> Result<Option<Enforcer>> {
        let Some(policy) = Policy::load(self.policy.as_deref())? else {
            if tenant.is_some() {
                return Err(Error::Policy("--tenant given, but there is no policy (--policy, BERTH_POLICY or /etc/berth/policy.json)".into()));
            }
            return Ok(None);
        };
        let tenant = crate::policy::bundle::resolve_tenant(&policy, tenant, vs)?;
        Enforcer::new(policy, tenant).map(Some)
    }
}

/// How the init waits to be started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// `create`: the init waits on the exec fifo for [`start`].
    Create,
    /// `run`: started at once over the sync socket.
    Run {
        /// `--detach`: the state outlives this berth process.
        detach: bool,
    },
}

impl Start {
    /// The state must survive a power loss only when it outlives this process: a foreground `run`
    /// deletes it on exit, and after a host crash its container is gone anyway (the rename alone keeps
    /// it atomic for readers). Skipping that fsync is ~5% of a `run`'s CPU time.
    fn durable(self) -> bool {
        self != Start::Run { detach: false }
    }
}

/// One container launch, described once by the caller: the id, how it starts, and runc's create
/// options. The parent and the init read it by reference; nothing copies it field by field.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The container id.
    pub id: String,
    /// Create (wait for start) or run.
    pub start: Start,
    /// `--pid-file`: written atomically once the state is saved.
    pub pid_file: Option<PathBuf>,
    /// `--tenant`: whose host mount policy applies (else the orchestrator's annotation).
    pub tenant: Option<String>,
    /// The options the init follows (console socket, preserved fds, no-pivot, keyring).
    pub options: Options,
}

impl Launch {
    /// A launch of `id` with runc's defaults.
    pub fn new(id: impl Into<String>, start: Start) -> Launch {
        Launch {
            id: id.into(),
            start,
            pid_file: None,
            tenant: None,
            options: Options::default(),
        }
    }
}

/// Reads and validates `<bundle>/config.json` (rootless adaptations applied).
pub fn load_bundle(bundle: &Path) -> Result<ValidSpec> {
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path)
        .map_err(|e| io_err("read", &path, e))
        .with_context(|| "loading the bundle".into())?;
    let mut spec = crate::spec::parse(&bytes)?;
    crate::spec::rootless::adapt(&mut spec);
    ValidSpec::new(spec, bundle)
}

/// The fds systemd socket activation passes (LISTEN_FDS from 3 on, when meant for this process):
/// they go to the container's process too, after `--preserve-fds`.
pub fn listen_fds() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID").is_ok_and(|p| p == std::process::id().to_string());
    match std::env::var("LISTEN_FDS") {
        Ok(n) if pid_ok => n.parse().unwrap_or(0),
        _ => 0,
    }
}

/// Writes a pid file atomically (orchestrators poll for it).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    crate::files::replace_file(path, "berth-tmp", pid.to_string().as_bytes(), 0o644, false)
        .with_context(|| "--pid-file".into())
}

/// A runc-style `config.json` template (`berth spec`): runc's default spec, with berth's default
/// seccomp profile when `seccomp`, adapted for a rootless user when `rootless`.
pub fn spec_template(seccomp: bool, rootless: bool) -> crate::spec::Spec {
    let mut spec = crate::spec::default::default_spec();
    if seccomp {
        spec.linux.get_or_insert_with(Default::default).seccomp =
            Some(crate::security::seccomp::default_profile());
    }
    if rootless {
        crate::spec::rootless::rootless_spec(&mut spec);
    }
    spec
}
