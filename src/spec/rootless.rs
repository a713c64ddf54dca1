//! berth run by a user other than root (rootless): the spec is adapted to what an unprivileged user
//! namespace allows, each change said in the log, before it is validated.
//!
//! - No user namespace, or one without mappings: one is added that maps container root to the
//!   caller (uid and gid), as `runc spec --rootless` writes it, and container ids 1.. to the user's
//!   subordinate range when /etc/subuid and /etc/subgid have one and newuidmap/newgidmap exist.
//!   Mappings other than the caller's own id are written through those helpers (process::spawn).
//! - cgroups: left to the cgroup code, which uses a cgroup v2 subtree delegated to the caller and
//!   otherwise runs without one, with a warning, as crun does (`crate::cgroups`).
//! - devpts `gid=N` where N is not mapped is dropped (the kernel refuses it); without a network
//!   namespace of its own, sysfs is the host's /sys bound read-only (a new sysfs needs one).

use super::{IdMapping, Mount, Namespace, Spec};

/// Whether berth lacks host root: its effective uid is not 0, or it runs in a user namespace
/// other than the initial one (inside rootless Podman's, or under `unshare -Ur`, where its uid is 0
/// but host root is not mapped), as runc's `userns.RunningInUserNS` decides.
pub fn active() -> bool {
    unprivileged() || in_user_namespace()
}

/// berth's effective uid is not 0 (an ordinary user, outside any user namespace of its own): the
/// id maps are then written with newuidmap/newgidmap, and a user namespace is added.
pub fn unprivileged() -> bool {
    !nix::unistd::geteuid().is_root()
}

/// berth runs in a user namespace other than the initial one: /proc/self/uid_map is not the
/// initial namespace's single full mapping `0 0 4294967295`.
///
/// Read once per process (start-up is measured: every syscall counts) and kept; the init, cloned
/// after the parent asked, inherits the parent's answer, which is the one it needs (whether the
/// container has a user namespace of its own is `ValidSpec::userns`). The front end's
/// [`enter_user_namespace`] sets it when it changes.
pub fn in_user_namespace() -> bool {
    use std::sync::atomic::Ordering;
    match IN_USER_NAMESPACE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let inside = std::fs::read_to_string("/proc/self/uid_map")
                .map(|m| !is_initial_map(&m))
                .unwrap_or(false);
            IN_USER_NAMESPACE.store(if inside { 2 } else { 1 }, Ordering::Relaxed);
            inside
        }
    }
}

/// [`in_user_namespace`]'s answer: 0 not asked yet, 1 no, 2 yes.
static IN_USER_NAMESPACE: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Makes this process, an ordinary user's, root of a new user namespace of its own, with its
/// subordinate ids mapped as rootless Podman maps them (container 0 is the user, 1.. its range
/// from /etc/subuid and /etc/subgid, through newuidmap/newgidmap), or, without a range or the
/// helpers, the user alone. From then on berth is uid 0 in a user namespace: it may unpack an
/// image's layers with their owners (inside the range), mount the image's overlay in a mount
/// namespace of its own, and create the container as it does under `unshare -Ur`.
pub fn enter_user_namespace() -> crate::Result<()> {
    use crate::error::{Error, io_err};
    use std::io::Write;
    use std::process::{Command, Stdio};
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let name = user_name(uid);
    let helpers = ["newuidmap", "newgidmap"].iter().all(|t| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|d| d.join(t).is_file())
    });
    let ranges = match (
        subordinate("/etc/subuid", uid, name.as_deref()),
        subordinate("/etc/subgid", uid, name.as_deref()),
    ) {
        (Some(u), Some(g)) if helpers => Some((u, g)),
        _ => None,
    };
    let pid = std::process::id().to_string();
    // The helpers start before the unshare, outside the new namespace (a set-uid helper inside
    // it would not run as root), and wait on stdin until it exists.
    let mut started = Vec::new();
    if let Some(((us, un), (gs, gn))) = ranges {
        for (tool, own, start, count) in [("newuidmap", uid, us, un), ("newgidmap", gid, gs, gn)] {
            let args = [
                pid.clone(),
                "0".into(),
                own.to_string(),
                "1".into(),
                "1".into(),
                start.to_string(),
                count.to_string(),
            ];
            let child = Command::new("sh")
                .args(["-c", "read _ && exec \"$0\" \"$@\"", tool])
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| io_err("spawn", std::path::Path::new(tool), e))?;
            started.push((tool, child));
        }
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| Error::sys("unshare(CLONE_NEWUSER)", e))?;
    if started.is_empty() {
        let write = |file: &str, text: &str| {
            std::fs::write(file, text).map_err(|e| io_err("write", std::path::Path::new(file), e))
        };
        write("/proc/self/setgroups", "deny")?;
        write("/proc/self/uid_map", &format!("0 {uid} 1\n"))?;
        write("/proc/self/gid_map", &format!("0 {gid} 1\n"))?;
        IN_USER_NAMESPACE.store(2, std::sync::atomic::Ordering::Relaxed);
        return Ok(());
    }
    for (tool, mut child) in started {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(b"go\n");
        }
        let out = child
            .wait_with_output()
            .map_err(|e| io_err("wait", std::path::Path::new(tool), e))?;
        if !out.status.success() {
            return Err(Error::NotSupported(format!(
                "rootless: {tool} for the image's user namespace: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
    }
    IN_USER_NAMESPACE.store(2, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Whether a uid_map's text is the initial user namespace's.
fn is_initial_map(map: &str) -> bool {
    let lines: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .filter(|f: &Vec<&str>| !f.is_empty())
        .collect();
    lines.len() == 1 && lines[0] == ["0", "0", "4294967295"]
}

/// Whether gid `g` of berth's own user namespace is mapped (always, in the initial one).
fn own_gid_mapped(g: u32) -> bool {
    let Ok(map) = std::fs::read_to_string("/proc/self/gid_map") else {
        return false;
    };
    map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        f.len() == 3 && f[0] <= u64::from(g) && u64::from(g) < f[0] + f[2]
    })
}

/// `berth spec --rootless`: runc's rootless spec: no network (nor cgroup) namespace, a user namespace
/// mapping container root to the caller, then what [`adapt`] does (the host's /sys bound read-only,
/// no unmapped devpts gid, no resources).
pub fn rootless_spec(spec: &mut Spec) {
    let linux = spec.linux.get_or_insert_with(Default::default);
    linux
        .namespaces
        .retain(|n| n.typ != "network" && n.typ != "cgroup");
    linux.uid_mappings.clear();
    linux.gid_mappings.clear();
    apply(spec, false);
}

/// Adapts `spec` for a rootless run (nothing when berth is host root). As an ordinary user, a user
/// namespace is added and the mounts adapted; as uid 0 of a user namespace (rootless Podman's,
/// `unshare -Ur`), berth already holds every capability over the namespaces it makes, so only the
/// mounts are adapted (a devpts `gid=` its namespace does not map).
pub fn adapt(spec: &mut Spec) {
    if unprivileged() {
        apply(spec, true);
    } else if in_user_namespace() {
        let note =
            |m: String| crate::logging::info(&format!("rootless (in a user namespace): {m}"));
        adapt_mounts(spec, &note);
    }
}

/// The rootless changes; `say` logs each (a run), else they are silent (`berth spec`).
fn apply(spec: &mut Spec, say: bool) {
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let note = |m: String| {
        if say {
            crate::logging::info(&format!("rootless: {m}"));
        }
    };
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
        let own = |id| IdMapping {
            container_id: 0,
            host_id: id,
            size: 1,
        };
        linux.uid_mappings = vec![own(uid)];
        linux.gid_mappings = vec![own(gid)];
        // With subordinate ids in /etc/subuid and /etc/subgid (and newuidmap/newgidmap to map
        // them), the container also gets ids 1.. from those ranges.
        let helpers = ["newuidmap", "newgidmap"].iter().all(|t| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|d| d.join(t).is_file())
        });
        let name = user_name(uid);
        // (At run time only: `berth spec --rootless` writes the single mapping, as runc.)
        if let (true, Some((us, un)), Some((gs, gn))) = (
            helpers && say,
            subordinate("/etc/subuid", uid, name.as_deref()),
            subordinate("/etc/subgid", uid, name.as_deref()),
        ) {
            let range = |start, count| IdMapping {
                container_id: 1,
                host_id: start,
                size: count,
            };
            linux.uid_mappings.push(range(us, un));
            linux.gid_mappings.push(range(gs, gn));
            note(format!(
                "container ids 1..{un} are uids {us}.. and 1..{gn} gids {gs}.. (/etc/subuid, /etc/subgid)"
            ));
        }
    }
    // `berth spec --rootless` drops the cgroup settings, as runc's; at run time the cgroup code
    // decides (a delegated cgroup v2 subtree, else none and a warning).
    if !say {
        linux.resources = None;
        linux.cgroups_path = None;
    }
    adapt_mounts(spec, &note);
}

/// Mounts a rootless container cannot make as written: devpts with an unmapped `gid=` (dropped), and
/// sysfs without a network namespace of its own (the host's /sys bound read-only instead).
fn adapt_mounts(spec: &mut Spec, note: &dyn Fn(String)) {
    let Some(linux) = spec.linux.as_ref() else {
        return;
    };
    let own_userns = linux.namespaces.iter().any(|n| n.typ == "user");
    let gid_mapped = |g: u32| {
        if !own_userns {
            // The container shares berth's user namespace: what that one maps.
            return own_gid_mapped(g);
        }
        linux.gid_mappings.iter().any(|m| {
            m.container_id <= g && u64::from(g) < u64::from(m.container_id) + u64::from(m.size)
        })
    };
    let own_net = linux
        .namespaces
        .iter()
        .any(|n| n.typ == "network" && n.path.is_none());
    for m in &mut spec.mounts {
        let ok = m.options.iter().all(|o| {
            o.strip_prefix("gid=")
                .and_then(|g| g.parse().ok())
                .is_none_or(&gid_mapped)
        });
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

/// The login name of `uid` from /etc/passwd.
pub fn user_name(uid: u32) -> Option<String> {
    std::fs::read_to_string("/etc/passwd")
        .ok()?
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
        })
}

/// The first subordinate range (`start`, `count`) of the user in `file` (`NAME:START:COUNT` or
/// `UID:START:COUNT` lines).
pub(crate) fn subordinate(file: &str, uid: u32, name: Option<&str>) -> Option<(u32, u32)> {
    std::fs::read_to_string(file).ok()?.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        if who != uid.to_string() && Some(who) != name {
            return None;
        }
        let (start, count) = (f.next()?.parse().ok()?, f.next()?.parse().ok()?);
        (count > 0).then_some((start, count))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_initial_user_namespace_is_told_by_its_map() {
        assert!(super::is_initial_map("         0          0 4294967295\n"));
        assert!(!super::is_initial_map("         0       1000          1\n"));
        assert!(!super::is_initial_map("0 0 4294967295\n1 1 1\n"));
        assert!(!super::is_initial_map("0 0 65536\n"));
        assert!(!super::is_initial_map(""));
    }
}
