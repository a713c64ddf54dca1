//! `berth start ID`: releases the created container's init (see lifecycle::start).

use super::Global;
use crate::error::Result;

/// `start` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// `berth start`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::lifecycle::start(&g.context(), &a.id)?;
    Ok(0)
}
