//! Seccomp from inside the container: the configured errno, argument conditions, a KILL action,
//! noNewPrivileges on and off, and the default profile of `berth spec --seccomp default`.

mod common;
use common::*;
use serde_json::json;

fn profile(default: &str, rules: serde_json::Value) -> serde_json::Value {
    json!({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules})
}

#[test]
fn denied_syscall_returns_the_configured_errno() {
    let mut b = Bundle::new(
        "mkdir /tmp/x 2>&1; ls -d /tmp/x 2>/dev/null || echo not-made; grep ^Seccomp: /proc/self/status",
    );
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}
        ]),
    );
    let out = ok(&b.run("sc1"));
    assert!(
        out.contains("Permission denied") && out.contains("not-made"),
        "{out}"
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // Without the profile the same script makes the directory.
    b.spec["linux"].as_object_mut().unwrap().remove("seccomp");
    assert!(!ok(&b.run("sc2")).contains("not-made"));
}

#[test]
fn argument_conditions_select_the_call() {
    // kill(pid, 0) is refused; kill(pid, SIGCONT) is not.
    let mut b = Bundle::new(
        "kill -0 $$ 2>/dev/null && echo zero-ok || echo zero-denied; kill -CONT $$ && echo cont-ok",
    );
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
             "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}
        ]),
    );
    assert_eq!(ok(&b.run("sc3")), "zero-denied\ncont-ok\n");
}

#[test]
fn kill_action_kills() {
    let mut b = Bundle::new("uname >/dev/null; echo status=$?");
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([
            {"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]),
    );
    // busybox runs the uname applet inside the shell, so the container's process itself dies of
    // SIGSYS (31): berth run reports 128+31 and nothing after uname runs.
    let o = b.run("sc4");
    assert_eq!(o.status.code(), Some(159), "{}", stderr(&o));
    assert!(!stdout(&o).contains("status="));
}

#[test]
fn seccomp_without_no_new_privileges() {
    let mut b = Bundle::new(
        "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/y 2>/dev/null || echo denied",
    );
    b.spec["process"]["noNewPrivileges"] = json!(false);
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
        ]),
    );
    let out = ok(&b.run("sc5"));
    assert!(
        out.contains("NoNewPrivs:\t0") && out.contains("Seccomp:\t2") && out.contains("denied"),
        "{out}"
    );
}

#[test]
fn default_profile_runs_busybox_and_refuses_mount() {
    let b = Bundle::new("true");
    let dir = b.tmp.path().join("seccomp-bundle");
    std::fs::create_dir(&dir).unwrap();
    ok(&b.berth(&[
        "spec",
        "--seccomp",
        "default",
        "--bundle",
        dir.to_str().unwrap(),
    ]));
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let mut b = b;
    b.spec["linux"]["seccomp"] = spec["linux"]["seccomp"].clone();
    // Even with CAP_SYS_ADMIN granted, mount(2) is refused by the profile.
    for set in ["bounding", "effective", "permitted"] {
        b.spec["process"]["capabilities"][set] = json!(["CAP_SYS_ADMIN", "CAP_KILL"]);
    }
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        "ls / >/dev/null && echo ls-ok; mount -t tmpfs t /mnt 2>&1 || echo mount-refused; grep ^Seccomp_filters: /proc/self/status"
    ]);
    let out = ok(&b.run("sc6"));
    assert!(
        out.contains("ls-ok") && out.contains("mount-refused"),
        "{out}"
    );
    assert!(out.contains("permission denied"), "{out}");
}

#[test]
fn notify_and_bad_profiles_fail_clearly() {
    let mut b = Bundle::new("true");
    b.spec["linux"]["seccomp"] =
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"});
    assert!(fails(&b.run("sc7")).contains("listenerPath"));
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]),
    );
    assert!(fails(&b.run("sc8")).contains("not supported"));
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_BOGUS"}]}]),
    );
    let e = fails(&b.run("sc9"));
    assert!(e.contains("linux.seccomp.syscalls[0].args[0].op"), "{e}");
}
