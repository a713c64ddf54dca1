//! features.json (runtime-spec features.md), listing exactly what this build
//! enforces and nothing more: seccomp on x86_64, AppArmor when the host has it, idmapped mounts when
//! the kernel has them, the systemd cgroup driver where systemd's bus answers, SELinux where it is on.

use crate::mount::options::{Opt, TABLE};
use crate::spec::attrs::{MPOL_FLAGS, MPOL_MODES};
use serde_json::json;

/// features.json: what this build of berth supports and enforces on this host.
pub fn features() -> serde_json::Value {
    // Idmapped mounts (and their options) only where this kernel has them.
    let idmap = crate::sys::idmap_supported();
    let mount_options: Vec<&str> = TABLE
        .iter()
        .filter(|(_, o)| !matches!(o, Opt::Unsupported(_)))
        .filter(|(_, o)| idmap || !matches!(o, Opt::Idmap(_)))
        .map(|(n, _)| *n)
        .collect();
    let caps: Vec<String> = caps::all()
        .iter()
        .map(|c| c.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::spec::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": crate::cgroups::systemd::reachable(), "systemdUser": false, "rdma": true },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                            "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                              "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": crate::security::seccomp::supported_flags()
            },
            "apparmor": { "enabled": crate::security::apparmor::enabled() },
            "selinux": { "enabled": crate::security::selinux::enabled() },
            "intelRdt": { "enabled": false },
            "memoryPolicy": {
                "modes": MPOL_MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "flags": MPOL_FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            },
            "netDevices": { "enabled": crate::netdev::SUPPORTED },
            "mountExtensions": { "idmap": { "enabled": idmap } }
        },
        // berth's own annotations change what it does (a prefix ends with '.').
        "potentiallyUnsafeConfigAnnotations": ["berth."],
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION"),
            "io.github.berth.landlock": match crate::sys::landlock_abi() {
                Some(abi) => format!("available, ABI {abi}"),
                None => "unavailable".to_string(),
            },
            "io.github.berth.apparmor": if crate::security::apparmor::enabled() { "available" } else { "unavailable" }
        }
    })
}
