//! `berth delete ID`: a stopped or created container is deleted; a running one only with --force,
//! which kills it first. The init is waited for (by its pid *and* start time) before the state goes,
//! then the poststop hooks run (failures warn).

use super::Global;
use crate::error::{Error, Result};
use crate::state::{Container, Status};
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
    let c = match Container::load(&g.root, &a.id) {
        Err(e)
            if a.force
                && e.kind() == crate::ErrorKind::State
                && e.to_string().contains("does not exist") =>
        {
            return Ok(0);
        }
        r => r?,
    };
    let status = c.status();
    if !status.can_delete(a.force) {
        return Err(Error::State(format!(
            "cannot delete container {:?}: it is {}; stop it first or use --force",
            a.id,
            status.as_str()
        )));
    }
    // Whatever is left in its cgroup dies too (a paused one is thawed first, or it could not).
    if let Some(cg) = c.saved.as_ref().and_then(|s| s.cgroup.as_ref()) {
        if cg.frozen() == Some(true) {
            let _ = cg.freeze(false);
        }
        cg.signal_all(Signal::SIGKILL);
    }
    if let Some(pid) = c.live_pid() {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.status() != Status::Stopped {
            if Instant::now() > deadline {
                return Err(Error::State(format!(
                    "container {:?}: pid {pid} did not die after SIGKILL",
                    a.id
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
    let state = serde_json::to_string(&c.oci_state()).unwrap_or_default();
    let hooks = c.saved.as_ref().and_then(|s| s.hooks.clone());
    c.remove()?;
    if let Some(h) = hooks {
        crate::hooks::run_list_warn("poststop", &h.poststop, &state);
    }
    Ok(0)
}
