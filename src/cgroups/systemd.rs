//! The systemd cgroup driver (`--systemd-cgroup`), as runc's: `linux.cgroupsPath` is
//! `slice:prefix:name`, the container's cgroup is a transient scope `prefix-name.scope` in that slice,
//! started over the system bus with `StartTransientUnit` once the init exists (a scope is made with
//! its first process: `PIDs`), with `Delegate=yes` and the resource properties systemd itself knows,
//! waited on until its job is done; then berth writes every limit into the cgroup files as the
//! cgroupfs driver does (what systemd does not manage included) and attaches its device program.
//! `delete` stops the unit; `update` sets the properties and writes the files again.

use super::dbus::{Bus, Val, prop};
use crate::error::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const DEST: &str = "org.freedesktop.systemd1";
const OBJECT: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const JOB_TIMEOUT: Duration = Duration::from_secs(30);

/// systemd is the init of this host (sd_booted(3): /run/systemd/system exists) and the system bus
/// socket is there. Asked before anything is made; the error says what is missing.
pub fn available() -> Result<()> {
    if !Path::new("/run/systemd/system").is_dir() {
        return Err(Error::NotSupported(
            "--systemd-cgroup: systemd is not running as this host's init (no /run/systemd/system); drop the flag to use berth's cgroupfs driver".into(),
        ));
    }
    let bus = super::dbus::system_bus_path();
    if !bus.exists() {
        return Err(Error::NotSupported(format!(
            "--systemd-cgroup: the system bus socket {} is missing (is dbus running?)",
            bus.display()
        )));
    }
    Ok(())
}

/// For `features`: systemd is the init and its bus answers.
pub fn reachable() -> bool {
    available().is_ok() && Bus::connect(&super::dbus::system_bus_path()).is_ok()
}

/// runc's ExpandSlice: `a-b-c.slice` is `/a.slice/a-b.slice/a-b-c.slice`, `-.slice` the root.
pub fn expand_slice(slice: &str) -> Result<PathBuf> {
    let bad = || Error::InvalidSpec(format!("linux.cgroupsPath: invalid slice name {slice:?}"));
    let name = slice.strip_suffix(".slice").ok_or_else(bad)?;
    if slice.contains('/') || name.is_empty() {
        return Err(bad());
    }
    if name == "-" {
        return Ok(PathBuf::from("/"));
    }
    let mut path = PathBuf::from("/");
    let mut prefix = String::new();
    for part in name.split('-') {
        if part.is_empty() {
            return Err(bad());
        }
        path.push(format!("{prefix}{part}.slice"));
        prefix.push_str(part);
        prefix.push('-');
    }
    Ok(path)
}

/// A unit name: nothing that would leave the slice directory or confuse systemd's parser.
fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'\\' | b'@'));
    if s.is_empty() || !ok || s.starts_with('.') {
        return Err(Error::InvalidSpec(format!(
            "linux.cgroupsPath: the {what} {s:?} is not a valid systemd unit name part"
        )));
    }
    Ok(())
}

/// The slice and the scope for `linux.cgroupsPath` (`slice:prefix:name`; none: `system.slice`,
/// prefix `berth`, the container id), and the scope's cgroup directory below the hierarchy's root.
pub fn unit_for(path: Option<&str>, id: &str) -> Result<(String, String, PathBuf)> {
    let (slice, prefix, name) = match path.filter(|p| !p.is_empty()) {
        None => ("", "berth", id),
        Some(p) => {
            let parts: Vec<&str> = p.split(':').collect();
            let [s, pre, n] = parts[..] else {
                return Err(Error::InvalidSpec(format!(
                    "linux.cgroupsPath: expected \"slice:prefix:name\" for systemd cgroups, got {p:?}"
                )));
            };
            (s, pre, n)
        }
    };
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    check_name("name", name)?;
    if name.ends_with(".slice") {
        return Err(Error::NotSupported(format!(
            "linux.cgroupsPath: {name:?}: a slice as the container's unit (berth makes scopes only)"
        )));
    }
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        check_name("prefix", prefix)?;
        format!("{prefix}-{name}.scope")
    };
    let dir = expand_slice(slice)?.join(&unit);
    Ok((slice.to_string(), unit, dir))
}

/// A cpuset list (`0-3,5`) as systemd's AllowedCPUs/AllowedMemoryNodes bitmask.
fn cpu_mask(list: &str) -> Option<Vec<Val>> {
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<usize>().ok()?, b.parse::<usize>().ok()?),
            None => {
                let n = part.parse().ok()?;
                (n, n)
            }
        };
        if a > b || b >= 8192 {
            return None;
        }
        for i in a..=b {
            if bytes.len() <= i / 8 {
                bytes.resize(i / 8 + 1, 0);
            }
            bytes[i / 8] |= 1 << (i % 8);
        }
    }
    Some(bytes.into_iter().map(Val::Byte).collect())
}

/// The unit properties for `linux.resources` that systemd manages itself (runc's set); the files
/// are written afterwards all the same.
pub fn resource_properties(r: Option<&Value>) -> Vec<Val> {
    let mut out = Vec::new();
    let Some(r) = r else {
        return out;
    };
    let int = |v: Option<&Value>| v.and_then(Value::as_i64);
    let limit = |n: i64| Val::U64(if n < 0 { u64::MAX } else { n as u64 });
    let mem = r.get("memory");
    let mem_limit = int(mem.and_then(|m| m.get("limit")));
    if let Some(l) = mem_limit.filter(|l| *l != 0) {
        out.push(prop("MemoryMax", limit(l)));
    }
    if let Some(l) = int(mem.and_then(|m| m.get("reservation"))).filter(|l| *l != 0) {
        out.push(prop("MemoryLow", limit(l)));
    }
    // memory.swap is memory plus swap; MemorySwapMax is swap alone (runc's conversion).
    if let Some(s) = int(mem.and_then(|m| m.get("swap"))).filter(|s| *s != 0) {
        let swap = match mem_limit {
            _ if s < 0 => u64::MAX,
            Some(l) if l > 0 && s >= l => (s - l) as u64,
            _ => s as u64,
        };
        out.push(prop("MemorySwapMax", Val::U64(swap)));
    }
    if let Some(p) = int(r.get("pids").and_then(|p| p.get("limit"))) {
        out.push(prop("TasksMax", limit(p)));
    }
    let cpu = r.get("cpu");
    let cpu_int = |k: &str| int(cpu.and_then(|c| c.get(k)));
    if let Some(s) = cpu_int("shares").filter(|s| *s > 0) {
        out.push(prop(
            "CPUWeight",
            Val::U64(super::resources::shares_to_weight(s as u64)),
        ));
    }
    let (quota, period) = (cpu_int("quota"), cpu_int("period"));
    if quota.is_some() || period.is_some() {
        let period = period.filter(|p| *p > 0).unwrap_or(100_000) as u64;
        out.push(prop("CPUQuotaPeriodUSec", Val::U64(period)));
        let per_sec = match quota {
            Some(q) if q > 0 => {
                // systemd keeps the quota per second in 10 ms steps: round up, as runc does.
                let us = (q as u64) * 1_000_000 / period;
                us.div_ceil(10_000) * 10_000
            }
            _ => u64::MAX,
        };
        out.push(prop("CPUQuotaPerSecUSec", Val::U64(per_sec)));
    }
    for (key, name) in [("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")] {
        if let Some(mask) = cpu
            .and_then(|c| c.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .and_then(cpu_mask)
        {
            out.push(prop(name, Val::Array("y".into(), mask)));
        }
    }
    out
}

fn connect() -> Result<Bus> {
    let mut bus = Bus::connect(&super::dbus::system_bus_path())?;
    // JobRemoved reaches the client that asked for the job once it listens for it.
    bus.call(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "AddMatch",
        &[Val::Str(format!(
            "type='signal',sender='{DEST}',path='{OBJECT}',interface='{MANAGER}',member='JobRemoved'"
        ))],
    )?;
    Ok(bus)
}

/// Waits for `job` to finish; its result must be `done`.
fn wait_job(bus: &mut Bus, job: &str, what: &str) -> Result<()> {
    let result = bus.wait_signal("JobRemoved", JOB_TIMEOUT, &|body| {
        (body.get(1).and_then(Val::as_str) == Some(job))
            .then(|| body.get(3).and_then(Val::as_str).unwrap_or("").to_string())
    })?;
    if result != "done" {
        return Err(Error::State(format!(
            "systemd: {what}: the job ended with {result:?}"
        )));
    }
    Ok(())
}

fn job_path(reply: &[Val]) -> Result<String> {
    reply
        .first()
        .and_then(Val::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::State("systemd: a job request returned no job".into()))
}

/// Starts the transient scope `unit` in `slice` with `pid` in it, and waits for it.
pub fn start(unit: &str, slice: &str, pid: i32, resources: Vec<Val>) -> Result<()> {
    let mut props = vec![
        prop("Description", Val::Str(format!("berth container {unit}"))),
        prop("Slice", Val::Str(slice.to_string())),
        prop("PIDs", Val::Array("u".into(), vec![Val::U32(pid as u32)])),
        prop("Delegate", Val::Bool(true)),
        prop("DefaultDependencies", Val::Bool(false)),
        prop("MemoryAccounting", Val::Bool(true)),
        prop("CPUAccounting", Val::Bool(true)),
        prop("IOAccounting", Val::Bool(true)),
        prop("TasksAccounting", Val::Bool(true)),
    ];
    props.extend(resources);
    let what = format!("starting {unit}");
    let mut bus = connect()?;
    let reply = bus
        .call(
            DEST,
            OBJECT,
            MANAGER,
            "StartTransientUnit",
            &[
                Val::Str(unit.to_string()),
                Val::Str("replace".into()),
                Val::Array("(sv)".into(), props),
                Val::Array("(sa(sv))".into(), Vec::new()),
            ],
        )
        .map_err(|e| Error::State(format!("systemd: {what}: {e}")))?;
    wait_job(&mut bus, &job_path(&reply)?, &what)
}

/// Sets resource properties of a running unit (`update`).
pub fn set(unit: &str, resources: Vec<Val>) -> Result<()> {
    if resources.is_empty() {
        return Ok(());
    }
    connect()?
        .call(
            DEST,
            OBJECT,
            MANAGER,
            "SetUnitProperties",
            &[
                Val::Str(unit.to_string()),
                Val::Bool(true),
                Val::Array("(sv)".into(), resources),
            ],
        )
        .map(drop)
        .map_err(|e| Error::State(format!("systemd: setting properties of {unit}: {e}")))
}

/// Stops `unit` and waits for it; a unit already gone (systemd collects an empty scope) is fine.
pub fn stop(unit: &str) -> Result<()> {
    let what = format!("stopping {unit}");
    let mut bus = connect()?;
    match bus.call(
        DEST,
        OBJECT,
        MANAGER,
        "StopUnit",
        &[Val::Str(unit.to_string()), Val::Str("replace".into())],
    ) {
        Ok(reply) => wait_job(&mut bus, &job_path(&reply)?, &what),
        Err(e) if e.to_string().contains("NoSuchUnit") => Ok(()),
        Err(e) => Err(Error::State(format!("systemd: {what}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slices_expand_as_runc() {
        assert_eq!(
            expand_slice("a-b-c.slice").unwrap(),
            Path::new("/a.slice/a-b.slice/a-b-c.slice")
        );
        assert_eq!(expand_slice("-.slice").unwrap(), Path::new("/"));
        assert_eq!(
            expand_slice("system.slice").unwrap(),
            Path::new("/system.slice")
        );
        for bad in [
            "a--b.slice",
            "-a.slice",
            "a-.slice",
            "a/b.slice",
            "a.scope",
            ".slice",
        ] {
            assert!(expand_slice(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_become_scopes() {
        let (slice, unit, dir) = unit_for(Some("machine.slice:libpod:abc"), "x").unwrap();
        assert_eq!(
            (slice.as_str(), unit.as_str()),
            ("machine.slice", "libpod-abc.scope")
        );
        assert_eq!(dir, Path::new("/machine.slice/libpod-abc.scope"));
        let (slice, unit, _) = unit_for(None, "c1").unwrap();
        assert_eq!(
            (slice.as_str(), unit.as_str()),
            ("system.slice", "berth-c1.scope")
        );
        let (_, unit, dir) = unit_for(Some("kubepods-besteffort.slice::c2"), "x").unwrap();
        assert_eq!(unit, "c2.scope");
        assert_eq!(
            dir,
            Path::new("/kubepods.slice/kubepods-besteffort.slice/c2.scope")
        );
        for bad in [
            "/a/b",
            "a:b",
            "s.slice:p:../x",
            "s.slice:p/q:x",
            "s.slice:p:",
        ] {
            assert!(unit_for(Some(bad), "x").is_err(), "{bad}");
        }
    }

    #[test]
    fn resources_become_runcs_properties() {
        let props = resource_properties(Some(&json!({
            "memory": {"limit": 67108864, "swap": 134217728},
            "pids": {"limit": -1},
            "cpu": {"shares": 1024, "quota": 15000, "period": 100000, "cpus": "0-2,9"}
        })));
        let get = |n: &str| {
            props.iter().find_map(|p| match p {
                Val::Struct(kv) if kv[0] == Val::Str(n.into()) => match &kv[1] {
                    Val::Variant(v) => Some((**v).clone()),
                    _ => None,
                },
                _ => None,
            })
        };
        assert_eq!(get("MemoryMax"), Some(Val::U64(67108864)));
        assert_eq!(get("MemorySwapMax"), Some(Val::U64(67108864)));
        assert_eq!(get("TasksMax"), Some(Val::U64(u64::MAX)));
        assert_eq!(get("CPUWeight"), Some(Val::U64(100)));
        // 15 ms per 100 ms is 150 ms per second, already a multiple of 10 ms.
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Val::U64(150_000)));
        assert_eq!(
            get("AllowedCPUs"),
            Some(Val::Array(
                "y".into(),
                vec![Val::Byte(0b111), Val::Byte(0b10)]
            ))
        );
        assert!(resource_properties(None).is_empty());
    }
}
