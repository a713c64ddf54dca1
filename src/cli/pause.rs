//! `berth pause ID` and `berth resume ID`: freeze and thaw the container's cgroup (v1 freezer, v2
//! cgroup.freeze), returning once the kernel says it is done; `state` then says `paused`.

use super::Global;
use crate::error::{Error, Result};
use crate::state::{Container, Status};

/// `pause`/`resume` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// Freezes (`frozen`) or thaws the container.
pub fn run(g: &Global, a: Args, frozen: bool) -> Result<i32> {
    let c = Container::load(&g.root, &a.id)?;
    let status = c.status();
    let (want, verb) = if frozen {
        (Status::Running, "pause")
    } else {
        (Status::Paused, "resume")
    };
    if status != want {
        return Err(Error::State(format!(
            "cannot {verb} container {:?}: it is {}, not {}",
            a.id,
            status.as_str(),
            want.as_str()
        )));
    }
    let cg = c.cgroup_for(verb)?;
    cg.freeze(frozen)?;
    Ok(0)
}
