//! Validation of config.json into a [`ValidSpec`]: everything later steps rely on is checked here, once,
//! with errors that name the field (`linux.namespaces[2].type`), before any state or process exists.
//!
//! Settings berth cannot apply are refused (linux.intelRdt; a personality other than LINUX or
//! LINUX32) rather than skipped, so a spec never silently loses a protection. The security fields
//! (capability names, seccomp, AppArmor, SELinux, Landlock's annotation) are checked beside the spec
//! by `security::prepare`, which create and exec call right after this validation.

use super::{Namespace, Process, Spec};
use crate::error::{Error, Result};
use nix::sched::CloneFlags;
use std::path::{Path, PathBuf};

/// A namespace to join by path.
#[derive(Debug, Clone)]
pub struct JoinNs {
    /// The CLONE_NEW* flag of its type.
    pub flag: CloneFlags,
    /// The OCI type name, for messages.
    pub typ: String,
    /// /proc/PID/ns/TYPE or a bind-mounted nsfs file.
    pub path: PathBuf,
}

/// A spec that passed validation, with what later steps derive from it.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    /// The spec itself.
    pub spec: Spec,
    /// The process (always present after validation).
    pub process: Process,
    /// Absolute bundle directory.
    pub bundle: PathBuf,
    /// Absolute rootfs path.
    pub rootfs: PathBuf,
    /// CLONE_NEW* flags of the namespaces to create (time excluded: see `new_time`).
    pub clone_flags: CloneFlags,
    /// A new time namespace is asked for (created by the parent with unshare, see process::spawn).
    pub new_time: bool,
    /// Namespaces to join, user first.
    pub joins: Vec<JoinNs>,
    /// The container has a user namespace (new or joined).
    pub userns: bool,
    /// The spec mounts a tmpfs on /dev, so berth populates a minimal /dev.
    pub dev_is_tmpfs: bool,
    /// linux.personality as personality(2) takes it.
    pub personality: Option<u32>,
    /// linux.memoryPolicy as set_mempolicy(2) takes it: `mode | flags`, node mask.
    pub memory_policy: Option<(i32, Vec<u64>)>,
}

/// A network interface name as the kernel takes it (IFNAMSIZ 16 with the NUL; no `/`, no
/// whitespace, not `.` or `..`); `template` allows one `%d` for the kernel to fill in.
fn check_ifname(name: &str, field: &str, template: bool) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b == 0)
        && (template && name.matches("%d").count() <= 1 || !name.contains('%'));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field}: {name:?} is not a network interface name (1 to 15 bytes, no '/', ':' or whitespace)"
        )))
    }
}

/// Every hook's path is absolute.
fn check_hook_paths(spec: &Spec) -> Result<()> {
    for (kind, hooks) in spec.hooks.iter().flat_map(crate::hooks::all) {
        for (i, h) in hooks.iter().enumerate() {
            if !h.path.starts_with('/') {
                return Err(invalid(format!(
                    "hooks.{kind}[{i}].path: {:?} is not absolute",
                    h.path
                )));
            }
        }
    }
    Ok(())
}

/// linux.netDevices: valid names, and a network namespace of the container's own to move them to.
fn check_net_devices(
    linux: &super::Linux,
    clone_flags: CloneFlags,
    joins: &[JoinNs],
) -> Result<()> {
    if linux.net_devices.is_empty() {
        return Ok(());
    }
    let own_netns =
        clone_flags.contains(CloneFlags::CLONE_NEWNET) || joins.iter().any(|j| j.typ == "network");
    if !own_netns {
        return Err(invalid(
            "linux.netDevices: the container has no network namespace of its own to move them to (add a \"network\" namespace)".into(),
        ));
    }
    for (host, dev) in &linux.net_devices {
        check_ifname(host, &format!("linux.netDevices[{host:?}]"), false)?;
        if let Some(name) = &dev.name {
            check_ifname(name, &format!("linux.netDevices[{host:?}].name"), true)?;
        }
    }
    Ok(())
}

/// linux.personality: domain LINUX (PER_LINUX, 0) or LINUX32 (PER_LINUX32, 8), as runc supports.
fn personality(v: &serde_json::Value) -> Result<u32> {
    #[derive(serde::Deserialize)]
    struct P {
        domain: String,
        #[serde(default)]
        flags: Vec<String>,
    }
    let p: P = serde_path_to_error::deserialize(v)
        .map_err(|e| invalid(format!("linux.personality.{}: {}", e.path(), e.inner())))?;
    if !p.flags.is_empty() {
        return Err(Error::NotSupported(format!(
            "linux.personality.flags: {:?} (no personality flag is supported, as in runc)",
            p.flags
        )));
    }
    match p.domain.as_str() {
        "LINUX" => Ok(0),
        "LINUX32" => Ok(8),
        d => Err(invalid(format!(
            "linux.personality.domain: {d:?} (expected LINUX or LINUX32)"
        ))),
    }
}

/// The clone flag of a runtime-spec namespace type (`network` → CLONE_NEWNET).
pub fn ns_flag(typ: &str) -> Option<CloneFlags> {
    Some(match typ {
        "pid" => CloneFlags::CLONE_NEWPID,
        "network" => CloneFlags::CLONE_NEWNET,
        "mount" => CloneFlags::CLONE_NEWNS,
        "ipc" => CloneFlags::CLONE_NEWIPC,
        "uts" => CloneFlags::CLONE_NEWUTS,
        "user" => CloneFlags::CLONE_NEWUSER,
        "cgroup" => CloneFlags::CLONE_NEWCGROUP,
        "time" => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        _ => return None,
    })
}

fn invalid(msg: String) -> Error {
    Error::InvalidSpec(msg)
}

/// The rlimit resource for an OCI name.
pub fn rlimit_resource(name: &str) -> Option<nix::sys::resource::Resource> {
    use nix::sys::resource::Resource as R;
    Some(match name {
        "RLIMIT_AS" => R::RLIMIT_AS,
        "RLIMIT_CORE" => R::RLIMIT_CORE,
        "RLIMIT_CPU" => R::RLIMIT_CPU,
        "RLIMIT_DATA" => R::RLIMIT_DATA,
        "RLIMIT_FSIZE" => R::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => R::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => R::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => R::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => R::RLIMIT_NICE,
        "RLIMIT_NOFILE" => R::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => R::RLIMIT_NPROC,
        "RLIMIT_RSS" => R::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => R::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => R::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => R::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => R::RLIMIT_STACK,
        _ => return None,
    })
}

/// Which namespace a sysctl needs, or None when it is not namespaced (and so not allowed).
pub fn sysctl_namespace(key: &str) -> Option<&'static str> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        Some("ipc")
    } else if key.starts_with("net.") {
        Some("network")
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some("uts")
    } else {
        None
    }
}

fn check_namespaces(namespaces: &[Namespace]) -> Result<(CloneFlags, bool, Vec<JoinNs>)> {
    let mut flags = CloneFlags::CLONE_NEWNS;
    let mut seen = CloneFlags::empty();
    let mut new_time = false;
    let mut joins = Vec::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let flag = ns_flag(&ns.typ).ok_or_else(|| {
            invalid(format!(
                "linux.namespaces[{i}].type: unknown namespace type {:?} (expected pid, network, mount, ipc, uts, user, cgroup or time)",
                ns.typ
            ))
        })?;
        if seen.contains(flag) {
            return Err(invalid(format!(
                "linux.namespaces[{i}].type: namespace {:?} is listed twice",
                ns.typ
            )));
        }
        seen |= flag;
        match ns.path.as_deref().filter(|p| !p.is_empty()) {
            Some(path) => {
                if !path.starts_with('/') {
                    return Err(invalid(format!(
                        "linux.namespaces[{i}].path: {path:?} is not absolute"
                    )));
                }
                joins.push(JoinNs {
                    flag,
                    typ: ns.typ.clone(),
                    path: PathBuf::from(path),
                });
            }
            None if ns.typ == "time" => new_time = true,
            None => flags |= flag,
        }
    }
    // A spec without a mount namespace still gets one (nothing the runtime mounts may land in the
    // host's namespace); a mount namespace given by path is joined instead.
    if joins.iter().any(|j| j.typ == "mount") {
        flags -= CloneFlags::CLONE_NEWNS;
    }
    // The user namespace must be joined first: it decides what the others may do.
    joins.sort_by_key(|j| j.typ != "user");
    Ok((flags, new_time, joins))
}

/// Checks a process object (the spec's, or one `exec` runs).
pub fn check_process(p: &Process) -> Result<()> {
    if p.args.is_empty() || p.args[0].is_empty() {
        return Err(invalid("process.args: must name a program".into()));
    }
    if !p.cwd.starts_with('/') {
        return Err(invalid(format!(
            "process.cwd: {:?} is not an absolute path",
            p.cwd
        )));
    }
    for (i, e) in p.env.iter().enumerate() {
        if !e.contains('=') || e.contains('\0') {
            return Err(invalid(format!("process.env[{i}]: {e:?} is not KEY=value")));
        }
    }
    if let Some(s) = &p.scheduler {
        s.attr()?;
    }
    if let Some(io) = &p.io_priority {
        io.value()?;
    }
    if let Some(a) = &p.exec_cpu_affinity {
        a.masks()?;
    }
    for (i, r) in p.rlimits.iter().enumerate() {
        if rlimit_resource(&r.typ).is_none() {
            return Err(invalid(format!(
                "process.rlimits[{i}].type: unknown rlimit {:?}",
                r.typ
            )));
        }
        if r.soft > r.hard {
            return Err(invalid(format!(
                "process.rlimits[{i}]: soft limit {} is above hard limit {}",
                r.soft, r.hard
            )));
        }
    }
    Ok(())
}

/// The hostname, time, sysctl, device and propagation rules, which depend on the namespaces.
fn check_linux(
    spec: &Spec,
    linux: &super::Linux,
    clone_flags: CloneFlags,
    new_time: bool,
    joins: &[JoinNs],
) -> Result<()> {
    // A joined uts namespace takes the hostname too, as in runc; without either it would be the host's.
    let uts = clone_flags.contains(CloneFlags::CLONE_NEWUTS)
        || joins.iter().any(|j| j.flag == CloneFlags::CLONE_NEWUTS);
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(invalid(
            "hostname: setting it needs a uts namespace of the container's (linux.namespaces)"
                .into(),
        ));
    }
    if spec.domainname.as_deref().is_some_and(|h| !h.is_empty()) && !uts {
        return Err(invalid(
            "domainname: setting it needs a uts namespace of the container's (linux.namespaces)"
                .into(),
        ));
    }
    if linux.time_offsets.as_ref().is_some_and(|t| !t.is_empty()) && !new_time {
        return Err(invalid(
            "linux.timeOffsets: needs a new time namespace".into(),
        ));
    }
    for key in linux.time_offsets.iter().flat_map(|t| t.keys()) {
        if key != "monotonic" && key != "boottime" {
            return Err(invalid(format!(
                "linux.timeOffsets.{key}: only monotonic and boottime can be offset"
            )));
        }
    }
    check_sysctls(linux, clone_flags, joins)?;
    check_devices_and_propagation(linux)
}

/// Every sysctl is namespaced, in a namespace of the container's own.
fn check_sysctls(linux: &super::Linux, clone_flags: CloneFlags, joins: &[JoinNs]) -> Result<()> {
    for key in linux.sysctl.keys() {
        let need = sysctl_namespace(key).ok_or_else(|| {
            invalid(format!(
                "linux.sysctl.{key}: not a namespaced sysctl, so setting it would change the host"
            ))
        })?;
        // A namespace of the container's own: one berth creates, or one the orchestrator made for it
        // and the spec joins (a pod's network namespace). A joined one is checked when it is joined
        // (process::spawn): never the host's own, whose settings the bundle must not change.
        let flag = ns_flag(need).unwrap_or(CloneFlags::empty());
        if !clone_flags.contains(flag) && !joins.iter().any(|j| j.flag == flag) {
            return Err(invalid(format!(
                "linux.sysctl.{key}: needs a {need} namespace of the container's own (the spec has none)"
            )));
        }
    }
    Ok(())
}

/// Device types and paths, and the rootfs propagation.
fn check_devices_and_propagation(linux: &super::Linux) -> Result<()> {
    for (i, d) in linux.devices.iter().enumerate() {
        if !matches!(d.typ.as_str(), "c" | "u" | "b" | "p") {
            return Err(invalid(format!(
                "linux.devices[{i}].type: {:?} (expected c, u, b or p)",
                d.typ
            )));
        }
        if !d.path.starts_with("/dev/") {
            return Err(invalid(format!(
                "linux.devices[{i}].path: {:?} is not under /dev",
                d.path
            )));
        }
    }
    if let Some(r) = linux.rootfs_propagation.as_deref().filter(|r| {
        !matches!(
            *r,
            "" | "private"
                | "rprivate"
                | "slave"
                | "rslave"
                | "shared"
                | "rshared"
                | "unbindable"
                | "runbindable"
        )
    }) {
        return Err(invalid(format!(
            "linux.rootfsPropagation: unknown propagation {r:?}"
        )));
    }
    Ok(())
}

impl ValidSpec {
    /// Validates `spec` of the bundle in `bundle`.
    pub fn new(spec: Spec, bundle: &Path) -> Result<ValidSpec> {
        if spec.oci_version.is_empty() {
            return Err(invalid("ociVersion: missing".into()));
        }
        if !spec.oci_version.starts_with("1.") {
            return Err(Error::NotSupported(format!(
                "ociVersion: {:?} (berth implements 1.x)",
                spec.oci_version
            )));
        }
        let root = spec
            .root
            .as_ref()
            .filter(|r| !r.path.is_empty())
            .ok_or_else(|| invalid("root.path: missing".into()))?;
        let bundle =
            std::path::absolute(bundle).map_err(|e| crate::error::io_err("absolute", bundle, e))?;
        let rootfs = bundle.join(&root.path);
        let process = spec
            .process
            .clone()
            .ok_or_else(|| invalid("process: missing".into()))?;
        check_process(&process)?;

        let linux = spec.linux.clone().unwrap_or_default();
        let (clone_flags, new_time, joins) = check_namespaces(&linux.namespaces)?;
        let new_user = clone_flags.contains(CloneFlags::CLONE_NEWUSER);
        let userns = new_user || joins.iter().any(|j| j.typ == "user");
        if new_user && (linux.uid_mappings.is_empty() || linux.gid_mappings.is_empty()) {
            return Err(invalid(
                "linux.uidMappings/gidMappings: a new user namespace needs both".into(),
            ));
        }
        // With a joined user namespace, mappings are what the orchestrator says that namespace has
        // (containerd 2.x passes both): checked against its maps when the init joins it, as runc.
        if !userns && (!linux.uid_mappings.is_empty() || !linux.gid_mappings.is_empty()) {
            return Err(invalid(
                "linux.uidMappings: mappings given without a user namespace".into(),
            ));
        }
        check_linux(&spec, &linux, clone_flags, new_time, &joins)?;
        if linux.intel_rdt.is_some() {
            return Err(Error::NotSupported("linux.intelRdt".into()));
        }
        let personality = linux
            .personality
            .as_ref()
            .filter(|v| !v.is_null())
            .map(personality)
            .transpose()?;
        let memory_policy = linux
            .memory_policy
            .as_ref()
            .map(super::attrs::MemoryPolicy::mode_and_mask)
            .transpose()?;
        check_net_devices(&linux, clone_flags, &joins)?;
        check_hook_paths(&spec)?;
        let dev_is_tmpfs = spec.mounts.iter().any(|m| {
            m.typ.as_deref() == Some("tmpfs") && m.destination.trim_end_matches('/') == "/dev"
        });
        Ok(ValidSpec {
            process,
            bundle,
            rootfs,
            clone_flags,
            new_time,
            joins,
            userns,
            dev_is_tmpfs,
            personality,
            memory_policy,
            spec,
        })
    }

    /// The container joins a mount namespace by path (and so mounts nothing).
    pub fn joins_mount(&self) -> bool {
        self.joins.iter().any(|j| j.typ == "mount")
    }

    /// linux (or its default).
    pub fn linux(&self) -> &super::Linux {
        static EMPTY: std::sync::OnceLock<super::Linux> = std::sync::OnceLock::new();
        self.spec
            .linux
            .as_ref()
            .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::default::default_spec;

    fn err_of(f: impl FnOnce(&mut Spec)) -> String {
        let mut s = default_spec();
        f(&mut s);
        ValidSpec::new(s, Path::new("/b")).unwrap_err().to_string()
    }

    #[test]
    fn unknown_namespace_names_the_index() {
        let e = err_of(|s| {
            s.linux.as_mut().unwrap().namespaces.push(Namespace {
                typ: "bogus".into(),
                path: None,
            })
        });
        assert!(e.contains("linux.namespaces[6].type"), "{e}");
    }

    #[test]
    fn hostname_needs_uts() {
        let e = err_of(|s| {
            s.linux
                .as_mut()
                .unwrap()
                .namespaces
                .retain(|n| n.typ != "uts")
        });
        assert!(e.contains("hostname"), "{e}");
    }

    #[test]
    fn userns_needs_mappings() {
        let e = err_of(|s| {
            s.linux.as_mut().unwrap().namespaces.push(Namespace {
                typ: "user".into(),
                path: None,
            })
        });
        assert!(e.contains("uidMappings"), "{e}");
    }

    #[test]
    fn host_sysctl_refused() {
        let e = err_of(|s| {
            s.linux
                .as_mut()
                .unwrap()
                .sysctl
                .insert("vm.swappiness".into(), "1".into());
        });
        assert!(e.contains("linux.sysctl.vm.swappiness"), "{e}");
    }

    #[test]
    fn joins_put_user_first() {
        let (_, _, joins) = check_namespaces(&[
            Namespace {
                typ: "network".into(),
                path: Some("/proc/1/ns/net".into()),
            },
            Namespace {
                typ: "user".into(),
                path: Some("/proc/1/ns/user".into()),
            },
        ])
        .unwrap();
        assert_eq!(joins[0].typ, "user");
    }

    #[test]
    fn bad_field_type_names_the_path() {
        let e = crate::spec::parse(br#"{"ociVersion":"1.0.0","process":{"user":{"uid":"root"}}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("process.user.uid"), "{e}");
    }
}
