//! `berth state ID`: the runtime-spec state JSON, as runc prints it.

use super::Global;
use crate::error::Result;
use crate::state::Container;

/// `state` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Container id.
    pub id: String,
}

/// `berth state`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    // A read, without the lock: a hook may ask while create or start holds it.
    let c = Container::peek(&g.state_root(), &a.id)?;
    let s = serde_json::to_string_pretty(&c.oci_state()).unwrap_or_default();
    super::out(&s)?;
    Ok(0)
}
