#!/bin/sh
# Coverage-guided fuzzing of berth's parsers with cargo-fuzz (libFuzzer + ASan, nightly toolchain):
#   scripts/fuzz.sh [SECONDS] [TARGET...]     each target for SECONDS (default 60), one after another
# Targets (fuzz/fuzz_targets/): spec (config.json → parser, validator, mount plan), mount_plan (one
# mount object → option table and plan), policy (host mount policy), image_json (OCI index, manifest,
# config, references, digests, PAX headers), layer (a layer's tar stream → the unpacker, into a
# directory on /dev/shm, checked for anything written beside it; run as root).
# Seeds are written to fuzz/corpus/TARGET from berth's own outputs and the tests' shapes; the corpus
# grows there (git ignores it); a crash is saved under fuzz/artifacts/TARGET and fails the script.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-spec mount_plan policy image_json layer}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
[ -x target/x86_64-unknown-linux-musl/debug/berth ] || cargo build -q
berth=target/x86_64-unknown-linux-musl/debug/berth
c=fuzz/corpus
mkdir -p $c/spec $c/mount_plan $c/policy $c/image_json $c/layer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
$berth spec --bundle "$tmp" && cp "$tmp/config.json" $c/spec/default.json
$berth spec --rootless --bundle "$tmp" && cp "$tmp/config.json" $c/spec/rootless.json
python3 - "$c" <<'PY'
import json, sys, tarfile, io, os
c = sys.argv[1]
spec = json.load(open(f"{c}/spec/default.json"))
spec["mounts"] += [
    {"destination": "/data", "type": "bind", "source": "/srv/data", "options": ["rbind", "rro", "rnosuid", "rnodev"]},
    {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", "size=64m"]},
    {"destination": "/ids", "type": "bind", "source": "/srv/ids", "options": ["bind", "idmap"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}], "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]},
]
spec["linux"]["namespaces"] += [{"type": "user"}]
spec["linux"]["uidMappings"] = spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
spec["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0"}
spec["linux"]["resources"] = {"memory": {"limit": 1 << 29}, "pids": {"limit": 64}, "devices": [{"allow": False, "access": "rwm"}]}
json.dump(spec, open(f"{c}/spec/volumes.json", "w"))
for i, m in enumerate(spec["mounts"]):
    json.dump(m, open(f"{c}/mount_plan/m{i}.json", "w"))
json.dump({"roots": [{"path": "/srv/volumes", "access": "rw"}, {"path": "/srv/datasets", "access": "ro", "special_files": True}],
           "rootfs": [{"path": "/var/lib/images", "access": "ro"}], "hooks": ["/usr/libexec/oci/hooks.d/h"],
           "tenants": {"alice": {"roots": ["/srv/volumes"], "access": "rw", "max_volumes": 8}},
           "tenant_annotation": "io.kubernetes.cri.sandbox-namespace", "default_tenant": "alice", "landlock": "best-effort",
           "container": {"max_capabilities": ["CAP_CHOWN", "CAP_KILL"], "join_namespaces": False, "devices": False}},
          open(f"{c}/policy/readme.json", "w"))
d = "sha256:" + "a" * 64
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 1,
           "annotations": {"org.opencontainers.image.ref.name": "v1"}, "platform": {"architecture": "amd64", "os": "linux"}}]},
          open(f"{c}/image_json/index.json", "w"))
json.dump({"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d, "size": 1},
           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": 1}]},
          open(f"{c}/image_json/manifest.json", "w"))
json.dump({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"], "Entrypoint": ["sh"], "Cmd": ["-c", "true"],
           "WorkingDir": "/", "User": "1000:1000"}}, open(f"{c}/image_json/config.json", "w"))
open(f"{c}/image_json/pax", "wb").write(b"30 path=a/very/long/name/here\n20 linkpath=target\n")
def tar(name, entries, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for kind, path, data, link in entries:
            ti = tarfile.TarInfo(path)
            ti.type = kind
            ti.linkname = link
            ti.size = len(data)
            ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            t.addfile(ti, io.BytesIO(data))
    open(f"{c}/layer/{name}", "wb").write(buf.getvalue())
entries = [(tarfile.DIRTYPE, "etc", b"", ""), (tarfile.REGTYPE, "etc/passwd", b"root:x:0:0::/:/bin/sh\n", ""),
           (tarfile.SYMTYPE, "bin", b"", "usr/bin"), (tarfile.LNKTYPE, "etc/hl", b"", "etc/passwd"),
           (tarfile.REGTYPE, "etc/.wh.gone", b"", ""), (tarfile.REGTYPE, "opq/.wh..wh..opq", b"", ""),
           (tarfile.FIFOTYPE, "run/fifo", b"", ""), (tarfile.REGTYPE, "x" * 150 + "/long-" + "y" * 120, b"long\n", "")]
tar("gnu.tar", entries, tarfile.GNU_FORMAT)
tar("pax.tar", entries, tarfile.PAX_FORMAT)
PY
status=0
for t in $targets; do
    mkdir -p fuzz/artifacts/$t
    echo "== $t: ${secs} s"
    (cd fuzz && cargo +nightly fuzz run --target x86_64-unknown-linux-gnu "$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 -max_len=1048576) || status=1
done
exit $status
