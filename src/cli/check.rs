//! `berth check --bundle B [--policy P] [--tenant T] [--format text|json]`: a dry run of the host mount
//! policy that an orchestrator can call before create. The rootfs, hooks, capabilities, devices,
//! namespaces and masked paths get a verdict each, and each mount one with the source as it resolved
//! and the access it would get; the exit code is 1 when anything is refused. Nothing is mounted,
//! created or started.

use super::Global;
use crate::error::Result;
use crate::lifecycle;

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
    let report = lifecycle::check(&g.context(), &a.bundle, a.tenant.as_deref())?;
    print(&report, &a.format)
}

/// Prints a report (text or json); 1 when anything is refused.
pub(super) fn print(report: &lifecycle::CheckReport, format: &str) -> Result<i32> {
    let (verdicts, findings) = (&report.mounts, &report.bundle);
    if format == "json" {
        let out = report;
        super::out(&serde_json::to_string_pretty(&out).unwrap_or_default())?;
    } else {
        for f in findings {
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
        for v in verdicts {
            let access = v.access.map_or("-", |a| a.as_str());
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
    Ok(if report.refused() { 1 } else { 0 })
}
