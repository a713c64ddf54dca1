//! `berth mounts add|remove ID FILE`: live volumes (lifecycle::volumes). FILE is a JSON list of
//! OCI mounts, as config.json's `mounts` (crun's `mounts add` syntax; `{"mounts": [...]}` is taken
//! too), `-` for stdin.

use super::Global;
use crate::error::{Error, Result, io_err};
use crate::lifecycle::{self, LiveRequest};
use std::path::PathBuf;

/// `mounts` verbs.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Attach bind mounts or tmpfs to a running container (under the host mount policy).
    Add(AddArgs),
    /// Detach live volumes that `mounts add` attached.
    Remove(RemoveArgs),
}

/// `mounts add` options.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Container id.
    pub id: String,
    /// JSON list of OCI mounts (`-`: stdin).
    pub file: PathBuf,
    /// Print the verdicts, as `berth check` does, and attach nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The tenant (else BERTH_TENANT, the orchestrator's annotation, the policy's default); it must
    /// be the container's own.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Under Landlock and a read-only root: a writable volume is for processes started later by
    /// `berth exec` (the running ones can only read it).
    #[arg(long)]
    pub exec_only: bool,
    /// With --dry-run: text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// `mounts remove` options.
#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// Container id.
    pub id: String,
    /// JSON list of the mounts to remove, found by destination (`-`: stdin).
    pub file: PathBuf,
}

/// The mounts in FILE, errors naming the file and the field.
fn read_mounts(file: &std::path::Path) -> Result<Vec<crate::spec::Mount>> {
    let bytes = if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .map_err(|e| io_err("read", std::path::Path::new("stdin"), e))?;
        b
    } else {
        std::fs::read(file).map_err(|e| io_err("read", file, e))?
    };
    // The same two parses as config.json's (spec::parse): no second copy of the mount parser in
    // the binary for another deserializer.
    #[derive(serde::Deserialize)]
    struct Listed {
        mounts: Vec<crate::spec::Mount>,
    }
    let object = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let parsed = if object {
        serde_json::from_slice::<Listed>(&bytes).map(|l| l.mounts)
    } else {
        serde_json::from_slice::<Vec<crate::spec::Mount>>(&bytes)
    };
    parsed.or_else(|_| {
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let r = if object {
            serde_path_to_error::deserialize::<_, Listed>(de).map(|l| l.mounts)
        } else {
            serde_path_to_error::deserialize::<_, Vec<crate::spec::Mount>>(de)
        };
        r.map_err(|e| {
            let at = e.path().to_string();
            let at = at.strip_prefix("mounts").unwrap_or(&at).to_string();
            Error::InvalidSpec(format!(
                "{}: mounts{}: {}",
                file.display(),
                if at == "." { String::new() } else { at },
                e.inner()
            ))
        })
    })
}

/// `berth mounts`.
pub fn run(g: &Global, a: Action) -> Result<i32> {
    let ctx = g.context();
    match a {
        Action::Add(a) => {
            let req = LiveRequest {
                mounts: read_mounts(&a.file)?,
                tenant: a.tenant,
                exec_only: a.exec_only,
            };
            if a.dry_run {
                let report = lifecycle::check_live(&ctx, &a.id, &req)?;
                return super::check::print(&report, &a.format);
            }
            lifecycle::add_volumes(&ctx, &a.id, &req)?;
            Ok(0)
        }
        Action::Remove(a) => {
            let req = LiveRequest {
                mounts: read_mounts(&a.file)?,
                ..LiveRequest::default()
            };
            lifecycle::remove_volumes(&ctx, &a.id, &req)?;
            Ok(0)
        }
    }
}
