//! `berth update [OPTIONS] ID`: changes the limits of a created, running or paused container, with
//! runc's options and `-r resources.json` (`-` for stdin), through the same checks and v1/v2
//! conversions as create (cgroups::resources); each file is written whole, in order.

use super::Global;
use crate::error::{Error, Result, io_err};
use serde_json::{Value, json};
use std::path::PathBuf;

/// `update` options (runc's names).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A linux.resources JSON document ("-" for stdin).
    #[arg(long, short = 'r')]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10-1000).
    #[arg(long)]
    pub blkio_weight: Option<i64>,
    /// CPU CFS period (µs).
    #[arg(long)]
    pub cpu_period: Option<i64>,
    /// CPU CFS quota (µs).
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPU shares.
    #[arg(long, alias = "cpu-shares")]
    pub cpu_share: Option<i64>,
    /// Real-time period (µs, v1).
    #[arg(long)]
    pub cpu_rt_period: Option<i64>,
    /// Real-time runtime (µs, v1).
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs allowed (0-3,5).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with k/m/g; -1 for none).
    #[arg(long, allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Memory reservation.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap limit.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Process limit (0 or less: none).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Container id.
    pub id: String,
}

/// `512m` → bytes; `-1` stays -1.
fn bytes(s: &str, flag: &str) -> Result<i64> {
    let bad = || {
        Error::InvalidSpec(format!(
            "--{flag}: {s:?} is not a size (bytes, or with k, m, g)"
        ))
    };
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(bad)
}

fn resources(a: &Args) -> Result<Value> {
    let mut r: Value = match &a.resources {
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| io_err("read", std::path::Path::new("stdin"), e))?;
                s
            } else {
                std::fs::read_to_string(p).map_err(|e| io_err("read", p, e))?
            };
            serde_json::from_str(&text)
                .map_err(|e| Error::InvalidSpec(format!("--resources {}: {e}", p.display())))?
        }
        None => json!({}),
    };
    let mut set = |section: &str, key: &str, v: Value| {
        r[section][key] = v;
    };
    if let Some(v) = a.blkio_weight {
        set("blockIO", "weight", json!(v));
    }
    for (key, v) in [
        ("period", a.cpu_period),
        ("quota", a.cpu_quota),
        ("shares", a.cpu_share),
        ("realtimePeriod", a.cpu_rt_period),
        ("realtimeRuntime", a.cpu_rt_runtime),
    ] {
        if let Some(v) = v {
            set("cpu", key, json!(v));
        }
    }
    if let Some(v) = &a.cpuset_cpus {
        set("cpu", "cpus", json!(v));
    }
    if let Some(v) = &a.cpuset_mems {
        set("cpu", "mems", json!(v));
    }
    for (key, flag, v) in [
        ("limit", "memory", &a.memory),
        ("reservation", "memory-reservation", &a.memory_reservation),
        ("swap", "memory-swap", &a.memory_swap),
    ] {
        if let Some(v) = v {
            set("memory", key, json!(bytes(v, flag)?));
        }
    }
    if let Some(v) = a.pids_limit {
        set("pids", "limit", json!(v));
    }
    Ok(r)
}

/// `berth update`.
pub fn run(g: &Global, a: Args) -> Result<i32> {
    crate::lifecycle::update(&g.context(), &a.id, &resources(&a)?)?;
    Ok(0)
}
