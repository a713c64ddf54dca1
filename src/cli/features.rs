//! `berth features`: features.json (runtime-spec features.md), listing exactly what this build
//! enforces and nothing more: no cgroup support, no seccomp, no AppArmor, no SELinux, no idmapped
//! mounts yet.

use crate::error::Result;
use crate::mount::options::{Opt, TABLE};
use serde_json::json;

/// `berth features`.
pub fn run() -> Result<i32> {
    let mount_options: Vec<&str> = TABLE
        .iter()
        .filter(|(_, o)| !matches!(o, Opt::Unsupported(_)))
        .map(|(n, _)| *n)
        .collect();
    let caps: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let f = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": false, "v2": false, "systemd": false, "systemdUser": false, "rdma": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION")
        }
    });
    println!("{}", serde_json::to_string_pretty(&f).unwrap_or_default());
    Ok(0)
}
