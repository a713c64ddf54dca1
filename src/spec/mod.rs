//! The serde model of the OCI runtime-spec documents berth reads and writes: config.json, the state
//! JSON (`berth state`, hooks' stdin) and features.json.
//!
//! Hand-written rather than taken from oci-spec (which costs ~5x the build time and fills in youki's
//! defaults). Unknown fields are ignored, as runc does; fields berth does not enforce yet are kept as raw
//! JSON so that validation can refuse them instead of silently skipping a security setting.

pub mod attrs;
pub mod default;
pub mod rootless;
pub mod validate;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub use validate::ValidSpec;

/// The OCI runtime-spec version berth implements.
pub const OCI_VERSION: &str = "1.3.0";

/// The annotation (set by the front end's `--net none`) that has the init bring loopback up in the
/// container's own network namespace.
pub const LOOPBACK_ANNOTATION: &str = "berth.loopback";

/// The annotation (set by the front end for a `--rootfs DIR`) that puts a read-only root on an
/// overlay whose upper layer is a tmpfs of the container's own, so the mount points berth creates
/// land there and never in the caller's directory. Value: `tmpfs`.
pub const ROOTFS_OVERLAY_ANNOTATION: &str = "berth.rootfs-overlay";

/// config.json.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// Spec version the bundle was written for.
    pub oci_version: String,
    /// The container's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<Root>,
    /// Hostname (needs a UTS namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Domain name (needs a UTS namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// Mounts, performed in this order.
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Lifecycle hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<Hooks>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Linux-specific settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<Linux>,
}

/// process.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// Allocate a pseudo-terminal.
    #[serde(default)]
    pub terminal: bool,
    /// The user the process runs as.
    #[serde(default)]
    pub user: User,
    /// argv; `args[0]` is looked up in the process's PATH when it has no slash.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment, `KEY=value`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory inside the container (absolute).
    #[serde(default)]
    pub cwd: String,
    /// Capability sets (enforced by the confinement layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rlimits: Vec<Rlimit>,
    /// Set no_new_privs.
    #[serde(default)]
    pub no_new_privileges: bool,
    /// AppArmor profile to apply at exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apparmor_profile: Option<String>,
    /// /proc/self/oom_score_adj.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// SELinux label for the process's domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux_label: Option<String>,
    /// Scheduling policy and its parameters (sched_setattr).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<attrs::Scheduler>,
    /// I/O priority (ioprio_set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<attrs::IoPriority>,
    /// CPUs of an exec'd process before and after it joins the cgroup.
    #[serde(
        default,
        rename = "execCPUAffinity",
        skip_serializing_if = "Option::is_none"
    )]
    pub exec_cpu_affinity: Option<attrs::ExecCpuAffinity>,
}

/// process.user.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// uid inside the container.
    #[serde(default)]
    pub uid: u32,
    /// gid inside the container.
    #[serde(default)]
    pub gid: u32,
    /// umask; 0022 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub umask: Option<u32>,
    /// Supplementary groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_gids: Vec<u32>,
}

/// process.capabilities.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Bounding set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounding: Option<Vec<String>>,
    /// Effective set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective: Option<Vec<String>>,
    /// Inheritable set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inheritable: Option<Vec<String>>,
    /// Permitted set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permitted: Option<Vec<String>>,
    /// Ambient set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ambient: Option<Vec<String>>,
}

impl Capabilities {
    /// The five sets by their field names, in the spec's order.
    pub fn sets(&self) -> [(&'static str, &Option<Vec<String>>); 5] {
        [
            ("bounding", &self.bounding),
            ("effective", &self.effective),
            ("inheritable", &self.inheritable),
            ("permitted", &self.permitted),
            ("ambient", &self.ambient),
        ]
    }
}

/// One entry of process.rlimits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rlimit {
    /// `RLIMIT_NOFILE` etc.
    #[serde(rename = "type")]
    pub typ: String,
    /// Hard limit.
    pub hard: u64,
    /// Soft limit.
    pub soft: u64,
}

/// root.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Root {
    /// Path of the rootfs, relative to the bundle or absolute.
    pub path: String,
    /// Make the root mount read-only.
    #[serde(default)]
    pub readonly: bool,
}

/// One entry of mounts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Mount {
    /// Where inside the container.
    pub destination: String,
    /// Filesystem type; `bind` or absent with a bind option for bind mounts.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Device, directory or pseudo name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// mount(8)-style options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// An idmapped mount's uid mapping: on-disk ids (`containerID`) shown as `hostID` (kernel ids).
    #[serde(
        default,
        rename = "uidMappings",
        skip_serializing_if = "Option::is_none"
    )]
    pub uid_mappings: Option<Vec<IdMapping>>,
    /// An idmapped mount's gid mapping.
    #[serde(
        default,
        rename = "gidMappings",
        skip_serializing_if = "Option::is_none"
    )]
    pub gid_mappings: Option<Vec<IdMapping>>,
}

/// One hook.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute path of the executable.
    pub path: String,
    /// argv, including `argv[0]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Seconds before the hook is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// hooks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    /// Deprecated; runs with createRuntime.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    /// After the namespaces exist, in the runtime's namespaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    /// After createRuntime, in the container's mount namespace, before pivot_root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    /// In the container, after start and before the user's process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    /// After the user's process started; failures only warn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    /// After delete; failures only warn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

/// linux.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    /// Namespaces to create or join.
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    /// User namespace uid map.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uid_mappings: Vec<IdMapping>,
    /// User namespace gid map.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gid_mappings: Vec<IdMapping>,
    /// Time namespace offsets (`monotonic`, `boottime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_offsets: Option<BTreeMap<String, TimeOffset>>,
    /// Device nodes to create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// cgroup path (cgroups are not managed yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// Resource limits (cgroups are not managed yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    /// Propagation of the container's `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    /// Seccomp filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Value>,
    /// Namespaced sysctls.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctl: BTreeMap<String, String>,
    /// Paths hidden from the container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked_paths: Vec<String>,
    /// Paths made read-only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_paths: Vec<String>,
    /// SELinux mount label (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_label: Option<String>,
    /// Intel RDT (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<Value>,
    /// Execution domain (LINUX or LINUX32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<Value>,
    /// NUMA memory policy (set_mempolicy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<attrs::MemoryPolicy>,
    /// Host network interfaces moved into the container's network namespace, by host name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub net_devices: BTreeMap<String, NetDevice>,
}

/// One entry of linux.netDevices.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NetDevice {
    /// Its name inside the container (default: the host's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One entry of linux.namespaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Namespace {
    /// pid, network, mount, ipc, uts, user, cgroup, time.
    #[serde(rename = "type")]
    pub typ: String,
    /// Join this namespace instead of creating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// One uid or gid mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdMapping {
    /// First id inside.
    #[serde(rename = "containerID")]
    pub container_id: u32,
    /// First id outside.
    #[serde(rename = "hostID")]
    pub host_id: u32,
    /// How many.
    pub size: u32,
}

/// A time namespace offset.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TimeOffset {
    /// Seconds.
    #[serde(default)]
    pub secs: i64,
    /// Nanoseconds.
    #[serde(default)]
    pub nanosecs: u32,
}

/// One entry of linux.devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// `c`, `u`, `b` or `p`.
    #[serde(rename = "type")]
    pub typ: String,
    /// Absolute path inside the container.
    pub path: String,
    /// Major number.
    #[serde(default)]
    pub major: i64,
    /// Minor number.
    #[serde(default)]
    pub minor: i64,
    /// Permission bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    /// Owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// The state JSON of the runtime-spec, as `runc state` prints it and hooks read it on stdin.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Spec version.
    pub oci_version: String,
    /// Container id.
    pub id: String,
    /// creating, created, running or stopped.
    pub status: String,
    /// The init's pid on the host (0 once stopped).
    pub pid: i32,
    /// Absolute bundle path.
    pub bundle: String,
    /// Absolute rootfs path (runc extension).
    pub rootfs: String,
    /// RFC 3339 creation time (runc extension).
    pub created: String,
    /// Owner (runc extension; empty like runc's for root).
    pub owner: String,
    /// The spec's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Volumes attached while it runs (`berth mounts add`; a berth extension, absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub live_volumes: Vec<LiveVolume>,
}

/// A volume `berth mounts add` attached to a running container, as recorded in its state directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveVolume {
    /// Where it is mounted, as the request named it.
    pub destination: std::path::PathBuf,
    /// `bind` or `tmpfs`.
    #[serde(rename = "type")]
    pub typ: String,
    /// The source as the request named it (a bind's host path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The options as the request gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// `attached`, or `attaching` when the berth attaching it was killed before it could say
    /// whether the mount was made (the next `mounts remove` or `mounts add` finds out).
    pub status: String,
    /// The mount's id in the container's mount namespace (mountinfo's first field).
    #[serde(default)]
    pub mount_id: u64,
    /// Its never-reused id (Linux 6.8 and later), checked before it is detached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_id_unique: Option<u64>,
    /// Device and inode of the mounted tree's root, as made on the host's side.
    #[serde(default)]
    pub root_dev: u64,
    /// See `root_dev`.
    #[serde(default)]
    pub root_ino: u64,
}

/// Parses config.json, naming the field path on error (`process.user.uid: invalid type...`).
pub fn parse(bytes: &[u8]) -> crate::Result<Spec> {
    // serde_json alone on the way that succeeds; the path-tracking parse (a tenth of a start with
    // thousands of mounts) runs only to name the field of an error.
    if let Ok(spec) = serde_json::from_slice(bytes) {
        return Ok(spec);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            crate::Error::InvalidSpec(format!("config.json: {inner}"))
        } else {
            crate::Error::InvalidSpec(format!("config.json: field {path}: {inner}"))
        }
    })
}
