//! Check: a dry run of the host mount policy that an orchestrator can call before create. The rootfs,
//! hooks, capabilities, devices, namespaces and masked paths get a verdict each, and each mount one
//! with the source as it resolved and the access it would get. Nothing is mounted, created or started.

use super::Context;
use crate::error::Result;
use crate::mount::plan::{OpKind, plan_for};
use crate::policy::bundle::Finding;
use crate::policy::{Access, Verdict};
use std::path::Path;

/// The verdicts on a bundle.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// One per mount, in config.json's order.
    pub mounts: Vec<Verdict>,
    /// The rest of the bundle (empty without a policy).
    pub bundle: Vec<Finding>,
}

impl Report {
    /// Whether anything is refused.
    pub fn refused(&self) -> bool {
        self.mounts.iter().any(|v| v.refusal.is_some())
            || self.bundle.iter().any(|f| f.refusal().is_some())
    }
}

/// Checks the bundle in `bundle` against the context's policy, as `tenant`.
pub fn check(ctx: &Context, bundle: &Path, tenant: Option<&str>) -> Result<Report> {
    let mut vs = super::load_bundle(bundle)?;
    let enforcer = ctx.enforcer(tenant, &vs)?;
    crate::security::prepare(&mut vs, enforcer.as_ref().and_then(|e| e.policy.landlock))?;
    let ops = plan_for(&vs)?;
    let findings = enforcer
        .as_ref()
        .map(|e| e.bundle_findings(&vs, &ops))
        .unwrap_or_default();
    let verdicts: Vec<Verdict> = match &enforcer {
        Some(e) => e.verdicts(&ops, &vs.rootfs),
        None => no_policy_verdicts(&ops),
    };
    Ok(Report {
        mounts: verdicts,
        bundle: findings,
    })
}

/// The verdicts without a policy: everything allowed, with the access each bind asks.
pub(super) fn no_policy_verdicts(ops: &[crate::mount::plan::MountOp]) -> Vec<Verdict> {
    ops.iter()
        .map(|op| {
            let (source, access) = match &op.kind {
                OpKind::Bind { source, .. } => {
                    let ro = op.top_read_only();
                    (
                        Some(source.display().to_string()),
                        Some(if ro { Access::Ro } else { Access::Rw }),
                    )
                }
                OpKind::Fs { .. } => (None, None),
            };
            Verdict {
                index: op.index,
                destination: op.dest.display().to_string(),
                resolved: None,
                source,
                verdict: "allowed",
                access,
                rule: "no policy".into(),
                reason: None,
                refusal: None,
                capped: false,
            }
        })
        .collect()
}
