//! Exec: one more process in a running container, confined as its init is (process::exec). Without
//! detach berth supervises it and returns its exit code; with detach the pid file is written once it
//! runs.

use super::{Context, Ran};
use crate::error::{Error, Result, io_err};
use crate::process::exec::{self, Target};
use crate::process::supervise;
use crate::spec::{Process, ValidSpec};
use crate::state::{Container, Status};
use std::path::PathBuf;

/// The process to exec.
#[derive(Debug, Clone)]
pub enum ExecProcess {
    /// A whole runtime-spec process object (`--process FILE`).
    Given(Box<Process>),
    /// The container's own process with these changes (runc exec's options).
    Over(Overrides),
}

/// runc exec's changes to the container's process.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The command and its arguments (required).
    pub args: Vec<String>,
    /// Allocate a terminal.
    pub tty: bool,
    /// Working directory in the container.
    pub cwd: Option<String>,
    /// KEY=value, added to (or replacing in) the container's environment.
    pub env: Vec<String>,
    /// The uid, and the gid if given.
    pub user: Option<(u32, Option<u32>)>,
    /// Additional gids (replacing the container's when not empty).
    pub additional_gids: Vec<u32>,
    /// Capabilities to add (to every set but the inheritable one).
    pub caps: Vec<String>,
    /// Set no_new_privs.
    pub no_new_privs: bool,
    /// AppArmor profile.
    pub apparmor: Option<String>,
    /// SELinux label.
    pub selinux_label: Option<String>,
}

impl Overrides {
    /// The container's process `base` with these changes.
    fn apply(&self, base: &Process) -> Result<Process> {
        if self.args.is_empty() {
            return Err(Error::InvalidSpec(
                "exec needs a command (or --process FILE)".into(),
            ));
        }
        let mut p = base.clone();
        p.args = self.args.clone();
        p.terminal = self.tty;
        if let Some(cwd) = &self.cwd {
            p.cwd = cwd.clone();
        }
        for kv in &self.env {
            let key = kv.split('=').next().unwrap_or_default();
            p.env.retain(|e| e.split('=').next() != Some(key));
            p.env.push(kv.clone());
        }
        if let Some((uid, gid)) = self.user {
            p.user.uid = uid;
            if let Some(g) = gid {
                p.user.gid = g;
            }
        }
        if !self.additional_gids.is_empty() {
            p.user.additional_gids = self.additional_gids.clone();
        }
        if !self.caps.is_empty() {
            let caps = p.capabilities.get_or_insert_with(Default::default);
            // As runc: every set but the inheritable one (which would let a file capability of any
            // program the process runs gain it).
            for set in [
                &mut caps.bounding,
                &mut caps.effective,
                &mut caps.permitted,
                &mut caps.ambient,
            ] {
                let list = set.get_or_insert_with(Vec::new);
                for c in &self.caps {
                    if !list.contains(c) {
                        list.push(c.clone());
                    }
                }
            }
        }
        if self.no_new_privs {
            p.no_new_privileges = true;
        }
        if let Some(profile) = &self.apparmor {
            p.apparmor_profile = Some(profile.clone());
        }
        if let Some(label) = &self.selinux_label {
            p.selinux_label = Some(label.clone());
        }
        Ok(p)
    }
}

/// One exec, described once by the caller.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The process.
    pub process: ExecProcess,
    /// Return once the process runs.
    pub detach: bool,
    /// Write the process's pid here.
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master side.
    pub console_socket: Option<PathBuf>,
    /// Fds 3..3+N stay open for the process.
    pub preserve_fds: u32,
    /// Exec even into a paused container.
    pub ignore_paused: bool,
    /// Existing sub-cgroups of the container's to run the process in (runc's `--cgroup`):
    /// `PATH`, or `CONTROLLER[,CONTROLLER]:PATH` on cgroup v1.
    pub sub_cgroups: Vec<String>,
}

/// The container's state as exec needs it, checked: it runs (or is paused, when allowed).
fn running(ctx: &Context, id: &str, ignore_paused: bool) -> Result<(crate::state::Saved, Vec<u8>)> {
    let c = Container::load(&ctx.root, id)?;
    let status = c.status();
    match status {
        Status::Stopped | Status::Creating => {
            return Err(Error::State(format!(
                "cannot exec in a stopped container ({id:?} is {})",
                status.as_str()
            )));
        }
        Status::Paused if !ignore_paused => {
            return Err(Error::State(format!(
                "cannot exec in a paused container ({id:?}; use --ignore-paused)"
            )));
        }
        _ => {}
    }
    let saved = c
        .saved
        .clone()
        .ok_or_else(|| Error::State("no state".into()))?;
    let config = c.dir.join(crate::state::CONFIG_FILE);
    let bytes = std::fs::read(&config).map_err(|e| io_err("read", &config, e))?;
    // The lock is not held while the process runs.
    Ok((saved, bytes))
}

/// Runs `r.process` in the running container `id`.
pub fn exec(ctx: &Context, id: &str, r: &ExecRequest) -> Result<Ran> {
    let (saved, config) = running(ctx, id, r.ignore_paused)?;
    let mut vs = ValidSpec::new(crate::spec::parse(&config)?, &saved.bundle)?;
    let mut process = match &r.process {
        ExecProcess::Given(p) => (**p).clone(),
        ExecProcess::Over(o) => o.apply(&vs.process)?,
    };
    crate::spec::validate::check_process(&process)?;
    crate::security::check_process(&mut process)?;
    // Under a host policy the process is held to it as the init was (refused, naming the set);
    // with or without one it never gets more than the init's bounding set.
    if let Some(policy) = crate::policy::Policy::load(ctx.policy.as_deref())?
        && let Some(err) = crate::policy::bundle::exec_findings(&policy, &process)
            .iter()
            .find_map(|f| f.to_error())
    {
        return Err(err);
    }
    exec::bound_by_init(&mut process, saved.pid)?;
    vs.process = process;
    if vs.process.terminal && r.detach && r.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "--tty: cannot allocate a tty for exec --detach without --console-socket".into(),
        ));
    }
    // The container's confinement as created (Landlock's mode as the init had it); the process's
    // security fields were checked above.
    let landlock = saved
        .landlock
        .unwrap_or(crate::security::landlock::Mode::Off);
    let confinement = crate::security::Confinement::with_landlock(&vs, landlock)?;
    let console = match &r.console_socket {
        Some(p) => Some(std::os::fd::OwnedFd::from(crate::files::connect_socket(
            p,
            "--console-socket",
        )?)),
        None => None,
    };
    let cgroup = match (&saved.cgroup, r.sub_cgroups.is_empty()) {
        (c, true) => c.clone(),
        (Some(c), false) => Some(c.sub(&r.sub_cgroups)?),
        (None, false) => {
            return Err(Error::InvalidSpec(format!(
                "--cgroup {:?}: container {id:?} has no cgroup of its own",
                r.sub_cgroups[0]
            )));
        }
    };
    let mask = if r.detach {
        None
    } else {
        Some(supervise::block_signals()?)
    };
    let target = Target {
        pid: saved.pid,
        start_time: saved.start_time,
        cgroup: cgroup.as_ref(),
        confinement: &confinement,
        console,
        preserve_fds: r.preserve_fds,
    };
    let mut spawned = exec::spawn(&vs, &target)?;
    if let Some(p) = &r.pid_file {
        super::write_pid_file(p, spawned.pid())?;
    }
    let pid = spawned.guard.disarm();
    match mask {
        None => Ok(Ran::Detached),
        Some(mask) => supervise::wait(pid, &mask, spawned.pty).map(Ran::Exited),
    }
}
