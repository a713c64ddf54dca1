//! [`ChildGuard`]: a child berth made is killed and reaped unless the guard is disarmed, so that no
//! error path leaves a process behind. Disarmed once what names the child is saved (the state for an
//! init, the pid file for a detached exec) or once it has been waited for.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

/// Kills (SIGKILL) and reaps a child of this process when dropped, unless disarmed.
#[derive(Debug)]
#[must_use = "a guard dropped at once kills its child at once"]
pub struct ChildGuard {
    pid: i32,
    armed: bool,
}

impl ChildGuard {
    /// Guards the child `pid`.
    pub fn new(pid: i32) -> ChildGuard {
        ChildGuard { pid, armed: true }
    }

    /// The child's pid (armed or not).
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Guards `pid` instead (the init that an intermediate child forked); the old one is not touched.
    pub fn replace(&mut self, pid: i32) {
        self.pid = pid;
        self.armed = true;
    }

    /// Leaves the child alone from now on; returns its pid.
    pub fn disarm(&mut self) -> i32 {
        self.armed = false;
        self.pid
    }

    /// Kills and reaps the child now.
    pub fn kill(mut self) {
        self.fire();
    }

    fn fire(&mut self) {
        if std::mem::take(&mut self.armed) {
            let p = Pid::from_raw(self.pid);
            let _ = kill(p, Signal::SIGKILL);
            let _ = waitpid(p, None);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.fire();
    }
}
