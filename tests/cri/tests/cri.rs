//! berth as a RuntimeClass handler behind containerd's CRI plugin, driven over the CRI v1 gRPC API the
//! way the kubelet drives it: a pod with host networking and a cgroup parent made by the "kubelet"
//! (with the pod's pids limit), containers with hostPath volumes, resources and a security context,
//! ExecSync probes, container logs, stop and removal, and nothing left behind. The same scenario runs
//! with runc as the handler, as a control.
//!
//! Each test starts a private containerd (own root, state, socket and CNI directories in a temp dir)
//! inside a private mount namespace (`unshare -m`), so that its mounts never reach the host, and
//! stops it by pid. Images are built from the repository's busybox rootfs and imported with `ctr`
//! (no registry). Needs root, containerd, ctr and runc (`.ci/run` installs them; without one a test
//! says so and is skipped, unless `BERTH_REQUIRE_TOOLS` is set), and protoc to build. The fixtures
//! (the berth binary, tools, cgroup roots) are berth's test kit, tests/kit.

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use kit::{cgroup_roots, repo, sh, tool, BERTH};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

const PAUSE: &str = "berth.test/pause:1";
const BUSYBOX: &str = "berth.test/busybox:1";

/// One test at a time: each starts its own containerd, but their pods share the host's cgroup tree.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A private containerd with the CRI plugin, `berth` and `runc` runtime handlers, and clients.
struct Node {
    dir: PathBuf,
    daemon: Child,
    /// The pod cgroup parent the "kubelet" made, relative to each hierarchy's root.
    parent: String,
    rt: tokio::runtime::Runtime,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl Node {
    /// Starts it, or says why it cannot (a missing tool: the kit's skip) and returns `None`.
    fn start(name: &str) -> Option<Node> {
        let (containerd, runc) = (tool("containerd")?, tool("runc")?);
        tool("ctr")?;
        let dir = std::env::temp_dir().join(format!("berth-cri-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["cni-bin", "cni-conf", "logs", "vols/ro", "vols/rw", "image"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let d = dir.display();
        let berth = BERTH.path();
        std::fs::write(
            dir.join("config.toml"),
            format!(
                r#"version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/c.sock"
[ttrpc]
  address = "{d}/c.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = "{berth}"
        Root = "{d}/berth-root"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth-policy]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth-policy.options]
        BinaryName = "{d}/berth-policy"
        Root = "{d}/berth-root"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        Root = "{d}/runc-root"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni-bin"
    conf_dir = "{d}/cni-conf"
"#,
                berth = berth.display(),
                runc = runc.display(),
            ),
        )
        .unwrap();
        // In a private mount namespace: the overlay rootfs, the sandbox's /dev/shm and every mount the
        // runtimes make stay out of the host's mount table. `unshare` execs containerd: same pid.
        let daemon = Command::new("unshare")
            .args(["-m", "--propagation", "private"])
            .arg(containerd)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join("containerd.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("containerd.err")).unwrap())
            .spawn()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sock = dir.join("c.sock");
        let channel = rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let sock = sock.clone();
                let ch = Endpoint::try_from("http://[::]:0")
                    .unwrap()
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let sock = sock.clone();
                        async move {
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                                tokio::net::UnixStream::connect(sock).await?,
                            ))
                        }
                    }))
                    .await;
                if let Ok(ch) = ch {
                    let mut probe = RuntimeServiceClient::new(ch.clone());
                    if probe.version(VersionRequest::default()).await.is_ok() {
                        break ch;
                    }
                }
                assert!(Instant::now() < deadline, "containerd's CRI did not answer");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let parent = format!("berth-cri-{}-{name}", std::process::id());
        let node = Node {
            dir,
            daemon,
            parent,
            rt,
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        };
        node.import_images();
        Some(node)
    }

    /// A pause image (the sandbox: sleeps) and a workload image, both the busybox rootfs, imported
    /// into containerd's k8s.io namespace from a docker-archive tarball.
    fn import_images(&self) {
        let img = self.dir.join("image");
        sh(&format!(
            "tar -C {}/rootfs -cf {i}/layer.tar . && cd {i} && sha256sum layer.tar",
            repo().display(),
            i = img.display()
        ));
        let digest = sh(&format!("sha256sum {}/layer.tar", img.display()));
        let digest = digest.split_whitespace().next().unwrap();
        let config = |entrypoint: &[&str]| {
            serde_json::json!({
                "architecture": "amd64", "os": "linux",
                "config": { "Entrypoint": entrypoint, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
                            "WorkingDir": "/" },
                "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{digest}")] }
            })
            .to_string()
        };
        std::fs::write(
            img.join("pause.json"),
            config(&["/bin/sleep", "2147483647"]),
        )
        .unwrap();
        std::fs::write(img.join("busybox.json"), config(&["/bin/sh"])).unwrap();
        let manifest = serde_json::json!([
            { "Config": "pause.json", "RepoTags": [PAUSE], "Layers": ["layer.tar"] },
            { "Config": "busybox.json", "RepoTags": [BUSYBOX], "Layers": ["layer.tar"] }
        ]);
        std::fs::write(img.join("manifest.json"), manifest.to_string()).unwrap();
        sh(&format!(
            "cd {i} && tar -cf images.tar manifest.json pause.json busybox.json layer.tar && \
             ctr --address {d}/c.sock -n k8s.io images import images.tar >/dev/null",
            i = img.display(),
            d = self.dir.display()
        ));
        // The CRI plugin sees the import through containerd's events.
        let deadline = Instant::now() + Duration::from_secs(20);
        for image in [PAUSE, BUSYBOX] {
            loop {
                let status = self.block(self.images.clone().image_status(ImageStatusRequest {
                    image: Some(ImageSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    verbose: false,
                }));
                if status.is_ok_and(|s| s.into_inner().image.is_some()) {
                    break;
                }
                assert!(Instant::now() < deadline, "CRI does not list {image}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The pod's cgroup parent, made as the kubelet's cgroupfs driver makes it: in every hierarchy,
    /// with the pod's pids limit.
    fn make_pod_cgroup(&self, pids_max: u32) {
        for root in cgroup_roots() {
            let p = root.join(&self.parent);
            std::fs::create_dir_all(&p).unwrap();
            if p.join("pids.max").exists() {
                std::fs::write(p.join("pids.max"), pids_max.to_string()).unwrap();
            }
        }
    }

    fn pod_config(&self, name: &str, namespace: &str) -> PodSandboxConfig {
        let logs = self.dir.join("logs").join(name);
        std::fs::create_dir_all(&logs).unwrap();
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid: format!("uid-{name}"),
                namespace: namespace.into(),
                attempt: 0,
            }),
            // Host networking: the pod keeps the node's hostname (the kubelet sends none).
            hostname: String::new(),
            log_directory: logs.display().to_string(),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: format!("/{}", self.parent),
                security_context: Some(LinuxSandboxSecurityContext {
                    namespace_options: Some(NamespaceOption {
                        network: NamespaceMode::Node as i32,
                        pid: NamespaceMode::Container as i32,
                        ipc: NamespaceMode::Pod as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn run_pod(&self, config: &PodSandboxConfig, handler: &str) -> String {
        let r = self.block(self.runtime.clone().run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.into(),
        }));
        r.unwrap_or_else(|e| panic!("RunPodSandbox ({handler}): {e}\n{}", self.daemon_log()))
            .into_inner()
            .pod_sandbox_id
    }

    fn create(
        &self,
        pod: &str,
        pod_config: &PodSandboxConfig,
        config: ContainerConfig,
    ) -> Result<String, tonic::Status> {
        self.block(
            self.runtime
                .clone()
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: pod.into(),
                    config: Some(config),
                    sandbox_config: Some(pod_config.clone()),
                }),
        )
        .map(|r| r.into_inner().container_id)
    }

    fn start_container(&self, id: &str) {
        self.block(self.runtime.clone().start_container(StartContainerRequest {
            container_id: id.into(),
        }))
        .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", self.daemon_log()));
    }

    fn status(&self, id: &str) -> ContainerStatus {
        self.block(
            self.runtime
                .clone()
                .container_status(ContainerStatusRequest {
                    container_id: id.into(),
                    verbose: false,
                }),
        )
        .unwrap()
        .into_inner()
        .status
        .unwrap()
    }

    /// Polls ContainerStatus until the container exited; returns its exit code.
    fn wait_exited(&self, id: &str) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status(id);
            if s.state == ContainerState::ContainerExited as i32 {
                return s.exit_code;
            }
            assert!(Instant::now() < deadline, "{id} did not exit: {s:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn exec_sync(&self, id: &str, cmd: &[&str]) -> ExecSyncResponse {
        self.block(self.runtime.clone().exec_sync(ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 20,
        }))
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}\n{}", self.daemon_log()))
        .into_inner()
    }

    fn remove_container(&self, id: &str) {
        let mut rs = self.runtime.clone();
        self.block(rs.stop_container(StopContainerRequest {
            container_id: id.into(),
            timeout: 5,
        }))
        .unwrap();
        self.block(rs.remove_container(RemoveContainerRequest {
            container_id: id.into(),
        }))
        .unwrap();
    }

    fn remove_pod(&self, pod: &str) {
        let mut rs = self.runtime.clone();
        self.block(rs.stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: pod.into(),
        }))
        .unwrap();
        self.block(rs.remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: pod.into(),
        }))
        .unwrap();
    }

    /// The container log the CRI plugin wrote (`TIME STREAM TAG TEXT` lines), as text.
    fn log(&self, pod: &str, path: &str) -> String {
        std::fs::read_to_string(self.dir.join("logs").join(pod).join(path))
            .unwrap_or_default()
            .lines()
            .map(|l| l.splitn(4, ' ').nth(3).unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn daemon_log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("containerd.err")).unwrap_or_default();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("level=error") || l.contains("level=warn"))
            .collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Nothing of the pods is left: no mount under the node's directory in containerd's mount
    /// namespace, no process but containerd naming that directory, no container state of either
    /// runtime, no cgroup under the pod parent.
    fn assert_clean(&self) {
        let d = self.dir.display().to_string();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mounts: Vec<String> =
                std::fs::read_to_string(format!("/proc/{}/mountinfo", self.daemon.id()))
                    .unwrap()
                    .lines()
                    .filter(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&d)))
                    .map(str::to_string)
                    .collect();
            let procs: Vec<String> = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| *pid != self.daemon.id() && *pid != std::process::id())
                .filter_map(|pid| {
                    let c = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                    let c = String::from_utf8_lossy(&c).replace('\0', " ");
                    c.contains(&d).then(|| format!("{pid}: {c}"))
                })
                .collect();
            let state: Vec<String> = ["berth-root/k8s.io", "runc-root/k8s.io"]
                .iter()
                .flat_map(|r| {
                    std::fs::read_dir(self.dir.join(r))
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .map(|e| e.path().display().to_string())
                .collect();
            let cgroups: Vec<String> = cgroup_roots()
                .iter()
                .flat_map(|r| {
                    std::fs::read_dir(r.join(&self.parent))
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .filter(|e| e.path().is_dir())
                .map(|e| e.path().display().to_string())
                .collect();
            if mounts.is_empty() && procs.is_empty() && state.is_empty() && cgroups.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left behind:\nmounts {mounts:#?}\nprocesses {procs:#?}\nstate {state:#?}\ncgroups {cgroups:#?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Whatever a failed test left: pods removed through CRI, then containerd stopped by pid.
        let mut rs = self.runtime.clone();
        if let Ok(pods) = self
            .rt
            .block_on(rs.list_pod_sandbox(ListPodSandboxRequest::default()))
        {
            for p in pods.into_inner().items {
                let _ = self.rt.block_on(rs.stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: p.id.clone(),
                }));
                let _ = self
                    .rt
                    .block_on(rs.remove_pod_sandbox(RemovePodSandboxRequest {
                        pod_sandbox_id: p.id,
                    }));
            }
        }
        let _ = nix_kill(self.daemon.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.daemon.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.daemon.kill();
                let _ = self.daemon.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for root in cgroup_roots() {
            let p = root.join(&self.parent);
            if p.is_dir() {
                let _ = Command::new("find")
                    .args([
                        p.as_os_str(),
                        "-depth".as_ref(),
                        "-type".as_ref(),
                        "d".as_ref(),
                    ])
                    .args(["-exec", "rmdir", "{}", ";"])
                    .output();
            }
        }
        if std::env::var_os("BERTH_CRI_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn nix_kill(pid: u32, sig: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
}

fn container(name: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        linux: Some(LinuxContainerConfig {
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                // The kubelet's defaults for the default procMount, sent with every container.
                masked_paths: [
                    "/proc/asound",
                    "/proc/acpi",
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/latency_stats",
                    "/proc/timer_list",
                    "/proc/timer_stats",
                    "/proc/sched_debug",
                    "/proc/scsi",
                    "/sys/firmware",
                ]
                .map(String::from)
                .to_vec(),
                readonly_paths: [
                    "/proc/bus",
                    "/proc/fs",
                    "/proc/irq",
                    "/proc/sys",
                    "/proc/sysrq-trigger",
                ]
                .map(String::from)
                .to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn host_path(container_path: &str, host: &Path, readonly: bool) -> Mount {
    Mount {
        container_path: container_path.into(),
        host_path: host.display().to_string(),
        readonly,
        propagation: MountPropagation::PropagationPrivate as i32,
        ..Default::default()
    }
}

/// The whole kubelet-style scenario with `handler` as the pod's RuntimeClass handler.
fn scenario(handler: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(node) = Node::start(handler) else {
        return;
    };
    node.make_pod_cgroup(64);
    let vols = node.dir.join("vols");
    std::fs::write(vols.join("ro/data"), "from the host\n").unwrap();
    std::os::unix::fs::symlink(vols.join("rw"), vols.join("link")).unwrap();
    sh(&format!("chown 1000 {}", vols.join("rw").display()));
    let pod_config = node.pod_config("web", "default");
    let pod = node.run_pod(&pod_config, handler);

    // A workload: hostPath volumes (ro, rw, and one whose host path is a symlink), resources, a
    // non-root user, a read-only rootfs, dropped capabilities and the runtime's default seccomp
    // profile; it reports what it sees and exits 7.
    let mut c = container(
        "vol",
        "cat /ro/data; (echo x > /ro/new) 2>/dev/null || echo ro-refused; \
         echo written > /rw/out && echo rw-ok; echo via-link > /link/l && echo link-ok; \
         (touch /rootfs-file) 2>/dev/null || echo rootfs-ro; id -u; \
         grep -E '^(CapBnd|Seccomp):' /proc/self/status | tr -s '\\t ' ' '; \
         cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null; \
         cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null; \
         sh -c 'i=0; while [ $i -lt 80 ]; do sleep 30 & i=$((i+1)); done; wait' 2>/dev/null \
         || echo pids-limited; exit 7",
    );
    c.mounts = vec![
        host_path("/ro", &vols.join("ro"), true),
        host_path("/rw", &vols.join("rw"), false),
        host_path("/link", &vols.join("link"), false),
    ];
    let linux = c.linux.as_mut().unwrap();
    linux.resources = Some(LinuxContainerResources {
        memory_limit_in_bytes: 64 << 20,
        cpu_shares: 512,
        cpu_quota: 50_000,
        cpu_period: 100_000,
        ..Default::default()
    });
    let sc = linux.security_context.as_mut().unwrap();
    sc.run_as_user = Some(Int64Value { value: 1000 });
    sc.readonly_rootfs = true;
    sc.capabilities = Some(Capability {
        drop_capabilities: vec!["ALL".into()],
        add_capabilities: vec!["KILL".into()],
        ..Default::default()
    });
    sc.seccomp = Some(SecurityProfile {
        profile_type: security_profile::ProfileType::RuntimeDefault as i32,
        ..Default::default()
    });
    let id = node
        .create(&pod, &pod_config, c)
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", node.daemon_log()));
    node.start_container(&id);
    assert_eq!(node.wait_exited(&id), 7, "{}", node.log("web", "vol.log"));
    let log = node.log("web", "vol.log");
    for want in [
        "from the host",
        "ro-refused",
        "rw-ok",
        "link-ok",
        "rootfs-ro",
        "1000",
        "CapBnd: 0000000000000020",
        "Seccomp: 2",
        "67108864",
        "512",
        "50000",
        "pids-limited",
    ] {
        assert!(
            log.lines().any(|l| l.trim() == want || l.contains(want)),
            "no {want:?} in the log:\n{log}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(vols.join("rw/out")).unwrap(),
        "written\n"
    );
    assert_eq!(
        std::fs::read_to_string(vols.join("rw/l")).unwrap(),
        "via-link\n"
    );
    assert!(!vols.join("ro/new").exists());
    node.remove_container(&id);

    // A long-running container probed with ExecSync, as liveness and readiness probes are.
    let mut c = container("app", "echo started; exec sleep 1000");
    c.linux
        .as_mut()
        .unwrap()
        .security_context
        .as_mut()
        .unwrap()
        .run_as_user = Some(Int64Value { value: 1000 });
    let app = node.create(&pod, &pod_config, c).unwrap();
    node.start_container(&app);
    let r = node.exec_sync(&app, &["sh", "-c", "echo ready; id -u; exit 3"]);
    assert_eq!(r.exit_code, 3, "{r:?}");
    assert_eq!(String::from_utf8_lossy(&r.stdout), "ready\n1000\n", "{r:?}");
    let r = node.exec_sync(&app, &["cat", "/proc/1/cmdline"]);
    assert_eq!(r.exit_code, 0, "{r:?}");
    assert!(
        String::from_utf8_lossy(&r.stdout).starts_with("sleep"),
        "{r:?}"
    );
    assert_eq!(
        node.status(&app).state,
        ContainerState::ContainerRunning as i32
    );
    node.remove_container(&app);
    assert!(node.log("web", "app.log").contains("started"));

    node.remove_pod(&pod);
    node.assert_clean();
}

/// The policy handler: berth with a host mount policy (the node's /etc/berth/policy.json in a real
/// deployment; here BERTH_POLICY, set by a wrapper that is the handler's BinaryName).
fn write_policy(node: &Node) {
    let d = node.dir.display();
    let cri_root = format!("{d}/root/io.containerd.grpc.v1.cri");
    let cri_state = format!("{d}/state/io.containerd.grpc.v1.cri");
    let policy = serde_json::json!({
        "roots": [
            { "path": cri_root, "access": "rw" },
            { "path": cri_state, "access": "rw" },
            { "path": format!("{d}/vols/a"), "access": "rw" },
            { "path": format!("{d}/vols/b"), "access": "rw" }
        ],
        "rootfs": [ { "path": format!("{d}/state/io.containerd.runtime.v2.task"), "access": "rw" } ],
        "tenants": {
            "team-a": { "roots": [cri_root, cri_state, format!("{d}/vols/a")], "access": "rw" },
            "team-b": { "roots": [cri_root, cri_state, format!("{d}/vols/b")], "access": "ro" }
        },
        "tenant_annotation": "io.kubernetes.cri.sandbox-namespace",
        "excess_access": "read-only",
        "container": {
            "max_capabilities": ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
                "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"],
            "join_namespaces": true,
            "omit_namespaces": true,
            "devices": true
        }
    });
    std::fs::write(node.dir.join("policy.json"), policy.to_string()).unwrap();
    let wrapper = node.dir.join("berth-policy");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nBERTH_POLICY={d}/policy.json exec {} \"$@\"\n",
            BERTH
        ),
    )
    .unwrap();
    sh(&format!("chmod 755 {}", wrapper.display()));
}

#[test]
fn kubelet_style_pods_under_a_host_mount_policy_with_tenants() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Some(node) = Node::start("policy") else {
        return;
    };
    write_policy(&node);
    node.make_pod_cgroup(1024);
    let vols = node.dir.join("vols");
    for t in ["a", "b"] {
        std::fs::create_dir_all(vols.join(t)).unwrap();
        std::fs::write(vols.join(t).join("data"), format!("volume of team-{t}\n")).unwrap();
    }

    // team-a: its own volume rw works; team-b's volume is outside its roots and refused by berth,
    // which the CRI error carries.
    let a_config = node.pod_config("a", "team-a");
    let a = node.run_pod(&a_config, "berth-policy");
    let mut c = container("own", "cat /v/data; echo from-a > /v/out && echo rw-ok");
    c.mounts = vec![host_path("/v", &vols.join("a"), false)];
    let own = node.create(&a, &a_config, c).unwrap();
    node.start_container(&own);
    assert_eq!(node.wait_exited(&own), 0, "{}", node.log("a", "own.log"));
    assert!(node.log("a", "own.log").contains("rw-ok"));
    assert_eq!(
        std::fs::read_to_string(vols.join("a/out")).unwrap(),
        "from-a\n"
    );
    node.remove_container(&own);
    let mut c = container("other", "cat /v/data");
    c.mounts = vec![host_path("/v", &vols.join("b"), true)];
    // containerd 1.6 runs the runtime's create at StartContainer, so that is where it fails.
    let refused = node
        .create(&a, &a_config, c)
        .and_then(|id| self_start(&node, &id).map(|()| id));
    let e = refused.expect_err("team-a mounted team-b's volume");
    assert!(
        e.message().contains("refused by tenants.team-a.roots"),
        "the CRI error does not carry berth's refusal: {e}"
    );
    assert!(!vols.join("b/out").exists());
    node.remove_pod(&a);

    // team-b is capped at ro: a hostPath the pod asks rw for is mounted read-only.
    let b_config = node.pod_config("b", "team-b");
    let b = node.run_pod(&b_config, "berth-policy");
    let mut c = container(
        "capped",
        "cat /v/data; (echo x > /v/out) 2>/dev/null && echo WROTE || echo ro-enforced",
    );
    c.mounts = vec![host_path("/v", &vols.join("b"), false)];
    let capped = node.create(&b, &b_config, c).unwrap();
    node.start_container(&capped);
    assert_eq!(
        node.wait_exited(&capped),
        0,
        "{}",
        node.log("b", "capped.log")
    );
    let log = node.log("b", "capped.log");
    assert!(
        log.contains("volume of team-b") && log.contains("ro-enforced"),
        "{log}"
    );
    assert!(!vols.join("b/out").exists());
    node.remove_container(&capped);
    node.remove_pod(&b);
    node.assert_clean();
}

fn self_start(node: &Node, id: &str) -> Result<(), tonic::Status> {
    node.block(node.runtime.clone().start_container(StartContainerRequest {
        container_id: id.into(),
    }))
    .map(|_| ())
}

#[test]
fn kubelet_style_pod_on_berth() {
    scenario("berth");
}

#[test]
fn kubelet_style_pod_on_runc_as_the_control() {
    scenario("runc");
}
