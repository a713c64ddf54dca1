//! `berth features`: features.json (runtime-spec features.md), what this build of berth enforces on
//! this host (see lifecycle::features).

use crate::error::Result;

/// `berth features`.
pub fn run() -> Result<i32> {
    let f = crate::lifecycle::features();
    super::out(&serde_json::to_string_pretty(&f).unwrap_or_default())?;
    Ok(0)
}
