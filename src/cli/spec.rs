//! `berth spec`: writes runc's default config.json into the bundle directory.

use crate::error::{Error, Result, io_err};
use std::path::PathBuf;

/// `spec` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bundle directory.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// `default`: add a seccomp profile like Podman's (ERRNO by default; mount, namespace, module,
    /// kexec, keyring, ptrace, bpf... refused).
    #[arg(long, value_parser = ["default"])]
    pub seccomp: Option<String>,
    /// A spec for a user other than root (as `runc spec --rootless`): a user namespace mapping
    /// container root to the caller, no network namespace, the host's /sys bound read-only, no
    /// devpts gid, no resources.
    #[arg(long)]
    pub rootless: bool,
}

/// `berth spec`.
pub fn run(a: Args) -> Result<i32> {
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(Error::State(format!(
            "{} exists; remove it first",
            path.display()
        )));
    }
    let spec = crate::lifecycle::spec_template(a.seccomp.is_some(), a.rootless);
    let text = serde_json::to_string_pretty(&spec).unwrap_or_default();
    std::fs::write(&path, text + "\n").map_err(|e| io_err("write", &path, e))?;
    Ok(0)
}
