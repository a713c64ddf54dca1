//! Pause and resume: freeze and thaw the container's cgroup (v1 freezer, v2 cgroup.freeze), returning
//! once the kernel says it is done; `state` then says `paused`.

use super::Context;
use crate::error::{Error, Result};
use crate::state::{Container, Status};

/// Freezes (`frozen`) or thaws the container.
fn freeze(ctx: &Context, id: &str, frozen: bool) -> Result<()> {
    let c = Container::load(&ctx.root, id)?;
    let status = c.status();
    let (want, verb) = if frozen {
        (Status::Running, "pause")
    } else {
        (Status::Paused, "resume")
    };
    if status != want {
        return Err(Error::State(format!(
            "cannot {verb} container {:?}: it is {}, not {}",
            id,
            status.as_str(),
            want.as_str()
        )));
    }
    let cg = c.cgroup_for(verb)?;
    cg.freeze(frozen)
}

/// Freezes every process of the running container `id` (its cgroup); returns once the kernel says
/// it is done.
pub fn pause(ctx: &Context, id: &str) -> Result<()> {
    freeze(ctx, id, true)
}

/// Thaws the paused container `id`.
pub fn resume(ctx: &Context, id: &str) -> Result<()> {
    freeze(ctx, id, false)
}
