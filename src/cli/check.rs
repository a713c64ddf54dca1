//! `berth check --bundle B [--policy P] [--tenant T] [--format text|json]`: a dry run of the host mount
//! policy that an orchestrator can call before create. The rootfs, hooks, capabilities, devices,
//! namespaces and masked paths get a verdict each, and each mount one with the source as it resolved
//! and the access it would get; the exit code is 1 when anything is refused. Nothing is mounted,
//! created or started.

use super::Global;
use super::create::{enforcer, load_spec};
use crate::error::Result;
use crate::mount::plan::{OpKind, plan_for};
use crate::policy::{Access, Verdict};

/// `check` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bundle directory (holds config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: std::path::PathBuf,
    /// The tenant (else the `berth.tenant` annotation).
    #[arg(long)]
    pub tenant: Option<String>,
    /// text or json.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

/// `berth check`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    let vs = load_spec(&a.bundle)?;
    let ops = plan_for(&vs)?;
    let enforcer = enforcer(g, a.tenant.as_deref(), &vs)?;
    let findings = enforcer
        .as_ref()
        .map(|e| e.bundle_findings(&vs, &ops))
        .unwrap_or_default();
    let verdicts: Vec<Verdict> = match &enforcer {
        Some(e) => e.verdicts(&ops, &vs.rootfs),
        None => ops
            .iter()
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
                }
            })
            .collect(),
    };
    let refused = verdicts.iter().any(|v| v.verdict == "refused")
        || findings.iter().any(|f| f.verdict == "refused");
    if a.format == "json" {
        let out = serde_json::json!({"mounts": verdicts, "bundle": findings});
        super::out(&serde_json::to_string_pretty(&out).unwrap_or_default())?;
    } else {
        for f in &findings {
            super::out(&format!(
                "{}: {} [{}]{}",
                f.field,
                f.verdict,
                f.rule,
                f.note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ))?;
        }
        for v in &verdicts {
            let access = v
                .access
                .map_or("-", |a| if a == Access::Ro { "ro" } else { "rw" });
            super::out(&format!(
                "mounts[{}] {} <- {}: {} ({access}) [{}]{}",
                v.index,
                v.destination,
                v.resolved.as_deref().or(v.source.as_deref()).unwrap_or("-"),
                v.verdict,
                v.rule,
                v.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            ))?;
        }
    }
    Ok(if refused { 1 } else { 0 })
}
