//! `linux.resources` turned into cgroup file writes, purely (unit-tested without a cgroup), for both
//! layouts, with runc's and crun's v1→v2 conversions: cpu shares → cpu.weight, memory+swap →
//! memory.swap.max, blkio weight → io.bfq.weight/io.weight. Every error names the field; fields the
//! kernel has no knob for on a layout (memory.swappiness on v2...) are reported, not silently dropped.

use super::Version;
use crate::error::{Error, Result};
use serde_json::Value;

/// One write: `value` into `file` of the hierarchy holding `controller`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller whose hierarchy has the file (v1), or whose availability it needs (v2).
    pub controller: &'static str,
    /// The file name in the container's cgroup directory.
    pub file: String,
    /// What to write.
    pub value: String,
    /// The spec field, for messages.
    pub field: String,
}

/// What came out of a resources block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The writes, in order.
    pub writes: Vec<Write>,
    /// Fields the kernel ignores on this layout (said in the log).
    pub ignored: Vec<String>,
}

fn bad(field: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidSpec(format!("linux.resources.{field}: {why}"))
}

fn int(v: &Value, field: &str) -> Result<Option<i64>> {
    match v.get(field.rsplit('.').next().unwrap_or(field)) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_i64()
            .or_else(|| x.as_u64().map(|u| u.min(i64::MAX as u64) as i64))
            .map(Some)
            .ok_or_else(|| bad(field, format!("{x} is not an integer"))),
    }
}

/// [`int`] for a field where 0 means "not set", as runc reads it: Docker sends
/// `blockIO.weight: 0` for every container that asks no weight, and other clients send 0 for a
/// limit or share nobody set.
fn set_int(v: &Value, field: &str) -> Result<Option<i64>> {
    Ok(int(v, field)?.filter(|n| *n != 0))
}

fn string<'a>(v: &'a Value, key: &str, field: &str) -> Result<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(x) => Err(bad(field, format!("{x} is not a string"))),
    }
}

impl Plan {
    fn push(
        &mut self,
        controller: &'static str,
        file: impl Into<String>,
        value: impl ToString,
        field: &str,
    ) {
        self.writes.push(Write {
            controller,
            file: file.into(),
            value: value.to_string(),
            field: field.into(),
        });
    }
}

/// A limit for v2 files: "max" for -1 (or any negative), the number otherwise.
fn v2_limit(n: i64) -> String {
    if n < 0 { "max".into() } else { n.to_string() }
}

fn memory(v: &Value, ver: Version, p: &mut Plan) -> Result<()> {
    let f = |k: &str| format!("memory.{k}");
    let limit = set_int(v, &f("limit"))?;
    let reservation = set_int(v, &f("reservation"))?;
    let swap = set_int(v, &f("swap"))?;
    for (k, n) in [
        ("limit", limit),
        ("reservation", reservation),
        ("swap", swap),
    ] {
        if let Some(n) = n.filter(|n| *n < -1) {
            return Err(bad(
                &f(k),
                format!("{n} (expected a positive number of bytes, or -1 for no limit)"),
            ));
        }
    }
    if let (Some(l), Some(s)) = (limit, swap)
        && l > 0
        && s > 0
        && s < l
    {
        return Err(bad(
            &f("swap"),
            format!("{s} is below memory.limit {l} (swap is memory+swap)"),
        ));
    }
    let swappiness = int(v, &f("swappiness"))?;
    if let Some(s) = swappiness.filter(|s| !(0..=100).contains(s)) {
        return Err(bad(&f("swappiness"), format!("{s} (expected 0 to 100)")));
    }
    let oom = v
        .get("disableOOMKiller")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match ver {
        Version::V1 => {
            if let Some(l) = limit {
                p.push("memory", "memory.limit_in_bytes", l, &f("limit"));
            }
            if let Some(r) = reservation {
                p.push("memory", "memory.soft_limit_in_bytes", r, &f("reservation"));
            }
            if let Some(s) = swap {
                p.push("memory", "memory.memsw.limit_in_bytes", s, &f("swap"));
            }
            if let Some(s) = swappiness {
                p.push("memory", "memory.swappiness", s, &f("swappiness"));
            }
            if oom {
                p.push("memory", "memory.oom_control", 1, &f("disableOOMKiller"));
            }
            if let Some(k) = int(v, &f("kernelTCP"))? {
                p.push(
                    "memory",
                    "memory.kmem.tcp.limit_in_bytes",
                    k,
                    &f("kernelTCP"),
                );
            }
            if int(v, &f("kernel"))?.is_some() {
                p.ignored
                    .push(f("kernel") + " (kernel memory limits were removed from Linux 5.16)");
            }
        }
        Version::V2 => {
            if let Some(l) = limit {
                p.push("memory", "memory.max", v2_limit(l), &f("limit"));
            }
            if let Some(r) = reservation {
                p.push("memory", "memory.low", v2_limit(r), &f("reservation"));
            }
            // v1's swap is memory+swap; v2's memory.swap.max is swap alone.
            if let Some(s) = swap {
                let value = match (s, limit) {
                    (-1, _) => "max".to_string(),
                    (s, Some(l)) if l > 0 => (s - l).to_string(),
                    (_, _) => {
                        return Err(bad(
                            &f("swap"),
                            "on cgroup v2 a swap limit needs memory.limit",
                        ));
                    }
                };
                p.push("memory", "memory.swap.max", value, &f("swap"));
            }
            for (k, set) in [
                ("swappiness", swappiness.is_some()),
                ("disableOOMKiller", oom),
                ("kernel", int(v, &f("kernel"))?.is_some()),
                ("kernelTCP", int(v, &f("kernelTCP"))?.is_some()),
            ] {
                if set {
                    p.ignored.push(format!("{} (no cgroup v2 knob)", f(k)));
                }
            }
        }
    }
    Ok(())
}

/// The conversion of cpu.shares (2..262144) to cpu.weight (1..10000) that runc >= 1.3.2, crun >=
/// 1.23 and youki use: a quadratic in log2(shares) through the minimum (2 → 1), the default
/// (1024 → 100) and the maximum (262144 → 10000), so that a container asking the default shares
/// gets the default weight (the older linear formula gave 1024 → 39).
pub fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            // In 1..10000 by the arms above: the cast cannot truncate.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let w = 10f64.powf(exponent).ceil() as u64;
            w.clamp(1, 10_000)
        }
    }
}

fn cpu(v: &Value, ver: Version, p: &mut Plan) -> Result<()> {
    let f = |k: &str| format!("cpu.{k}");
    let shares = set_int(v, &f("shares"))?;
    let quota = set_int(v, &f("quota"))?;
    let period = set_int(v, &f("period"))?;
    let burst = int(v, &f("burst"))?;
    if let Some(s) = shares.filter(|s| *s < 2 || *s > 262_144) {
        return Err(bad(&f("shares"), format!("{s} (expected 2 to 262144)")));
    }
    if let Some(q) = quota.filter(|q| *q < -1) {
        return Err(bad(
            &f("quota"),
            format!("{q} (expected a positive number of microseconds, or -1)"),
        ));
    }
    if let Some(pe) = period.filter(|p| *p < 1000 || *p > 1_000_000) {
        return Err(bad(
            &f("period"),
            format!("{pe} (expected 1000 to 1000000 microseconds)"),
        ));
    }
    for k in ["cpus", "mems"] {
        if let Some(s) = string(v, k, &f(k))? {
            if !s.is_empty()
                && !s
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
            {
                return Err(bad(&f(k), format!("{s:?} is not a list like 0-3,5")));
            }
            if !s.is_empty() {
                p.push("cpuset", format!("cpuset.{k}"), s, &f(k));
            }
        }
    }
    match ver {
        Version::V1 => {
            if let Some(s) = shares {
                p.push("cpu", "cpu.shares", s, &f("shares"));
            }
            if let Some(pe) = period {
                p.push("cpu", "cpu.cfs_period_us", pe, &f("period"));
            }
            if let Some(q) = quota {
                p.push("cpu", "cpu.cfs_quota_us", q, &f("quota"));
            }
            if let Some(b) = burst {
                p.push("cpu", "cpu.cfs_burst_us", b, &f("burst"));
            }
            if let Some(r) = int(v, &f("realtimePeriod"))? {
                p.push("cpu", "cpu.rt_period_us", r, &f("realtimePeriod"));
            }
            if let Some(r) = int(v, &f("realtimeRuntime"))? {
                p.push("cpu", "cpu.rt_runtime_us", r, &f("realtimeRuntime"));
            }
        }
        Version::V2 => {
            if let Some(s) = shares {
                p.push(
                    "cpu",
                    "cpu.weight",
                    shares_to_weight(s as u64),
                    &f("shares"),
                );
            }
            if quota.is_some() || period.is_some() {
                let q = quota.map_or("max".to_string(), v2_limit);
                p.push(
                    "cpu",
                    "cpu.max",
                    format!("{q} {}", period.unwrap_or(100_000)),
                    &f("quota"),
                );
            }
            if let Some(b) = burst {
                p.push("cpu", "cpu.max.burst", b, &f("burst"));
            }
            for k in ["realtimePeriod", "realtimeRuntime"] {
                if int(v, &f(k))?.is_some() {
                    return Err(Error::NotSupported(format!(
                        "linux.resources.{}: real-time cpu limits do not exist on cgroup v2",
                        f(k)
                    )));
                }
            }
        }
    }
    if let Some(i) = int(v, &f("idle"))? {
        p.push("cpu", "cpu.idle", i, &f("idle"));
    }
    Ok(())
}

fn device_lines(list: Option<&Value>, key: &str, field: &str) -> Result<Vec<(String, i64)>> {
    let Some(Value::Array(a)) = list else {
        return Ok(Vec::new());
    };
    a.iter()
        .enumerate()
        .map(|(i, d)| {
            let f = format!("{field}[{i}]");
            let major =
                int(d, &format!("{f}.major"))?.ok_or_else(|| bad(&f, "major is missing"))?;
            let minor =
                int(d, &format!("{f}.minor"))?.ok_or_else(|| bad(&f, "minor is missing"))?;
            let n = int(d, &format!("{f}.{key}"))?
                .ok_or_else(|| bad(&f, format!("{key} is missing")))?;
            if major < 0 || minor < 0 || n < 0 {
                return Err(bad(&f, "negative numbers"));
            }
            Ok((format!("{major}:{minor}"), n))
        })
        .collect()
}

fn block_io(v: &Value, ver: Version, p: &mut Plan) -> Result<()> {
    let f = |k: &str| format!("blockIO.{k}");
    let weight = set_int(v, &f("weight"))?;
    if let Some(w) = weight.filter(|w| !(10..=1000).contains(w)) {
        return Err(bad(&f("weight"), format!("{w} (expected 10 to 1000)")));
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            "rbps",
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            "wbps",
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            "riops",
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            "wiops",
        ),
    ];
    match ver {
        Version::V1 => {
            if let Some(w) = weight {
                p.push("blkio", "blkio.weight", w, &f("weight"));
            }
            if let Some(w) = set_int(v, &f("leafWeight"))? {
                p.push("blkio", "blkio.leaf_weight", w, &f("leafWeight"));
            }
            for (dev, w) in device_lines(v.get("weightDevice"), "weight", &f("weightDevice"))? {
                p.push(
                    "blkio",
                    "blkio.weight_device",
                    format!("{dev} {w}"),
                    &f("weightDevice"),
                );
            }
            for (key, file, _) in throttles {
                for (dev, n) in device_lines(v.get(key), "rate", &f(key))? {
                    p.push("blkio", file, format!("{dev} {n}"), &f(key));
                }
            }
        }
        Version::V2 => {
            if let Some(w) = weight {
                p.push(
                    "io",
                    "io.bfq.weight",
                    1 + (w - 10) * 9999 / 990,
                    &f("weight"),
                );
            }
            if set_int(v, &f("leafWeight"))?.is_some() {
                p.ignored.push(f("leafWeight") + " (no cgroup v2 knob)");
            }
            for (dev, w) in device_lines(v.get("weightDevice"), "weight", &f("weightDevice"))? {
                p.push(
                    "io",
                    "io.bfq.weight",
                    format!("{dev} {w}"),
                    &f("weightDevice"),
                );
            }
            for (key, _, v2) in throttles {
                for (dev, n) in device_lines(v.get(key), "rate", &f(key))? {
                    p.push("io", "io.max", format!("{dev} {v2}={n}"), &f(key));
                }
            }
        }
    }
    Ok(())
}

/// Plans every write for `linux.resources` (devices are separate: see [`super::devices`]).
pub fn plan(resources: &Value, ver: Version) -> Result<Plan> {
    let mut p = Plan::default();
    let Some(obj) = resources.as_object() else {
        return Ok(p);
    };
    for (key, v) in obj {
        if v.is_null() {
            continue;
        }
        match key.as_str() {
            "devices" => {}
            "memory" => memory(v, ver, &mut p)?,
            "cpu" => cpu(v, ver, &mut p)?,
            "pids" => pids(v, &mut p)?,
            "blockIO" => block_io(v, ver, &mut p)?,
            "hugepageLimits" => hugepages(v, ver, &mut p)?,
            "network" => network(v, ver, &mut p)?,
            "rdma" => rdma(v, &mut p)?,
            "unified" => unified(v, ver, &mut p)?,
            other => p.ignored.push(format!("{other} (unknown to berth)")),
        }
    }
    Ok(p)
}

/// pids.limit: -1 (or below) is no limit ("max"); 0 is a limit of 0, as runtime-spec 1.3 says
/// (and runc 1.4 does): nothing can fork.
fn pids(v: &Value, p: &mut Plan) -> Result<()> {
    if let Some(l) = int(v, "pids.limit")? {
        let value = if l < 0 {
            "max".to_string()
        } else {
            l.to_string()
        };
        p.push("pids", "pids.max", value, "pids.limit");
    }
    Ok(())
}

/// hugepageLimits: one limit per page size.
fn hugepages(v: &Value, ver: Version, p: &mut Plan) -> Result<()> {
    for (i, h) in v.as_array().into_iter().flatten().enumerate() {
        let field = format!("hugepageLimits[{i}]");
        let size =
            string(h, "pageSize", &field)?.ok_or_else(|| bad(&field, "pageSize is missing"))?;
        if size.is_empty() || !size.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(bad(&field, format!("pageSize {size:?}")));
        }
        let limit =
            int(h, &format!("{field}.limit"))?.ok_or_else(|| bad(&field, "limit is missing"))?;
        let file = match ver {
            Version::V1 => format!("hugetlb.{size}.limit_in_bytes"),
            Version::V2 => format!("hugetlb.{size}.max"),
        };
        p.push("hugetlb", file, limit, &field);
    }
    Ok(())
}

/// network: net_cls's class id and net_prio's priorities (cgroup v1 only).
fn network(v: &Value, ver: Version, p: &mut Plan) -> Result<()> {
    if ver == Version::V2 {
        return Err(Error::NotSupported(
            "linux.resources.network: net_cls/net_prio do not exist on cgroup v2".into(),
        ));
    }
    if let Some(c) = int(v, "network.classID")? {
        p.push("net_cls", "net_cls.classid", c, "network.classID");
    }
    let priorities = v.get("priorities").and_then(Value::as_array);
    for (i, pr) in priorities.into_iter().flatten().enumerate() {
        let field = format!("network.priorities[{i}]");
        let name = string(pr, "name", &field)?.ok_or_else(|| bad(&field, "name is missing"))?;
        let prio = int(pr, &format!("{field}.priority"))?.unwrap_or(0);
        p.push(
            "net_prio",
            "net_prio.ifpriomap",
            format!("{name} {prio}"),
            &field,
        );
    }
    Ok(())
}

/// rdma: per device, its HCA handle and object limits.
fn rdma(v: &Value, p: &mut Plan) -> Result<()> {
    for (dev, lim) in v.as_object().into_iter().flatten() {
        let field = format!("rdma.{dev}");
        let mut parts = vec![dev.clone()];
        if let Some(h) = int(lim, &format!("{field}.hcaHandles"))? {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = int(lim, &format!("{field}.hcaObjects"))? {
            parts.push(format!("hca_object={o}"));
        }
        p.push("rdma", "rdma.max", parts.join(" "), &field);
    }
    Ok(())
}

/// unified: cgroup v2 files by name, each a plain file name of a known controller.
fn unified(v: &Value, ver: Version, p: &mut Plan) -> Result<()> {
    if ver == Version::V1 {
        return Err(Error::NotSupported(
            "linux.resources.unified: cgroup v2 keys on a cgroup v1 host".into(),
        ));
    }
    for (k, val) in v.as_object().into_iter().flatten() {
        let field = format!("unified.{k}");
        if k.is_empty() || k.contains('/') || k.starts_with('.') || !k.contains('.') {
            return Err(bad(&field, "not a cgroup file name"));
        }
        let value = val
            .as_str()
            .ok_or_else(|| bad(&field, "the value must be a string"))?;
        let ctrl = controller_of(k).ok_or_else(|| bad(&field, "unknown controller"))?;
        p.push(ctrl, k.clone(), value, &field);
    }
    Ok(())
}

/// The controller a v2 file belongs to (its prefix), for the `unified` map.
fn controller_of(file: &str) -> Option<&'static str> {
    let prefix = file.split('.').next()?;
    [
        "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc", "cgroup",
    ]
    .into_iter()
    .find(|c| *c == prefix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn files(p: &Plan) -> Vec<(String, String)> {
        p.writes
            .iter()
            .map(|w| (w.file.clone(), w.value.clone()))
            .collect()
    }

    #[test]
    fn v1_and_v2_conversions() {
        let r = json!({"memory": {"limit": 67108864, "swap": 134217728}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000}, "pids": {"limit": 32}});
        let v1 = files(&plan(&r, Version::V1).unwrap());
        assert!(v1.contains(&("memory.limit_in_bytes".into(), "67108864".into())));
        assert!(v1.contains(&("memory.memsw.limit_in_bytes".into(), "134217728".into())));
        assert!(v1.contains(&("cpu.shares".into(), "1024".into())));
        assert!(v1.contains(&("cpu.cfs_quota_us".into(), "50000".into())));
        assert!(v1.contains(&("pids.max".into(), "32".into())));
        let v2 = files(&plan(&r, Version::V2).unwrap());
        assert!(v2.contains(&("memory.max".into(), "67108864".into())));
        assert!(v2.contains(&("memory.swap.max".into(), "67108864".into())));
        // The default shares give the default weight (runc >= 1.3.2, crun >= 1.23).
        assert!(v2.contains(&("cpu.weight".into(), "100".into())));
        assert!(v2.contains(&("cpu.max".into(), "50000 100000".into())));
        // pids.limit 0 is a limit (runtime-spec 1.3); -1 is none.
        for (limit, want) in [(0, "0"), (-1, "max")] {
            let p = plan(&json!({"pids": {"limit": limit}}), Version::V2).unwrap();
            assert_eq!(files(&p), vec![("pids.max".into(), want.into())]);
        }
    }

    #[test]
    fn shares_become_weight_as_runc_and_crun_convert_them() {
        for (shares, weight) in [
            (0, 0),
            (2, 1),
            (3, 2),
            (512, 59),
            (1024, 100),
            (2048, 174),
            (100_000, 4340),
            (262_143, 10_000),
            (262_144, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "{shares}");
        }
    }

    #[test]
    fn zero_is_unset_as_runc_reads_it() {
        // What Docker sends for a container that asks no limit or weight.
        let r = json!({"blockIO": {"weight": 0, "leafWeight": 0}, "cpu": {"shares": 0, "quota": 0, "period": 0},
                       "memory": {"limit": 0, "reservation": 0, "swap": 0}});
        for ver in [Version::V1, Version::V2] {
            assert_eq!(files(&plan(&r, ver).unwrap()), vec![], "{ver:?}");
        }
    }

    #[test]
    fn bad_values_name_the_field() {
        for (r, field) in [
            (json!({"memory": {"limit": -5}}), "memory.limit"),
            (json!({"cpu": {"quota": -5}}), "cpu.quota"),
            (json!({"cpu": {"shares": 1}}), "cpu.shares"),
            (json!({"cpu": {"cpus": "0-3;rm"}}), "cpu.cpus"),
            (json!({"blockIO": {"weight": 5}}), "blockIO.weight"),
            (json!({"unified": {"../x": "1"}}), "unified"),
        ] {
            let e = plan(&r, Version::V2).unwrap_err().to_string();
            assert!(e.contains(field), "{field}: {e}");
        }
        assert!(plan(&json!({"unified": {"memory.high": "1M"}}), Version::V1).is_err());
        assert!(plan(&json!({"network": {"classID": 1}}), Version::V2).is_err());
    }
}
