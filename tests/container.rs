//! What the process sees, checked from inside with busybox and from the host via /proc: namespaces,
//! standard mounts, /dev, masked and read-only paths, hostname, user, groups, umask, rlimits, sysctl,
//! devices, fds, cwd, --no-pivot, root.readonly, and hooks with their order.

use kit::*;
use serde_json::json;
use std::time::{Duration, Instant};

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// Runs detached `sleep`, returns the pid.
fn detached(b: &Bundle, id: &str) -> String {
    ok(&b.berth(&["run", "--detach", "--bundle", b.dir.to_str().unwrap(), id]));
    b.state(id)["pid"].to_string()
}

#[test]
fn default_namespaces_differ_from_the_host() {
    let b = Bundle::new("exec sleep 60");
    let pid = detached(&b, "ns1");
    for ns in ["pid", "net", "ipc", "uts", "mnt", "cgroup"] {
        assert_ne!(
            ns_link(&pid, ns),
            ns_link("self", ns),
            "{ns} namespace is the host's"
        );
    }
    // Not asked for: shared with the host.
    assert_eq!(ns_link(&pid, "user"), ns_link("self", "user"));
    ok(&b.berth(&["delete", "--force", "ns1"]));
}

#[test]
fn inside_view_pid_1_hostname_and_loopback_only() {
    let b = Bundle::new("echo pid=$$; hostname; ls /sys/class/net");
    let out = ok(&b.run("v1"));
    assert!(out.contains("pid=1\n"), "{out}");
    assert!(out.contains("berth\n"), "{out}");
    assert_eq!(out.lines().last(), Some("lo"), "{out}");
}

#[test]
fn user_namespace_with_mappings() {
    let mut b = Bundle::new("cat /proc/self/uid_map /proc/self/gid_map; id -u");
    b.in_userns();
    let out = ok(&b.run("u1"));
    let nums: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(nums[0], ["0", "100000", "65536"], "{out}");
    assert_eq!(nums[1], ["0", "100000", "65536"], "{out}");
    assert_eq!(nums[2], ["0"], "{out}");
}

#[test]
fn time_namespace_offsets() {
    let mut b = Bundle::new("cat /proc/uptime");
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    b.spec["linux"]["timeOffsets"] = json!({"boottime": {"secs": 86400 * 365, "nanosecs": 0}});
    let out = ok(&b.run("t1"));
    let up: f64 = out.split_whitespace().next().unwrap().parse().unwrap();
    assert!(up > 86400.0 * 365.0, "uptime {up} not offset");
}

#[test]
fn joining_a_namespace_by_path() {
    let a = Bundle::new("exec sleep 60");
    let pid = detached(&a, "owner");
    let mut b = Bundle::new("exec sleep 60");
    let path = format!("/proc/{pid}/ns/net");
    for ns in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "network" {
            ns["path"] = json!(path);
        }
    }
    let pid_b = detached(&b, "joiner");
    assert_eq!(ns_link(&pid, "net"), ns_link(&pid_b, "net"));
    assert_ne!(ns_link(&pid, "uts"), ns_link(&pid_b, "uts"));
    ok(&b.berth(&["delete", "--force", "joiner"]));
    ok(&a.berth(&["delete", "--force", "owner"]));
}

#[test]
fn standard_mounts_seen_from_inside() {
    let b = Bundle::new("cat /proc/self/mountinfo");
    let out = ok(&b.run("m1"));
    let find = |mp: &str| -> String {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(mp))
            .unwrap_or_else(|| panic!("{mp} not mounted:\n{out}"))
            .to_string()
    };
    assert!(find("/proc").contains(" - proc "));
    assert!(find("/dev").contains(" - tmpfs "));
    assert!(find("/dev/pts").contains(" - devpts "));
    assert!(find("/dev/shm").contains(" - tmpfs "));
    assert!(find("/dev/mqueue").contains(" - mqueue "));
    let sys = find("/sys");
    assert!(
        sys.contains(" - sysfs ") && sys.split(' ').nth(5).unwrap().starts_with("ro"),
        "{sys}"
    );
    let cg = find("/sys/fs/cgroup");
    assert!(
        cg.contains(" - cgroup2 ") && cg.split(' ').nth(5).unwrap().starts_with("ro"),
        "{cg}"
    );
    // Nothing of the host's mount table is visible (the old root is gone).
    assert!(!out.contains("/mnt/sandboxing"), "{out}");
}

#[test]
fn minimal_dev() {
    let b = Bundle::new(
        "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty; readlink /dev/ptmx; readlink /dev/fd; readlink /dev/stdin; echo x > /dev/null && echo wrote",
    );
    let out = ok(&b.run("d1"));
    for (name, nums) in [
        ("null", "1,   3"),
        ("zero", "1,   5"),
        ("full", "1,   7"),
        ("random", "1,   8"),
        ("urandom", "1,   9"),
        ("tty", "5,   0"),
    ] {
        let line = out
            .lines()
            .find(|l| l.ends_with(&format!("/dev/{name}")))
            .unwrap_or_else(|| panic!("{name}: {out}"));
        assert!(
            line.starts_with("crw-rw-rw-") && line.contains(nums),
            "{line}"
        );
    }
    assert!(
        out.contains("pts/ptmx\n/proc/self/fd\n/proc/self/fd/0\nwrote"),
        "{out}"
    );
}

#[test]
fn masked_and_readonly_paths() {
    let mut b = Bundle::new(
        "wc -c < /proc/timer_list; ls -A /sys/firmware | wc -l; echo 1 > /proc/sys/kernel/ns_last_pid 2>&1 || echo ro-ok; cat /proc/mounts | grep -c ' /proc/sys ' ",
    );
    b.spec["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/etc/passwd"));
    b.spec["linux"]["maskedPaths"]
        .as_array_mut()
        .unwrap()
        .push(json!("/does/not/exist"));
    let out = ok(&b.run("mk1"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "{out}");
    assert_eq!(lines[1].trim(), "0", "{out}");
    assert!(out.contains("ro-ok") || out.contains("Read-only"), "{out}");
    // The host's file under the mask is untouched.
    assert!(
        std::fs::read_to_string(b.rootfs.join("etc/passwd"))
            .unwrap()
            .contains("root")
    );
    let b2 = {
        let mut b2 = Bundle::new("cat /etc/passwd | wc -c; ls -l /etc/passwd");
        b2.spec["linux"]["maskedPaths"] = json!(["/etc/passwd"]);
        b2
    };
    let out = ok(&b2.run("mk2"));
    assert!(out.starts_with("0\n") && out.contains("1,   3"), "{out}");
}

/// Every masked directory is the same empty read-only tmpfs (one superblock, as runc >= 1.3.6 and
/// crun >= 1.24 do), which the container can neither write nor fill; a masked file is /dev/null.
#[test]
fn masked_directories_share_one_empty_read_only_tmpfs() {
    let mut b = Bundle::new(
        "for d in /m/a /m/b /m/c; do ls -A $d | wc -l; touch $d/x 2>/dev/null && echo WROTE; done; \
         grep -E ' /m/[abc] ' /proc/self/mountinfo",
    );
    for d in ["a", "b", "c"] {
        std::fs::create_dir_all(b.rootfs.join("m").join(d)).unwrap();
        std::fs::write(b.rootfs.join("m").join(d).join("secret"), "host data\n").unwrap();
        b.spec["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("/m/{d}")));
    }
    let out = ok(&b.run("ms1"));
    assert!(!out.contains("WROTE"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..3], ["0", "0", "0"], "{out}");
    let mounts: Vec<Vec<&str>> = lines[3..].iter().map(|l| l.split(' ').collect()).collect();
    assert_eq!(mounts.len(), 3, "{out}");
    for m in &mounts {
        // The device (major:minor) is the superblock's: one for all three.
        assert_eq!(m[2], mounts[0][2], "{out}");
        assert!(m[5].split(',').any(|o| o == "ro"), "{out}");
        assert!(m.contains(&"tmpfs"), "{out}");
    }
}

#[test]
fn hostname_domainname() {
    let mut b = Bundle::new("hostname; cat /proc/sys/kernel/domainname");
    b.spec["hostname"] = json!("boat");
    b.spec["domainname"] = json!("harbour.test");
    assert_eq!(ok(&b.run("h1")), "boat\nharbour.test\n");
}

#[test]
fn user_groups_umask() {
    let mut b = Bundle::new("id -u; id -g; id -G; umask");
    b.spec["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 63});
    let out = ok(&b.run("id1"));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l, ["1000", "1001", "1001 10 20", "0077"], "{out}");
}

fn caps_of(out: &str, set: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("Cap{set}:")))
        .unwrap_or_else(|| panic!("{set}: {out}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

#[test]
fn capabilities_as_root_and_across_the_uid_change() {
    const KILL: u64 = 1 << 5;
    const NET_BIND: u64 = 1 << 10;
    const AUDIT_WRITE: u64 = 1 << 29;
    let mut b = Bundle::new("grep -E '^Cap' /proc/self/status");
    let out = ok(&b.run("cap1"));
    // berth spec's default: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE, nothing else.
    let want = AUDIT_WRITE | KILL | NET_BIND;
    for set in ["Bnd", "Prm", "Eff"] {
        assert_eq!(caps_of(&out, set), want, "Cap{set}: {out}");
    }
    assert_eq!(caps_of(&out, "Inh"), 0);
    // As uid 1000, only what is inheritable and ambient survives execve.
    b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    b.spec["process"]["capabilities"] = json!({
        "bounding": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "permitted": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL"]
    });
    let out = ok(&b.run("cap2"));
    assert_eq!(caps_of(&out, "Bnd"), KILL | NET_BIND, "{out}");
    assert_eq!(caps_of(&out, "Amb"), KILL, "{out}");
    assert_eq!(caps_of(&out, "Eff"), KILL, "{out}");
    b.spec["process"]["capabilities"]["bounding"] = json!(["CAP_BOGUS"]);
    assert!(fails(&b.run("cap3")).contains("process.capabilities.bounding[0]"));
}

#[test]
fn rlimits_and_no_new_privs() {
    let mut b = Bundle::new("ulimit -n; ulimit -Hn; grep NoNewPrivs /proc/self/status");
    b.spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]);
    let out = ok(&b.run("rl1"));
    assert!(out.starts_with("100\n200\n"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    b.spec["process"]["noNewPrivileges"] = json!(false);
    assert!(ok(&b.run("rl2")).contains("NoNewPrivs:\t0"));
}

#[test]
fn sysctl_in_the_network_namespace() {
    let mut b = Bundle::new("cat /proc/sys/net/ipv4/ip_forward");
    b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    assert_eq!(ok(&b.run("s1")).trim(), "1");
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    assert_eq!(host.trim(), "0", "the host's sysctl changed");
}

#[test]
fn linux_devices() {
    let mut b = Bundle::new("ls -l /dev/fuse /dev/net/tun");
    b.spec["linux"]["devices"] = json!([
        {"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438},
        {"type": "c", "path": "/dev/net/tun", "major": 10, "minor": 200, "fileMode": 384, "uid": 0, "gid": 0}
    ]);
    let out = ok(&b.run("dv1"));
    assert!(
        out.lines().any(|l| l.starts_with("crw-rw-rw-")
            && l.contains("10, 229")
            && l.ends_with("/dev/fuse")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("crw-------") && l.contains("10, 200")),
        "{out}"
    );
}

/// Runs berth from a host shell that first opens /etc/hostname as fd 3 and fd 7 without
/// close-on-exec, as a careless caller would leave them.
fn run_with_inherited_fds(b: &Bundle, id: &str, extra: &str) -> String {
    ok(&run_from_shell(
        b,
        id,
        "exec 3</etc/hostname 7</etc/hostname",
        extra,
        false,
    ))
}

#[test]
fn only_stdio_reaches_the_process_unless_preserved() {
    let b = Bundle::new("cd /proc/self/fd && echo *");
    // 0 1 2 and the directory fd that the shell's glob itself opened.
    assert_eq!(
        run_with_inherited_fds(&b, "fd1", "")
            .split_whitespace()
            .count(),
        4
    );
    let out = run_with_inherited_fds(&b, "fd2", "--preserve-fds 1");
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fds.len(), 5, "{out}");
    assert!(fds.contains(&"3") && !fds.contains(&"7"), "{out}");
}

#[test]
fn cwd_is_created_and_used() {
    let mut b = Bundle::new("pwd");
    b.spec["process"]["cwd"] = json!("/work/dir");
    assert_eq!(ok(&b.run("cwd1")), "/work/dir\n");
}

#[test]
fn no_pivot_and_readonly_root() {
    let mut b = Bundle::new("touch /x 2>&1 || echo ro; ls /");
    b.spec["root"]["readonly"] = json!(true);
    let out = ok(&b.berth(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.dir.to_str().unwrap(),
        "np1",
    ]));
    assert!(
        out.contains("Read-only file system") || out.contains("ro\n"),
        "{out}"
    );
    assert!(!b.rootfs.join("x").exists());
    b.spec["root"]["readonly"] = json!(false);
    ok(&b.run("np2"));
    assert!(b.rootfs.join("x").exists());
}

#[test]
fn hooks_run_in_order_with_state_on_stdin() {
    let mut b = Bundle::new("echo process >> /hooklog/order");
    let logdir = b.host_path("hooklog");
    let log = logdir.join("order");
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("s=$(cat); case \"$s\" in *'\"id\":\"hk1\"'*) ;; *) exit 1;; esac; echo {name} >> {}", log.display())]});
    b.spec["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /dev/null; echo startContainer >> /hooklog/order"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")]
    });
    b.add_mount(json!({"destination": "/hooklog", "type": "bind", "source": logdir, "options": ["rbind", "rw"]}));
    ok(&b.run("hk1"));
    let got = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = got.lines().collect();
    // poststart runs after start; the process may or may not have written first.
    let without_process: Vec<&str> = order.iter().copied().filter(|l| *l != "process").collect();
    assert_eq!(
        without_process,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ],
        "{got}"
    );
    let p = order
        .iter()
        .position(|l| *l == "process")
        .expect("process ran");
    assert!(p > order.iter().position(|l| *l == "startContainer").unwrap());
}

/// A startContainer hook without `env` sees the container process's environment (runc), never the
/// environment of whoever ran `create`; one with `env` sees only its own.
#[test]
fn start_container_hooks_get_the_process_environment() {
    let mut b = Bundle::new("true");
    let logdir = b.host_path("hooklog");
    b.spec["process"]["env"] = json!(["PATH=/bin:/usr/bin", "IN_CONTAINER=yes"]);
    let report = "cat > /dev/null; echo \"$0 in=${IN_CONTAINER:-unset} caller=${BERTH_CALLER_SECRET:-unset} own=${OWN:-unset}\" >> /hooklog/env";
    b.spec["hooks"] = json!({"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", report, "plain"]},
        {"path": "/bin/sh", "args": ["sh", "-c", report, "own"], "env": ["OWN=1", "PATH=/bin"]}
    ]});
    b.add_mount(json!({"destination": "/hooklog", "type": "bind", "source": logdir, "options": ["rbind", "rw"]}));
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut cmd = b.cmd(&["run", "--bundle", &bundle, "he1"]);
    cmd.env("BERTH_CALLER_SECRET", "leaked");
    ok(&output(&mut cmd, b.tmp.path()));
    let got = std::fs::read_to_string(logdir.join("env")).unwrap();
    assert_eq!(
        got,
        "plain in=yes caller=unset own=unset\nown in=unset caller=unset own=1\n"
    );
}

#[test]
fn failing_create_hook_fails_and_leaves_nothing() {
    let mut b = Bundle::new("true");
    b.spec["hooks"] = json!({"createRuntime": [{"path": "/bin/false"}]});
    b.refused(&b.run("hf1"), "hf1", "hooks.createRuntime[0]");
}

#[test]
fn hook_timeout_is_honoured() {
    let mut b = Bundle::new("true");
    b.spec["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    let t = Instant::now();
    let e = fails(&b.run("ht1"));
    assert!(e.contains("timed out"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(20));
}

#[test]
fn terminal_through_the_parent() {
    // `script` gives berth a terminal; the process sees a tty on stdio and /dev/console.
    let Some(_) = tool("script") else { return };
    let mut b = Bundle::new("tty; ls -l /dev/console; echo done");
    b.spec["process"]["terminal"] = json!(true);
    b.write();
    let inner = format!(
        "{} --root {} run --bundle {} tty1",
        BERTH,
        b.state.display(),
        b.dir.display()
    );
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &inner, "/dev/null"]);
    let out = output(&mut cmd, b.tmp.path());
    let text = ok(&out);
    assert!(text.contains("/dev/pts/0"), "{text}");
    assert!(text.contains("done"), "{text}");
}

#[test]
fn kill_all_reaches_every_process_of_the_container() {
    // pid 1 ignores SIGTERM (no handler); its children do not.
    let b = Bundle::new("sleep 100 & sleep 100 & wait; echo children-gone");
    let pid = detached(&b, "ka1");
    std::thread::sleep(Duration::from_millis(100));
    ok(&b.berth(&["kill", "ka1", "TERM"]));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        b.state("ka1")["status"],
        "running",
        "pid 1 should have ignored SIGTERM"
    );
    ok(&b.berth(&["kill", "--all", "ka1", "TERM"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.state("ka1")["status"] != "stopped" {
        assert!(
            Instant::now() < deadline,
            "kill --all did not stop the container (init pid {pid})"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(&b.berth(&["delete", "ka1"]));
}

#[test]
fn console_socket_receives_the_terminal() {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::AsRawFd;
    let mut b = Bundle::new("tty; echo from-the-console");
    b.spec["process"]["terminal"] = json!(true);
    let sock_path = b.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = [0u8; 256];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(f) => f.first().copied(),
                _ => None,
            })
            .expect("an fd came with the message");
        // The fd is ours now (it arrived with SCM_RIGHTS); it is read as a raw fd and closed below.
        fd
    });
    let o = b.berth(&[
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "--console-socket",
        sock_path.to_str().unwrap(),
        "cs1",
    ]);
    ok(&o);
    let master = receiver.join().unwrap();
    ok(&b.berth(&["start", "cs1"]));
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    // Reading the master returns EIO once the process closed the terminal.
    while let Ok(n) = nix::unistd::read(master, &mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("from-the-console") {
            break;
        }
    }
    let _ = nix::unistd::close(master);
    assert!(
        text.contains("/dev/pts/0") && text.contains("from-the-console"),
        "{text:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.state("cs1")["status"] != "stopped" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(10));
    }
    ok(&b.berth(&["delete", "cs1"]));
}
