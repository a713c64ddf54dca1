//! `events --stats`: the container's usage read from its cgroup, in runc's JSON shape
//! (`{"type":"stats","id":...,"data":{"cpu":...,"memory":...,"pids":...}}`).

use super::{Cgroup, Version};
use serde_json::{Value, json};
use std::path::Path;

fn num(dir: Option<&Path>, file: &str) -> Option<u64> {
    let s = std::fs::read_to_string(dir?.join(file)).ok()?;
    let s = s.trim();
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat) as a map.
fn keyed(dir: Option<&Path>, file: &str) -> serde_json::Map<String, Value> {
    let text = dir
        .and_then(|d| std::fs::read_to_string(d.join(file)).ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

impl Cgroup {
    /// How many times the OOM killer acted in the cgroup (v2 memory.events, v1 memory.oom_control).
    pub fn oom_kills(&self) -> u64 {
        let (dir, file) = match self.version {
            Version::V2 => (self.dirs.first().map(|d| d.path.as_path()), "memory.events"),
            Version::V1 => (self.dir_for("memory"), "memory.oom_control"),
        };
        keyed(dir, file)
            .get("oom_kill")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// cpu, memory and pids usage, as runc's `events --stats` reports them.
    pub fn stats(&self) -> Value {
        match self.version {
            Version::V1 => {
                let cpu = self.dir_for("cpuacct");
                let mem = self.dir_for("memory");
                let pids = self.dir_for("pids");
                let percpu: Vec<u64> = cpu
                    .and_then(|d| std::fs::read_to_string(d.join("cpuacct.usage_percpu")).ok())
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect();
                json!({
                    "cpu": {"usage": {"total": num(cpu, "cpuacct.usage").unwrap_or(0), "percpu": percpu},
                            "throttling": keyed(self.dir_for("cpu"), "cpu.stat")},
                    "memory": {"usage": {"usage": num(mem, "memory.usage_in_bytes").unwrap_or(0),
                                         "max": num(mem, "memory.max_usage_in_bytes").unwrap_or(0),
                                         "limit": num(mem, "memory.limit_in_bytes").unwrap_or(0),
                                         "failcnt": num(mem, "memory.failcnt").unwrap_or(0)},
                               "raw": keyed(mem, "memory.stat")},
                    "pids": {"current": num(pids, "pids.current").unwrap_or(0),
                             "limit": num(pids, "pids.max").unwrap_or(0)},
                })
            }
            Version::V2 => {
                let d = self.dirs.first().map(|d| d.path.as_path());
                let cpu = keyed(d, "cpu.stat");
                let usec = |k: &str| cpu.get(k).and_then(Value::as_u64).unwrap_or(0) * 1000;
                json!({
                    "cpu": {"usage": {"total": usec("usage_usec"), "kernel": usec("system_usec"),
                                      "user": usec("user_usec")}},
                    "memory": {"usage": {"usage": num(d, "memory.current").unwrap_or(0),
                                         "max": num(d, "memory.peak").unwrap_or(0),
                                         "limit": num(d, "memory.max").unwrap_or(0)},
                               "raw": keyed(d, "memory.stat")},
                    "pids": {"current": num(d, "pids.current").unwrap_or(0),
                             "limit": num(d, "pids.max").unwrap_or(0)},
                })
            }
        }
    }
}
