//! Run: create, start at once, and (unless detached) supervise the process until it exits, then
//! delete the container (poststop hooks, state removed), as runc does. Signals sent to berth are
//! forwarded to the process and the terminal relayed (process::supervise).

use super::{Context, Launch, Start};
use crate::error::{Error, Result};
use crate::process::supervise;
use crate::process::sync::Msg;
use crate::spec::ValidSpec;
use crate::state::Container;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// Detached: the process runs; the container outlives this call.
    Detached,
    /// The process exited with this code (128+N when killed by signal N); the container is deleted.
    Exited(i32),
}

/// Runs the container `launch.id` from `vs`; `launch.start` must be [`Start::Run`].
pub fn run(ctx: &Context, launch: &Launch, vs: &mut ValidSpec) -> Result<Ran> {
    let Start::Run { detach } = launch.start else {
        return Err(Error::InvalidSpec(
            "run: the launch must start at once (Start::Run)".into(),
        ));
    };
    if detach && vs.process.terminal && launch.options.console_socket.is_none() {
        return Err(Error::InvalidSpec(
            "process.terminal is true: cannot allocate a tty for run --detach without --console-socket (it would be lost)".into(),
        ));
    }
    // Blocked before the process exists, so no signal meant for it is lost; the init unblocks its own.
    let mask = supervise::block_signals()?;
    let super::Created { container, init } = super::create(ctx, launch, vs)?;
    // Start: release the init; the sync socket then closes on its execve, or carries its last error.
    let started = init
        .channel
        .send(&Msg::Continue)
        .and_then(|()| match init.channel.recv() {
            Ok(Msg::Error {
                errno,
                msg,
                program,
            }) => Err(Error::Child {
                msg,
                errno,
                program,
            }),
            Ok(other) => Err(Error::State(format!(
                "sync socket: unexpected {other:?} after start"
            ))),
            Err(_) => Ok(()),
        });
    let hooks = container.saved.as_ref().and_then(|s| s.hooks.clone());
    let state = serde_json::to_string(&container.poststart_state()).unwrap_or_default();
    // Other commands (state, kill) must not wait on our lock while the container runs.
    drop(container);
    if let Err(e) = started {
        crate::process::ChildGuard::new(init.pid()).kill();
        if let Ok(c) = Container::load(&ctx.root, &launch.id) {
            let _ = c.remove();
        }
        return Err(e);
    }
    if let Some(h) = &hooks {
        crate::hooks::run_list_warn("poststart", &h.poststart, &state);
    }
    if detach {
        return Ok(Ran::Detached);
    }
    let code = supervise::wait(init.pid(), &mask, init.pty)?;
    if let Ok(c) = Container::load(&ctx.root, &launch.id) {
        if let Some(h) = &hooks {
            let state = serde_json::to_string(&c.oci_state()).unwrap_or_default();
            crate::hooks::run_list_warn("poststop", &h.poststop, &state);
        }
        c.remove()?;
    }
    Ok(Ran::Exited(code))
}
