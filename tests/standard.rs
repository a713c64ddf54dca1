#![allow(clippy::cast_possible_truncation)] // test fixtures: pids from JSON, small ELF headers
//! Standard configs as orchestrators and the OCI runtime-tools suite write them: absent capability sets,
//! Docker-classic seccomp profiles without no_new_privs, mount sources in mountinfo, the exec fifo for
//! non-root and user-namespaced inits, bind data options, SELinux labels on a host without SELinux,
//! a quiet create, every rootfsPropagation, joined mount and uts namespaces, hook environment and
//! states, atime options, personality and a seccomp agent.

use kit::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// The capability lines of /proc/self/status inside the container.
const CAPS: &str = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status";

fn all_caps_zero(out: &str) -> bool {
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("Cap")).collect();
    lines.len() == 5 && lines.iter().all(|l| l.ends_with("0000000000000000"))
}

#[test]
fn absent_capability_sets_grant_nothing() {
    // No process.capabilities at all, as uid 0: every set must be empty (runc), not the host's.
    let mut b = Bundle::new(CAPS);
    b.spec["process"]
        .as_object_mut()
        .unwrap()
        .remove("capabilities");
    let out = ok(&b.run("cap1"));
    assert!(all_caps_zero(&out), "{out}");
    // An object with no sets (podman --cap-drop all) is the same.
    b.spec["process"]["capabilities"] = json!({});
    let out = ok(&b.run("cap2"));
    assert!(all_caps_zero(&out), "{out}");
    // Only a bounding set given: the other sets are empty, the bounding set is just that.
    b.spec["process"]["capabilities"] = json!({"bounding": ["CAP_KILL"]});
    let out = ok(&b.run("cap3"));
    assert!(out.contains("CapBnd:\t0000000000000020"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
}

/// A Docker-classic profile: default ERRNO, every syscall of the Linux 5.0 table allowed (so no
/// clone3, close_range, openat2, faccessat2 or anything later), minus `deny`.
fn classic_profile(deny: &[&str]) -> serde_json::Value {
    let names: Vec<&str> = syscalls::Sysno::iter()
        .filter(|s| s.id() < 424 && !deny.contains(&s.name()))
        .map(|s| s.name())
        .collect();
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]
    })
}

#[test]
fn classic_seccomp_profiles_run_with_and_without_no_new_privs() {
    let mut b =
        Bundle::new("cd /tmp && echo in-$(basename $PWD); grep ^Seccomp: /proc/self/status");
    b.spec["process"]["cwd"] = json!("/tmp");
    for (i, deny) in [&[][..], &["getcwd"][..]].iter().enumerate() {
        for nnp in [false, true] {
            b.spec["process"]["noNewPrivileges"] = json!(nnp);
            b.spec["linux"]["seccomp"] = classic_profile(deny);
            let id = format!("classic{i}{nnp}");
            let out = ok(&b.run(&id));
            assert!(
                out.contains("in-tmp") && out.contains("Seccomp:\t2"),
                "deny {deny:?}, noNewPrivileges {nnp}: {out}"
            );
        }
    }
    // The same profile with a create/start split (the exec fifo is waited on under the filter).
    b.spec["process"]["noNewPrivileges"] = json!(false);
    b.spec["linux"]["seccomp"] = classic_profile(&[]);
    ok(&b.create("classic-split"));
    ok(&b.berth(&["start", "classic-split"]));
    b.wait_status("classic-split", "stopped");
    ok(&b.berth(&["delete", "classic-split"]));
}

#[test]
fn pseudo_filesystems_keep_their_source() {
    let b = Bundle::new("cat /proc/self/mountinfo");
    let out = ok(&b.run("src1"));
    let line = |dest: &str| {
        out.lines()
            .find(|l| l.split(' ').nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("no {dest} in {out}"))
            .to_string()
    };
    // `berth spec` gives proc "proc", sysfs "sysfs", devpts "devpts", mqueue "mqueue".
    assert!(line("/proc").contains(" - proc proc "), "{}", line("/proc"));
    assert!(line("/sys").contains(" - sysfs sysfs "), "{}", line("/sys"));
    assert!(
        line("/dev/pts").contains(" - devpts devpts "),
        "{}",
        line("/dev/pts")
    );
    assert!(
        line("/dev/mqueue").contains(" - mqueue mqueue "),
        "{}",
        line("/dev/mqueue")
    );
}

#[test]
fn exec_fifo_works_for_a_non_root_user_and_a_mapped_user_namespace() {
    let mut b = Bundle::new("echo ran-as-$(id -u) > /out/$(id -u)");
    let out = b.host_path("out");
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    b.add_mount(
        json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}),
    );
    b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    ok(&b.create("fifo1"));
    // Only root reaches the fifo: the state directory is 0700 and the fifo 0600 root.
    let dir = b.state.join("fifo1");
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let fifo = std::fs::metadata(dir.join("exec.fifo")).unwrap();
    assert_eq!(
        fifo.permissions().mode() & 0o077,
        0,
        "fifo mode {:o}",
        fifo.permissions().mode()
    );
    assert_eq!(b.state("fifo1")["status"], "created");
    ok(&b.berth(&["start", "fifo1"]));
    b.wait_status("fifo1", "stopped");
    assert_eq!(
        std::fs::read_to_string(out.join("1000")).unwrap(),
        "ran-as-1000\n"
    );
    ok(&b.berth(&["delete", "fifo1"]));

    // A user namespace whose root is host uid 100000: the init is nobody the fifo would admit.
    b.spec["process"]["user"] = json!({"uid": 0, "gid": 0});
    b.in_userns();
    // The rootfs must be reachable by the mapped root.
    std::fs::set_permissions(b.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    ok(&b.create("fifo2"));
    ok(&b.berth(&["start", "fifo2"]));
    b.wait_status("fifo2", "stopped");
    assert_eq!(
        std::fs::read_to_string(out.join("0")).unwrap(),
        "ran-as-0\n"
    );
    ok(&b.berth(&["delete", "fifo2"]));
}

#[test]
fn start_of_a_dead_init_fails_clearly() {
    let b = Bundle::new("true");
    ok(&b.create("dead1"));
    let pid = b.state("dead1")["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL).unwrap();
    for _ in 0..200 {
        if b.state("dead1")["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let e = fails(&b.berth(&["start", "dead1"]));
    assert!(e.contains("cannot start") || e.contains("died"), "{e}");
    ok(&b.berth(&["delete", "dead1"]));
}

#[test]
fn bind_mounts_ignore_filesystem_data_options() {
    let mut b = Bundle::new("ls /data >/dev/null && echo data-ok");
    let src = b.host_path("data");
    b.add_mount(
        json!({"destination": "/data", "type": "bind", "source": src,
        "options": ["rbind", "mode=755", "size=65536k", "ro"]}),
    );
    assert_eq!(ok(&b.run("opt1")), "data-ok\n");
}

#[test]
fn selinux_labels_are_ignored_without_selinux() {
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        skip!("this host has SELinux");
    }
    let mut b = Bundle::new("echo labelled");
    b.spec["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0:c1,c2");
    b.spec["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0:c1,c2");
    assert_eq!(ok(&b.run("se1")), "labelled\n");
}

#[test]
fn create_is_quiet_for_standard_configs_and_logs_what_the_kernel_ignores() {
    let mut b = Bundle::new("true");
    // What runc's and runtime-tools' default specs carry: deny-all devices and a cgroupsPath.
    b.spec["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    b.spec["linux"]["cgroupsPath"] = json!(format!("/berth-test-{}/quiet", std::process::id()));
    let o = b.create("quiet1");
    ok(&o);
    assert_eq!(stderr(&o), "", "create wrote to stderr");
    ok(&b.berth(&["delete", "--force", "quiet1"]));
    // A limit is applied now (tests/cgroups.rs); a field the kernel has no knob for is said in the log,
    // never on stderr.
    b.spec["linux"]["resources"]["memory"] = json!({"limit": 67108864, "kernel": 1048576});
    let log = b.tmp.path().join("berth.log");
    let o = b.berth(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.dir.to_str().unwrap(),
        "quiet3",
    ]);
    ok(&o);
    assert_eq!(stderr(&o), "");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("memory.kernel") && logged.contains("ignored"),
        "{logged}"
    );
    ok(&b.berth(&["delete", "--force", "quiet3"]));
}

/// The optional fields of `/`'s line in the container's mountinfo.
fn root_propagation(b: &mut Bundle, id: &str, value: &str) -> String {
    b.spec["linux"]["rootfsPropagation"] = json!(value);
    let out = ok(&b.run(id));
    let line = out
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in {out}"))
        .to_string();
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-").unwrap();
    fields[6..dash].join(" ")
}

#[test]
fn every_rootfs_propagation_works_and_nothing_reaches_the_host() {
    let mut b = Bundle::new("cat /proc/self/mountinfo");
    let shared = root_propagation(&mut b, "prop1", "shared");
    assert!(shared.contains("shared:"), "shared: {shared:?}");
    let rshared = root_propagation(&mut b, "prop2", "rshared");
    assert!(rshared.contains("shared:"), "rshared: {rshared:?}");
    let unbindable = root_propagation(&mut b, "prop3", "unbindable");
    assert!(
        unbindable.contains("unbindable"),
        "unbindable: {unbindable:?}"
    );
    let runbindable = root_propagation(&mut b, "prop4", "runbindable");
    assert!(
        runbindable.contains("unbindable"),
        "runbindable: {runbindable:?}"
    );
    let private = root_propagation(&mut b, "prop5", "private");
    assert!(
        !private.contains("shared:") && !private.contains("master:"),
        "private: {private:?}"
    );
    let rprivate = root_propagation(&mut b, "prop6", "rprivate");
    assert!(
        !rprivate.contains("shared:") && !rprivate.contains("master:"),
        "rprivate: {rprivate:?}"
    );
    for v in ["slave", "rslave"] {
        let slave = root_propagation(&mut b, &format!("prop-{v}"), v);
        assert!(!slave.contains("shared:"), "{v}: {slave:?}");
    }
    // The Bundle's drop checks that the host's mount table is unchanged.
}

#[test]
fn a_mount_namespace_joined_by_path_is_used_as_it_is() {
    let sleeper = Sleeper::start(&["--mount", "--propagation", "private"], "mnt");
    let mountinfo = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let before = mountinfo(sleeper.pid());
    let mut b = Bundle::new("ls /bin/busybox && echo in-rootfs");
    for ns in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "mount" {
            ns["path"] = json!(sleeper.ns("mnt"));
        }
    }
    ok(&b.create("mntns1"));
    let pid = b.state("mntns1")["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap(),
        std::fs::read_link(sleeper.ns("mnt")).unwrap()
    );
    ok(&b.berth(&["delete", "--force", "mntns1"]));
    assert!(ok(&b.run("mntns2")).contains("in-rootfs"));
    // Nothing was mounted into the joined namespace, and its root is where it was.
    assert_eq!(before, mountinfo(sleeper.pid()));
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/root", sleeper.pid())).unwrap(),
        std::path::PathBuf::from("/")
    );
}

#[test]
fn hostname_is_set_in_a_joined_uts_namespace() {
    let sleeper = Sleeper::start(&["--uts"], "uts");
    let mut b = Bundle::new("hostname");
    b.spec["hostname"] = json!("joined-host");
    for ns in b.spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if ns["type"] == "uts" {
            ns["path"] = json!(sleeper.ns("uts"));
        }
    }
    assert_eq!(ok(&b.run("uts1")), "joined-host\n");
    let seen = Command::new("nsenter")
        .args(["-t", &sleeper.pid().to_string(), "-u", "hostname"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&seen.stdout), "joined-host\n");
}

#[test]
fn hooks_get_the_runtime_environment_and_runc_like_states() {
    let mut b = Bundle::new("true");
    let out = b.host_path("hooks");
    let sh = b.rootfs.join("bin/busybox");
    let hook = |name: &str| {
        json!({"path": sh, "args": ["sh", "-c",
            format!("cat > {0}/{name}.json; echo \"$BERTH_HOOK_MARK\" > {0}/{name}.env", out.display())]})
    };
    b.spec["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    let o = output(
        b.cmd(&["run", "--bundle", b.dir.to_str().unwrap(), "hk1"])
            .env("BERTH_HOOK_MARK", "from-runtime"),
        b.tmp.path(),
    );
    ok(&o);
    for h in ["prestart", "createRuntime", "poststop"] {
        let env = std::fs::read_to_string(out.join(format!("{h}.env"))).unwrap();
        assert_eq!(
            env, "from-runtime\n",
            "{h} did not get the runtime's environment"
        );
    }
    let state = |h: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(out.join(format!("{h}.json"))).unwrap()).unwrap()
    };
    assert_eq!(state("prestart")["status"], "created");
    // poststart sees `running` with the pid, as runc shows it, even though `true` may be gone by then.
    assert_eq!(state("poststart")["status"], "running");
    assert!(state("poststart")["pid"].as_i64().unwrap() > 0);
    assert_eq!(state("createRuntime")["status"], "creating");
    assert!(state("prestart")["pid"].as_i64().unwrap() > 0);
    // A hook with its own env gets only that.
    b.spec["hooks"] = json!({"prestart": [{"path": sh, "args": ["sh", "-c",
        format!("echo \"[$BERTH_HOOK_MARK][$ONLY]\" > {}/own.env", out.display())], "env": ["ONLY=1"]}]});
    let o = output(
        b.cmd(&["run", "--bundle", b.dir.to_str().unwrap(), "hk2"])
            .env("BERTH_HOOK_MARK", "from-runtime"),
        b.tmp.path(),
    );
    ok(&o);
    assert_eq!(
        std::fs::read_to_string(out.join("own.env")).unwrap(),
        "[][1]\n"
    );
}

#[test]
fn rnorelatime_gives_relatime() {
    let mut b = Bundle::new("grep ' /t[12] ' /proc/self/mountinfo");
    b.add_mount(json!({"destination": "/t1", "type": "tmpfs", "source": "tmpfs", "options": ["rnorelatime"]}));
    b.add_mount(json!({"destination": "/t2", "type": "tmpfs", "source": "tmpfs", "options": ["norelatime"]}));
    let out = ok(&b.run("atime1"));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines.iter().all(|l| l.contains("relatime")), "{out}");
}

#[test]
fn personality_linux32() {
    let mut b = Bundle::new("uname -m");
    b.spec["linux"]["personality"] = json!({"domain": "LINUX32"});
    assert_eq!(ok(&b.run("pers1")), "i686\n");
    b.spec["linux"]["personality"] = json!({"domain": "LINUX"});
    assert_eq!(ok(&b.run("pers2")), "x86_64\n");
    b.spec["linux"]["personality"] = json!({"domain": "BSD"});
    assert!(fails(&b.run("pers3")).contains("linux.personality.domain"));
}

#[test]
fn seccomp_notify_hands_the_listener_and_state_to_the_agent() {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixListener;
    let mut b = Bundle::new("mkdir /tmp/x 2>&1; echo mkdir=$?");
    let sock = b.tmp.path().join("agent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    b.spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "berth-test",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // The agent: takes the state and the fd, checks it is a seccomp listener, then closes it, after
    // which the kernel answers the notified syscalls with ENOSYS.
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 65536];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let r = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in r.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(f) = c {
                fds.extend(f);
            }
        }
        let n = r.bytes;
        let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fds[0])).unwrap();
        let _ = nix::unistd::close(fds[0]);
        (state, link)
    });
    let out = ok(&b.run("notify1"));
    let (state, link) = agent.join().unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "berth-test");
    assert_eq!(state["state"]["id"], "notify1");
    assert!(state["pid"].as_i64().unwrap() > 0);
    assert!(link.to_string_lossy().contains("seccomp"), "{link:?}");
    assert!(
        out.contains("mkdir=1") && out.contains("not implemented"),
        "{out}"
    );
    // Without listenerPath a notify profile is refused, naming the field.
    b.spec["linux"]["seccomp"]
        .as_object_mut()
        .unwrap()
        .remove("listenerPath");
    assert!(fails(&b.run("notify2")).contains("listenerPath"));
}
