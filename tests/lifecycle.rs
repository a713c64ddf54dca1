//! The runc lifecycle on the real binary: create/start/state/kill/delete, run's exit codes and signal
//! forwarding, --detach, error paths, and that nothing is left behind.

use kit::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn create_start_state_kill_delete() {
    let b = Bundle::new("echo started > /tmp/mark; exec sleep 60");
    ok(&b.create("c1"));
    let s = b.state("c1");
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], "c1");
    assert_eq!(s["bundle"], b.dir.to_str().unwrap());
    let pid = s["pid"].as_i64().unwrap();
    assert!(pid > 0);
    // The init waits: the user's program has not run yet.
    assert!(!b.rootfs.join("tmp/mark").exists());
    ok(&b.berth(&["start", "c1"]));
    assert_eq!(b.state("c1")["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.rootfs.join("tmp/mark").exists() {
        assert!(Instant::now() < deadline, "process did not run after start");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Starting twice and deleting a running container are refused.
    assert!(fails(&b.berth(&["start", "c1"])).contains("running"));
    assert!(fails(&b.berth(&["delete", "c1"])).contains("running"));
    let list = ok(&b.berth(&["list", "-q"]));
    assert_eq!(list.trim(), "c1");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&b.berth(&["list", "--format", "json"]))).unwrap();
    assert_eq!(json[0]["status"], "running");
    ok(&b.berth(&["kill", "c1", "KILL"]));
    b.wait_status("c1", "stopped");
    assert_eq!(b.state("c1")["pid"], 0);
    ok(&b.berth(&["delete", "c1"]));
    assert!(!b.state.join("c1").exists());
    assert!(fails(&b.berth(&["state", "c1"])).contains("does not exist"));
}

#[test]
fn delete_of_created_container_kills_its_init() {
    let b = Bundle::new("exit 0");
    ok(&b.create("c2"));
    let pid = b.state("c2")["pid"].as_i64().unwrap();
    ok(&b.berth(&["delete", "c2"]));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true)
    );
}

#[test]
fn run_returns_exit_code() {
    let b = Bundle::new("exit 3");
    let o = b.run("r1");
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        !b.state.join("r1").exists(),
        "run must delete the container after it exits"
    );
}

#[test]
fn run_exit_code_of_a_killed_process_is_128_plus_signal() {
    let b = Bundle::new("exec sleep 60");
    let mut child = b
        .cmd(&["run", "--bundle", b.dir.to_str().unwrap(), "k1"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.state.join("k1/state.json").exists() || b.state("k1")["status"] != "running" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    ok(&b.berth(&["kill", "k1", "9"]));
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(137));
}

#[test]
fn run_forwards_signals() {
    let b = Bundle::new(
        "trap 'echo got-term; exit 7' TERM; echo ready > /tmp/ready; while :; do sleep 0.05; done",
    );
    let child = b
        .cmd(&["run", "--bundle", b.dir.to_str().unwrap(), "f1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.rootfs.join("tmp/ready").exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(stdout(&out).contains("got-term"));
}

#[test]
fn run_detach_returns_while_running() {
    let b = Bundle::new("exec sleep 60");
    let o = b.berth(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), "d1"]);
    ok(&o);
    assert_eq!(b.state("d1")["status"], "running");
    ok(&b.berth(&["delete", "--force", "d1"]));
    assert!(!b.state.join("d1").exists());
}

#[test]
fn pid_file_and_options_after_the_id() {
    let b = Bundle::new("exit 0");
    let pidfile = b.tmp.path().join("pid");
    let o = b.berth(&[
        "create",
        "p1",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
    ]);
    ok(&o);
    let pid: i64 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(b.state("p1")["pid"], pid);
    ok(&b.berth(&["delete", "p1"]));
}

#[test]
fn error_missing_bundle() {
    let b = Bundle::new("true");
    let o = b.berth(&["create", "--bundle", "/nonexistent/bundle", "m1"]);
    let e = b.refused(&o, "m1", "/nonexistent/bundle/config.json");
    assert!(e.contains("ENOENT"), "{e}");
}

#[test]
fn error_invalid_json_names_the_field() {
    let mut b = Bundle::new("true");
    b.spec["process"]["user"]["uid"] = json!("root");
    b.refused(&b.create("j1"), "j1", "process.user.uid");
}

#[test]
fn error_unknown_namespace_type() {
    let mut b = Bundle::new("true");
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "bogus"}));
    let e = b.refused(&b.create("n1"), "n1", "linux.namespaces[6].type");
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn error_duplicate_id() {
    let b = Bundle::new("exit 0");
    ok(&b.create("dup"));
    let e = fails(&b.create("dup"));
    assert!(e.contains("already exists"), "{e}");
    ok(&b.berth(&["delete", "dup"]));
}

#[test]
fn error_in_the_child_is_reported_and_nothing_is_left() {
    let mut b = Bundle::new("true");
    b.spec["process"]["args"] = json!(["/no/such/program"]);
    b.refused(&b.run("e1"), "e1", "/no/such/program");
    b.spec["process"]["args"] = json!(["true"]);
    b.spec["process"]["cwd"] = json!("relative");
    assert!(fails(&b.run("e2")).contains("process.cwd"));
}

#[test]
fn bad_id_refused() {
    let b = Bundle::new("true");
    assert!(fails(&b.create("../escape")).contains("container id"));
    assert!(!b.tmp.path().join("escape").exists());
}

#[test]
fn json_log_lines() {
    let b = Bundle::new("true");
    let log = b.tmp.path().join("log.json");
    let o = b.berth(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        "/nonexistent",
        "l1",
    ]);
    fails(&o);
    let text = std::fs::read_to_string(&log).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(line["msg"].as_str().unwrap().contains("config.json"));
    assert!(line["time"].as_str().unwrap().starts_with("20"));
}

#[test]
fn features_and_version() {
    let b = Bundle::new("true");
    let f: serde_json::Value = serde_json::from_str(&ok(&b.berth(&["features"]))).unwrap();
    assert_eq!(f["linux"]["cgroup"]["v1"], true);
    assert_eq!(f["linux"]["cgroup"]["v2"], true);
    assert_eq!(f["linux"]["cgroup"]["systemd"], false);
    assert_eq!(f["linux"]["seccomp"]["enabled"], true);
    assert_eq!(f["linux"]["apparmor"]["enabled"], false);
    assert!(
        f["annotations"]["io.github.berth.landlock"]
            .as_str()
            .unwrap()
            .starts_with("available, ABI ")
    );
    assert!(
        f["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("rro"))
    );
    // Unsupported options are left out (idmap is listed now: tests/idmap.rs).
    assert!(
        !f["mountOptions"]
            .as_array()
            .unwrap()
            .contains(&json!("mand"))
    );
    let v = ok(&b.berth(&["--version"]));
    assert!(v.contains("spec: 1.3.0"), "{v}");
}

#[test]
fn apparmor_profile_on_a_host_without_apparmor_fails_clearly() {
    let mut b = Bundle::new("true");
    b.spec["process"]["apparmorProfile"] = json!("berth-test-profile");
    let e = fails(&b.run("aa1"));
    assert!(
        e.contains("berth-test-profile") && e.contains("apparmorProfile"),
        "{e}"
    );
    if !std::fs::read("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|b| b.first() == Some(&b'Y'))
    {
        assert!(e.contains("not enabled"), "{e}");
    }
    assert!(!b.state.join("aa1").exists());
}

/// `start` returns once the user's program has been exec'd (the init's exec fifo fd is close-on-exec
/// and start waits for it to go), so a signal sent right after start reaches the program and not
/// berth's init. Repeated, since without the wait the exec usually wins the race anyway.
#[test]
fn start_returns_after_the_program_is_execd() {
    let mut b = Bundle::new("true");
    b.spec["process"]["args"] = serde_json::json!(["sleep", "100"]);
    for i in 0..20 {
        let id = format!("ex{i}");
        ok(&b.create(&id));
        let pid = b.state(&id)["pid"].as_i64().unwrap();
        ok(&b.berth(&["start", &id]));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm.trim(), "sleep", "run {i}");
        ok(&b.berth(&["delete", "--force", &id]));
    }
}

/// An error is one line: `berth: error: ...` for a person at a terminal; the message alone when
/// stderr is a pipe or a file (Podman, containerd and Docker show it behind the runtime's own
/// name, so berth's prefix would say it twice).
#[test]
fn errors_say_berth_once() {
    let b = Bundle::new("true");
    let e = stderr(&b.berth(&["state", "nosuch"]));
    assert_eq!(e, "container \"nosuch\" does not exist\n");
    let cmd = format!("{BERTH} --root {} state nosuch", b.state.display());
    let Some(tty) = in_pty(&cmd, b.tmp.path()) else {
        return;
    };
    assert!(
        tty.contains("berth: error: container \"nosuch\" does not exist"),
        "{tty}"
    );
}
