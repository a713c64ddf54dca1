//! exec into real containers: the namespaces really joined, the same confinement as the init
//! (capabilities, seccomp, Landlock), the cwd resolved inside the root, no leaked fd, exit codes,
//! users, paused and stopped containers, bad process objects, --detach with a pid file, a terminal.

use kit::*;
use serde_json::json;
use std::time::Duration;

/// A running container (`sleep 100`) started with create/start.
fn running(b: &Bundle, id: &str) -> i64 {
    ok(&b.create(id));
    ok(&b.berth(&["start", id]));
    b.state(id)["pid"].as_i64().unwrap()
}

#[test]
fn exec_joins_every_namespace_with_the_inits_confinement() {
    let mut b = Bundle::new("sleep 100");
    b.spec["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]});
    let init = running(&b, "ex1");
    let out = ok(&b.berth(&["exec", "ex1", "sh", "-c",
        "for n in mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done; hostname; grep -E '^(CapBnd|CapEff|Seccomp):' /proc/self/status; mkdir /tmp/x 2>&1 | head -1; cat /proc/1/cmdline | tr '\\0' ' '"]));
    let lines: Vec<&str> = out.lines().collect();
    for (i, n) in ["mnt", "pid", "net", "ipc", "uts", "cgroup"]
        .iter()
        .enumerate()
    {
        let theirs = std::fs::read_link(format!("/proc/{init}/ns/{n}")).unwrap();
        assert_eq!(lines[i], theirs.to_str().unwrap(), "{n}");
    }
    assert_eq!(lines[6], "berth");
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    for key in ["CapBnd:", "CapEff:"] {
        let init_line = status.lines().find(|l| l.starts_with(key)).unwrap();
        assert!(
            out.contains(init_line),
            "{key}: init {init_line:?}, exec {out}"
        );
    }
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("Permission denied"),
        "the container's seccomp filter: {out}"
    );
    assert!(
        out.contains("sleep 100"),
        "pid 1 is the container's init: {out}"
    );
    ok(&b.berth(&["delete", "-f", "ex1"]));
}

#[test]
fn exec_options_exit_codes_and_users() {
    let b = Bundle::new("sleep 100");
    running(&b, "ex2");
    assert_eq!(
        b.berth(&["exec", "ex2", "sh", "-c", "exit 5"])
            .status
            .code(),
        Some(5)
    );
    assert_eq!(
        b.berth(&["exec", "ex2", "sh", "-c", "kill -9 $$"])
            .status
            .code(),
        Some(137)
    );
    assert_eq!(
        ok(&b.berth(&[
            "exec",
            "-e",
            "FOO=bar",
            "--cwd",
            "/tmp",
            "ex2",
            "sh",
            "-c",
            "echo $FOO $(pwd)"
        ])),
        "bar /tmp\n"
    );
    assert_eq!(
        ok(&b.berth(&["exec", "-u", "1000:1000", "-g", "5", "ex2", "id"])),
        "uid=1000 gid=1000 groups=5\n"
    );
    // A process object, and one with a bad field.
    let p = b.tmp.path().join("process.json");
    std::fs::write(&p, json!({"args": ["sh", "-c", "echo from-json"], "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}}).to_string()).unwrap();
    assert_eq!(
        ok(&b.berth(&["exec", "--process", p.to_str().unwrap(), "ex2"])),
        "from-json\n"
    );
    std::fs::write(
        &p,
        json!({"args": ["true"], "cwd": "relative", "user": {"uid": 0, "gid": 0}}).to_string(),
    )
    .unwrap();
    assert!(
        fails(&b.berth(&["exec", "--process", p.to_str().unwrap(), "ex2"])).contains("process.cwd")
    );
    std::fs::write(
        &p,
        json!({"args": ["true"], "cwd": "/", "user": {"uid": "root"}}).to_string(),
    )
    .unwrap();
    assert!(
        fails(&b.berth(&["exec", "--process", p.to_str().unwrap(), "ex2"]))
            .contains("process.user.uid")
    );
    // --detach writes the pid file once the process runs.
    let pidfile = b.tmp.path().join("exec.pid");
    ok(&b.berth(&[
        "exec",
        "-d",
        "--pid-file",
        pidfile.to_str().unwrap(),
        "ex2",
        "sleep",
        "30",
    ]));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let cmdline = || std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    for _ in 0..200 {
        if cmdline().starts_with("sleep") {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(cmdline().starts_with("sleep"), "{:?}", cmdline());
    ok(&b.berth(&["delete", "-f", "ex2"]));
}

#[test]
fn the_cwd_stays_inside_and_no_host_fd_leaks() {
    let b = Bundle::new("sleep 100");
    std::os::unix::fs::symlink("../../../../..", b.rootfs.join("escape")).unwrap();
    running(&b, "ex3");
    // A symlink out of the root resolves inside it.
    assert_eq!(
        ok(&b.berth(&[
            "exec",
            "--cwd",
            "/escape",
            "ex3",
            "sh",
            "-c",
            "pwd; ls / | grep -c escape"
        ])),
        "/\n1\n"
    );
    // A host directory open in berth's caller is not reachable (no --preserve-fds).
    let o = run_shell(
        &b,
        "exec 7</etc; exec berth-exec ex3 sh -c 'ls /proc/self/fd | wc -l; cat /proc/self/fd/7/hostname 2>&1 | head -1'",
    );
    let out = ok(&o);
    assert!(
        out.starts_with("4\n") && out.contains("No such file"),
        "{out}"
    );
    ok(&b.berth(&["delete", "-f", "ex3"]));
}

/// Runs `script` in a host shell where `berth-exec` is `berth --root <state> exec`.
fn run_shell(b: &Bundle, script: &str) -> std::process::Output {
    let script = script.replace(
        "berth-exec",
        &format!("{BERTH} --root {} exec", b.state.display()),
    );
    output(
        std::process::Command::new("/bin/sh").args(["-c", &script]),
        b.tmp.path(),
    )
}

/// Landlock holds for exec as for the init, without narrowing what the caller handed in: a directory
/// given with `--preserve-fds` stays usable through /proc/self/fd/N (read and write, as without
/// Landlock), while `..` out of it reaches nothing the ruleset allows. Without Landlock the same
/// `..` reads the host's file: the ruleset, not something else, denied it.
#[test]
fn landlock_holds_for_exec_as_for_the_init() {
    let mut b = Bundle::new("sleep 100");
    let host = b.host_path("handed/dir");
    std::fs::write(host.join("data"), "handed in\n").unwrap();
    std::fs::write(host.parent().unwrap().join("outside"), "host secret\n").unwrap();
    let script = |id: &str| {
        format!(
            "exec 3<{}; exec berth-exec --preserve-fds 1 {id} sh -c 'cat /proc/self/fd/3/data; echo w > /proc/self/fd/3/new && echo wrote; cat /proc/self/fd/3/../outside 2>/dev/null || echo outside-denied; echo ok > /tmp/t && echo tmp-rw'",
            host.display()
        )
    };
    b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    running(&b, "ex4");
    let out = ok(&run_shell(&b, &script("ex4")));
    assert_eq!(out, "handed in\nwrote\noutside-denied\ntmp-rw\n");
    assert_eq!(std::fs::read_to_string(host.join("new")).unwrap(), "w\n");
    ok(&b.berth(&["delete", "-f", "ex4"]));
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    running(&b, "ex5");
    let out = ok(&run_shell(&b, &script("ex5")));
    assert_eq!(out, "handed in\nwrote\nhost secret\ntmp-rw\n");
    ok(&b.berth(&["delete", "-f", "ex5"]));
}

#[test]
fn paused_and_stopped_containers() {
    let mut b = Bundle::new("sleep 100");
    b.spec["linux"]["cgroupsPath"] = json!(format!("/berth-exec-{}/c", std::process::id()));
    running(&b, "ex6");
    ok(&b.berth(&["pause", "ex6"]));
    assert!(fails(&b.berth(&["exec", "ex6", "true"])).contains("paused"));
    // --ignore-paused: the process waits frozen until the container is resumed.
    let mut cmd = b.cmd(&["exec", "--ignore-paused", "ex6", "echo", "ran"]);
    let child = cmd.stdout(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    ok(&b.berth(&["resume", "ex6"]));
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ran\n");
    ok(&b.berth(&["kill", "ex6", "KILL"]));
    for _ in 0..300 {
        if b.state("ex6")["status"] == "stopped" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let e = fails(&b.berth(&["exec", "ex6", "true"]));
    assert!(e.contains("cannot exec in a stopped container"), "{e}");
    ok(&b.berth(&["delete", "ex6"]));
}

#[test]
fn exec_with_a_terminal() {
    let b = Bundle::new("sleep 100");
    running(&b, "ex7");
    let cmd = format!(
        "{BERTH} --root {} exec -t ex7 sh -c 'tty; echo t-ok'",
        b.state.display()
    );
    let Some(out) = in_pty(&cmd, b.tmp.path()) else {
        return;
    };
    assert!(out.contains("/dev/pts/") && out.contains("t-ok"), "{out}");
    ok(&b.berth(&["delete", "-f", "ex7"]));
}

#[test]
fn under_a_read_only_root_landlock_keeps_rw_volumes_writable_for_the_init_and_exec() {
    // With a writable root every mount is covered by the root's rule; under a read-only root each
    // writable volume needs its own, for the init and (rebuilt from the mount table) for exec.
    let script =
        "echo a > /rw/x && echo rw-ok; (echo b > /ro/x) 2>/dev/null || echo ro-refused; sleep 100";
    let mut b = Bundle::new(script);
    b.spec["root"]["readonly"] = json!(true);
    b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    let (rw, ro) = (b.host_path("rw"), b.host_path("ro"));
    b.add_mount(
        json!({"destination": "/rw", "type": "bind", "source": rw, "options": ["rbind", "rw"]}),
    );
    b.add_mount(
        json!({"destination": "/ro", "type": "bind", "source": ro, "options": ["rbind", "ro"]}),
    );
    std::fs::create_dir_all(b.rootfs.join("rw")).unwrap();
    std::fs::create_dir_all(b.rootfs.join("ro")).unwrap();
    running(&b, "ex9");
    let out = ok(&b.berth(&[
        "exec",
        "ex9",
        "sh",
        "-c",
        "echo c > /rw/y && echo exec-rw-ok; (echo d > /ro/y) 2>/dev/null || echo exec-ro-refused; \
         (echo e > /tmp-file) 2>/dev/null || echo root-refused",
    ]));
    assert!(
        out.contains("exec-rw-ok")
            && out.contains("exec-ro-refused")
            && out.contains("root-refused"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(rw.join("y")).unwrap(), "c\n");
    assert_eq!(std::fs::read_to_string(rw.join("x")).unwrap(), "a\n");
    ok(&b.berth(&["delete", "-f", "ex9"]));
}

/// A container with a time namespace of its own (as a CRIU restore makes one): exec's process
/// joins it too, with the offsets the init sees. The kernel lets only a process that shares its
/// memory with nobody join a time namespace (EUSERS otherwise), so this exec is a fork, not the
/// shared-memory clone the others are.
#[test]
fn exec_joins_a_time_namespace() {
    let mut b = Bundle::new("sleep 100");
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400 * 365, "nanosecs": 0}});
    let init = running(&b, "ext");
    let out = ok(&b.berth(&[
        "exec",
        "ext",
        "sh",
        "-c",
        "readlink /proc/self/ns/time; cat /proc/uptime",
    ]));
    let mut lines = out.lines();
    let theirs = std::fs::read_link(format!("/proc/{init}/ns/time")).unwrap();
    assert_eq!(lines.next(), theirs.to_str(), "{out}");
    let up: f64 = lines
        .next()
        .and_then(|l| l.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(up > 86400.0 * 365.0, "uptime {up} not offset: {out}");
    ok(&b.berth(&["delete", "-f", "ext"]));
}

/// A container's init may name itself with any bytes (its comm, which /proc/PID/stat and status show
/// raw): it is still seen as running (a stat line read as text had made it look gone, so `delete`
/// without -f removed its state and left it running), and exec, which reads the init's bounding set
/// from its status, still runs and is still bounded.
#[test]
fn exec_into_an_init_that_named_itself_with_bytes_that_are_not_utf8() {
    let b = Bundle::new("printf '\\377\\376' > /proc/self/comm; while :; do sleep 1; done");
    let init = running(&b, "exn");
    let mut named = false;
    for _ in 0..100 {
        let status = std::fs::read(format!("/proc/{init}/status")).unwrap_or_default();
        if status.starts_with(b"Name:\t\xff\xfe\n") {
            named = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(named, "the init never renamed itself");
    // Still seen as running: not "stopped" (its stat line unread), so not deletable without -f.
    assert_eq!(b.state("exn")["status"], "running");
    assert!(fails(&b.berth(&["delete", "exn"])).contains("running"));
    let out = ok(&b.berth(&["exec", "exn", "sh", "-c", "grep CapBnd /proc/self/status"]));
    let status = String::from_utf8_lossy(&std::fs::read(format!("/proc/{init}/status")).unwrap())
        .into_owned();
    let bnd = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    assert_eq!(out.trim(), bnd);
    ok(&b.berth(&["delete", "-f", "exn"]));
}

/// runc's `exec --cgroup`: the process goes into an existing sub-cgroup of the container's (one
/// hierarchy's on cgroup v1, `CONTROLLER:PATH`), and never anywhere else: `..`, an absolute path, a
/// missing sub-cgroup or a controller the container has no cgroup for is refused before any process
/// exists.
#[test]
fn exec_into_a_sub_cgroup_and_nowhere_else() {
    let mut b = Bundle::new("sleep 100");
    let path = format!("/berth-exec-sub-{}/c", std::process::id());
    b.spec["linux"]["cgroupsPath"] = json!(path);
    running(&b, "sc1");
    let (base, arg, line) = if cgroup_v2() {
        (std::path::PathBuf::from("/sys/fs/cgroup"), "inner", "0::")
    } else {
        (
            std::path::PathBuf::from("/sys/fs/cgroup/pids"),
            "pids:inner",
            ":pids:",
        )
    };
    let sub = base.join(path.trim_start_matches('/')).join("inner");
    std::fs::create_dir(&sub).unwrap();
    let o = b.berth(&["exec", "--cgroup", arg, "sc1", "cat", "/proc/self/cgroup"]);
    let _ = std::fs::remove_dir(&sub);
    let out = ok(&o);
    let mine = out
        .lines()
        .find(|l| l.contains(line))
        .unwrap_or_default()
        .to_string();
    // Seen through the container's cgroup namespace: its own cgroup is `/`.
    assert!(mine.ends_with(":/inner"), "{out}");
    if !cgroup_v2() {
        // The other hierarchies keep the container's own cgroup.
        let mem = out
            .lines()
            .find(|l| l.contains(":memory:"))
            .unwrap_or_default();
        assert!(mem.ends_with(":/"), "{out}");
    }
    let before = b.berth(&["ps", "sc1"]);
    for (bad, needle) in [
        ("../../escape", "without . or .."),
        ("/abs", "relative path"),
        ("nosuch", "not an existing sub-cgroup"),
        ("nosuchctl:inner", "no cgroup for controller"),
    ] {
        let e = fails(&b.berth(&["exec", "--cgroup", bad, "sc1", "echo", "RAN"]));
        assert!(e.contains(needle) && e.contains("--cgroup"), "{bad}: {e}");
        assert!(!e.contains("RAN"), "{bad}: {e}");
    }
    // No process was left by the refusals.
    assert_eq!(stdout(&b.berth(&["ps", "sc1"])), stdout(&before));
}
