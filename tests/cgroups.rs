//! cgroups on this host's layout (v1, hybrid): every container with a cgroupsPath or resources gets a
//! cgroup under a test-owned parent, its limits written (read back from the files), proven where the
//! kernel can show it (a memory hog is OOM-killed, a fork beyond pids.max fails), pause/resume,
//! kill --all, ps, and nothing left after delete or a refused create. (cgroup v2 runs in the QEMU
//! guest of scripts/vm-test.sh.)

use kit::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The container's directory in the hierarchy of `controller`.
fn dir(controller: &str, path: &str) -> PathBuf {
    let base = if cgroup_v2() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup").join(controller)
    };
    base.join(path.trim_start_matches('/'))
}

/// A cgroupsPath under a parent of this test's own (tests run in parallel).
fn cg_path(name: &str) -> String {
    format!("/berth-cg-{}-{name}/c", std::process::id())
}

/// Nothing of the test's parent `name` left in any hierarchy.
fn assert_no_cgroup_left(name: &str) {
    let top = format!("berth-cg-{}-{name}", std::process::id());
    for e in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = e.path().join(&top);
        assert!(!p.exists(), "{} left behind", p.display());
    }
    assert!(!Path::new("/sys/fs/cgroup").join(&top).exists());
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

#[test]
fn limits_are_written_and_hold() {
    if cgroup_v2() {
        skip!("cgroup v1 limits, and this host has cgroup v2 (scripts/vm-test.sh covers v2)");
    }
    let path = cg_path("limits");
    let mut b = Bundle::new("sleep 100");
    b.spec["linux"]["cgroupsPath"] = json!(path);
    // The block device of / for a throttle rule.
    let dev = nix::sys::stat::stat("/").unwrap().st_dev;
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    b.spec["linux"]["resources"] = json!({
        "memory": {"limit": 33554432, "reservation": 16777216, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "burst": 1000, "idle": 0, "cpus": "0", "mems": "0"},
        "pids": {"limit": 16},
        "blockIO": {"throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}]}
    });
    ok(&b.create("lim1"));
    assert_eq!(
        read(&dir("memory", &path).join("memory.soft_limit_in_bytes")),
        "16777216"
    );
    assert_eq!(read(&dir("memory", &path).join("memory.swappiness")), "10");
    assert_eq!(read(&dir("cpu", &path).join("cpu.cfs_burst_us")), "1000");
    assert_eq!(read(&dir("cpu", &path).join("cpu.idle")), "0");
    assert_eq!(read(&dir("cpuset", &path).join("cpuset.mems")), "0");
    assert_eq!(
        read(&dir("blkio", &path).join("blkio.throttle.read_bps_device")),
        format!("{major}:{minor} 1048576")
    );
    assert_eq!(
        read(&dir("memory", &path).join("memory.limit_in_bytes")),
        "33554432"
    );
    assert_eq!(read(&dir("cpu", &path).join("cpu.shares")), "512");
    assert_eq!(read(&dir("cpu", &path).join("cpu.cfs_quota_us")), "20000");
    assert_eq!(read(&dir("cpu", &path).join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(&dir("cpuset", &path).join("cpuset.cpus")), "0");
    assert_eq!(read(&dir("pids", &path).join("pids.max")), "16");
    // The init is in every hierarchy's cgroup before it runs anything.
    let pid = b.state("lim1")["pid"].as_i64().unwrap().to_string();
    for c in ["memory", "cpu", "cpuset", "pids", "devices", "freezer"] {
        let procs = read(&dir(c, &path).join("cgroup.procs"));
        assert!(procs.lines().any(|l| l == pid), "{c}: {procs}");
    }
    ok(&b.berth(&["delete", "-f", "lim1"]));
    assert_no_cgroup_left("limits");
}

#[test]
fn a_memory_hog_is_oom_killed_and_a_fork_beyond_pids_max_fails() {
    if cgroup_v2() {
        return;
    }
    let swap = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    let mut b = Bundle::new("dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo dd=$?");
    b.spec["linux"]["cgroupsPath"] = json!(cg_path("oom"));
    b.spec["linux"]["resources"] = json!({"memory": {"limit": 16777216}});
    if swap.lines().count() <= 1 {
        // dd's 64 MiB buffer does not fit in 16 MiB: the OOM killer takes it (SIGKILL, 137).
        assert_eq!(ok(&b.run("oom1")), "dd=137\n");
        b.spec["linux"]["resources"] = json!({"memory": {"limit": 268435456}});
        assert_eq!(ok(&b.run("oom2")), "dd=0\n");
    } else {
        skipped("the OOM part only: this host has swap");
    }
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        // busybox sh gives up at the first refused fork (exit 2): what counts is that one was refused.
        "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo all-forked"
    ]);
    b.spec["linux"]["resources"] = json!({"pids": {"limit": 4}});
    let o = b.run("pids1");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        !out.contains("all-forked")
            && (out.contains("fork") || out.contains("Resource temporarily unavailable")),
        "{out}"
    );
    assert_no_cgroup_left("oom");
}

#[test]
fn pause_resume_ps_and_kill_all() {
    // No pid namespace of its own: kill --all must use the cgroup to find every process.
    let mut b = Bundle::new("sleep 100 & sleep 100 & sleep 100");
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    b.spec["linux"]["cgroupsPath"] = json!(cg_path("pause"));
    ok(&b.create("pz"));
    ok(&b.berth(&["start", "pz"]));
    b.wait_status("pz", "running");
    let pids = || -> Vec<i64> {
        serde_json::from_str(&ok(&b.berth(&["ps", "--format", "json", "pz"]))).unwrap()
    };
    let mut tries = 0;
    while pids().len() < 3 && tries < 200 {
        std::thread::sleep(Duration::from_millis(10));
        tries += 1;
    }
    let all = pids();
    assert!(all.len() >= 3, "{all:?}");
    assert!(all.contains(&b.state("pz")["pid"].as_i64().unwrap()));
    ok(&b.berth(&["pause", "pz"]));
    assert_eq!(b.state("pz")["status"], "paused");
    let e = fails(&b.berth(&["pause", "pz"]));
    assert!(e.contains("paused"), "{e}");
    ok(&b.berth(&["resume", "pz"]));
    assert_eq!(b.state("pz")["status"], "running");
    // runc's stats event, read from the cgroup.
    let ev: serde_json::Value =
        serde_json::from_str(&ok(&b.berth(&["events", "--stats", "pz"]))).unwrap();
    assert_eq!(ev["type"], "stats");
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 3, "{ev}");
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    // The table form is ps(1)'s, limited to the container's processes.
    let table = ok(&b.berth(&["ps", "pz"]));
    assert!(
        table.lines().count() >= 4 && table.contains("sleep"),
        "{table}"
    );
    ok(&b.berth(&["kill", "--all", "pz", "KILL"]));
    b.wait_status("pz", "stopped");
    for p in &all {
        let alive = Path::new(&format!("/proc/{p}/cmdline")).exists()
            && !std::fs::read(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .is_empty();
        assert!(!alive, "pid {p} survived kill --all");
    }
    ok(&b.berth(&["delete", "pz"]));
    assert_no_cgroup_left("pause");
}

#[test]
fn bad_values_are_clear_errors_and_leave_nothing_and_hybrid_controllers_work() {
    // On a hybrid host berth enables the unified tree's controllers for its children (as runc does
    // on v2); the test puts the host's setting back at the end.
    let control = Path::new("/sys/fs/cgroup/unified/cgroup.subtree_control");
    let had = std::fs::read_to_string(control).unwrap_or_default();
    let mut b = Bundle::new("true");
    b.spec["linux"]["cgroupsPath"] = json!(cg_path("bad"));
    for (r, needle) in [
        (
            json!({"memory": {"limit": -7}}),
            "linux.resources.memory.limit",
        ),
        (json!({"cpu": {"quota": -5}}), "linux.resources.cpu.quota"),
        (
            json!({"cpu": {"cpus": "0-999999"}}),
            "linux.resources.cpu.cpus",
        ),
        (
            json!({"pids": {"limit": "many"}}),
            "linux.resources.pids.limit",
        ),
        (
            json!({"devices": [{"allow": false, "type": "x"}]}),
            "linux.resources.devices[0].type",
        ),
    ] {
        b.spec["linux"]["resources"] = r;
        b.refused(&b.run("bad1"), "bad1", needle);
        assert_no_cgroup_left("bad");
    }
    if !cgroup_v2()
        && !Path::new("/sys/fs/cgroup/hugetlb/tasks").exists()
        && std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .unwrap_or_default()
            .contains("hugetlb")
    {
        // This hybrid host keeps hugetlb on the unified tree: the limit goes there, with v2's file.
        b.spec["linux"]["resources"] =
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]});
        b.spec["process"]["args"] = json!(["sleep", "100"]);
        ok(&b.create("huge"));
        let f = Path::new("/sys/fs/cgroup/unified")
            .join(cg_path("bad").trim_start_matches('/'))
            .join("hugetlb.2MB.max");
        assert_eq!(read(&f), "2097152");
        ok(&b.berth(&["delete", "-f", "huge"]));
        assert_no_cgroup_left("bad");
        b.spec["process"]["args"] = json!(["true"]);
    }
    b.spec["linux"]["resources"] = json!({});
    // systemd's form with the cgroupfs driver: a directory name, as runc takes it, and a warning.
    b.spec["linux"]["cgroupsPath"] = json!("system.slice:berth:x");
    let o = b.run("bad3");
    ok(&o);
    assert!(stderr(&o).contains("--systemd-cgroup"), "{}", stderr(&o));
    // (A removed cgroup lingers a moment as dying; until it is gone the controller stays busy.)
    for c in std::fs::read_to_string(control)
        .unwrap_or_default()
        .split_whitespace()
    {
        if !had.split_whitespace().any(|h| h == c) {
            for _ in 0..300 {
                if std::fs::write(control, format!("-{c}")).is_ok() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    assert_eq!(std::fs::read_to_string(control).unwrap_or_default(), had);
}

#[test]
fn the_container_sees_its_own_cgroup_read_only() {
    let path = cg_path("view");
    let mut b = Bundle::new(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max;
         grep -E '(:memory:|^0::)' /proc/self/cgroup | head -1;
         touch /sys/fs/cgroup/x 2>/dev/null || echo ro",
    );
    b.spec["linux"]["cgroupsPath"] = json!(path);
    b.spec["linux"]["resources"] = json!({"memory": {"limit": 33554432}});
    let out = ok(&b.run("view1"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "33554432", "{out}");
    // The cgroup namespace is made after the init joined its cgroup: that cgroup is its root.
    assert!(lines[1].ends_with(":/"), "{out}");
    assert_eq!(lines[2], "ro", "{out}");
    assert_no_cgroup_left("view");
}

/// `berth run` of the bundle under `strace -f -e trace=fsopen`; returns the container's output and
/// whether any process of the run opened a new cgroup2 filesystem context.
fn run_tracing_fsopen(b: &Bundle, id: &str) -> (String, bool) {
    let trace = b.tmp.path().join(format!("{id}.trace"));
    b.write();
    let o = output(
        std::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=fsopen", "-o"])
            .arg(&trace)
            .arg(BERTH)
            .arg("--root")
            .arg(&b.state)
            .args(["run", "--bundle"])
            .arg(&b.dir)
            .arg(id)
            .stdin(std::process::Stdio::null()),
        b.tmp.path(),
    );
    let out = ok(&o);
    let text = std::fs::read_to_string(&trace).unwrap();
    (out, text.contains("fsopen(\"cgroup2\""))
}

#[test]
fn without_a_cgroup_namespace_no_cgroup2_is_mounted_from_the_hosts() {
    // A new cgroup2 mount made from the host's (initial) cgroup namespace re-applies the
    // hierarchy-wide options (nsdelegate, memory_recursiveprot, ...) from its own mount options,
    // clearing systemd's (proven in the systemd guest of scripts/vm-test.sh), and waits for an RCU
    // grace period. A container without a cgroup namespace or a cgroup of its own is shown the
    // cgroup berth runs in, bound read-only, instead.
    let Some(_) = tool("strace") else { return };
    let mut b = Bundle::new(
        "grep -c ' /sys/fs/cgroup' /proc/self/mountinfo; grep ' /sys/fs/cgroup ' /proc/self/mountinfo | grep -c ' ro,'; touch /sys/fs/cgroup/x 2>/dev/null || echo ro",
    );
    let ns = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "cgroup");
    let (out, fresh) = run_tracing_fsopen(&b, "nons");
    assert!(
        !fresh,
        "a cgroup2 filesystem was made without a cgroup namespace: {out}"
    );
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].parse::<u32>().unwrap() >= 1, "{out}");
    assert_eq!(lines[1..], ["1", "ro"], "{out}");
    // The control, so the trace can show one: with a cgroup namespace of its own the container's
    // cgroup2 is made from inside it (no host option is touched there) on a host whose unified
    // tree it uses.
    if cgroup_v2()
        || !std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.procs")
            .unwrap_or_default()
            .is_empty()
    {
        b.spec["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "cgroup"}));
        let (_, fresh) = run_tracing_fsopen(&b, "ownns");
        assert!(
            fresh,
            "the trace shows no cgroup2 fsopen even with a cgroup namespace"
        );
    }
}

#[test]
fn update_changes_limits_of_a_running_container() {
    if cgroup_v2() {
        return;
    }
    let path = cg_path("update");
    let mut b = Bundle::new("sleep 100");
    b.spec["linux"]["cgroupsPath"] = json!(path);
    b.spec["linux"]["resources"] = json!({"memory": {"limit": 33554432}, "pids": {"limit": 10}});
    ok(&b.create("up1"));
    ok(&b.berth(&["start", "up1"]));
    ok(&b.berth(&[
        "update",
        "--memory",
        "64m",
        "--pids-limit",
        "20",
        "--cpu-share",
        "256",
        "up1",
    ]));
    assert_eq!(
        read(&dir("memory", &path).join("memory.limit_in_bytes")),
        "67108864"
    );
    assert_eq!(read(&dir("pids", &path).join("pids.max")), "20");
    assert_eq!(read(&dir("cpu", &path).join("cpu.shares")), "256");
    let r = b.tmp.path().join("r.json");
    std::fs::write(&r, r#"{"pids": {"limit": 30}}"#).unwrap();
    ok(&b.berth(&["update", "-r", r.to_str().unwrap(), "up1"]));
    assert_eq!(read(&dir("pids", &path).join("pids.max")), "30");
    let e = fails(&b.berth(&["update", "--memory", "lots", "up1"]));
    assert!(e.contains("--memory"), "{e}");
    let e = fails(&b.berth(&["update", "--cpu-quota=-5", "up1"]));
    assert!(e.contains("cpu.quota"), "{e}");
    ok(&b.berth(&["delete", "-f", "up1"]));
    assert!(fails(&b.berth(&["update", "--pids-limit", "5", "up1"])).contains("does not exist"));
    assert_no_cgroup_left("update");
}

#[test]
fn events_report_an_oom_kill() {
    if cgroup_v2() {
        return;
    }
    if std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .count()
        > 1
    {
        skip!("this host has swap");
    }
    let mut b = Bundle::new("sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100");
    b.spec["linux"]["cgroupsPath"] = json!(cg_path("oomev"));
    b.spec["linux"]["resources"] = json!({"memory": {"limit": 16777216}});
    ok(&b.create("oomev"));
    let events = b
        .cmd(&["events", "--interval", "1s", "oomev"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ok(&b.berth(&["start", "oomev"]));
    std::thread::sleep(Duration::from_millis(2500));
    ok(&b.berth(&["delete", "-f", "oomev"]));
    let o = events.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(r#""type":"oom""#), "{out}");
    assert!(out.contains(r#""type":"stats""#), "{out}");
    assert_no_cgroup_left("oomev");
}

#[test]
fn update_replaces_device_rules() {
    let mut b = Bundle::new("sleep 100");
    b.spec["linux"]["cgroupsPath"] = json!(cg_path("devupd"));
    // /dev/zero (1:5, made by berth) denied by number (read and write; the node itself is made).
    b.spec["linux"]["resources"] =
        json!({"devices": [{"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rw"}]});
    ok(&b.create("du"));
    ok(&b.berth(&["start", "du"]));
    let probe = |b: &Bundle| {
        ok(&b.berth(&[
            "exec",
            "du",
            "sh",
            "-c",
            "head -c1 /dev/zero >/dev/null 2>&1 && echo zero-read || echo zero-denied",
        ]))
    };
    assert_eq!(probe(&b), "zero-denied\n");
    let r = b.tmp.path().join("dev.json");
    std::fs::write(
        &r,
        r#"{"devices": [{"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}]}"#,
    )
    .unwrap();
    ok(&b.berth(&["update", "-r", r.to_str().unwrap(), "du"]));
    assert_eq!(probe(&b), "zero-read\n");
    std::fs::write(
        &r,
        r#"{"devices": [{"allow": false, "type": "c", "major": 1, "minor": 5, "access": "rw"}]}"#,
    )
    .unwrap();
    ok(&b.berth(&["update", "-r", r.to_str().unwrap(), "du"]));
    assert_eq!(probe(&b), "zero-denied\n");
    ok(&b.berth(&["delete", "-f", "du"]));
    assert_no_cgroup_left("devupd");
}

/// Without systemd as the host's init (this host), `--systemd-cgroup` is a clear error before
/// anything exists; a slice path without the flag is a directory name, as runc takes it, and the
/// warning says which flag would make it a unit. The systemd driver
/// itself is proven in the systemd guest of scripts/vm-test.sh.
#[test]
fn systemd_driver_without_systemd_is_a_clear_error_and_leaves_nothing() {
    if Path::new("/run/systemd/system").is_dir() {
        skip!("systemd is this host's init");
    }
    let mut b = Bundle::new("true");
    b.spec["linux"]["cgroupsPath"] = json!("system.slice:berth:sd1");
    let bundle = b.dir.to_str().unwrap().to_string();
    let o = b.berth(&["--systemd-cgroup", "run", "--bundle", &bundle, "sd1"]);
    let e = b.refused(&o, "sd1", "not running as this host's init");
    assert!(e.contains("--systemd-cgroup"), "{e}");
    // Without the flag, as runc's cgroupfs driver takes it: one directory of that name below
    // berth's own cgroup (made, then removed with the container), with a warning saying which
    // driver would have read it as a unit.
    b.spec["process"]["args"] = json!(["sh", "-c", "cat /proc/self/cgroup"]);
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "cgroup");
    let o = b.run("sd2");
    assert!(ok(&o).contains("/system.slice:berth:sd1"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("pass --systemd-cgroup"),
        "{}",
        stderr(&o)
    );
    for root in cgroup_roots() {
        assert!(
            !root.join("system.slice:berth:sd1").exists(),
            "{}",
            root.display()
        );
    }
    let features = ok(&b.berth(&["features"]));
    assert!(features.contains("\"systemd\": false"), "{features}");
}
