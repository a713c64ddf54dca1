//! `berth delete ID`: a stopped or created container is deleted; a running one only with --force,
//! which kills it first. The init is waited for (by its pid *and* start time) before the state goes,
//! then the poststop hooks run (failures warn).

use super::Global;
use crate::error::{Error, Result};
use crate::state::Container;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// `delete` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kill a running container first.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// Container id.
    pub id: String,
}

/// `berth delete`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let (c, damage) = match Container::load_any(&g.root, &a.id) {
        Err(e)
            if e.kind() == crate::ErrorKind::State && e.to_string().contains("does not exist") =>
        {
            // Perhaps an interrupted delete of it: finish that (its cgroup, its tombstone).
            crate::state::sweep_tombs(&g.root);
            return if a.force { Ok(0) } else { Err(e) };
        }
        r => r?,
    };
    // Every verb refuses a damaged state; delete -f removes what berth can still identify.
    if let Some(d) = damage {
        if !a.force {
            return Err(d);
        }
        return delete_damaged(&a.id, c, &d);
    }
    let status = c.status();
    if !status.can_delete(a.force) {
        return Err(Error::State(format!(
            "cannot delete container {:?}: it is {}; stop it first or use --force",
            a.id,
            status.as_str()
        )));
    }
    kill_everything(&a.id, &c)?;
    let state = serde_json::to_string(&c.oci_state()).unwrap_or_default();
    let hooks = c.saved.as_ref().and_then(|s| s.hooks.clone());
    c.remove()?;
    crate::state::sweep_tombs(&g.root);
    if let Some(h) = hooks {
        crate::hooks::run_list_warn("poststop", &h.poststop, &state);
    }
    Ok(0)
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
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
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
fn delete_damaged(id: &str, c: Container, damage: &Error) -> Result<i32> {
    let known = c.init_record().is_some() || c.any_cgroup().is_some();
    kill_everything(id, &c)?;
    c.remove()?;
    if known {
        crate::logging::warn(&format!(
            "container {id:?}: removed despite a damaged state ({damage})"
        ));
        Ok(0)
    } else {
        Err(Error::State(format!(
            "container {id:?}: removed its state directory, but its init could not be identified ({damage}; no init record and no cgroup): if it still runs, stop it by hand"
        )))
    }
}
