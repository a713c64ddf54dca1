//! Start: writes one byte into the exec fifo, which releases the init blocked reading it, removes the
//! fifo (the container is now `running`) and runs the poststart hooks (without the lock).

use super::Context;
use crate::error::{Error, Result, io_err};
use crate::state::Container;
use std::os::unix::fs::OpenOptionsExt;

/// Starts the created container `id`: releases its init, then runs the poststart hooks.
pub fn start(ctx: &Context, id: &str) -> Result<()> {
    let c = Container::load(&ctx.root, id)?;
    let status = c.status();
    if !status.can_start() {
        return Err(Error::State(format!(
            "cannot start container {:?}: it is {}, not created",
            id,
            status.as_str()
        )));
    }
    let fifo_path = c.fifo();
    let pid = c.saved.as_ref().map_or(0, |s| s.pid);
    let died = || {
        Error::State(format!(
            "cannot start container {:?}: its init (pid {pid}) died",
            id
        ))
    };
    // The init holds the fifo open read-write and blocks reading it: without a reader (ENXIO) it is gone.
    let fifo = match std::fs::File::options()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&fifo_path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => return Err(died()),
        Err(e) => return Err(io_err("open", &fifo_path, e)),
    };
    match nix::unistd::write(&fifo, b"0") {
        Ok(1) => {}
        Ok(_) | Err(nix::errno::Errno::EPIPE) => return Err(died()),
        Err(e) => return Err(Error::sys(format!("write({})", fifo_path.display()), e)),
    }
    // The init's fifo fd is close-on-exec: once no reader is left (POLLERR on our write end) the
    // user's program has been exec'd, so a signal sent right after `start` reaches it rather than
    // berth's init, whose default dispositions a pid namespace's init would drop. Bounded, so that
    // slow startContainer hooks never hold `start` up for long.
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&fifo),
        nix::poll::PollFlags::empty(),
    )];
    let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16));
    drop(fifo);
    std::fs::remove_file(&fifo_path).map_err(|e| io_err("unlink", &fifo_path, e))?;
    // poststart hooks run without the container's lock, so one may call berth on this container.
    let hooks = c.saved.as_ref().and_then(|s| s.hooks.clone());
    let state = serde_json::to_string(&c.poststart_state()).unwrap_or_default();
    drop(c);
    if let Some(h) = hooks {
        crate::hooks::run_list_warn("poststart", &h.poststart, &state);
    }
    Ok(())
}
