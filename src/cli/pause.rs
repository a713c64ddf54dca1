//! `berth pause ID` and `berth resume ID` (see lifecycle::pause).

use super::Global;
use crate::error::Result;

/// `pause`/`resume` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// Freezes (`frozen`) or thaws the container.
pub fn run(g: &Global, a: Args, frozen: bool) -> Result<i32> {
    let ctx = g.context();
    if frozen {
        crate::lifecycle::pause(&ctx, &a.id)?;
    } else {
        crate::lifecycle::resume(&ctx, &a.id)?;
    }
    Ok(0)
}
