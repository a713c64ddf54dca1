//! `berth delete [--force] ID` (see lifecycle::delete).

use super::Global;
use crate::error::Result;

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
    crate::lifecycle::delete(&g.context(), &a.id, a.force)?;
    Ok(0)
}
