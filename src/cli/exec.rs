//! `berth exec [OPTIONS] ID [-- CMD ARGS...]`: runc's exec. The process is `--process FILE` (a
//! runtime-spec process object) or the container's own process with the command and the options
//! below over it; it runs with the container's confinement (see process::exec). Without --detach the
//! exit code is the process's (128+N for signal N), signals are forwarded and the terminal relayed as
//! for `run`; with --detach, `--pid-file` is written once it runs.

use super::Global;
use crate::error::{Error, Result, io_err};
use crate::lifecycle::{self, ExecProcess, ExecRequest, Overrides, Ran};
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
    /// Run the process in this existing sub-cgroup of the container's: PATH, or
    /// CONTROLLER[,CONTROLLER]:PATH on cgroup v1 (repeatable).
    #[arg(long = "cgroup")]
    pub cgroup: Vec<String>,
    /// Container id.
    pub id: String,
    /// The command and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// The process: --process FILE, or the container's own with the options over it.
fn process_of(a: &Args) -> Result<ExecProcess> {
    if let Some(path) = &a.process {
        let bytes = std::fs::read(path).map_err(|e| io_err("read", path, e))?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        return serde_path_to_error::deserialize(de)
            .map(|p| ExecProcess::Given(Box::new(p)))
            .map_err(|e| {
                Error::InvalidSpec(format!(
                    "--process {}: process.{}: {}",
                    path.display(),
                    e.path(),
                    e.inner()
                ))
            });
    }
    let user = match &a.user {
        None => None,
        Some(u) => {
            let bad = || Error::InvalidSpec(format!("--user {u:?}: expected UID[:GID]"));
            Some(match u.split_once(':') {
                Some((u, g)) => (
                    u.parse().map_err(|_| bad())?,
                    Some(g.parse().map_err(|_| bad())?),
                ),
                None => (u.parse().map_err(|_| bad())?, None),
            })
        }
    };
    Ok(ExecProcess::Over(Overrides {
        args: a.command.clone(),
        tty: a.tty,
        cwd: a.cwd.clone(),
        env: a.env.clone(),
        user,
        additional_gids: a.additional_gids.clone(),
        caps: a.cap.clone(),
        no_new_privs: a.no_new_privs,
        apparmor: a.apparmor.clone(),
        selinux_label: a.process_label.clone(),
    }))
}

/// `berth exec`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let r = ExecRequest {
        process: process_of(&a)?,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
        sub_cgroups: a.cgroup.clone(),
    };
    match lifecycle::exec(&g.context(), &a.id, &r)? {
        Ran::Detached => Ok(0),
        Ran::Exited(code) => Ok(code),
    }
}
