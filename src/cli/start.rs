//! `berth start ID`: opens the exec fifo for reading, which releases the init blocked on opening it for
//! writing, waits for its byte (or for the init to die), removes the fifo (the container is now
//! `running`) and runs the poststart hooks.

use super::Global;
use crate::error::{Error, Result, io_err};
use crate::state::{Container, Status};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

/// `start` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// `berth start`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    let status = c.status();
    if !status.can_start() {
        return Err(Error::State(format!(
            "cannot start container {:?}: it is {}, not created",
            a.id,
            status.as_str()
        )));
    }
    let fifo_path = c.fifo();
    let fifo = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo_path)
        .map_err(|e| io_err("open", &fifo_path, e))?;
    let pid = c.saved.as_ref().map_or(0, |s| s.pid);
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {
                if c.status() == Status::Stopped {
                    return Err(Error::State(format!(
                        "cannot start container {:?}: its init (pid {pid}) died",
                        a.id
                    )));
                }
            }
            Ok(_) => {
                let mut b = [0u8; 1];
                match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&fifo), &mut b) {
                    Ok(1) => break,
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                        // The writer has not written yet (or went away): check it is alive and wait.
                        if c.status() == Status::Stopped {
                            return Err(Error::State(format!(
                                "cannot start container {:?}: its init died",
                                a.id
                            )));
                        }
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(e) => return Err(Error::sys(format!("read({})", fifo_path.display()), e)),
                }
            }
            Err(e) => return Err(Error::sys("poll(exec.fifo)", e)),
        }
    }
    std::fs::remove_file(&fifo_path).map_err(|e| io_err("unlink", &fifo_path, e))?;
    if let Some(h) = c.saved.as_ref().and_then(|s| s.hooks.as_ref()) {
        let state = serde_json::to_string(&c.oci_state()).unwrap_or_default();
        crate::hooks::run_list_warn("poststart", &h.poststart, &state);
    }
    Ok(0)
}
