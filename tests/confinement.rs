//! Seccomp from inside the container: the configured errno, argument conditions, a KILL action,
//! noNewPrivileges on and off, and the default profile of `berth spec --seccomp default`.

use kit::*;
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
fn notify_without_listener_and_bad_profiles_fail_clearly() {
    let mut b = Bundle::new("true");
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]),
    );
    assert!(fails(&b.run("sc8")).contains("needs listenerPath"));
    b.spec["linux"]["seccomp"]["listenerPath"] = json!("relative.sock");
    assert!(fails(&b.run("sc7")).contains("not an absolute path"));
    b.spec["linux"]["seccomp"] = profile(
        "SCMP_ACT_ALLOW",
        json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_BOGUS"}]}]),
    );
    let e = fails(&b.run("sc9"));
    assert!(e.contains("linux.seccomp.syscalls[0].args[0].op"), "{e}");
}

/// Runs berth from a host shell that opened `dir` as fd 3 (passed on with --preserve-fds 1).
fn run_with_dir_fd(b: &Bundle, id: &str, dir: &std::path::Path) -> std::process::Output {
    run_from_shell(
        b,
        id,
        &format!("exec 3<{}", dir.display()),
        "--preserve-fds 1",
        false,
    )
}

/// A directory the caller passed (`--preserve-fds`) stays usable under Landlock, as without it; `..`
/// out of it reaches nothing the ruleset allows. Without Landlock the `..` reads the host's file: the
/// rule, not something else, denied it.
#[test]
fn landlock_keeps_a_passed_fd_usable_and_denies_what_lies_beside_it() {
    let mut b =
        Bundle::new("cat /proc/self/fd/3/data; cat /proc/self/fd/3/../outside 2>&1 || echo denied");
    let host = b.host_path("passed/dir");
    std::fs::write(host.join("data"), "passed in\n").unwrap();
    std::fs::write(host.parent().unwrap().join("outside"), "host secret\n").unwrap();
    let out = ok(&run_with_dir_fd(&b, "ll1", &host));
    assert!(
        out.starts_with("passed in\n") && out.contains("denied") && !out.contains("host secret"),
        "{out}"
    );
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    assert_eq!(
        ok(&run_with_dir_fd(&b, "ll2", &host)),
        "passed in\nhost secret\n"
    );
}

#[test]
fn landlock_status_is_logged_and_enforce_fails_without_landlock() {
    let mut b = Bundle::new("true");
    b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    let log = b.tmp.path().join("log");
    let bundle = b.dir.to_str().unwrap().to_string();
    ok(&b.berth(&[
        "--log",
        log.to_str().unwrap(),
        "create",
        "--bundle",
        &bundle,
        "le1",
    ]));
    // What every layer enforced is kept beside the state, by field; the log has it as one line.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.state.join("le1/confinement.json")).unwrap())
            .unwrap();
    assert_eq!(report["landlock"]["status"], "full", "{report}");
    assert_eq!(report["landlock_mode"], "enforce", "{report}");
    assert_eq!(report["seccomp"]["status"], "off", "{report}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("landlock (enforce) full"), "{text}");
    ok(&b.berth(&["delete", "--force", "le1"]));
    // A kernel without Landlock, simulated by the test-only switch (cargo feature _test, which
    // scripts/test.sh enables).
    if !cfg!(feature = "_test") {
        panic!("run the suite with --features _test (scripts/test.sh does)");
    }
    let mut cmd = b.cmd(&["run", "--bundle", &bundle, "le2"]);
    cmd.env("BERTH_TEST_NO_LANDLOCK", "1");
    let o = output(&mut cmd, b.tmp.path());
    let e = b.refused(&o, "le2", "does not support Landlock");
    assert!(e.contains("berth.landlock=enforce"), "{e}");
    // best-effort goes on, and says so.
    b.spec["annotations"] = json!({"berth.landlock": "best-effort"});
    let mut cmd = b.cmd(&[
        "--log",
        log.to_str().unwrap(),
        "run",
        "--bundle",
        &bundle,
        "le3",
    ]);
    cmd.env("BERTH_TEST_NO_LANDLOCK", "1");
    ok(&output(&mut cmd, b.tmp.path()));
    assert!(std::fs::read_to_string(&log).unwrap().contains(
        "landlock (best-effort) partial (not enforced: this kernel does not support Landlock)"
    ));
    b.spec["annotations"] = json!({"berth.landlock": "sometimes"});
    assert!(fails(&b.run("le4")).contains("annotations.berth.landlock"));
}

/// Landlock never narrows a mount below its flags: under a read-only root, an `rbind,ro` volume
/// (read-only top, submounts keep their own flags) with a writable submount stays writable there,
/// for the init and for exec, while its top stays read-only (the kernel's flag). Landlock on
/// (enforce), so the rules, not their absence, are what is checked.
#[test]
fn landlock_keeps_writable_submounts_of_a_read_only_rbind_writable() {
    writable_submount_of_a_read_only_rbind("sub", "lw1");
}

/// The same with a submount whose name is not UTF-8 (byte 0xff): mountinfo shows it raw, and a
/// reader that insists on UTF-8 failed every exec into the container, one that replaced the byte
/// gave the init no rule for it (its writes refused beneath a read-only root).
#[test]
fn landlock_keeps_a_submount_named_with_bytes_that_are_not_utf8_writable() {
    writable_submount_of_a_read_only_rbind("\\377sub", "lw2");
}

/// `name` as printf(1) writes it (octal escapes allowed) is the submount's directory in the volume.
fn writable_submount_of_a_read_only_rbind(name: &str, id: &str) {
    let script = format!(
        "s=$(printf '{name}'); echo a > /v/$s/f && echo sub-rw; (echo b > /v/f) 2>/dev/null || echo top-ro; exec sleep 100"
    );
    let mut b = Bundle::new(&script);
    let vol = b.host_path("vol");
    let made = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("mkdir \"{}/$(printf '{name}')\"", vol.display()))
        .status()
        .unwrap();
    assert!(made.success());
    b.spec["root"]["readonly"] = json!(true);
    b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["rbind", "ro"]}),
    );
    b.write();
    // The submount exists on the host side of the volume, in a mount namespace of the test's own,
    // from which berth runs (detached) and then execs.
    let v = vol.display();
    let script = format!(
        "set -e; s=$(printf '{name}'); mount -t tmpfs sub \"{v}/$s\"; \
         {BERTH} --root {st} run -d --bundle {bd} {id} > {v}.init 2>&1; sleep 1; \
         {BERTH} --root {st} exec {id} sh -c 'echo c > /v/$(printf \"{name}\")/g && echo exec-sub-rw; (echo d > /v/g) 2>/dev/null || echo exec-top-ro'; \
         {BERTH} --root {st} delete -f {id}",
        st = b.state.display(),
        bd = b.dir.display()
    );
    let o = sh_in_private_mount_ns(&script, b.tmp.path());
    let init = std::fs::read_to_string(format!("{v}.init")).unwrap_or_default();
    assert_eq!(ok(&o), "exec-sub-rw\nexec-top-ro\n", "{}", stderr(&o));
    assert_eq!(init, "sub-rw\ntop-ro\n");
}
