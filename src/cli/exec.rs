//! `berth exec [OPTIONS] ID [-- CMD ARGS...]`: runc's exec. The process is `--process FILE` (a
//! runtime-spec process object) or the container's own process with the command and the options
//! below over it; it runs with the container's confinement (see process::exec). Without --detach the
//! exit code is the process's (128+N for signal N), signals are forwarded and the terminal relayed as
//! for `run`; with --detach, `--pid-file` is written once it runs.

use super::Global;
use super::create::write_pid_file;
use crate::error::{Error, Result, io_err};
use crate::process::exec::{self, Target};
use crate::spec::{Process, ValidSpec};
use crate::state::{Container, Status};
use std::path::PathBuf;

/// `exec` options (runc's).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A runtime-spec process object (JSON) to run instead of a command.
    #[arg(long, short = 'p')]
    pub process: Option<PathBuf>,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// KEY=value, added to (or replacing in) the container's environment.
    #[arg(long, short = 'e')]
    pub env: Vec<String>,
    /// Allocate a terminal.
    #[arg(long, short = 't')]
    pub tty: bool,
    /// UID[:GID].
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(long, short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (to every set).
    #[arg(long, short = 'c')]
    pub cap: Vec<String>,
    /// Set no_new_privs.
    #[arg(long)]
    pub no_new_privs: bool,
    /// AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// SELinux label for the process (runc's --process-label).
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    /// Pass this many extra fds (3, 4, ...) to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Write the process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master side.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Return once the process runs.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Exec even into a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id.
    pub id: String,
    /// The command and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process to run: --process, or the container's own with the options over it.
fn process_of(a: &Args, base: &Process) -> Result<Process> {
    if let Some(path) = &a.process {
        let bytes = std::fs::read(path).map_err(|e| io_err("read", path, e))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        return serde_path_to_error::deserialize(de).map_err(|e| {
            Error::InvalidSpec(format!(
                "--process {}: process.{}: {}",
                path.display(),
                e.path(),
                e.inner()
            ))
        });
    }
    if a.command.is_empty() {
        return Err(Error::InvalidSpec(
            "exec needs a command (or --process FILE)".into(),
        ));
    }
    let mut p = base.clone();
    p.args = a.command.clone();
    p.terminal = a.tty;
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    for kv in &a.env {
        let key = kv.split('=').next().unwrap_or_default();
        p.env.retain(|e| e.split('=').next() != Some(key));
        p.env.push(kv.clone());
    }
    if let Some(u) = &a.user {
        let bad = || Error::InvalidSpec(format!("--user {u:?}: expected UID[:GID]"));
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (
                u.parse().map_err(|_| bad())?,
                Some(g.parse().map_err(|_| bad())?),
            ),
            None => (u.parse().map_err(|_| bad())?, None),
        };
        p.user.uid = uid;
        if let Some(g) = gid {
            p.user.gid = g;
        }
    }
    if !a.additional_gids.is_empty() {
        p.user.additional_gids = a.additional_gids.clone();
    }
    if !a.cap.is_empty() {
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
            for c in &a.cap {
                if !list.contains(c) {
                    list.push(c.clone());
                }
            }
        }
    }
    if a.no_new_privs {
        p.no_new_privileges = true;
    }
    if let Some(profile) = &a.apparmor {
        p.apparmor_profile = Some(profile.clone());
    }
    if let Some(label) = &a.process_label {
        p.selinux_label = Some(label.clone());
    }
    Ok(p)
}

/// `berth exec`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    let status = c.status();
    match status {
        Status::Stopped | Status::Creating => {
            return Err(Error::State(format!(
                "cannot exec in a stopped container ({:?} is {})",
                a.id,
                status.as_str()
            )));
        }
        Status::Paused if !a.ignore_paused => {
            return Err(Error::State(format!(
                "cannot exec in a paused container ({:?}; use --ignore-paused)",
                a.id
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
    drop(c);
    let mut vs = ValidSpec::new(crate::spec::parse(&bytes)?, &saved.bundle)?;
    let mut process = process_of(&a, &vs.process)?;
    crate::spec::validate::check_process(&mut process)?;
    // Under a host policy the process is held to it as the init was (refused, naming the set);
    // with or without one it never gets more than the init's bounding set.
    if let Some(policy) = crate::policy::Policy::load(g.policy.as_deref())?
        && let Some(err) = crate::policy::bundle::exec_findings(&policy, &process)
            .iter()
            .find_map(|f| f.to_error())
    {
        return Err(err);
    }
    exec::bound_by_init(&mut process, saved.pid)?;
    vs.process = process;
    if vs.process.terminal && a.detach && a.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "--tty: cannot allocate a tty for exec --detach without --console-socket".into(),
        ));
    }
    let console = match &a.console_socket {
        Some(p) => Some(std::os::fd::OwnedFd::from(crate::files::connect_socket(
            p,
            "--console-socket",
        )?)),
        None => None,
    };
    let mask = super::run::signal_mask();
    if !a.detach {
        nix::sys::signal::sigprocmask(nix::sys::signal::SigmaskHow::SIG_BLOCK, Some(&mask), None)
            .map_err(|e| Error::sys("sigprocmask", e))?;
    }
    let target = Target {
        pid: saved.pid,
        start_time: saved.start_time,
        cgroup: saved.cgroup.as_ref(),
        landlock: saved
            .landlock
            .unwrap_or(crate::security::landlock::Mode::Off),
        console,
        preserve_fds: a.preserve_fds,
    };
    let spawned = exec::spawn(&vs, &target)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, spawned.pid)?;
    }
    if a.detach {
        return Ok(0);
    }
    super::run::wait(spawned.pid, &mask, spawned.pty)
}
