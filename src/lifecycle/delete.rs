//! Kill and delete.
//!
//! Kill signals the container's init (a name with or without SIG, or a number: [`parse_signal`]);
//! `all` signals every process of the container: its cgroup's, or without one every process whose
//! pid namespace is the init's (compared by /proc/PID/ns/pid).
//!
//! Delete removes a stopped or created container; a running one only with force, which kills it
//! first. Whatever berth can identify as the container's is killed and waited for before the state
//! goes (see state::Container::remove for the order that survives a kill at any step).

use super::Context;
use crate::error::{Error, Result};
use crate::state::Container;
use nix::sys::signal::{Signal, kill as signal};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Deletes the container `id`: a stopped or created one; a running or paused one only with `force`,
/// which kills it first. The init is waited for (by its pid *and* start time) before the state goes,
/// then the poststop hooks run (failures warn). With `force`, a container that does not exist is
/// not an error, and one whose state is damaged is removed as far as berth can identify it (an error
/// says what could not be).
pub fn delete(ctx: &Context, id: &str, force: bool) -> Result<()> {
    let (c, damage) = match Container::load_any(&ctx.root, id) {
        Err(e) if e.is_no_such_container() => {
            // Perhaps an interrupted delete of it: finish that (its cgroup, its tombstone).
            crate::state::sweep_tombs(&ctx.root);
            return if force { Ok(()) } else { Err(e) };
        }
        r => r?,
    };
    // Every verb refuses a damaged state; delete -f removes what berth can still identify.
    if let Some(d) = damage {
        if !force {
            return Err(d);
        }
        return delete_damaged(id, c, &d);
    }
    let status = c.status();
    if !status.can_delete(force) {
        return Err(Error::State(format!(
            "cannot delete container {:?}: it is {}; stop it first or use --force",
            id,
            status.as_str()
        )));
    }
    kill_everything(id, &c)?;
    let state = serde_json::to_string(&c.oci_state()).unwrap_or_default();
    let hooks = c.saved.as_ref().and_then(|s| s.hooks.clone());
    c.remove()?;
    crate::state::sweep_tombs(&ctx.root);
    if let Some(h) = hooks {
        crate::hooks::run_list_warn("poststop", &h.poststop, &state);
    }
    Ok(())
}

/// Kills whatever berth can identify as the container's: every process of its cgroup (a paused one
/// thawed first, or it could not die), and its init by pid and start time (from the state or the
/// init record); waits until the init is gone. An init that outlives SIGKILL is an error: delete
/// never reports success while it lives.
fn kill_everything(id: &str, c: &Container) -> Result<()> {
    if let Some(cg) = c.any_cgroup() {
        if cg.frozen() == Some(true) {
            let _ = cg.freeze(false);
        }
        cg.signal_all(Signal::SIGKILL);
    }
    let inits = c.live_inits();
    for pid in &inits {
        let _ = signal(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for pid in inits {
        while c.live_inits().contains(&pid) {
            if Instant::now() > deadline {
                return Err(Error::State(format!(
                    "container {id:?}: pid {pid} did not die after SIGKILL"
                )));
            }
            // Our own child (a `run --detach` that exited is not its parent) is reaped here.
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(())
}

/// `delete -f` of a container whose state.json is corrupt, truncated or empty: the init found
/// through the init record and the recorded cgroup is killed, the cgroup and the directory removed;
/// what could not be identified is said, with a non-zero exit.
fn delete_damaged(id: &str, c: Container, damage: &Error) -> Result<()> {
    let known = c.init_record().is_some() || c.any_cgroup().is_some();
    kill_everything(id, &c)?;
    c.remove()?;
    if known {
        crate::logging::warn(&format!(
            "container {id:?}: removed despite a damaged state ({damage})"
        ));
        Ok(())
    } else {
        Err(Error::State(format!(
            "container {id:?}: removed its state directory, but its init could not be identified ({damage}; no init record and no cgroup): if it still runs, stop it by hand"
        )))
    }
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

/// Sends `sig` to the container `id`'s init; with `all`, to every process of the container (its
/// cgroup, else its pid namespace). runc's contract, which containerd matches on: `all` of a stopped
/// container succeeds (nothing is left to signal); a plain kill fails with "container not running".
pub fn kill(ctx: &Context, id: &str, sig: Signal, all: bool) -> Result<()> {
    let c = Container::load(&ctx.root, id)?;
    let status = c.status();
    let Some(pid) = c.live_pid().filter(|_| status.can_kill()) else {
        // runc's contract, which containerd matches on: `kill --all` of a stopped container succeeds
        // (nothing is left to signal); a plain kill fails with "container not running".
        if all {
            return Ok(());
        }
        return Err(Error::State(format!(
            "cannot kill container {:?}: container not running (it is {})",
            id,
            status.as_str()
        )));
    };
    let own_ns = c.saved.as_ref().is_some_and(|s| s.own_pid_ns);
    let cgroup = c.saved.as_ref().and_then(|s| s.cgroup.as_ref());
    if let (true, Some(cg)) = (all, cgroup) {
        // Its cgroup says which processes are the container's (v2: cgroup.kill for SIGKILL). A paused
        // container is thawed for a fatal signal, or its processes could not act on it.
        if sig == Signal::SIGKILL && cg.frozen() == Some(true) {
            cg.freeze(false)?;
        }
        cg.signal_all(sig);
        return Ok(());
    }
    if all && own_ns {
        // Every process whose pid namespace is the init's. The init goes last, since its death takes
        // the namespace (and the others) with it.
        let ns = pid_ns_ino(pid);
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if p != pid && ns.is_some() && pid_ns_ino(p) == ns {
                let _ = signal(Pid::from_raw(p), sig);
            }
        }
    } else if all {
        crate::logging::warn(
            "kill --all: the container shares a pid namespace and has no cgroup; only its init is signalled",
        );
    }
    signal(Pid::from_raw(pid), sig).map_err(|e| Error::sys(format!("kill({pid}, {sig})"), e))
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
