//! `berth kill [--all] ID [SIGNAL]`: SIGTERM by default; a name with or without SIG, or a number (see
//! lifecycle::kill).

use super::Global;
use crate::error::Result;
use crate::lifecycle;

/// `kill` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Signal every process of the container.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// Container id.
    pub id: String,
    /// Signal name or number.
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

/// `berth kill`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let sig = lifecycle::parse_signal(&a.signal)?;
    lifecycle::kill(&g.context(), &a.id, sig, a.all)?;
    Ok(0)
}
