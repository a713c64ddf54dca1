//! The policy over the rest of the bundle: where the rootfs comes from, which hooks may run (as host
//! root), who the tenant is, and what a bundle may widen beyond its mounts: capabilities, host
//! namespaces, masked and read-only paths, a writable sysfs, devices. Each check is a [`Finding`],
//! which is both the refusal `create` reports and the verdict `berth check` prints, so nothing parses
//! its own message text.

use super::{Access, Enforcer, Policy};
use crate::error::{Error, Result};
use crate::mount::options::merge;
use crate::mount::plan::{MountOp, OpKind};
use crate::spec::ValidSpec;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::os::fd::OwnedFd;
use std::path::Path;

/// The capabilities a container may have under a policy that names none: Docker's default set
/// without CAP_MKNOD (devices are a rule of their own).
pub const DEFAULT_MAX_CAPABILITIES: &[&str] = &[
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_RAW",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Namespaces a container must have of its own unless `omit_namespaces` (mount always is).
const REQUIRED_NAMESPACES: &[&str] = &["pid", "network", "ipc", "uts"];

/// What else a bundle may widen; every default is the strict one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainerRules {
    /// The most capabilities any set may hold.
    pub max_capabilities: Vec<String>,
    /// Namespaces may be joined by path.
    pub join_namespaces: bool,
    /// pid, network, ipc or uts may be left out (shared with the host).
    pub omit_namespaces: bool,
    /// maskedPaths and readonlyPaths may be shorter than berth's defaults.
    pub relax_masked_paths: bool,
    /// sysfs may be mounted writable.
    pub writable_sysfs: bool,
    /// linux.devices and CAP_MKNOD are allowed.
    pub devices: bool,
    /// linux.netDevices may move host network interfaces into the container.
    pub net_devices: bool,
}

impl Default for ContainerRules {
    fn default() -> Self {
        ContainerRules {
            max_capabilities: DEFAULT_MAX_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            join_namespaces: false,
            omit_namespaces: false,
            relax_masked_paths: false,
            writable_sysfs: false,
            devices: false,
            net_devices: false,
        }
    }
}

impl ContainerRules {
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        for (i, c) in self.max_capabilities.iter().enumerate() {
            crate::security::caps::parse(c).map_err(|_| {
                format!("container.max_capabilities[{i}]: unknown capability {c:?}")
            })?;
        }
        Ok(())
    }
}

/// One decision about a part of the bundle.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The config.json field (`root.path`, `hooks.prestart[0]`, `process.capabilities.bounding`).
    pub field: String,
    /// `allowed` or `refused`.
    pub verdict: &'static str,
    /// The policy key that decided.
    pub rule: String,
    /// Why it was refused, or what the policy changes (`root.readonly forced`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Finding {
    fn allowed(field: impl Into<String>, rule: impl Into<String>) -> Finding {
        Finding {
            field: field.into(),
            verdict: "allowed",
            rule: rule.into(),
            note: None,
        }
    }

    fn refused(field: impl Into<String>, rule: impl Into<String>, why: String) -> Finding {
        Finding {
            field: field.into(),
            verdict: "refused",
            rule: rule.into(),
            note: Some(why),
        }
    }

    /// The refusal, when it is one.
    pub fn refusal(&self) -> Option<super::Refusal> {
        (self.verdict == "refused").then(|| {
            super::Refusal::new(
                self.field.clone(),
                self.rule.clone(),
                self.note.clone().unwrap_or_default(),
            )
        })
    }

    /// The refusal as an error, when it is one.
    pub fn to_error(&self) -> Option<Error> {
        self.refusal().map(Error::Refused)
    }
}

/// The tenant, from the caller only: `--tenant`, else `BERTH_TENANT`, else the one annotation the
/// policy names as the orchestrator's (`tenant_annotation`), else `default_tenant`. The bundle's own
/// `berth.tenant` annotation may only repeat that name. With tenants in the policy and none named,
/// the container is refused.
pub fn resolve_tenant(
    policy: &Policy,
    cli: Option<&str>,
    vs: &ValidSpec,
) -> Result<Option<String>> {
    let env = std::env::var("BERTH_TENANT").ok().filter(|t| !t.is_empty());
    let from_orchestrator = policy
        .tenant_annotation
        .as_ref()
        .and_then(|k| vs.spec.annotations.get(k))
        .cloned();
    let tenant = cli
        .map(str::to_string)
        .or(env)
        .or(from_orchestrator)
        .or_else(|| policy.default_tenant.clone());
    let claimed = vs.spec.annotations.get(super::TENANT_ANNOTATION);
    match (&tenant, claimed) {
        (Some(t), Some(c)) if t != c => Err(Error::Policy(format!(
            "annotations.{}: the bundle names tenant {c:?}, but the caller's tenant is {t:?}",
            super::TENANT_ANNOTATION
        ))),
        (None, Some(c)) => Err(Error::Policy(format!(
            "annotations.{}: the bundle names tenant {c:?}, but a tenant comes from the caller (--tenant, BERTH_TENANT{})",
            super::TENANT_ANNOTATION,
            policy
                .tenant_annotation
                .as_ref()
                .map(|k| format!(" or the annotation {k}"))
                .unwrap_or_default()
        ))),
        (None, None) if !policy.tenants.is_empty() => Err(Error::Policy(
            "the policy has tenants, but no tenant is named (--tenant, BERTH_TENANT, the policy's tenant_annotation or default_tenant)".into(),
        )),
        _ => Ok(tenant),
    }
}

impl Enforcer {
    /// Opens the rootfs beneath its allowed rootfs root (RESOLVE_BENEATH, like bind sources): the fd
    /// to bind, and the most access the rule gives.
    pub fn open_rootfs(
        &self,
        rootfs: &Path,
    ) -> std::result::Result<(OwnedFd, Access), super::Refusal> {
        let field = "root.path";
        let rule = self
            .policy
            .rootfs
            .iter()
            .filter(|r| rootfs.starts_with(&r.path))
            .max_by_key(|r| r.path.components().count())
            .ok_or_else(|| {
                super::Refusal::new(
                    field,
                    "rootfs",
                    format!("{} is not under an allowed rootfs root", rootfs.display()),
                )
            })?;
        let fd = super::open_beneath(&rule.path, rootfs, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| {
                let why = match e {
                    super::Beneath::Root(e) => format!("the rootfs root cannot be opened: {e}"),
                    super::Beneath::Rest(e) => format!(
                        "{} does not resolve beneath {} ({e})",
                        rootfs.display(),
                        rule.path.display()
                    ),
                };
                super::Refusal::new(field, "rootfs", why)
            })?;
        Ok((fd, rule.access))
    }

    /// Every bundle-level verdict: rootfs, hooks, capabilities, devices, namespaces, masked paths,
    /// sysfs.
    pub fn bundle_findings(&self, vs: &ValidSpec, ops: &[MountOp]) -> Vec<Finding> {
        let mut out = Vec::new();
        out.push(match self.open_rootfs(&vs.rootfs) {
            Ok((_, Access::Ro)) => Finding {
                note: Some("root.readonly forced".into()),
                ..Finding::allowed("root.path", "rootfs (ro)")
            },
            Ok((_, Access::Rw)) => Finding::allowed("root.path", "rootfs (rw)"),
            Err(r) => Finding::refused(r.field, r.rule, r.reason),
        });
        self.hooks(vs, &mut out);
        capabilities(&self.policy.container, &vs.process, "process", &mut out);
        let rules = &self.policy.container;
        let devices = &vs.linux().devices;
        out.push(if devices.is_empty() || rules.devices {
            Finding::allowed("linux.devices", "container.devices")
        } else {
            Finding::refused(
                "linux.devices",
                "container.devices",
                format!(
                    "{} device(s) asked for; the policy allows none",
                    devices.len()
                ),
            )
        });
        let net = &vs.linux().net_devices;
        out.push(if net.is_empty() || rules.net_devices {
            Finding::allowed("linux.netDevices", "container.net_devices")
        } else {
            Finding::refused(
                "linux.netDevices",
                "container.net_devices",
                format!(
                    "host interface(s) {:?} asked for; the policy moves none into a container",
                    net.keys().collect::<Vec<_>>()
                ),
            )
        });
        self.namespaces(vs, &mut out);
        self.masked_paths(vs, &mut out);
        for op in ops {
            let sysfs = matches!(&op.kind, OpKind::Fs { fstype, .. } if fstype == "sysfs");
            if sysfs && !op.top_read_only() && !rules.writable_sysfs {
                out.push(Finding::refused(
                    op.label(),
                    "container.writable_sysfs",
                    "sysfs must be mounted read-only".into(),
                ));
            }
        }
        out
    }

    fn hooks(&self, vs: &ValidSpec, out: &mut Vec<Finding>) {
        for (kind, list) in vs.spec.hooks.iter().flat_map(crate::hooks::all) {
            for (i, h) in list.iter().enumerate() {
                let field = format!("hooks.{kind}[{i}]");
                out.push(
                    if self.policy.hooks.iter().any(|a| a == Path::new(&h.path)) {
                        Finding::allowed(field, "hooks")
                    } else {
                        Finding::refused(
                            field,
                            "hooks",
                            format!(
                                "{} is not an allowed hook (hooks run as root on the host)",
                                h.path
                            ),
                        )
                    },
                );
            }
        }
    }

    fn namespaces(&self, vs: &ValidSpec, out: &mut Vec<Finding>) {
        let rules = &self.policy.container;
        let field = "linux.namespaces";
        let before = out.len();
        for j in vs.joins.iter().filter(|_| !rules.join_namespaces) {
            out.push(Finding::refused(
                field,
                "container.join_namespaces",
                format!("joining the {} namespace {}", j.typ, j.path.display()),
            ));
        }
        let own = &vs.linux().namespaces;
        for typ in REQUIRED_NAMESPACES
            .iter()
            .filter(|_| !rules.omit_namespaces)
        {
            if !own.iter().any(|n| n.typ == *typ) {
                out.push(Finding::refused(
                    field,
                    "container.omit_namespaces",
                    format!("no {typ} namespace: the container would share the host's"),
                ));
            }
        }
        if out.len() == before {
            out.push(Finding::allowed(
                field,
                "container.join_namespaces, container.omit_namespaces",
            ));
        }
    }

    fn masked_paths(&self, vs: &ValidSpec, out: &mut Vec<Finding>) {
        if self.policy.container.relax_masked_paths {
            return;
        }
        let d = crate::spec::default::default_spec()
            .linux
            .unwrap_or_default();
        let l = vs.linux();
        for (field, want, have) in [
            ("linux.maskedPaths", &d.masked_paths, &l.masked_paths),
            ("linux.readonlyPaths", &d.readonly_paths, &l.readonly_paths),
        ] {
            let missing: Vec<&String> = want.iter().filter(|p| !have.contains(p)).collect();
            out.push(if missing.is_empty() {
                Finding::allowed(field, "container.relax_masked_paths")
            } else {
                Finding::refused(
                    field,
                    "container.relax_masked_paths",
                    format!("berth's defaults {missing:?} are missing"),
                )
            });
        }
    }

    /// What the kernel enforces under the policy, whatever the bundle asked: every bind from a root
    /// the policy caps at ro is read-only as a whole tree (rro), every bind is rnosuid, and rnodev
    /// unless its root allows special files. Called after the checks (which refuse a bundle that asks
    /// for more than its cap), so this only ever narrows.
    pub fn harden(&self, ops: &mut [MountOp]) {
        for op in ops {
            let OpKind::Bind { source, .. } = &op.kind else {
                continue;
            };
            let Some(rule) = self.policy.root_for(source) else {
                continue;
            };
            let max = match self.tenant() {
                Some((_, t)) => rule.access.min(t.access),
                None => rule.access,
            };
            let mut set = sys::MOUNT_ATTR_NOSUID;
            if !rule.special_files {
                set |= sys::MOUNT_ATTR_NODEV;
            }
            if max == Access::Ro {
                set |= sys::MOUNT_ATTR_RDONLY;
            }
            merge(&mut op.rattr, set, 0);
        }
    }

    /// The access a rootfs gets: forces root.readonly under an ro rootfs rule.
    pub fn harden_root(&self, vs: &mut ValidSpec) {
        if let Ok((_, Access::Ro)) = self.open_rootfs(&vs.rootfs) {
            vs.spec.root.get_or_insert_with(Default::default).readonly = true;
        }
    }
}

/// The capability sets of a process (the init's, or an exec'd one's) against the policy's cap;
/// `what` names the process in the findings (`process`, or `exec` for an exec'd process).
fn capabilities(
    rules: &ContainerRules,
    p: &crate::spec::Process,
    what: &str,
    out: &mut Vec<Finding>,
) {
    let Some(c) = &p.capabilities else {
        return;
    };
    for (set, list) in c.sets() {
        let field = format!("{what}.capabilities.{set}");
        let over: Vec<&String> = list
            .iter()
            .flatten()
            .filter(|cap| {
                !rules.max_capabilities.contains(cap) || (*cap == "CAP_MKNOD" && !rules.devices)
            })
            .collect();
        out.push(if over.is_empty() {
            Finding::allowed(field, "container.max_capabilities")
        } else {
            Finding::refused(
                field,
                "container.max_capabilities",
                format!("{over:?} above what the policy allows"),
            )
        });
    }
}

/// The policy's verdicts on a process `exec` is about to start: bounded as the init is (its
/// capabilities within the policy's cap).
pub fn exec_findings(policy: &Policy, p: &crate::spec::Process) -> Vec<Finding> {
    let mut out = Vec::new();
    capabilities(&policy.container, p, "exec", &mut out);
    out
}
