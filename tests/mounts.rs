//! Mounts that cannot be tricked: ro/rro/rw volumes checked from inside and on the host, locked flags
//! in a user namespace, hostile images (symlinks and `..` out of the rootfs, dangling symlinks, loops,
//! symlinked /dev, /proc and /dev/null, FIFOs and sockets at destinations, destinations in procfs),
//! a RENAME_EXCHANGE race, and 10,000 mounts under RLIMIT_NOFILE 1024.
//! Host-side submounts are made only inside `unshare -m` shells, never in the test's own namespace.

use kit::*;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::Path;

fn bind(src: &Path, dest: &str, opts: &[&str]) -> serde_json::Value {
    json!({"destination": dest, "type": "bind", "source": src, "options": opts})
}

#[test]
fn ro_and_rw_volumes() {
    let mut b = Bundle::new(
        "cat /ro/f; echo no > /ro/f 2>/dev/null || echo ro-refused; echo from-container > /rw/g",
    );
    let ro = b.host_path("ro");
    let rw = b.host_path("rw");
    std::fs::write(ro.join("f"), "host-data\n").unwrap();
    b.add_mount(bind(&ro, "/ro", &["rbind", "ro"]));
    b.add_mount(bind(&rw, "/rw", &["rbind", "rw"]));
    let out = ok(&b.run("v1"));
    assert_eq!(out, "host-data\nro-refused\n");
    assert_eq!(
        std::fs::read_to_string(ro.join("f")).unwrap(),
        "host-data\n"
    );
    assert_eq!(
        std::fs::read_to_string(rw.join("g")).unwrap(),
        "from-container\n"
    );
}

#[test]
fn ro_is_top_only_on_rbind_and_rro_is_recursive() {
    let script = "touch /v/top 2>/dev/null && echo top-rw || echo top-ro; touch /v/sub/x 2>/dev/null && echo sub-rw || echo sub-ro";
    for (opt, want) in [("ro", "top-ro\nsub-rw\n"), ("rro", "top-ro\nsub-ro\n")] {
        let mut b = Bundle::new(script);
        // The kernel's semantics alone: Landlock would make the whole ro volume read-only (see
        // tests/confinement.rs).
        b.spec["annotations"] = json!({"berth.landlock": "off"});
        let v = b.host_path("v");
        std::fs::create_dir_all(v.join("sub")).unwrap();
        b.add_mount(bind(&v, "/v", &["rbind", opt]));
        let out = run_in_private_ns(
            &b,
            "r1",
            &format!("mount -t tmpfs -o size=1m sub {}", v.join("sub").display()),
        );
        assert_eq!(ok(&out), want, "option {opt}");
    }
}

#[test]
fn read_only_bind_keeps_locked_flags_in_a_user_namespace() {
    let mut b = Bundle::new(
        "grep ' /v ' /proc/self/mountinfo; touch /v/x 2>/dev/null && echo rw || echo ro",
    );
    b.spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    b.spec["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 0, "size": 65536}]);
    let v = b.host_path("v");
    b.add_mount(bind(&v, "/v", &["rbind", "ro"]));
    // The source is nosuid,nodev,noexec: in the container's user namespace those flags are locked, and a
    // read-only remount that drops them (runc's old MS_REMOUNT|MS_BIND|MS_RDONLY) fails with EPERM.
    let out = run_in_private_ns(
        &b,
        "l1",
        &format!(
            "mount -t tmpfs -o nosuid,nodev,noexec,size=1m v {}",
            v.display()
        ),
    );
    let text = ok(&out);
    let opts = text
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(5)
        .unwrap()
        .to_string();
    for flag in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            opts.split(',').any(|o| o == flag),
            "{flag} missing in {opts}"
        );
    }
    assert!(text.ends_with("ro\n"), "{text}");
}

#[test]
fn absolute_symlink_out_of_the_rootfs_stays_inside() {
    let mut b = Bundle::new("grep -c ' - tmpfs evil ' /proc/self/mountinfo");
    let outside = b.host_path("outside");
    symlink(&outside, b.rootfs.join("evil")).unwrap();
    b.add_mount(json!({"destination": "/evil/x", "type": "tmpfs", "source": "evil"}));
    assert_eq!(ok(&b.run("s1")).trim(), "1");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "berth created something outside the rootfs"
    );
    let inside = b.rootfs.join(outside.strip_prefix("/").unwrap()).join("x");
    assert!(
        inside.is_dir(),
        "the destination must be created inside the rootfs"
    );
}

#[test]
fn relative_symlink_and_dotdot_clamp_at_the_root() {
    let mut b = Bundle::new("true");
    symlink("../../../../../../../..", b.rootfs.join("etc/up")).unwrap();
    b.add_mount(json!({"destination": "/etc/up/escape-rel", "type": "tmpfs", "source": "t"}));
    b.add_mount(json!({"destination": "/../../../escape-dots", "type": "tmpfs", "source": "t"}));
    ok(&b.run("s2"));
    for name in ["escape-rel", "escape-dots"] {
        assert!(
            b.rootfs.join(name).is_dir(),
            "{name} not created at the rootfs's top"
        );
        assert!(!b.tmp.path().join(name).exists() && !b.dir.join(name).exists());
        assert!(!Path::new("/").join(name).exists());
    }
}

#[test]
fn dangling_symlink_destination_is_created_inside() {
    let mut b = Bundle::new("cat /etc/localtime");
    symlink("/usr/share/zoneinfo/Mars", b.rootfs.join("etc/localtime")).unwrap();
    let zone = b.tmp.path().join("zone");
    std::fs::write(&zone, "TZ-DATA\n").unwrap();
    b.add_mount(bind(&zone, "/etc/localtime", &["bind", "ro"]));
    assert_eq!(ok(&b.run("s3")), "TZ-DATA\n");
    assert!(b.rootfs.join("usr/share/zoneinfo/Mars").is_file());
    assert!(!Path::new("/usr/share/zoneinfo/Mars").exists());
}

#[test]
fn symlink_loop_is_a_clear_error() {
    let mut b = Bundle::new("true");
    symlink("b", b.rootfs.join("a")).unwrap();
    symlink("a", b.rootfs.join("b")).unwrap();
    b.add_mount(json!({"destination": "/a/x", "type": "tmpfs", "source": "t"}));
    let e = b.refused(&b.run("s4"), "s4", "mounts[7] (/a/x)");
    assert!(e.contains("ELOOP"), "{e}");
}

#[test]
fn symlinked_dev_in_the_image_does_not_redirect_device_creation() {
    let b = Bundle::new("ls -l /dev/null; echo x > /dev/null && echo ok");
    let outside = b.host_path("hostdev");
    std::fs::remove_dir(b.rootfs.join("dev")).unwrap();
    symlink(&outside, b.rootfs.join("dev")).unwrap();
    let out = ok(&b.run("s5"));
    assert!(out.contains("1,   3") && out.ends_with("ok\n"), "{out}");
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "device nodes were created on the host"
    );
}

#[test]
fn symlinked_proc_is_refused() {
    let b = Bundle::new("true");
    std::fs::remove_dir(b.rootfs.join("proc")).unwrap();
    symlink("/etc", b.rootfs.join("proc")).unwrap();
    let e = fails(&b.run("s6"));
    assert!(
        e.contains("mounts[0] (/proc)") && e.contains("real directory"),
        "{e}"
    );
}

#[test]
fn masked_file_uses_berths_own_dev_null() {
    // No tmpfs on /dev: the image's /dev/null is a symlink to a host file. Masking must not use it.
    let mut b = Bundle::new("wc -c < /etc/secret; ls -l /etc/secret");
    let host_file = b.tmp.path().join("host-file");
    std::fs::write(&host_file, "must not be mounted anywhere\n").unwrap();
    symlink(&host_file, b.rootfs.join("dev/null")).unwrap();
    std::fs::write(b.rootfs.join("etc/secret"), "secret\n").unwrap();
    b.spec["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| !m["destination"].as_str().unwrap().starts_with("/dev"));
    b.spec["linux"]["maskedPaths"] = json!(["/etc/secret"]);
    let out = ok(&b.run("s7"));
    assert!(out.starts_with("0\n") && out.contains("1,   3"), "{out}");
}

#[test]
fn fifo_and_socket_destinations_are_refused() {
    let mut b = Bundle::new("true");
    nix::unistd::mkfifo(
        &b.rootfs.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let f = b.tmp.path().join("file");
    std::fs::write(&f, "x").unwrap();
    b.add_mount(bind(&f, "/fifo", &["bind"]));
    let e = fails(&b.run("s8"));
    assert!(e.contains("(/fifo)") && e.contains("FIFO"), "{e}");
    let mut b = Bundle::new("true");
    let _l = std::os::unix::net::UnixListener::bind(b.rootfs.join("sock")).unwrap();
    b.add_mount(bind(&f, "/sock", &["bind"]));
    let e = fails(&b.run("s9"));
    assert!(e.contains("(/sock)") && e.contains("socket"), "{e}");
}

#[test]
fn destinations_in_procfs_are_refused_except_the_allow_list() {
    let f = |b: &Bundle| {
        let f = b.tmp.path().join("file");
        std::fs::write(&f, "fake 1.0\n").unwrap();
        f
    };
    let mut b = Bundle::new("true");
    let src = f(&b);
    b.add_mount(bind(&src, "/proc/sys/kernel/core_pattern", &["bind"]));
    let e = fails(&b.run("p1"));
    assert!(e.contains("procfs"), "{e}");
    // Through a symlink in the image: refused as well.
    let mut b = Bundle::new("true");
    let src = f(&b);
    symlink("/proc/sys/kernel", b.rootfs.join("data")).unwrap();
    b.add_mount(bind(&src, "/data/core_pattern", &["bind"]));
    let e = fails(&b.run("p2"));
    assert!(e.contains("procfs"), "{e}");
    // sysfs too, except the cgroup mount point.
    let mut b = Bundle::new("true");
    let src = f(&b);
    b.add_mount(bind(&src, "/sys/kernel/rcu_expedited", &["bind"]));
    let e = fails(&b.run("p4"));
    assert!(e.contains("sysfs") && e.contains("mounts[7]"), "{e}");
    // lxcfs-style /proc/uptime is allowed.
    let mut b = Bundle::new("cat /proc/uptime");
    let src = f(&b);
    b.add_mount(bind(&src, "/proc/uptime", &["bind", "ro"]));
    assert_eq!(ok(&b.run("p3")), "fake 1.0\n");
}

#[test]
fn overlay_mount() {
    let mut b = Bundle::new("cat /o/low; echo new > /o/up; cat /o/up");
    let low = b.host_path("low");
    let up = b.host_path("up");
    let work = b.host_path("work");
    std::fs::write(low.join("low"), "lower\n").unwrap();
    b.add_mount(json!({"destination": "/o", "type": "overlay", "source": "overlay",
        "options": [format!("lowerdir={}", low.display()), format!("upperdir={}", up.display()), format!("workdir={}", work.display())]}));
    assert_eq!(ok(&b.run("o1")), "lower\nnew\n");
    assert_eq!(std::fs::read_to_string(up.join("up")).unwrap(), "new\n");
}

#[test]
fn unknown_option_names_index_destination_and_option() {
    // On a bind mount a filesystem option means nothing and is ignored (as runc and crun); a new
    // filesystem that does not know it refuses it, and the error names the mount.
    let mut b = Bundle::new("true");
    b.add_mount(
        json!({"destination": "/v", "type": "tmpfs", "source": "tmpfs", "options": ["sillyopt"]}),
    );
    let e = fails(&b.run("u1"));
    assert!(
        e.contains("mounts[7] (/v)") && e.contains("sillyopt"),
        "{e}"
    );
}

#[test]
fn ten_thousand_mounts_under_rlimit_nofile_1024() {
    let mut b = Bundle::new("grep -c ' /m/' /proc/self/mountinfo; ulimit -n");
    let src = b.host_path("src");
    for i in 0..10_000 {
        let opt = if i % 2 == 0 { "ro" } else { "rw" };
        b.add_mount(bind(&src, &format!("/m/{i}"), &["rbind", opt]));
    }
    let out = ok(&b.run("big"));
    assert_eq!(out, "10000\n1024\n");
}

#[test]
fn rename_exchange_race_never_escapes_the_rootfs() {
    let mut b = Bundle::new("true");
    let outside = b.host_path("race-target");
    let race = b.rootfs.join("race");
    std::fs::create_dir_all(race.join("dir")).unwrap();
    // `link` points at a host path by absolute name: a runtime that resolves the string follows it out.
    symlink(&outside, race.join("link")).unwrap();
    b.add_mount(json!({"destination": "/race/dir/sub", "type": "tmpfs", "source": "race"}));
    b.write();
    race_runs(&mut b, &race, 300, "mounts[7]", |_, _| {});
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was created outside the rootfs"
    );
    // The race was real: some runs went through the symlink, which resolved inside the rootfs.
    let through_link = b
        .rootfs
        .join(outside.strip_prefix("/").unwrap())
        .join("sub");
    assert!(
        through_link.is_dir(),
        "no run resolved through the symlink; the race was not exercised"
    );
}

#[test]
fn rename_exchange_race_on_volume_destinations_never_escapes_the_rootfs() {
    // Bind volumes side by side (their parent directory is kept open across them) whose parent is
    // swapped with a symlink to a host path while berth creates their destinations.
    let mut b = Bundle::new("true");
    let outside = b.host_path("race-target");
    let src = b.host_path("vol-src");
    let race = b.rootfs.join("race");
    std::fs::create_dir_all(race.join("dir")).unwrap();
    symlink(&outside, race.join("link")).unwrap();
    let base = b.spec["mounts"].as_array().unwrap().len();
    // Fresh names at every run, so every run creates its destinations.
    race_runs(&mut b, &race, 150, "mounts[", |b, i| {
        b.spec["mounts"].as_array_mut().unwrap().truncate(base);
        for j in 0..20 {
            b.add_mount(bind(&src, &format!("/race/dir/v{i}-{j}"), &["rbind", "rw"]));
        }
    });
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was created outside the rootfs"
    );
    assert_eq!(
        std::fs::read_dir(&src).unwrap().count(),
        0,
        "something was created in the volume's source"
    );
    // The race was real: some destinations were created through the symlink (inside the rootfs).
    let through_link = b.rootfs.join(outside.strip_prefix("/").unwrap());
    assert!(
        through_link.is_dir() && std::fs::read_dir(&through_link).unwrap().count() > 0,
        "no run resolved through the symlink; the race was not exercised"
    );
}

/// Runs the bundle `runs` times (after `prepare`) while a thread swaps `race/dir` with `race/link`;
/// each run succeeds or fails naming `expected` (or the race directory); both happen, and the
/// swapper really ran.
fn race_runs(
    b: &mut Bundle,
    race: &Path,
    runs: usize,
    expected: &str,
    mut prepare: impl FnMut(&mut Bundle, usize),
) {
    let swapper = Swapper::start(
        race.join("dir"),
        race.join("link"),
        berth::sys::rename_exchange,
    );
    let (mut ok_runs, mut failed_runs) = (0, 0);
    for i in 0..runs {
        prepare(b, i);
        let o = b.run(&format!("race{i}"));
        if o.status.success() {
            ok_runs += 1;
        } else {
            failed_runs += 1;
            let e = stderr(&o);
            assert!(
                e.contains(expected) || e.contains("race"),
                "unexpected failure: {e}"
            );
        }
    }
    let swaps = swapper.stop();
    assert!(swaps > 1000, "the swapper barely ran ({swaps} swaps)");
    assert!(ok_runs > 0, "no run succeeded ({failed_runs} failed)");
}

/// Runs `berth run` in a private mount namespace of the test's own where `vol` is a tmpfs made
/// shared (as a kubelet's pod volume directory is), then prints the mounts under `vol` that the
/// namespace sees afterwards: what the container's mounts propagated back to "the host".
fn run_with_shared_volume(b: &Bundle, id: &str, vol: &Path) -> (std::process::Output, String) {
    b.write();
    let v = vol.display();
    let script = format!(
        "set -e; mount -t tmpfs hostvol {v}; mkdir {v}/sub; mount --make-shared {v}; \
         {BERTH} --root {} run --bundle {} {id} > {v}.out 2>&1 || echo exit=$? >> {v}.out; \
         grep -c ' {v}/sub ' /proc/self/mountinfo || true",
        b.state.display(),
        b.dir.display()
    );
    let o = sh_in_private_mount_ns(&script, b.tmp.path());
    let inside = std::fs::read_to_string(format!("{v}.out")).unwrap_or_default();
    (o, inside)
}

/// Kubernetes' `mountPropagation: Bidirectional` reaches berth as an `rshared` bind with
/// `rootfsPropagation: rshared`: the volume is a peer of its source, so a mount the container makes
/// inside it appears on the host (as with runc). Without `rshared`, or in a user namespace, nothing
/// flows back.
#[test]
fn bidirectional_volumes_propagate_back_and_others_do_not() {
    let script = "mount -t tmpfs inner /v/sub && echo mounted; grep ' /v ' /proc/self/mountinfo; \
                  cut -d' ' -f5 /proc/self/mountinfo | grep -n -x -e /sys -e /v";
    for (case, opts, userns, back) in [
        (
            "bidirectional",
            &["rbind", "rw", "rshared"][..],
            false,
            true,
        ),
        ("default", &["rbind", "rw"][..], false, false),
        ("userns", &["rbind", "rw", "rshared"][..], true, false),
    ] {
        let mut b = Bundle::new(script);
        let vol = b.host_path("vol");
        b.add_mount(bind(&vol, "/v", opts));
        b.spec["linux"]["rootfsPropagation"] = json!("rshared");
        for set in ["bounding", "effective", "permitted"] {
            b.spec["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        if userns {
            b.in_userns();
            std::os::unix::fs::chown(&b.rootfs, Some(100000), Some(100000)).unwrap();
        }
        let (o, inside) = run_with_shared_volume(&b, case, &vol);
        assert!(inside.starts_with("mounted\n"), "{case}: {inside}");
        let seen_on_host = stdout(&o).trim() == "1";
        assert_eq!(
            seen_on_host,
            back,
            "{case}: inside: {inside}host: {}{}",
            stdout(&o),
            stderr(&o)
        );
        if back {
            // A peer of the host's mount (its peer group), not a new group that is its slave.
            assert!(!inside.contains("master:"), "{case}: {inside}");
        }
        if userns {
            // (The parent hands a user-namespaced container its binds as trees made at sync
            // point 1, listed before the rootfs in mountinfo: not this test's subject.)
            continue;
        }
        // In mountinfo in the spec's order (after /sys), though cloned before anything else.
        let line_of = |p: &str| {
            inside.lines().find_map(|l| {
                l.strip_suffix(&format!(":{p}"))
                    .and_then(|n| n.parse::<u32>().ok())
            })
        };
        assert!(
            line_of("/v") > line_of("/sys") && line_of("/sys").is_some(),
            "{case}: {inside}"
        );
    }
}

/// The errors an orchestrator shows (a kubelet event: one line) name the field, the path, the errno
/// and the likely cause.
#[test]
fn mount_errors_are_one_line_with_field_path_errno_and_cause() {
    let one_line = |e: &str| {
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    };
    // A destination below a file.
    let mut b = Bundle::new("true");
    b.add_mount(json!({"destination": "/etc/passwd/x", "type": "tmpfs", "source": "t"}));
    let e = b.refused(&b.run("me1"), "me1", "mounts[7] (/etc/passwd/x)");
    assert!(
        e.contains("/etc/passwd in the rootfs is a file") && e.contains("ENOTDIR"),
        "{e}"
    );
    one_line(&e);
    // An idmapped bind of a filesystem that cannot be idmapped (sysfs).
    let f: serde_json::Value = serde_json::from_str(&ok(&b.berth(&["features"]))).unwrap();
    if f["linux"]["mountExtensions"]["idmap"]["enabled"] != true {
        skipped("the idmap part: this kernel has no idmapped mounts");
    } else {
        let mut b = Bundle::new("true");
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        b.add_mount(
            json!({"destination": "/m", "type": "bind", "source": "/sys/kernel/mm",
                           "options": ["rbind", "idmap"], "uidMappings": map, "gidMappings": map}),
        );
        let e = b.refused(&b.run("me2"), "me2", "mounts[7] (/m)");
        assert!(
            e.contains("the source /sys/kernel/mm is on sysfs, which this kernel cannot idmap")
                && e.contains("EINVAL"),
            "{e}"
        );
        one_line(&e);
    }
    // A flag the host set that a container with its own user namespace cannot clear.
    let mut b = Bundle::new("true");
    let locked = b.host_path("locked");
    b.in_userns();
    std::os::unix::fs::chown(&b.rootfs, Some(100000), Some(100000)).unwrap();
    b.add_mount(bind(&locked, "/s", &["rbind", "suid"]));
    let o = run_in_private_ns(
        &b,
        "me3",
        &format!("mount -t tmpfs -o nosuid,nodev lk {}", locked.display()),
    );
    let e = b.refused(&o, "me3", "mounts[7] (/s)");
    assert!(
        e.contains(&format!(
            "the host mounts the source {} nosuid (option suid)",
            locked.display()
        )) && e.contains("cannot clear a flag the host set")
            && e.contains("EPERM"),
        "{e}"
    );
    one_line(&e);
}

/// `tmpcopyup` keeps what the image has at the destination, but a `mode=` (Podman's
/// `--tmpfs /x:mode=1777`) wins over the image directory's mode; without one the image's mode stays.
#[test]
fn tmpcopyup_keeps_the_requested_mode() {
    let mut b = Bundle::new("stat -c %a /x /y; cat /x/kept");
    for d in ["x", "y"] {
        std::fs::create_dir(b.rootfs.join(d)).unwrap();
        std::fs::set_permissions(
            b.rootfs.join(d),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
    }
    std::fs::write(b.rootfs.join("x/kept"), "from the image\n").unwrap();
    b.add_mount(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup", "mode=1777"]}));
    b.add_mount(
        json!({"destination": "/y", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}),
    );
    assert_eq!(ok(&b.run("tc1")), "1777\n755\nfrom the image\n");
}
