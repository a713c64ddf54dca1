//! `berth checkpoint` and `berth restore` on this host, where CRIU cannot run (its 3.17 fails on
//! this kernel; the CRIU guest of scripts/vm-test.sh proves the dumps and restores): every refusal
//! names its cause and leaves nothing, and a hostile image's record (which volumes to reattach)
//! cannot make berth mount anything the bundle does not give.

use kit::*;
use serde_json::json;

fn checkpoint(b: &Bundle, id: &str, extra: &[&str]) -> std::process::Output {
    let img = b.tmp.path().join("img");
    let mut args = vec!["checkpoint", "--image-path", img.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(id);
    b.berth(&args)
}

fn restore(b: &Bundle, id: &str, img: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let bundle = b.dir.to_str().unwrap().to_string();
    let mut args = vec![
        "restore",
        "-d",
        "--image-path",
        img.to_str().unwrap(),
        "--bundle",
        &bundle,
    ];
    args.extend_from_slice(extra);
    args.push(id);
    let mut c = b.cmd(&args);
    // Never the real CRIU: every case here is refused before it would run.
    c.env("BERTH_CRIU", "/bin/false");
    output(&mut c, b.tmp.path())
}

#[test]
fn checkpoint_refusals_name_the_cause_and_leave_the_container_running() {
    let b = Bundle::new("sleep 1000");
    let bundle = b.dir.to_str().unwrap().to_string();
    ok(&b.berth(&["run", "-d", "--bundle", &bundle, "ck"]));
    // The default spec's container is confined by Landlock, which CRIU cannot restore.
    let e = fails(&checkpoint(&b, "ck", &[]));
    assert!(
        e.contains("Landlock") && e.contains("berth.landlock=off"),
        "{e}"
    );
    assert_eq!(b.state("ck")["status"], "running");
    assert!(
        !b.tmp.path().join("img").exists(),
        "an image directory was made"
    );
    // Bad values name the flag.
    let e = fails(&checkpoint(&b, "ck", &["--manage-cgroups-mode", "bogus"]));
    assert!(e.contains("--manage-cgroups-mode"), "{e}");
    let e = fails(&checkpoint(&b, "ck", &["--empty-ns", "pid"]));
    assert!(e.contains("--empty-ns"), "{e}");
    for bad in ["bogus", "127.0.0.1:0", ":27", "127.0.0.1:99999"] {
        let e = fails(&checkpoint(&b, "ck", &["--page-server", bad]));
        assert!(e.contains("--page-server") && e.contains(bad), "{e}");
    }
    let e = fails(&checkpoint(&b, "ck", &["--status-fd", "1"]));
    assert!(e.contains("--status-fd goes with --lazy-pages"), "{e}");
    let e = fails(&checkpoint(
        &b,
        "ck",
        &["--lazy-pages", "--status-fd", "99"],
    ));
    assert!(e.contains("--status-fd 99") && e.contains("EBADF"), "{e}");
    // A read-only fd (stdin from a file) is refused, and left open: the error still gets out.
    let ro = b.tmp.path().join("ro");
    std::fs::write(&ro, "").unwrap();
    let img = b.tmp.path().join("img");
    let mut c = b.cmd(&[
        "checkpoint",
        "--image-path",
        img.to_str().unwrap(),
        "--lazy-pages",
        "--status-fd",
        "0",
        "ck",
    ]);
    c.stdin(std::fs::File::open(&ro).unwrap());
    let e = fails(&output(&mut c, b.tmp.path()));
    assert!(e.contains("not open for writing"), "{e}");
    assert_eq!(
        std::fs::read(&ro).unwrap(),
        b"",
        "the status fd was written"
    );
    // Not there, and not running: runc's words.
    let e = fails(&checkpoint(&b, "nosuch", &[]));
    assert!(e.contains("does not exist"), "{e}");
    ok(&b.berth(&["kill", "ck", "KILL"]));
    b.wait_status("ck", "stopped");
    let e = fails(&checkpoint(&b, "ck", &[]));
    assert!(e.contains("container not running"), "{e}");
}

#[test]
fn restore_refusals_leave_nothing_and_a_hostile_record_mounts_nothing() {
    let mut b = Bundle::new("sleep 1000");
    let cg = format!("/berth-restore-{}", std::process::id());
    b.spec["linux"]["cgroupsPath"] = json!(cg);
    b.spec["linux"]["resources"] = json!({"pids": {"limit": 50}});
    let vol = b.host_path("vol");
    b.add_mount(
        json!({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]}),
    );
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    b.write();
    let img = b.tmp.path().join("img");
    // No images at all.
    let e = b.refused(&restore(&b, "r1", &img, &[]), "r1", "berth-externals.json");
    assert!(e.contains("ENOENT"), "{e}");
    // An image whose record asks for a volume the bundle does not give (the host's /etc, a decoy
    // path of its own): refused before anything is mounted or run.
    std::fs::create_dir_all(&img).unwrap();
    let decoy = b.host_path("decoy");
    for point in ["/etc", decoy.to_str().unwrap()] {
        std::fs::write(
            img.join("berth-externals.json"),
            json!({"mounts": [{"point": point, "kind": "bind"}], "stdio": []}).to_string(),
        )
        .unwrap();
        let e = b.refused(
            &restore(&b, "r2", &img, &[]),
            "r2",
            "which the bundle's mounts do not give",
        );
        assert!(e.contains(point), "{e}");
    }
    // A record that is not JSON names the file.
    std::fs::write(img.join("berth-externals.json"), "{not json").unwrap();
    b.refused(&restore(&b, "r3", &img, &[]), "r3", "berth-externals.json");
    // The bundle's own volume, then CRIU (here /bin/false) failing: nothing is left either, and
    // the cgroup made for it is gone again.
    std::fs::write(
        img.join("berth-externals.json"),
        json!({"mounts": [{"point": "/vol", "kind": "bind"}], "stdio": []}).to_string(),
    )
    .unwrap();
    b.refused(&restore(&b, "r4", &img, &[]), "r4", "criu failed");
    for root in cgroup_roots() {
        assert!(
            !root.join(cg.trim_start_matches('/')).exists(),
            "cgroup left in {}",
            root.display()
        );
    }
    assert_eq!(std::fs::read_dir(&decoy).unwrap().count(), 0);
    // Landlock enforced by the spec: CRIU cannot restore a Landlock domain.
    b.spec["annotations"] = json!({"berth.landlock": "enforce"});
    b.write();
    b.refused(&restore(&b, "r5", &img, &[]), "r5", "Landlock");
    // A terminal: restore needs a console socket to hand the new master to, and only a socket.
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    b.spec["process"]["terminal"] = json!(true);
    b.write();
    b.refused(
        &restore(&b, "r6", &img, &[]),
        "r6",
        "needs --console-socket",
    );
    let not_a_socket = b.tmp.path().join("decoy.sock");
    std::fs::write(&not_a_socket, "").unwrap();
    let link = b.tmp.path().join("link.sock");
    let sock_path = b.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    std::os::unix::fs::symlink(&sock_path, &link).unwrap();
    for bad in [&not_a_socket, &link] {
        b.refused(
            &restore(&b, "r7", &img, &["--console-socket", bad.to_str().unwrap()]),
            "r7",
            "not a socket",
        );
    }
    // A real console socket, then CRIU failing (no notification ever comes): nothing is left, and
    // the socket receives no fd.
    b.refused(
        &restore(
            &b,
            "r8",
            &img,
            &["--console-socket", sock_path.to_str().unwrap()],
        ),
        "r8",
        "criu failed",
    );
    listener.set_nonblocking(true).unwrap();
    if let Ok((conn, _)) = listener.accept() {
        use std::io::Read;
        let mut buf = Vec::new();
        let _ = (&conn).read_to_end(&mut buf);
        assert!(buf.is_empty(), "the console socket got {buf:?}");
    }
    assert_eq!(std::fs::read_dir(&decoy).unwrap().count(), 0);
}

/// Namespaces joined by path: the bundle's must be exactly the ones the checkpoint joined, each a
/// namespace of its type (never a decoy file planted at the path, nor a namespace of another type),
/// and only types CRIU can take as externals or join.
#[test]
fn restore_joins_only_the_namespaces_the_checkpoint_joined_and_only_real_ones() {
    let mut b = Bundle::new("sleep 1000");
    b.spec["annotations"] = json!({"berth.landlock": "off"});
    // A network namespace of the test's own, held by a child started here (killed by its pid).
    let holder = Sleeper::start(&["--net"], "net");
    let netns = holder.ns("net");
    let img = b.tmp.path().join("img");
    std::fs::create_dir_all(&img).unwrap();
    let record = |ns: serde_json::Value| {
        std::fs::write(
            img.join("berth-externals.json"),
            json!({"mounts": [], "stdio": [], "namespaces": ns}).to_string(),
        )
        .unwrap();
    };
    let join = |b: &mut Bundle, typ: &str, path: &str| {
        let ns = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != typ);
        ns.push(json!({"type": typ, "path": path}));
        b.write();
    };
    // The checkpoint joined a network namespace; the bundle gives none.
    record(json!(["network"]));
    b.write();
    b.refused(
        &restore(&b, "n1", &img, &[]),
        "n1",
        "joined its network namespace by path",
    );
    // The bundle joins one; the checkpoint had its own.
    record(json!([]));
    join(&mut b, "network", &netns);
    b.refused(
        &restore(&b, "n2", &img, &[]),
        "n2",
        "the checkpoint has one of its own",
    );
    // A decoy file at the path, and a namespace of another type, are not a network namespace.
    record(json!(["network"]));
    let decoy = b.tmp.path().join("netns-decoy");
    std::fs::write(&decoy, "").unwrap();
    let uts = holder.ns("uts");
    for bad in [decoy.to_str().unwrap(), &uts] {
        join(&mut b, "network", bad);
        b.refused(
            &restore(&b, "n3", &img, &[]),
            "n3",
            "is not a network namespace",
        );
    }
    // A mount namespace joined by path is beyond CRIU: refused, naming the type.
    join(&mut b, "network", &netns);
    record(json!(["network", "mount"]));
    join(&mut b, "mount", &holder.ns("mnt"));
    b.refused(
        &restore(&b, "n4", &img, &[]),
        "n4",
        "the mount namespace is joined by path",
    );
    // The real one, matching: past every check, to CRIU (here /bin/false), still leaving nothing.
    let ns = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != "mount");
    ns.push(json!({"type": "mount"}));
    b.write();
    record(json!(["network"]));
    b.refused(&restore(&b, "n5", &img, &[]), "n5", "criu failed");
}
