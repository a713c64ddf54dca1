//! What containerd 2.x sends for a Kubernetes pod, run directly by berth (Debian ships containerd
//! 1.6; docs/kubernetes.md reports the run against a containerd 2.1 built from source): the sandbox
//! spec shape with the network and user namespaces joined by path (made beforehand, maps written, as
//! containerd pins them), `uidMappings`/`gidMappings` beside the joined user namespace, the two
//! sysctls containerd 2.0 sets on every sandbox, new pid, ipc, uts and mount namespaces, /proc, and
//! an `rro` bind. And the other side: a sysctl into a namespace that is the host's own is refused,
//! and mappings that are not the joined namespace's are refused naming the field.

use kit::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

const MAP: &str = "0 100000 65536\n";

/// The pod's namespaces as containerd 2.x makes them: a user namespace with its maps written and a
/// network namespace owned by it, held by a process of the test's own.
fn pod_namespaces() -> Sleeper {
    let s = Sleeper::start(&["-U", "-n"], "user");
    for f in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{f}", s.pid()), MAP).unwrap();
    }
    s
}

/// A sandbox bundle in containerd 2.x's shape, joining `pod`'s namespaces.
fn sandbox(script: &str, pod: &Sleeper) -> Bundle {
    let mut b = Bundle::new(script);
    // The pod's root (host uid 100000) must reach the bundle, as containerd's 0711 directories allow.
    for p in [b.tmp.path(), b.dir.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    b.spec["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
        {"type": "network", "path": pod.ns("net")},
        {"type": "user", "path": pod.ns("user")},
    ]);
    let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    b.spec["linux"]["uidMappings"] = map.clone();
    b.spec["linux"]["gidMappings"] = map;
    b.spec["linux"]["sysctl"] = json!({
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 65535",
    });
    // Below a root-only directory, as containerd's sandbox state (the pod's root cannot reach it:
    // berth opens it with the host's view and hands the tree over).
    let ro = b.host_path("private/ro");
    std::fs::set_permissions(
        b.tmp.path().join("private"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    std::fs::write(ro.join("f"), "ro\n").unwrap();
    b.add_mount(json!({"destination": "/ro", "type": "bind", "source": ro,
        "options": ["rbind", "rro", "nosuid", "nodev"]}));
    std::fs::create_dir(b.rootfs.join("ro")).unwrap();
    b
}

#[test]
fn a_user_namespaced_sandbox_of_containerd_2_runs() {
    let pod = pod_namespaces();
    let b = sandbox(
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range; \
         echo pid=$$; cat /proc/self/uid_map; cat /ro/f; touch /ro/x 2>/dev/null || echo ro-ok; \
         readlink /proc/self/ns/user; readlink /proc/self/ns/net",
        &pod,
    );
    let out = ok(&b.run("pod1"));
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines[..6],
        ["0", "0 65535", "pid=1", "0 100000 65536", "ro", "ro-ok"],
        "{out}"
    );
    // The container is in the pod's namespaces, not new ones.
    let pod_user = std::fs::read_link(pod.ns("user")).unwrap();
    let pod_net = std::fs::read_link(pod.ns("net")).unwrap();
    assert_eq!(lines[6], pod_user.to_string_lossy(), "{out}");
    assert_eq!(lines[7], pod_net.to_string_lossy(), "{out}");
    // The sysctls went into the pod's network namespace, never the host's.
    let host = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").unwrap();
    assert_ne!(host.trim(), "0", "the host's own setting changed");
    // create/start/exec/delete the same way (the init is pid 1, the exec joins it).
    let mut b = b;
    b.spec["process"]["args"] = json!(["sleep", "100"]);
    ok(&b.create("pod2"));
    ok(&b.berth(&["start", "pod2"]));
    let out = ok(&b.berth(&[
        "exec",
        "pod2",
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; cat /proc/self/uid_map",
    ]));
    assert!(out.starts_with("sleep 100"), "{out}");
    assert!(out.contains("100000"), "{out}");
    ok(&b.berth(&["delete", "-f", "pod2"]));
}

#[test]
fn mappings_must_be_the_joined_namespaces() {
    let pod = pod_namespaces();
    let mut b = sandbox("true", &pod);
    b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    let e = fails(&b.run("pod3"));
    assert!(
        e.contains("linux.uidMappings") && e.contains("do not match the joined user namespace"),
        "{e}"
    );
    // Mappings without any user namespace stay refused.
    let mut b = Bundle::new("true");
    b.spec["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 1}]);
    let e = fails(&b.run("pod4"));
    assert!(e.contains("without a user namespace"), "{e}");
}

#[test]
fn a_sysctl_goes_into_a_joined_namespace_only_when_it_is_not_the_hosts() {
    // A network namespace the orchestrator made (no user namespace): the sysctl is written there.
    let netns = Sleeper::start(&["-n"], "net");
    let mut b = Bundle::new("cat /proc/sys/net/ipv4/ip_unprivileged_port_start");
    let nss = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "network");
    nss.push(json!({"type": "network", "path": netns.ns("net")}));
    b.spec["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "77"});
    assert_eq!(ok(&b.run("sys1")).trim(), "77");
    // The host's own, as berth's namespace (or the initial one): refused, naming the sysctl. berth
    // runs in a private network namespace of the test's, the decoy "host", whose setting is read
    // after the refusal (never the real host's).
    for path in ["/proc/self/ns/net", "/proc/$$/ns/net"] {
        let nss = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
        nss.retain(|n| n["type"] != "network");
        nss.push(json!({"type": "network", "path": path.replace("$$", "PARENT")}));
        b.write();
        let config = b.dir.join("config.json");
        let script = format!(
            "sed -i \"s|PARENT|$$|\" {cfg}; {berth} --root {root} run --bundle {dir} sys2; \
             echo rc=$?; cat /proc/sys/net/ipv4/ip_unprivileged_port_start",
            cfg = config.display(),
            berth = BERTH,
            root = b.state.display(),
            dir = b.dir.display()
        );
        let out = output(
            std::process::Command::new("unshare").args(["--net", "sh", "-c", &script]),
            b.tmp.path(),
        );
        let (o, e) = (stdout(&out), stderr(&out));
        assert!(
            e.contains("linux.sysctl.net.ipv4.ip_unprivileged_port_start")
                && e.contains("host's own"),
            "{path}: {e}"
        );
        assert!(o.contains("rc=1") && !o.contains("\n77"), "{path}: {o}");
    }
    // Under a host policy joining stays refused as before.
    let policy = b.tmp.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"roots": [{"path": b.host_path("v"), "access": "ro"}],
               "rootfs": [{"path": b.dir, "access": "rw"}]})
        .to_string(),
    )
    .unwrap();
    let nss = b.spec["linux"]["namespaces"].as_array_mut().unwrap();
    nss.retain(|n| n["type"] != "network");
    nss.push(json!({"type": "network", "path": netns.ns("net")}));
    let e = fails(&b.berth(&[
        "--policy",
        policy.to_str().unwrap(),
        "run",
        "--bundle",
        b.dir.to_str().unwrap(),
        "sys3",
    ]));
    assert!(e.contains("join"), "{e}");
}
