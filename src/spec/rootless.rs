//! berth run by a user other than root (rootless): the spec is adapted to what an unprivileged user
//! namespace allows, each change said in the log, before it is validated.
//!
//! - No user namespace, or one without mappings: one is added that maps container root to the
//!   caller (uid and gid), as `runc spec --rootless` writes it. Other mappings are kept and written
//!   through newuidmap/newgidmap (see process::spawn).
//! - cgroups: none (they are not delegated to the user here); `linux.resources` and
//!   `linux.cgroupsPath` are dropped with a warning, as crun does.
//! - devpts `gid=N` where N is not mapped is dropped (the kernel refuses it); without a network
//!   namespace of its own, sysfs is the host's /sys bound read-only (a new sysfs needs one).

use super::{IdMapping, Mount, Namespace, Spec};

/// Whether berth runs rootless (its effective uid is not 0).
pub fn active() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// Adapts `spec` for a rootless run (nothing when berth is root).
pub fn adapt(spec: &mut Spec) {
    if !active() {
        return;
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let note = |m: String| crate::logging::info(&format!("rootless: {m}"));
    let linux = spec.linux.get_or_insert_with(Default::default);
    let has = |t: &str| linux.namespaces.iter().any(|n| n.typ == t);
    if !has("user") {
        linux.namespaces.push(Namespace {
            typ: "user".into(),
            path: None,
        });
        note(format!(
            "a user namespace is added (container root is uid {uid})"
        ));
    }
    let user_is_new = linux
        .namespaces
        .iter()
        .any(|n| n.typ == "user" && n.path.is_none());
    if user_is_new && linux.uid_mappings.is_empty() && linux.gid_mappings.is_empty() {
        let own = |id| {
            vec![IdMapping {
                container_id: 0,
                host_id: id,
                size: 1,
            }]
        };
        linux.uid_mappings = own(uid);
        linux.gid_mappings = own(gid);
    }
    if linux.resources.as_ref().is_some_and(|r| !r.is_null()) || linux.cgroups_path.is_some() {
        crate::logging::warn(&format!(
            "rootless: linux.resources and linux.cgroupsPath ignored: no cgroup is delegated to uid {uid}"
        ));
        linux.resources = None;
        linux.cgroups_path = None;
    }
    let gid_mapped = |g: u32| {
        linux.gid_mappings.iter().any(|m| {
            m.container_id <= g && u64::from(g) < u64::from(m.container_id) + u64::from(m.size)
        })
    };
    let own_net = linux
        .namespaces
        .iter()
        .any(|n| n.typ == "network" && n.path.is_none());
    let gid_ok: Vec<bool> = spec
        .mounts
        .iter()
        .map(|m| {
            m.options.iter().all(|o| {
                o.strip_prefix("gid=")
                    .and_then(|g| g.parse().ok())
                    .is_none_or(&gid_mapped)
            })
        })
        .collect();
    for (m, ok) in spec.mounts.iter_mut().zip(gid_ok) {
        if m.typ.as_deref() == Some("devpts") && !ok {
            m.options.retain(|o| !o.starts_with("gid="));
            note(format!(
                "{}: option gid= dropped (that group is not mapped)",
                m.destination
            ));
        }
        if m.typ.as_deref() == Some("sysfs") && !own_net {
            *m = Mount {
                destination: m.destination.clone(),
                typ: Some("bind".into()),
                source: Some("/sys".into()),
                options: ["rbind", "nosuid", "noexec", "nodev", "ro"]
                    .map(String::from)
                    .to_vec(),
                ..Default::default()
            };
            note(format!(
                "{}: the host's /sys bound read-only (no network namespace of its own)",
                m.destination
            ));
        }
    }
}
