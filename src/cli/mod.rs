//! runc's command line: global options, one file per verb. Options are accepted before and after the
//! container id, since orchestrators and conformance suites pass them either way.

mod check;
mod checkpoint;
mod create;
mod delete;
pub mod docs;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod mounts;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use crate::error::{Result, io_err};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Text for `--version`: berth's version and the runtime-spec version it implements.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.3.0");

/// berth: a runc-compatible OCI runtime whose volume mounts cannot be tricked.
#[derive(Debug, Parser)]
#[command(name = "berth", version, long_version = LONG_VERSION, about)]
pub struct Cli {
    /// Options every verb takes.
    #[command(flatten)]
    pub global: Global,
    /// The verb.
    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `time=... level=... msg=...`
    Text,
    /// JSON lines.
    Json,
}

/// Global options (runc's). They belong before the verb, as with runc; [`parse`] also takes them after
/// it.
#[derive(Debug, clap::Args)]
pub struct Global {
    /// Directory for container state (default /run/berth; for a user other than root,
    /// $XDG_RUNTIME_DIR/berth).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Log file (default: stderr).
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Debug logging.
    #[arg(long)]
    pub debug: bool,
    /// Host mount policy file (else BERTH_POLICY, else /etc/berth/policy.json when present).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// The systemd cgroup driver: the cgroup is a transient scope (cgroupsPath `slice:prefix:name`).
    #[arg(long)]
    pub systemd_cgroup: bool,
}

impl Global {
    /// The lifecycle's context: state root, policy, cgroup driver.
    pub fn context(&self) -> crate::lifecycle::Context {
        crate::lifecycle::Context {
            root: self.state_root(),
            policy: self.policy.clone(),
            systemd_cgroup: self.systemd_cgroup,
        }
    }
}

impl Global {
    /// `--root`, else the default (worked out only then: orchestrators always pass `--root`,
    /// so their calls never read /proc/self/uid_map for it).
    pub fn state_root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(default_root)
    }
}

/// Where state goes without `--root`: /run/berth for host root, as runc's /run/runc; without host
/// root (another user, or uid 0 in a user namespace: rootless Podman, `unshare -Ur`)
/// $XDG_RUNTIME_DIR/berth, or /tmp/berth-UID without XDG_RUNTIME_DIR, as runc.
fn default_root() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if !crate::spec::rootless::active() {
        return PathBuf::from("/run/berth");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("berth"),
        None => PathBuf::from(format!("/tmp/berth-{uid}")),
    }
}

/// The verbs.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Write a default config.json into the bundle directory.
    Spec(spec::Args),
    /// Create a container; its process waits for `start`.
    Create(create::CreateArgs),
    /// Start the process of a created container.
    Start(start::Args),
    /// Create, start and wait for a container (exits with its exit code).
    ///
    /// With a bundle (-b), as runc. With --rootfs, berth's front end: no bundle, a spec built from
    /// the flags below, strict defaults (read-only root and volumes, no new privileges, no network
    /// but loopback, berth's seccomp profile), the container removed when its process exits.
    #[command(after_long_help = run::EXAMPLES)]
    Run(Box<run::Args>),
    /// Print a container's state as JSON.
    State(state::Args),
    /// Send a signal to a container's process.
    Kill(kill::Args),
    /// Delete a container's state (and kill it with --force).
    Delete(delete::Args),
    /// List containers.
    List(list::Args),
    /// Print features.json: what this build of berth supports.
    Features,
    /// Check a bundle's mounts against the host mount policy without running anything.
    Check(check::Args),
    /// Freeze every process of the container (its cgroup).
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(pause::Args),
    /// List the processes of a container.
    Ps(ps::Args),
    /// Change the resource limits of a container.
    Update(update::Args),
    /// Stats of a container (runc's events).
    Events(events::Args),
    /// Run a new process inside a running container.
    Exec(exec::Args),
    /// Checkpoint a running container with CRIU.
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a checkpoint with CRIU.
    Restore(checkpoint::RestoreArgs),
    /// Attach or detach volumes of a running container (live volumes).
    #[command(subcommand)]
    Mounts(mounts::Action),
    /// Print a shell completion script (bash, zsh or fish).
    Completion(docs::CompletionArgs),
    /// Print berth's man page, or write one page per verb into a directory.
    Man(docs::ManArgs),
}

/// The verbs for which [`Command::enters_container`] holds, by name.
const ENTERING_VERBS: [&str; 3] = ["create", "run", "exec"];

impl Command {
    /// Whether the verb starts processes inside a container (they must run from berth's sealed copy).
    pub fn enters_container(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run(_) | Command::Exec(_)
        )
    }
}

/// Whether the command line's verb is one that enters a container, read from the raw arguments
/// before clap parses them, so that berth re-executes from its sealed copy before spending anything
/// on parsing (which it would otherwise do twice). The verb is the first argument that is neither an
/// option nor the value of a global option that takes one (`--root X`; `--root=X` is one argument).
/// Only a shortcut: after parsing, [`Command::enters_container`] decides, and a verb missed here is
/// re-executed for then.
pub fn verb_enters_container(args: &[std::ffi::OsString]) -> bool {
    const TAKES_VALUE: [&str; 4] = ["--root", "--log", "--log-format", "--policy"];
    let mut rest = args.iter().skip(1);
    while let Some(a) = rest.next() {
        let Some(a) = a.to_str() else { return false };
        if TAKES_VALUE.contains(&a) {
            rest.next();
        } else if !a.starts_with('-') {
            return ENTERING_VERBS.contains(&a);
        }
    }
    false
}

/// Parses the command line. Global options go before the verb (runc's grammar, and what every client
/// passes); one after the verb is also accepted: only then is the command line parsed again with the
/// global options propagated to every verb, which clap does by copying them into each (a third of a
/// `berth state`'s start-up when done on every call).
/// `args` is the whole command line, the program's name first.
pub fn parse(args: &[std::ffi::OsString]) -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::UnknownArgument => {
            let mut cmd = Cli::command();
            let globals: Vec<clap::Id> = cmd
                .get_arguments()
                .filter(|a| a.get_long().is_some_and(|l| l != "help" && l != "version"))
                .map(|a| a.get_id().clone())
                .collect();
            for id in globals {
                cmd = cmd.mut_arg(id, |a| a.global(true));
            }
            let matches = cmd.get_matches_from(args);
            Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
        }
        Err(e) => e.exit(),
    }
}

/// Writes `text` and a newline to stdout. A reader that went away (EPIPE: `berth list | head`) ends
/// berth quietly, as any Unix filter; another write error is an error naming stdout. Never a panic.
pub fn out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let r = o
        .write_all(text.as_bytes())
        .and_then(|()| o.write_all(b"\n"))
        .and_then(|()| o.flush());
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(io_err("write", std::path::Path::new("stdout"), e)),
    }
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    let g = &cli.global;
    match cli.command {
        Command::Spec(a) => spec::run(a),
        Command::Create(a) => create::run(g, a),
        Command::Start(a) => start::run(g, a),
        Command::Run(a) => run::run(g, *a),
        Command::State(a) => state::run(g, a),
        Command::Kill(a) => kill::run(g, a),
        Command::Delete(a) => delete::run(g, a),
        Command::List(a) => list::run(g, a),
        Command::Features => features::run(),
        Command::Check(a) => check::run(g, a),
        Command::Pause(a) => pause::run(g, a, true),
        Command::Resume(a) => pause::run(g, a, false),
        Command::Ps(a) => ps::run(g, a),
        Command::Update(a) => update::run(g, a),
        Command::Events(a) => events::run(g, a),
        Command::Exec(a) => exec::run(g, a),
        Command::Mounts(a) => mounts::run(g, a),
        Command::Checkpoint(a) => checkpoint::checkpoint(g, a),
        Command::Restore(a) => checkpoint::restore(g, a),
        Command::Completion(_) | Command::Man(_) => {
            docs::forward(&std::env::args_os().skip(1).collect::<Vec<_>>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<std::ffi::OsString> {
        s.split(' ').map(Into::into).collect()
    }

    /// The shortcut agrees with the parsed verb on the command lines clients send, and is never
    /// fooled into "yes" by an option's value or an id that happens to be a verb's name.
    #[test]
    fn verb_is_read_as_clap_reads_it() {
        for (line, enters) in [
            ("berth run --bundle b c", true),
            ("berth --root /r create --bundle b c", true),
            (
                "berth --root=/r --log /l --log-format json exec c /bin/true",
                true,
            ),
            ("berth --debug --systemd-cgroup run -b b c", true),
            ("berth --root run state c", false),
            ("berth --log exec --root /r state c", false),
            ("berth state run", false),
            ("berth delete --force exec", false),
            ("berth --policy create list", false),
            ("berth", false),
        ] {
            let args = words(line);
            assert_eq!(verb_enters_container(&args), enters, "{line}");
            if let Ok(cli) = Cli::try_parse_from(&args) {
                assert_eq!(cli.command.enters_container(), enters, "{line} (clap)");
            }
        }
    }
}
