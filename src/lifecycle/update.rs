//! Update: changes the limits of a created, running or paused container, through the same checks and
//! v1/v2 conversions as create (cgroups::resources); each file is written whole, in order.

use super::Context;
use crate::error::{Error, Result};
use crate::state::{Container, Status};

/// Applies `resources` (a runtime-spec linux.resources object) to the container `id`'s cgroup.
pub fn update(ctx: &Context, id: &str, resources: &serde_json::Value) -> Result<()> {
    let c = Container::load(&ctx.root, id)?;
    let status = c.status();
    if !matches!(status, Status::Created | Status::Running | Status::Paused) {
        return Err(Error::State(format!(
            "cannot update container {id:?}: container not running (it is {})",
            status.as_str()
        )));
    }
    c.cgroup_for("update")?.update(resources)
}
