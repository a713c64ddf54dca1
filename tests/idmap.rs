//! Idmapped volume mounts: `idmap`/`ridmap` with the container's user namespace mappings and with a
//! mount's own `uidMappings`/`gidMappings`, files seen inside with the right owners and written to the
//! host with the right ids, recursion over a submount, the host mount policy's `idmap` rule, errors
//! that name the mount, and `features`.

use kit::*;
use serde_json::{Value, json};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A bundle in a user namespace mapping container 0..65535 to host 100000.., running as container
/// uid/gid 1000, with a volume whose files are owned by host uid/gid 1000.
fn userns_bundle(script: &str) -> (Bundle, std::path::PathBuf) {
    let mut b = Bundle::new(script);
    b.in_userns();
    b.spec["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    // The mount point exists in the image, as it would (the container's root may not create it).
    std::fs::create_dir(b.rootfs.join("v")).unwrap();
    let vol = b.host_path("vol");
    std::fs::write(vol.join("f"), "owned by 1000\n").unwrap();
    chown(&vol.join("f"), 1000);
    chown(&vol, 1000);
    (b, vol)
}

fn chown(p: &Path, id: u32) {
    std::os::unix::fs::chown(p, Some(id), Some(id)).unwrap();
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn idmap_shows_host_owners_as_the_containers_ids_and_writes_them_back() {
    let script = "stat -c %u:%g /v/f; echo new > /v/new && echo wrote";
    // Control: without idmap the volume's files belong to nobody and the write fails.
    let (mut b, vol) = userns_bundle(script);
    b.add_mount(json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind"]}));
    let out = stdout(&b.run("plain"));
    assert!(out.starts_with("65534:65534"), "{out}");
    assert!(!out.contains("wrote"), "{out}");

    let (mut b, vol) = userns_bundle(script);
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind", "idmap"]}),
    );
    let out = ok(&b.run("mapped"));
    assert!(out.starts_with("1000:1000"), "{out}");
    assert!(out.contains("wrote"), "{out}");
    // Container uid 1000 is host uid 101000, yet the file lands on the disk as 1000.
    assert_eq!(owner(&vol.join("new")), (1000, 1000));
}

#[test]
fn a_mounts_own_mappings_are_used() {
    // On-disk 1000 shown as host 100000, which is the container's root.
    let (mut b, vol) = userns_bundle("stat -c %u:%g /v/f");
    b.spec["process"]["user"] = json!({"uid": 0, "gid": 0});
    let map = json!([{"containerID": 1000, "hostID": 100000, "size": 1}]);
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind"],
                       "uidMappings": map, "gidMappings": map}),
    );
    let out = ok(&b.run("own"));
    assert_eq!(out.trim(), "0:0");
}

/// An idmapped tmpfs: its root, owned by on-disk uid/gid 1000 (`uid=`/`gid=`), shows through the
/// mount's own mapping; files the container makes there are stored with the mapped-back ids.
#[test]
fn idmapped_tmpfs_with_and_without_a_user_namespace() {
    let script = "stat -c %u:%g /t; touch /t/new && stat -c %u:%g /t/new";
    let tmpfs = |b: &mut Bundle, mapped: bool, host: u32| {
        // The mount point exists in the image (a user namespace's root may not create it).
        let _ = std::fs::create_dir(b.rootfs.join("t"));
        let mut m = json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                            "options": ["uid=1000", "gid=1000", "mode=777"]});
        if mapped {
            let map = json!([{"containerID": 1000, "hostID": host, "size": 1},
                             {"containerID": 0, "hostID": 0, "size": 1}]);
            m["uidMappings"] = map.clone();
            m["gidMappings"] = map;
        }
        b.add_mount(m);
    };
    // No user namespace: on-disk 1000 shown as 4242 (the control shows 1000).
    let mut b = Bundle::new(script);
    tmpfs(&mut b, false, 0);
    assert_eq!(lines(&ok(&b.run("plain"))), ["1000:1000", "0:0"]);
    let mut b = Bundle::new(script);
    tmpfs(&mut b, true, 4242);
    assert_eq!(lines(&ok(&b.run("mapped"))), ["4242:4242", "0:0"]);
    // In a user namespace (container 0.. = host 100000..), the parent makes the tmpfs in the host's
    // user namespace and idmaps it: on-disk 1000 as host 101001, which is the container's 1001; the
    // container's root (host 100000) is not in the mount's mapping, so it cannot create files there.
    let mut b = Bundle::new(script);
    b.in_userns();
    tmpfs(&mut b, false, 0);
    assert_eq!(lines(&ok(&b.run("uplain"))), ["1000:1000", "0:0"]);
    let mut b = Bundle::new("stat -c %u:%g /t; touch /t/new 2>/dev/null || echo refused");
    b.in_userns();
    tmpfs(&mut b, true, 101001);
    assert_eq!(lines(&ok(&b.run("umapped"))), ["1001:1001", "refused"]);
    // idmap without mappings takes the container's: on-disk 1000 is the container's 1000, and the
    // container's root writes on-disk 0.
    let mut b = Bundle::new(script);
    b.in_userns();
    std::fs::create_dir(b.rootfs.join("t")).unwrap();
    b.add_mount(
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                        "options": ["uid=1000", "gid=1000", "mode=777", "idmap"]}),
    );
    assert_eq!(lines(&ok(&b.run("ucontainer"))), ["1000:1000", "0:0"]);
}

fn lines(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn ridmap_maps_submounts_and_idmap_only_the_top() {
    let script = "stat -c %u /v/f /v/sub/g";
    let mut results = Vec::new();
    for opt in ["idmap", "ridmap"] {
        let (mut b, vol) = userns_bundle(script);
        let sub = vol.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let other = b.host_path("other");
        std::fs::write(other.join("g"), "in the submount\n").unwrap();
        chown(&other.join("g"), 1000);
        b.add_mount(
            json!({"destination": "/v", "type": "bind", "source": vol, "options": ["rbind", opt]}),
        );
        // The submount exists in a private mount namespace only (run_in_private_ns).
        let out = run_in_private_ns(
            &b,
            opt,
            &format!("mount --bind {} {}", other.display(), sub.display()),
        );
        results.push(ok(&out));
    }
    let lines = |s: &String| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        lines(&results[0]),
        ["1000", "65534"],
        "idmap: {}",
        results[0]
    );
    assert_eq!(
        lines(&results[1]),
        ["1000", "1000"],
        "ridmap: {}",
        results[1]
    );
}

#[test]
fn bad_idmapped_mounts_are_errors_naming_the_mount() {
    // No user namespace, no mappings.
    let mut b = Bundle::new("true");
    let vol = b.host_path("vol");
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind", "idmap"]}),
    );
    let e = fails(&b.run("nouserns"));
    assert!(e.contains("/v") && e.contains("user namespace"), "{e}");
    // One mapping of two.
    let mut b = Bundle::new("true");
    let vol = b.host_path("vol");
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind"],
                       "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]}),
    );
    let e = fails(&b.run("half"));
    assert!(e.contains("/v") && e.contains("needs both"), "{e}");
    // Neither a bind mount nor tmpfs.
    let mut b = Bundle::new("true");
    b.add_mount(
        json!({"destination": "/m", "type": "mqueue", "source": "mqueue", "options": ["idmap"]}),
    );
    let e = fails(&b.run("mqueue"));
    assert!(
        e.contains("/m") && e.contains("bind mounts and tmpfs only"),
        "{e}"
    );
    // Without a user namespace, explicit mappings work (berth makes the namespace).
    let mut b = Bundle::new("stat -c %u /v/f");
    let vol = b.host_path("vol");
    std::fs::write(vol.join("f"), "x").unwrap();
    chown(&vol.join("f"), 1000);
    let map = json!([{"containerID": 1000, "hostID": 4242, "size": 1}]);
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind"],
                       "uidMappings": map, "gidMappings": map}),
    );
    assert_eq!(ok(&b.run("explicit")).trim(), "4242");
}

#[test]
fn policy_idmap_rule_bounds_the_on_disk_ids_a_volume_may_map() {
    let policy = |b: &Bundle, vol: &Path, rule: Value| {
        let p = b.tmp.path().join("policy.json");
        let mut root = json!({"path": vol, "access": "rw"});
        if !rule.is_null() {
            root["idmap"] = rule;
        }
        std::fs::write(
            &p,
            json!({"roots": [root], "rootfs": [{"path": b.dir, "access": "rw"}],
            })
            .to_string(),
        )
        .unwrap();
        p
    };
    let run = |b: &Bundle, p: &Path, id: &str| {
        let bundle = b.dir.to_str().unwrap().to_string();
        b.berth(&[
            "--policy",
            p.to_str().unwrap(),
            "run",
            "--bundle",
            &bundle,
            id,
        ])
    };
    // The container's mappings expose on-disk 0..65535 (host root's files as the container's root).
    let (mut b, vol) = userns_bundle("stat -c %u /v/f");
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind", "idmap"]}),
    );
    let p = policy(
        &b,
        &vol,
        json!({"uids": [{"from": 1000, "size": 1000}], "gids": [{"from": 1000, "size": 1000}]}),
    );
    let e = fails(&run(&b, &p, "wide"));
    assert!(
        e.contains("refused by roots.idmap") && e.contains("uid 0"),
        "{e}"
    );
    // No idmap rule: idmapped mounts from that root are refused.
    let p = policy(&b, &vol, Value::Null);
    let e = fails(&run(&b, &p, "norule"));
    assert!(e.contains("refused by roots.idmap"), "{e}");
    // A mapping of on-disk 1000..1999 only is inside the rule.
    let (mut b, vol) = userns_bundle("stat -c %u /v/f");
    let map = json!([{"containerID": 1000, "hostID": 101000, "size": 1000}]);
    b.add_mount(
        json!({"destination": "/v", "type": "bind", "source": vol, "options": ["bind"],
                       "uidMappings": map, "gidMappings": map}),
    );
    let p = policy(
        &b,
        &vol,
        json!({"uids": [{"from": 1000, "size": 1000}], "gids": [{"from": 1000, "size": 1000}]}),
    );
    assert_eq!(ok(&run(&b, &p, "narrow")).trim(), "1000");
    // check reports the rule.
    let bundle = b.dir.to_str().unwrap().to_string();
    let out = ok(&b.berth(&[
        "--policy",
        p.to_str().unwrap(),
        "check",
        "--bundle",
        &bundle,
        "--format",
        "json",
    ]));
    assert!(out.contains("idmap"), "{out}");
}

#[test]
fn features_reports_idmap() {
    let b = Bundle::new("true");
    let f: Value = serde_json::from_str(&ok(&b.berth(&["features"]))).unwrap();
    assert_eq!(
        f["linux"]["mountExtensions"]["idmap"]["enabled"],
        json!(true)
    );
    let opts = f["mountOptions"].as_array().unwrap();
    assert!(opts.contains(&json!("idmap")) && opts.contains(&json!("ridmap")));
}
