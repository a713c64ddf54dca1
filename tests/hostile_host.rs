#![allow(clippy::cast_possible_truncation)] // test fixtures: pids from JSON, small ELF headers
//! Hostile tests of what reaches the host through exec, device rules and the files berth writes for
//! its caller (issue 24): `#!` lines and ELF interpreters read as the kernel reads them, berth's
//! binary never the executable of a container process (its sealed copy), exec bounded as the init,
//! linux.devices granting nothing the device rules deny, and planted symlinks at the pid file, the
//! log and the console socket. Every target is a decoy the test made.

use kit::*;
use serde_json::json;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn executable(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A minimal little-endian ELF of class 64 or 32 with `phnum` program headers, all PT_NULL but the
/// one at `at`, a PT_INTERP whose bytes are `interp`.
fn elf(class64: bool, phnum: u16, at: u16, interp: &[u8]) -> Vec<u8> {
    let (ehsize, phentsize) = if class64 {
        (64usize, 56usize)
    } else {
        (52, 32)
    };
    let phoff = ehsize;
    let data_off = phoff + phentsize * usize::from(phnum);
    let mut b = vec![0u8; data_off];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = if class64 { 2 } else { 1 };
    b[5] = 1; // little-endian
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    let machine: u16 = if class64 { 62 } else { 3 };
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    if class64 {
        b[0x20..0x28].copy_from_slice(&(phoff as u64).to_le_bytes());
        b[0x34..0x36].copy_from_slice(&(ehsize as u16).to_le_bytes());
        b[0x36..0x38].copy_from_slice(&(phentsize as u16).to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
    } else {
        b[0x1c..0x20].copy_from_slice(&(phoff as u32).to_le_bytes());
        b[0x28..0x2a].copy_from_slice(&(ehsize as u16).to_le_bytes());
        b[0x2a..0x2c].copy_from_slice(&(phentsize as u16).to_le_bytes());
        b[0x2c..0x2e].copy_from_slice(&phnum.to_le_bytes());
    }
    let ph = phoff + phentsize * usize::from(at);
    b[ph..ph + 4].copy_from_slice(&3u32.to_le_bytes()); // PT_INTERP
    if class64 {
        b[ph + 8..ph + 16].copy_from_slice(&(data_off as u64).to_le_bytes());
        b[ph + 32..ph + 40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
    } else {
        b[ph + 4..ph + 8].copy_from_slice(&(data_off as u32).to_le_bytes());
        b[ph + 16..ph + 20].copy_from_slice(&(interp.len() as u32).to_le_bytes());
    }
    b.extend_from_slice(interp);
    b
}

#[test]
fn shebangs_and_elf_interpreters_are_read_as_the_kernel_reads_them() {
    let mut b = Bundle::new("true");
    // Landlock off: the check and the sealed copy must hold on their own.
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    let bin = b.rootfs.join("bin");
    std::fs::create_dir_all(b.rootfs.join("x\x0b")).unwrap();
    std::fs::create_dir_all(b.rootfs.join(std::ffi::OsStr::from_bytes(b"\xff"))).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("nul", b"#!/proc/self/exe\0junk\n".to_vec(), "magic link"),
        (
            "vtab",
            b"#!/x\x0b/../proc/self/exe\n".to_vec(),
            "magic link",
        ),
        ("utf8", b"#!/\xff/../proc/self/exe\n".to_vec(), "magic link"),
        (
            "notrail",
            {
                let mut v = b"#!/proc/self/exe ".to_vec();
                v.extend(std::iter::repeat_n(b'a', 300));
                v
            },
            "magic link",
        ),
        (
            "phdr70",
            elf(true, 71, 70, b"/proc/self/exe\0"),
            "magic link",
        ),
        ("elf32", elf(false, 4, 2, b"/proc/self/exe\0"), "magic link"),
        (
            "trailing",
            elf(true, 3, 1, b"/proc/self/exe\0more\0"),
            "magic link",
        ),
        // An open error other than ENOENT refuses (here ENAMETOOLONG), never passes as "fine".
        (
            "toolong",
            {
                let mut name = b"/".to_vec();
                name.extend(std::iter::repeat_n(b'a', 300));
                name.push(0);
                elf(true, 2, 1, &name)
            },
            "cannot be opened to be checked",
        ),
    ];
    for (i, (name, bytes, why)) in cases.iter().enumerate() {
        executable(&bin.join(format!("evil-{name}")), bytes);
        b.spec["process"]["args"] = json!([format!("/bin/evil-{name}")]);
        let e = fails(&b.run(&format!("k{i}")));
        assert!(
            e.contains("CVE-2019-5736") && e.contains(why),
            "{name}: {e}"
        );
    }
    // The same through exec into a running container.
    b.spec["process"]["args"] = json!(["sleep", "100"]);
    ok(&b.create("kx"));
    ok(&b.berth(&["start", "kx"]));
    for (name, _, why) in &cases {
        let e = fails(&b.berth(&["exec", "kx", &format!("/bin/evil-{name}")]));
        assert!(
            e.contains("CVE-2019-5736") && e.contains(why),
            "exec {name}: {e}"
        );
    }
    // A FIFO as the program or as an interpreter never hangs the check (execve refuses it).
    nix::unistd::mkfifo(
        &bin.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o755),
    )
    .unwrap();
    executable(&bin.join("via-fifo"), b"#!/bin/fifo\n");
    for prog in ["/bin/fifo", "/bin/via-fifo"] {
        let start = std::time::Instant::now();
        let e = fails(&b.berth(&["exec", "kx", prog]));
        assert!(!e.contains("CVE-2019-5736"), "{prog}: {e}");
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "{prog} hung"
        );
    }
    // A script missing its interpreter is execve's own ENOENT, not a refusal.
    executable(&bin.join("gone"), b"#!/no/such/interp\n");
    let e = fails(&b.berth(&["exec", "kx", "/bin/gone"]));
    assert!(!e.contains("CVE-2019-5736"), "{e}");
    ok(&b.berth(&["delete", "-f", "kx"]));
}

#[test]
fn no_container_process_ever_has_the_host_binary_as_its_executable() {
    // runc CVE-2019-5736, with Landlock off and a private copy of berth as the target: a process in
    // the container with CAP_SYS_PTRACE opens /proc/PID/exe of every process it sees that is not
    // busybox (an exec'd process before its own execve), waits until berth has exited, and appends
    // to the file through that fd, while the host runs `exec` again and again. The copy must stay
    // unchanged: the exec'd process runs from berth's sealed copy, which cannot be written.
    let mut b = Bundle::new("true");
    let bin = b.tmp.path().join("berth-private");
    std::fs::copy(BERTH, &bin).unwrap();
    let original = std::fs::read(&bin).unwrap();
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    let caps = json!(["CAP_SYS_PTRACE", "CAP_KILL"]);
    for set in ["bounding", "effective", "permitted"] {
        b.spec["process"]["capabilities"][set] = caps.clone();
    }
    let out = b.host_path("out");
    b.add_mount(
        json!({"destination": "/out", "type": "bind", "source": out, "options": ["rbind", "rw"]}),
    );
    b.spec["process"]["args"] = json!([
        "sh",
        "-c",
        "while :; do for d in /proc/[0-9]*; do \
        l=$(readlink $d/exe 2>/dev/null) || continue; [ \"$l\" = /bin/busybox ] && continue; \
        echo \"$l\" >> /out/seen; \
        (exec 3<$d/exe && sleep 0.3 && echo pwned >> /proc/self/fd/3 && echo WROTE >> /out/seen) & \
        done; done"
    ]);
    b.write();
    let berth = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.arg("--root").arg(&b.state).args(args).current_dir(&b.dir);
        output(&mut c, b.tmp.path())
    };
    ok(&berth(&["create", "seal"]));
    ok(&berth(&["start", "seal"]));
    let seen = || std::fs::read_to_string(out.join("seen")).unwrap_or_default();
    let mut n = 0;
    while n < 300 && seen().is_empty() {
        ok(&berth(&["exec", "seal", "true"]));
        n += 1;
    }
    // A few more, then time for the writers that opened one.
    for _ in 0..5 {
        ok(&berth(&["exec", "seal", "true"]));
    }
    std::thread::sleep(std::time::Duration::from_millis(800));
    ok(&berth(&["delete", "-f", "seal"]));
    let seen = seen();
    assert!(
        std::fs::read(&bin).unwrap() == original && !seen.contains("WROTE"),
        "a container process wrote berth's binary: {seen}"
    );
    assert!(
        !seen.is_empty(),
        "the watcher never saw an exec'd process before its execve ({n} execs)"
    );
    assert!(!seen.lines().any(|l| Path::new(l) == bin), "{seen}");
    // On the host: a foreground `run` waits from the sealed copy too.
    b.spec["process"]["args"] = json!(["sleep", "2"]);
    b.write();
    let mut c = Command::new(&bin);
    c.arg("--root")
        .arg(&b.state)
        .args(["run", "seal2"])
        .current_dir(&b.dir);
    let mut child = c.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap();
    child.wait().unwrap();
    assert_ne!(exe, bin);
}

/// The capability masks of a process, from its status text.
fn cap(status: &str, name: &str) -> u64 {
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .unwrap()
        .trim();
    u64::from_str_radix(v, 16).unwrap()
}

#[test]
fn exec_is_bounded_as_the_init_is() {
    const SYS_ADMIN: u64 = 1 << 21;
    let mut b = Bundle::new("sleep 100");
    b.spec["process"]["noNewPrivileges"] = json!(true);
    ok(&b.create("bnd"));
    ok(&b.berth(&["start", "bnd"]));
    // Without a policy: --cap beyond the bounding set is not granted, and never inheritable.
    let st = ok(&b.berth(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "--cap",
        "CAP_KILL",
        "bnd",
        "cat",
        "/proc/self/status",
    ]));
    assert_eq!(cap(&st, "CapEff:") & SYS_ADMIN, 0, "{st}");
    assert_eq!(cap(&st, "CapBnd:") & SYS_ADMIN, 0, "{st}");
    assert_eq!(cap(&st, "CapInh:"), 0, "{st}");
    assert_ne!(
        cap(&st, "CapEff:") & (1 << 5),
        0,
        "CAP_KILL is in the bounding set: {st}"
    );
    // A --process asking for no_new_privs off still gets it, as the init has it.
    let mut p = b.spec["process"].clone();
    p["noNewPrivileges"] = json!(false);
    p["args"] = json!(["cat", "/proc/self/status"]);
    p["capabilities"]["effective"] = json!(["CAP_SYS_ADMIN"]);
    p["capabilities"]["permitted"] = json!(["CAP_SYS_ADMIN"]);
    let pf = b.tmp.path().join("process.json");
    std::fs::write(&pf, p.to_string()).unwrap();
    let st = ok(&b.berth(&["exec", "--process", pf.to_str().unwrap(), "bnd"]));
    assert!(st.contains("NoNewPrivs:\t1"), "{st}");
    assert_eq!(cap(&st, "CapEff:") & SYS_ADMIN, 0, "{st}");
    // Under a policy whose cap lacks CAP_SYS_ADMIN: refused, naming the set.
    let policy = b.tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"roots": [{"path": b.host_path("vol"), "access": "ro"}],
               "rootfs": [{"path": b.dir, "access": "rw"}]})
        .to_string(),
    )
    .unwrap();
    let e = fails(&b.berth(&[
        "--policy",
        policy.to_str().unwrap(),
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        "bnd",
        "true",
    ]));
    assert!(
        e.contains("exec.capabilities.bounding") && e.contains("CAP_SYS_ADMIN"),
        "{e}"
    );
    ok(&b.berth(&["delete", "-f", "bnd"]));
}

/// A loop device over a decoy file of the test's own; detached on drop.
struct Decoy {
    dev: String,
    minor: u32,
}

impl Decoy {
    fn new(dir: &Path) -> Option<Decoy> {
        let file = dir.join("decoy.img");
        let mut data = b"DECOY".to_vec();
        data.resize(1 << 20, 0);
        std::fs::write(&file, data).unwrap();
        let out = Command::new(tool("losetup")?)
            .args(["-f", "--show"])
            .arg(&file)
            .output()
            .expect("run losetup");
        if !out.status.success() {
            skipped(&format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let minor = nix::sys::stat::minor(std::fs::metadata(&dev).unwrap().rdev()) as u32;
        Some(Decoy { dev, minor })
    }
}

impl Drop for Decoy {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.dev]).output();
    }
}

/// The container could not read the decoy device: EPERM from the device cgroup.
#[track_caller]
fn device_refused(out: &std::process::Output) {
    assert!(
        !out.status.success() && !stdout(out).contains("DECOY"),
        "{}",
        stdout(out)
    );
    assert!(
        stderr(out).contains("Operation not permitted"),
        "{}",
        stderr(out)
    );
}

#[test]
fn linux_devices_get_only_what_the_device_rules_allow() {
    let mut b = Bundle::new("head -c 5 /dev/decoy");
    let Some(decoy) = Decoy::new(b.tmp.path()) else {
        return;
    };
    b.spec["linux"]["devices"] = json!([{"path": "/dev/decoy", "type": "b", "major": 7,
        "minor": decoy.minor, "fileMode": 0o666, "uid": 0, "gid": 0}]);
    // runc's default template: deny everything. The node exists; opening it is refused.
    b.spec["linux"]["resources"] = json!({"devices": [{"allow": false, "access": "rwm"}]});
    let out = b.run("dev1");
    device_refused(&out);
    // With the orchestrator's allow rule, as Podman and containerd add: it reads.
    b.spec["linux"]["resources"]["devices"]
        .as_array_mut()
        .unwrap()
        .push(json!({"allow": true, "type": "b", "major": 7, "minor": decoy.minor, "access": "r"}));
    assert_eq!(ok(&b.run("dev2")), "DECOY");
}

#[test]
fn front_end_containers_get_the_default_device_rules() {
    let b = Bundle::new("true");
    let Some(decoy) = Decoy::new(b.tmp.path()) else {
        return;
    };
    let script = format!("mknod /dev/d b 7 {} && head -c 5 /dev/d", decoy.minor);
    let rootfs = b.rootfs.display().to_string();
    let out = b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "--cap-add",
        "MKNOD",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    device_refused(&out);
    // The standard devices still work.
    let out = b.berth(&[
        "run",
        "--rootfs",
        &rootfs,
        "--",
        "sh",
        "-c",
        "echo x > /dev/null && head -c 1 /dev/zero | wc -c",
    ]);
    assert_eq!(ok(&out).trim(), "1");
}

#[test]
fn planted_symlinks_at_the_files_berth_writes_are_never_followed() {
    let mut b = Bundle::new("sleep 100");
    let decoy = b.tmp.path().join("decoy");
    std::fs::write(&decoy, "decoy\n").unwrap();
    let dir = b.host_path("out");
    let link = |name: &str| {
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        std::os::unix::fs::symlink(&decoy, &p).unwrap();
        p
    };
    let unchanged = || assert_eq!(std::fs::read(&decoy).unwrap(), b"decoy\n");
    let pid_file = |p: &Path| {
        let meta = std::fs::symlink_metadata(p).unwrap();
        assert!(meta.file_type().is_file(), "{p:?} is not a file of its own");
        std::fs::read_to_string(p).unwrap().parse::<i32>().unwrap()
    };
    // --pid-file of create: a symlink at the temporary name, then at the final name.
    link("pid.berth-tmp");
    let pid = dir.join("pid");
    ok(&b.berth(&["create", "--pid-file", pid.to_str().unwrap(), "sy"]));
    unchanged();
    assert!(pid_file(&pid) > 0);
    ok(&b.berth(&["delete", "-f", "sy"]));
    link("pid");
    ok(&b.berth(&["create", "--pid-file", pid.to_str().unwrap(), "sy"]));
    unchanged();
    assert!(pid_file(&pid) > 0);
    ok(&b.berth(&["start", "sy"]));
    // exec -d --pid-file, both names.
    let epid = dir.join("epid");
    link("epid");
    link("epid.berth-tmp");
    ok(&b.berth(&[
        "exec",
        "-d",
        "--pid-file",
        epid.to_str().unwrap(),
        "sy",
        "sleep",
        "5",
    ]));
    unchanged();
    assert!(pid_file(&epid) > 0);
    // --log through a symlink to a file: refused, nothing appended.
    let log = link("log");
    let e = fails(&b.berth(&["--log", log.to_str().unwrap(), "state", "sy"]));
    assert!(e.contains("symlink"), "{e}");
    unchanged();
    // A console socket behind a symlink: refused before anything exists.
    let sock_path = dir.join("real.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let sock_link = dir.join("console.sock");
    std::os::unix::fs::symlink(&sock_path, &sock_link).unwrap();
    b.spec["process"]["terminal"] = json!(true);
    let o = b.berth(&[
        "create",
        "--console-socket",
        sock_link.to_str().unwrap(),
        "sy2",
    ]);
    b.refused(&o, "sy2", "not a socket");
    ok(&b.berth(&["delete", "-f", "sy"]));
}

#[test]
fn a_state_root_someone_else_can_write_is_refused() {
    let b = Bundle::new("true");
    let root = b.tmp.path().join("shared-root");
    std::fs::create_dir(&root).unwrap();
    // Root's own state root, writable by others (a planted /tmp directory): refused.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = fails(
        &Command::new(BERTH)
            .args(["--root", root.to_str().unwrap(), "list"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("state root") && e.contains("777"), "{e}");
    // Owned by another user.
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
    let e = fails(
        &Command::new(BERTH)
            .args(["--root", root.to_str().unwrap(), "list"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("owned by uid 65534"), "{e}");
    // A symlink to a directory of root's.
    let link = b.tmp.path().join("link-root");
    std::os::unix::fs::symlink(&b.state, &link).unwrap();
    std::fs::create_dir_all(&b.state).unwrap();
    let e = fails(
        &Command::new(BERTH)
            .args(["--root", link.to_str().unwrap(), "list"])
            .output()
            .unwrap(),
    );
    assert!(e.contains("not a directory"), "{e}");
}

#[test]
fn a_forged_sealed_marker_is_refused_not_trusted() {
    // The marker the re-executed berth reads, forged by a caller: an fd of the binary itself on a
    // writable mount, or a number that is no fd. berth must never take that for its sealed copy and
    // go on unsealed: it refuses.
    let b = Bundle::new("true");
    b.write();
    let st = std::fs::metadata(BERTH).unwrap();
    for fd in ["3", "77"] {
        let marker = format!("{}:{}:{fd}", st.dev(), st.ino());
        let script = format!(
            "exec 3<{} {} --root {} run --bundle {} forged",
            BERTH,
            BERTH,
            b.state.display(),
            b.dir.display()
        );
        let o = output(
            Command::new("sh")
                .args(["-c", &script])
                .env("_BERTH_SEALED_FROM", &marker),
            b.tmp.path(),
        );
        let e = fails(&o);
        assert!(
            e.contains("does not run from its sealed copy"),
            "fd {fd}: {e}"
        );
    }
    assert!(!b.state.join("forged").exists());
}

#[test]
fn a_verb_the_early_scan_cannot_read_still_runs_from_the_sealed_copy() {
    // berth re-executes from its sealed copy before parsing when it reads an entering verb in the
    // raw arguments, and again after parsing otherwise. A state root given as `--root=` with a byte
    // that is not UTF-8 stops the early reading (it answers "no"), so only the parsed verb stands
    // between `run` and running from the host binary: the waiting berth must still be the copy.
    let b = Bundle::new("sleep 2");
    b.write();
    let bin = b.tmp.path().join("berth-private");
    std::fs::copy(BERTH, &bin).unwrap();
    let mut root = b.tmp.path().join("state").into_os_string();
    root.push(std::ffi::OsStr::from_bytes(b"-\xff"));
    let mut opt = std::ffi::OsString::from("--root=");
    opt.push(&root);
    // Killed and reaped by the guard should an assertion fail before it ends.
    let mut child = Sleeper(
        Command::new(&bin)
            .arg(&opt)
            .args(["run", "scan"])
            .current_dir(&b.dir)
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let exe = std::fs::read_link(format!("/proc/{}/exe", child.pid())).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "run failed: {status:?}");
    assert_ne!(exe, bin, "the waiting berth runs from the host binary");
    assert!(std::fs::read_dir(&root).unwrap().next().is_none());
}
