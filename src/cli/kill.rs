//! `berth kill ID [SIGNAL]`: signal the container's init (SIGTERM by default; a name with or without
//! SIG, or a number). `--all` signals every process in the container's pid namespace, found by
//! comparing /proc/<pid>/ns/pid with the init's (no cgroup needed).

use super::Global;
use crate::error::{Error, Result};
use crate::state::Container;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use std::str::FromStr;

/// `kill` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// Parses `KILL`, `SIGKILL`, `sigkill` or `9`.
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| Error::InvalidSpec(format!("signal {n} does not exist")));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    Signal::from_str(&name).map_err(|_| Error::InvalidSpec(format!("unknown signal {s:?}")))
}

fn pid_ns_ino(pid: i32) -> Option<(u64, u64)> {
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// `berth kill`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let sig = parse_signal(&a.signal)?;
    let c = Container::load(&g.root, &a.id)?;
    let status = c.status();
    let Some(pid) = c.live_pid().filter(|_| status.can_kill()) else {
        // runc's contract, which containerd matches on: `kill --all` of a stopped container succeeds
        // (nothing is left to signal); a plain kill fails with "container not running".
        if a.all {
            return Ok(0);
        }
        return Err(Error::State(format!(
            "cannot kill container {:?}: container not running (it is {})",
            a.id,
            status.as_str()
        )));
    };
    let own_ns = c.saved.as_ref().is_some_and(|s| s.own_pid_ns);
    let cgroup = c.saved.as_ref().and_then(|s| s.cgroup.as_ref());
    if let (true, Some(cg)) = (a.all, cgroup) {
        // Its cgroup says which processes are the container's (v2: cgroup.kill for SIGKILL). A paused
        // container is thawed for a fatal signal, or its processes could not act on it.
        if sig == Signal::SIGKILL && cg.frozen() == Some(true) {
            cg.freeze(false)?;
        }
        cg.signal_all(sig);
        return Ok(0);
    }
    if a.all && own_ns {
        // Every process whose pid namespace is the init's. The init goes last, since its death takes
        // the namespace (and the others) with it.
        let ns = pid_ns_ino(pid);
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if p != pid && ns.is_some() && pid_ns_ino(p) == ns {
                let _ = kill(Pid::from_raw(p), sig);
            }
        }
    } else if a.all {
        crate::logging::warn(
            "kill --all: the container shares a pid namespace and has no cgroup; only its init is signalled",
        );
    }
    kill(Pid::from_raw(pid), sig).map_err(|e| Error::sys(format!("kill({pid}, {sig})"), e))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn signal_forms() {
        use nix::sys::signal::Signal;
        assert_eq!(super::parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(super::parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(super::parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(super::parse_signal("NOPE").is_err());
    }
}
