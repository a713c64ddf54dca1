//! `berth list`: every container under --root, as runc's table, JSON, or ids only.

use super::Global;
use crate::error::Result;
use crate::state::{Container, list_ids};

/// `list` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// table or json.
    #[arg(long, short = 'f', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Ids only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// `berth list`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let mut states = Vec::new();
    let root = g.state_root();
    for id in list_ids(&root)? {
        match Container::peek(&root, &id) {
            Ok(c) => states.push(c.oci_state()),
            // A container deleted meanwhile is simply not listed.
            Err(e) if e.is_no_such_container() => {}
            // A corrupt one is listed, and said so once on stderr (as runc does).
            Err(e) => {
                crate::logging::warn(&format!("container {id:?}: {e}"));
                states.push(crate::spec::State {
                    oci_version: crate::spec::OCI_VERSION.into(),
                    id,
                    status: "unknown".into(),
                    ..Default::default()
                });
            }
        }
    }
    if a.quiet {
        for s in &states {
            super::out(&s.id)?;
        }
    } else if a.format == "json" {
        super::out(&serde_json::to_string(&states).unwrap_or_default())?;
    } else {
        super::out(&format!(
            "{:<12} {:<8} {:<10} {:<40} {:<30} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        ))?;
        for s in &states {
            super::out(&format!(
                "{:<12} {:<8} {:<10} {:<40} {:<30} {}",
                s.id,
                s.pid,
                s.status,
                s.bundle,
                s.created,
                owner(&root.join(&s.id))
            ))?;
        }
    }
    Ok(0)
}

/// The owner of a container's state directory, by name when /etc/passwd has it (runc's OWNER).
fn owner(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata(dir).map(|m| m.uid()) else {
        return "?".into();
    };
    crate::spec::rootless::user_name(uid).unwrap_or_else(|| uid.to_string())
}
