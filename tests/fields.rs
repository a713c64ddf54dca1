//! runtime-spec 1.1–1.3 fields that are not files, applied or refused, never dropped:
//! `process.scheduler`, `process.ioPriority`, `process.execCPUAffinity`, `linux.memoryPolicy`,
//! `linux.netDevices`, and what `features` says of them. Checked from inside the container
//! (/proc/self/stat, /proc/self/status, numa_maps, busybox `ionice` and `ip`) and from the host.

use kit::*;
use serde_json::{Value, json};

/// Fields 40 and 41 of /proc/PID/stat: rt_priority and policy.
fn rt_and_policy(stat: &str) -> (u32, u32) {
    let rest = stat.rsplit_once(") ").expect("a stat line").1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is f[n - 3].
    (f[40 - 3].parse().unwrap(), f[41 - 3].parse().unwrap())
}

#[test]
fn scheduler_io_priority_and_memory_policy_are_applied() {
    let mut b = Bundle::new("cat /proc/$$/stat; ionice; grep -m1 bind: /proc/$$/numa_maps");
    b.spec["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10});
    b.spec["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 1});
    b.spec["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
    let out = ok(&b.run("sc1"));
    let mut lines = out.lines();
    assert_eq!(rt_and_policy(lines.next().unwrap()), (10, 1), "{out}");
    assert_eq!(lines.next(), Some("realtime: prio 1"), "{out}");
    assert!(
        lines.next().is_some_and(|l| l.contains(" bind:0 ")),
        "{out}"
    );
    // The same attributes for an exec'd process (from the container's process).
    let mut b = Bundle::new("sleep 100");
    b.spec["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5});
    b.spec["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0});
    ok(&b.berth(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "sc2"]));
    let out = ok(&b.berth(&["exec", "sc2", "sh", "-c", "cat /proc/$$/stat; ionice"]));
    let mut lines = out.lines();
    let stat = lines.next().unwrap();
    assert_eq!(rt_and_policy(stat), (0, 3), "{out}");
    let nice: i32 = stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split_whitespace()
        .nth(19 - 3)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nice, 5, "{out}");
    assert_eq!(lines.next(), Some("idle"), "{out}");
}

#[test]
fn fields_berth_cannot_apply_here_are_errors_naming_them_and_leave_nothing() {
    let cases: [(&str, &str, Value, &str); 6] = [
        // Known to the spec, absent from mainline Linux: the kernel's EINVAL, named.
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_ISO"}),
            "process.scheduler",
        ),
        (
            "process",
            "scheduler",
            json!({"policy": "SCHED_FIFO", "priority": 0}),
            "process.scheduler.priority",
        ),
        (
            "process",
            "ioPriority",
            json!({"class": "IOPRIO_CLASS_RT", "priority": 9}),
            "process.ioPriority.priority",
        ),
        (
            "process",
            "execCPUAffinity",
            json!({"initial": "0-99999"}),
            "process.execCPUAffinity.initial",
        ),
        // A NUMA node this machine does not have.
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_BIND", "nodes": "7"}),
            "linux.memoryPolicy",
        ),
        (
            "linux",
            "memoryPolicy",
            json!({"mode": "MPOL_LOCAL", "nodes": "0"}),
            "linux.memoryPolicy.nodes",
        ),
    ];
    for (i, (section, key, value, needle)) in cases.into_iter().enumerate() {
        let mut b = Bundle::new("echo ran");
        b.spec[section][key] = value;
        let id = format!("bad{i}");
        let e = b.refused(&b.run(&id), &id, needle);
        assert!(!e.contains("ran"), "{e}");
    }
}

#[test]
fn exec_cpu_affinity_applies_final_to_exec_not_to_the_init() {
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    if cpus.trim() == "0" {
        skip!("one CPU: an affinity cannot be seen to change");
    }
    let mut b = Bundle::new("grep Cpus_allowed_list /proc/self/status; sleep 100");
    b.spec["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1"});
    ok(&b.berth(&["run", "-d", "--bundle", b.dir.to_str().unwrap(), "af1"]));
    let out = ok(&b.berth(&[
        "exec",
        "af1",
        "grep",
        "Cpus_allowed_list",
        "/proc/self/status",
    ]));
    assert_eq!(out.split_whitespace().last(), Some("1"), "{out}");
    // The init's own affinity is the kernel's (the spec: not applicable to the init).
    let pid = b.state("af1")["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(!status.contains("Cpus_allowed_list:\t1\n"), "{status}");
}

/// Runs `berth run` in a network namespace of the test's own (`unshare -n`) where `setup` made
/// the interfaces: the host's own network is never touched.
fn run_in_private_net(b: &Bundle, id: &str, setup: &str, opts: &str) -> std::process::Output {
    b.write();
    let script = format!(
        "set -e; {setup}; exec {BERTH} --root {} {opts} run --bundle {} {id}",
        b.state.display(),
        b.dir.display()
    );
    output(
        std::process::Command::new("unshare").args(["-n", "sh", "-c", &script]),
        b.tmp.path(),
    )
}

const VETH: &str = "ip link add bt0 type veth peer name bt1 && ip addr add 10.77.0.1/24 dev bt0 && ip addr add fd00::7/64 dev bt0 nodad && ip addr add 169.254.9.9/16 dev bt0 scope link";

#[test]
fn net_devices_move_in_renamed_with_their_addresses_and_up() {
    let mut b = Bundle::new("ip -o addr show eth7; ip -o link show eth7");
    b.spec["linux"]["netDevices"] = json!({"bt0": {"name": "eth7"}});
    let out = ok(&run_in_private_net(&b, "nd1", VETH, ""));
    assert!(out.contains("inet 10.77.0.1/24 scope global eth7"), "{out}");
    assert!(out.contains("inet6 fd00::7/64 scope global"), "{out}");
    // Only permanent addresses of global scope are carried over (runtime-spec).
    assert!(!out.contains("169.254.9.9"), "{out}");
    assert!(out.contains(",UP"), "{out}");
    // Without a name it keeps the host's.
    let mut b = Bundle::new("ip -o link show bt0 >/dev/null && echo kept-name");
    b.spec["linux"]["netDevices"] = json!({"bt0": {}});
    assert_eq!(ok(&run_in_private_net(&b, "nd2", VETH, "")), "kept-name\n");
}

#[test]
fn net_devices_that_cannot_be_moved_are_refused_before_anything_exists() {
    // No such interface.
    let mut b = Bundle::new("true");
    b.spec["linux"]["netDevices"] = json!({"nosuch0": {}});
    b.refused(
        &run_in_private_net(&b, "nd3", "true", ""),
        "nd3",
        r#"linux.netDevices["nosuch0"]"#,
    );
    // No network namespace of the container's own to move it to.
    let mut b = Bundle::new("true");
    b.spec["linux"]["netDevices"] = json!({"bt0": {}});
    let ns = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "network");
    let e = b.refused(
        &run_in_private_net(&b, "nd4", VETH, ""),
        "nd4",
        "linux.netDevices",
    );
    assert!(e.contains("network namespace"), "{e}");
    // Names the kernel would refuse, found before anything exists.
    for (i, name) in ["a/b", "", "sixteen-bytes-xx", ".."].iter().enumerate() {
        let mut b = Bundle::new("true");
        b.spec["linux"]["netDevices"] = json!({"bt0": {"name": name}});
        let id = format!("nd5{i}");
        b.refused(
            &run_in_private_net(&b, &id, VETH, ""),
            &id,
            r#"linux.netDevices["bt0"].name"#,
        );
    }
    // A name the container already has: lo.
    let mut b = Bundle::new("true");
    b.spec["linux"]["netDevices"] = json!({"bt0": {"name": "lo"}});
    b.refused(
        &run_in_private_net(&b, "nd6", VETH, ""),
        "nd6",
        r#"linux.netDevices["bt0"]"#,
    );
}

#[test]
fn a_host_policy_refuses_net_devices_unless_it_allows_them() {
    let mut b = Bundle::new("ip -o link show eth7 >/dev/null && echo moved");
    b.spec["linux"]["netDevices"] = json!({"bt0": {"name": "eth7"}});
    let policy = |allow: bool| {
        let p = b.tmp.path().join(format!("policy-{allow}.json"));
        let text = json!({"roots": [{"path": b.host_path("vol"), "access": "ro"}],
                          "rootfs": [{"path": b.dir, "access": "rw"}],
                          "container": {"net_devices": allow}});
        std::fs::write(&p, text.to_string()).unwrap();
        format!("--policy {}", p.display())
    };
    let (deny, allow) = (policy(false), policy(true));
    let e = b.refused(
        &run_in_private_net(&b, "np1", VETH, &deny),
        "np1",
        "container.net_devices",
    );
    assert!(e.contains("linux.netDevices"), "{e}");
    assert_eq!(ok(&run_in_private_net(&b, "np2", VETH, &allow)), "moved\n");
}

#[test]
fn features_say_what_is_applied() {
    let o = std::process::Command::new(BERTH)
        .arg("features")
        .output()
        .unwrap();
    let f: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(f["linux"]["netDevices"]["enabled"], true);
    let modes = f["linux"]["memoryPolicy"]["modes"].as_array().unwrap();
    assert!(
        modes.iter().any(|m| m == "MPOL_BIND") && modes.len() == 7,
        "{modes:?}"
    );
    assert_eq!(
        f["linux"]["memoryPolicy"]["flags"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(f["potentiallyUnsafeConfigAnnotations"], json!(["berth."]));
    let known = f["linux"]["seccomp"]["knownFlags"].to_string();
    assert!(
        known.contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
        "{known}"
    );
    // Supported exactly where the kernel has it (5.19 and later).
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let v: Vec<u32> = release
        .split(['.', '-'])
        .take(2)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let has = (v[0], v[1]) >= (5, 19);
    let supported = f["linux"]["seccomp"]["supportedFlags"].to_string();
    assert_eq!(
        supported.contains("WAIT_KILLABLE_RECV"),
        has,
        "{release}: {supported}"
    );
}
