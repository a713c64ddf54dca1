#!/bin/bash
# AppArmor for real: boots Debian's kernel (AppArmor built in; extracted from the .deb, never
# installed into the host's /boot) under QEMU with TCG only, with an initramfs holding the static
# berth, busybox and apparmor_parser. /init moves itself into a tmpfs and switch_roots (pivot_root
# does not work with / on the initramfs), loads a test profile that denies reading /secret, runs a
# container with process.apparmorProfile and one without; then mounts cgroup v2 and runs a container
# whose linux.resources.devices deny a decoy device (berth's BPF device program) and one without
# rules; then cgroup v2 resources and lifecycle, and rootless berth in a delegated subtree; prints
# PASS or FAIL.
# A second boot (see boot_systemd below) runs a Debian bookworm root with systemd as init and
# cgroup v2: berth's systemd cgroup driver and Podman with --cgroup-manager systemd.
# A third boot (boot_selinux) enforces SELinux: process.selinuxLabel and linux.mountLabel.
#   scripts/vm-test.sh [all|apparmor|systemd|selinux|criu]    (as root; default all)
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "vm-test.sh: run as root" >&2; exit 1; }
need=""
for p in qemu-system-x86 busybox-static cpio mmdebstrap; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
./scripts/toolchain.sh
cargo build --release -q
berth=$PWD/target/x86_64-unknown-linux-musl/release/berth
repo=$PWD
work=$(mktemp -d /tmp/berth-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

boot_apparmor() {
# The initramfs.
mkdir -p root/bin root/sbin root/lib/x86_64-linux-gnu root/lib64 root/proc root/sys root/dev root/run \
    root/tmp root/bundle/rootfs/bin root/bundle/rootfs/proc root/bundle/rootfs/dev root/bundle/rootfs/tmp
cp /bin/busybox root/bin/busybox
cp "$berth" root/berth
cp apparmor/sbin/apparmor_parser root/sbin/
cp /lib/x86_64-linux-gnu/libc.so.6 root/lib/x86_64-linux-gnu/
cp /lib64/ld-linux-x86-64.so.2 root/lib64/
cp /bin/busybox root/bundle/rootfs/bin/busybox
ln -s busybox root/bundle/rootfs/bin/sh
ln -s busybox root/bundle/rootfs/bin/cat
echo "the secret" > root/bundle/rootfs/secret
cat > root/profile <<'PROFILE'
profile berth-test flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  signal,
  unix,
  network,
  deny /secret r,
}
PROFILE
for mode in confined free; do
    profile='"apparmorProfile": "berth-test",'
    [ "$mode" = free ] && profile=""
    cat > root/bundle/config-$mode.json <<JSON
{
  "ociVersion": "1.2.0",
  "process": {
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/sh", "-c", "cat /secret 2>/dev/null && echo RESULT-$mode-READ || echo RESULT-$mode-DENIED"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    $profile
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs" },
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] }
  ],
  "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
}
JSON
done
# cgroup v2 device rules: a decoy /dev/decoy with /dev/zero's number (1:5), readable without rules,
# refused with a deny-all plus an explicit deny of 1:5; /dev/null (a default) stays usable.
ln -s busybox root/bundle/rootfs/bin/head
for mode in devfree devdeny; do
    resources=""
    [ "$mode" = devdeny ] && resources='"resources": { "devices": [ { "allow": false, "access": "rwm" },
        { "allow": false, "type": "c", "major": 1, "minor": 5, "access": "rwm" } ] },
      "cgroupsPath": "/berth-vm/'$mode'",'
    cat > root/bundle/config-$mode.json <<JSON
{
  "ociVersion": "1.2.0",
  "process": {
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/sh", "-c", "head -c1 /dev/decoy >/dev/null 2>&1 && echo RESULT-$mode-READ || echo RESULT-$mode-DENIED; echo x > /dev/null && echo RESULT-$mode-NULL"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs" },
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] }
  ],
  "linux": { $resources
    "devices": [ { "path": "/dev/decoy", "type": "c", "major": 1, "minor": 5, "fileMode": 438 } ],
    "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
}
JSON
done
# cgroup v2 resources and lifecycle: limits written, pause/resume, kill --all, delete cleanup.
ln -s busybox root/bundle/rootfs/bin/sleep
cat > root/bundle/config-cg.json <<'JSON'
{
  "ociVersion": "1.2.0",
  "process": {
    "user": { "uid": 0, "gid": 0 },
    "args": ["/bin/sh", "-c", "sleep 100 & sleep 100"],
    "env": ["PATH=/bin"],
    "cwd": "/",
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs" },
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] } ],
  "linux": {
    "cgroupsPath": "/berth-vm/cg",
    "resources": { "memory": { "limit": 67108864 }, "pids": { "limit": 20 }, "cpu": { "shares": 1024 } },
    "namespaces": [ { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
}
JSON
sed -e 's|"sleep 100 \& sleep 100"|"cat /sys/fs/cgroup/memory.max; touch /sys/fs/cgroup/x 2>/dev/null \|\| echo RO"|' \
    -e 's|"source": "proc" },|"source": "proc" }, { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"] },|' \
    -e 's|/berth-vm/cg|/berth-vm/view|' root/bundle/config-cg.json > root/bundle/config-view.json
sed -e 's|{ "type": "mount" },|{ "type": "mount" }, { "type": "cgroup" },|' -e 's|/berth-vm/view|/berth-vm/viewns|' \
    root/bundle/config-view.json > root/bundle/config-viewns.json
# pids.limit 0 is a limit (runtime-spec 1.3): the container runs, and cannot fork.
sed -e 's|"pids": { "limit": 20 }|"pids": { "limit": 0 }|' -e 's|/berth-vm/cg|/berth-vm/pids0|' \
    -e 's|"sleep 100 \& sleep 100"|"echo RESULT-p0-RAN; (true); echo RESULT-p0-FORKED"|' \
    root/bundle/config-cg.json > root/bundle/config-pids0.json
ln -s busybox root/bundle/rootfs/bin/touch
cat > root/cg-test <<'CG'
#!/bin/busybox sh
B="/berth --root /run/berth"
cg=/sys/fs/cgroup/berth-vm/cg
cp /bundle/config-cg.json /bundle/config.json
$B create --bundle /bundle vm-cg || echo "RESULT-cg-CREATE-FAILED"
echo "RESULT-cg-memory.max-$(cat $cg/memory.max)"
echo "RESULT-cg-pids.max-$(cat $cg/pids.max)"
echo "RESULT-cg-cpu.weight-$(cat $cg/cpu.weight)"
$B start vm-cg
sleep 1
$B pause vm-cg && $B state vm-cg | grep -q '"paused"' && grep -q "frozen 1" $cg/cgroup.events && echo "RESULT-cg-PAUSED"
$B resume vm-cg && $B state vm-cg | grep -q '"running"' && echo "RESULT-cg-RESUMED"
# exec, and device rules replaced by update (the BPF program swapped).
probe() { $B exec vm-cg sh -c 'head -c1 /dev/zero >/dev/null 2>&1 && echo zero-read || echo zero-denied'; }
echo "RESULT-cg-exec-$(probe)"
echo '{"devices":[{"allow":false,"type":"c","major":1,"minor":5,"access":"rw"}]}' > /tmp/deny.json
echo '{"devices":[{"allow":true,"type":"c","major":1,"minor":5,"access":"rw"}]}' > /tmp/allow.json
$B update -r /tmp/deny.json vm-cg && echo "RESULT-cg-upd1-$(probe)"
$B update -r /tmp/allow.json vm-cg && echo "RESULT-cg-upd2-$(probe)"
echo "RESULT-cg-ps $($B ps --format json vm-cg 2>&1)"
n=$($B ps --format json vm-cg | tr ',' '\n' | grep -c '[0-9]')
[ "$n" -ge 2 ] && echo "RESULT-cg-PROCS-OK"
$B events --stats vm-cg | grep -q '"current":2' && echo "RESULT-cg-STATS"
$B kill --all vm-cg KILL
sleep 1
$B state vm-cg | grep -q '"stopped"' && echo "RESULT-cg-KILLED"
$B delete vm-cg
# The container sees its own cgroup (cgroup namespace made after it joined), read-only.
cp /bundle/config-view.json /bundle/config.json
echo "RESULT-cg-view $($B run --bundle /bundle vm-view 2>&1 | tr '\n' ' ')"
cp /bundle/config-viewns.json /bundle/config.json
echo "RESULT-cg-viewns $($B run --bundle /bundle vm-viewns 2>&1 | tr '\n' ' ')"
cp /bundle/config-pids0.json /bundle/config.json
$B create --bundle /bundle vm-p0 && echo "RESULT-p0-pids.max-$(cat /sys/fs/cgroup/berth-vm/pids0/pids.max)"
$B start vm-p0; sleep 1; $B delete -f vm-p0
[ -e /sys/fs/cgroup/berth-vm ] && echo "RESULT-cg-LEFT" || echo "RESULT-cg-CLEAN"
CG
chmod +x root/cg-test
# Rootless berth in a cgroup v2 subtree delegated to uid 1000 (chowned as the kernel's
# cgroup-v2.rst describes), run through busybox su: limits land in <delegated>/berth/<id>, pause,
# kill --all and delete work as the user; outside a delegated subtree the run goes on with a warning.
mkdir -p root/etc
printf 'root:x:0:0::/:/bin/sh\ntester:x:1000:1000::/tmp:/bin/sh\n' > root/etc/passwd
printf 'root:x:0:\ntester:x:1000:\n' > root/etc/group
sed -e 's|"sleep 100 \& sleep 100"|"sleep 100"|' -e 's|"cgroupsPath": "/berth-vm/cg",||' \
    -e 's|{ "type": "mount" },|{ "type": "pid" }, { "type": "mount" }, { "type": "user" },|' \
    -e 's|"linux": {|"linux": { "uidMappings": [ { "containerID": 0, "hostID": 1000, "size": 1 } ], "gidMappings": [ { "containerID": 0, "hostID": 1000, "size": 1 } ],|' \
    root/bundle/config-cg.json > root/bundle/config-rl.json
cat > root/rl-test <<'RL'
#!/bin/busybox sh
cp /bundle/config-rl.json /bundle/config.json
chmod 1777 /tmp
cg=/sys/fs/cgroup/deleg
mkdir -p $cg/session
chown 1000:1000 $cg $cg/cgroup.procs $cg/cgroup.subtree_control $cg/cgroup.threads $cg/session $cg/session/cgroup.procs
as_user() { sh -c 'echo $$ > /sys/fs/cgroup/deleg/session/cgroup.procs; exec su -s /bin/sh tester -c "$0"' "$1"; }
B="/berth --root /tmp/rl"
as_user "$B create --bundle /bundle rl1" && echo "RESULT-rl-CREATED"
echo "RESULT-rl-memory.max-$(cat $cg/berth/rl1/memory.max)"
echo "RESULT-rl-pids.max-$(cat $cg/berth/rl1/pids.max)"
echo "RESULT-rl-owner-$(stat -c %u $cg/berth/rl1)"
as_user "$B start rl1"
as_user "$B pause rl1 && $B state rl1" | grep -q '"paused"' && grep -q "frozen 1" $cg/berth/rl1/cgroup.events && echo "RESULT-rl-PAUSED"
as_user "$B resume rl1"
as_user "$B kill --all rl1 KILL"
sleep 1
as_user "$B state rl1" | grep -q '"stopped"' && echo "RESULT-rl-KILLED"
as_user "$B delete rl1"
[ -e $cg/berth/rl1 ] && echo "RESULT-rl-LEFT" || echo "RESULT-rl-CLEAN"
# Not in a delegated subtree (the user's shell in the root cgroup): noted in the log (--debug shows it), no cgroup, it runs.
sed -i 's|"sleep 100"|"echo ran"|' /bundle/config.json
echo "RESULT-rl-undelegated $(su -s /bin/sh tester -c "$B --debug run --bundle /bundle rl2" 2>&1 | tr '\n' ' ')"
RL
chmod +x root/rl-test
cat > root/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
if [ ! -e /.switched ]; then
    # pivot_root refuses the initramfs as /: move everything into a tmpfs and switch_root there.
    mkdir /newroot
    mount -t tmpfs -o size=256m root /newroot
    for f in /*; do
        case "$f" in /proc|/dev|/newroot|/sys) mkdir -p "/newroot$f" ;; *) cp -a "$f" /newroot/ ;; esac
    done
    touch /newroot/.switched
    umount /proc
    umount /dev
    exec switch_root /newroot /init
fi
mount -t sysfs sys /sys
mount -t securityfs securityfs /sys/kernel/security
echo "apparmor enabled: $(cat /sys/module/apparmor/parameters/enabled)"
apparmor_parser -r /profile && echo "profile loaded"
mount -t cgroup2 cgroup2 /sys/fs/cgroup && echo "cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
for mode in confined free devfree devdeny; do
    cp /bundle/config-$mode.json /bundle/config.json
    /berth --root /run/berth run --bundle /bundle vm-$mode 2>&1
done > /run/out 2>&1
[ -e /sys/fs/cgroup/berth-vm ] && echo "RESULT-cgroup-LEFT" >> /run/out
/cg-test >> /run/out 2>&1
/rl-test >> /run/out 2>&1
cat /run/out
if grep -q RESULT-confined-DENIED /run/out && grep -q RESULT-free-READ /run/out &&
   grep -q RESULT-devfree-READ /run/out && grep -q RESULT-devdeny-DENIED /run/out &&
   grep -q RESULT-devdeny-NULL /run/out && ! grep -q RESULT-cgroup-LEFT /run/out &&
   grep -q RESULT-cg-memory.max-67108864 /run/out && grep -q RESULT-cg-pids.max-20 /run/out &&
   grep -q RESULT-cg-cpu.weight-100 /run/out && grep -q RESULT-cg-PAUSED /run/out &&
   grep -q RESULT-p0-pids.max-0 /run/out && grep -q RESULT-p0-RAN /run/out &&
   ! grep -q RESULT-p0-FORKED /run/out &&
   grep -q RESULT-cg-RESUMED /run/out && grep -q RESULT-cg-PROCS-OK /run/out &&
   grep -q RESULT-cg-KILLED /run/out && grep -q RESULT-cg-CLEAN /run/out &&
   grep -q RESULT-cg-STATS /run/out && grep -q "RESULT-cg-view 67108864 RO" /run/out &&
   grep -q "RESULT-cg-viewns 67108864 RO" /run/out && grep -q RESULT-cg-exec-zero-read /run/out &&
   grep -q RESULT-cg-upd1-zero-denied /run/out && grep -q RESULT-cg-upd2-zero-read /run/out &&
   grep -q RESULT-rl-CREATED /run/out && grep -q RESULT-rl-memory.max-67108864 /run/out &&
   grep -q RESULT-rl-pids.max-20 /run/out && grep -q RESULT-rl-owner-1000 /run/out &&
   grep -q RESULT-rl-PAUSED /run/out && grep -q RESULT-rl-KILLED /run/out &&
   grep -q RESULT-rl-CLEAN /run/out &&
   grep -q "RESULT-rl-undelegated.*no cgroup is delegated to uid 1000.* ran" /run/out; then
    echo "VM-TEST: PASS"
else
    echo "VM-TEST: FAIL"
fi
poweroff -f
INIT
chmod +x root/init
(cd root && find . | cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz

# TCG only: KVM on these machines cannot boot stock kernels, so it is never picked.
timeout 600 qemu-system-x86_64 -accel tcg -m 1024 -smp 1 -nographic -no-reboot \
    -kernel "$vmlinuz" -initrd initrd.gz \
    -append "console=ttyS0 apparmor=1 security=apparmor panic=-1 quiet" > console.log 2>&1 || true
grep -E "apparmor enabled|profile loaded|cgroup2|RESULT-|berth: error|VM-TEST" console.log || tail -30 console.log
grep -q "VM-TEST: PASS" console.log
}

# A Debian bookworm root built by mmdebstrap from Debian's packages ($1, comma-separated; no
# recommends, no docs), cached in /var/cache/berth-vm by its recipe; sets $tarball.
debian_root() {
    recipe="bookworm $1 minbase v1"
    cache=/var/cache/berth-vm
    tarball=$cache/root-$(echo "$recipe" | md5sum | cut -c1-12).tar
    [ -s "$tarball" ] && return 0
    mkdir -p "$cache"
    # In a mount namespace of its own: mmdebstrap mounts /proc, /sys and /dev in its chroot.
    unshare -m --propagation private mmdebstrap --variant=minbase --include="$1" \
        --aptopt='APT::Install-Recommends "false"' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' --format=tar \
        bookworm "$tarball.part" http://deb.debian.org/debian > mmdebstrap.log 2>&1 ||
        { tail -20 mmdebstrap.log; return 1; }
    mv "$tarball.part" "$tarball"
}

# The shim that boots a Debian root from an initramfs: it copies the root into a tmpfs (pivot_root
# needs a real mount as /) and switch_roots to $1.
write_shim() {
    mkdir -p "$2/shim"
    cp /bin/busybox "$2/shim/busybox"
    cat > "$2/init" <<SHIM
#!/shim/busybox sh
b=/shim/busybox
\$b mount -t proc proc /proc
\$b mount -t devtmpfs dev /dev
\$b mkdir -p /newroot
\$b mount -t tmpfs -o size=2g,mode=0755 root /newroot
for f in /*; do
    case "\$f" in
    /proc|/dev|/sys|/run|/tmp|/newroot|/init|/shim) \$b mkdir -p "/newroot\$f" ;;
    *) \$b cp -a "\$f" /newroot/ ;;
    esac
done
\$b chmod 1777 /newroot/tmp
echo "shim: root copied at \$(\$b cut -d' ' -f1 /proc/uptime)s" > /dev/console
\$b umount /proc
\$b umount /dev
exec \$b switch_root /newroot $1
SHIM
    chmod +x "$2/init"
}

# Packs the root $1 (with the shim booting into $2) into an uncompressed initramfs, boots it with the
# kernel command line $3, and checks the console for RESULT-$4-<each remaining argument> (grep
# patterns). The console is kept as $4-console.log.
boot_root() {
    local dir=$1 target=$2 cmdline=$3 tag=$4
    shift 4
    write_shim "$target" "$dir"
    (cd "$dir" && find . | cpio -o -H newc 2>/dev/null) > "$tag-initrd.cpio"
    rm -rf "$dir"
    timeout 900 qemu-system-x86_64 -accel tcg -m 3072 -smp 2 -nographic -no-reboot \
        -kernel "$vmlinuz" -initrd "$tag-initrd.cpio" -append "console=ttyS0 panic=-1 quiet $cmdline" \
        > "$tag-console.log" 2>&1 || true
    grep -aE "shim:|RESULT-$tag-|berth: error" "$tag-console.log" || tail -40 "$tag-console.log"
    local fail=0 e
    for e in "$@"; do
        grep -aq "RESULT-$tag-$e" "$tag-console.log" || { echo "missing: RESULT-$tag-$e"; fail=1; }
    done
    return $fail
}

# The systemd guest: a Debian bookworm root built by mmdebstrap from Debian's packages (systemd,
# dbus, podman; no recommends, no docs), cached in /var/cache/berth-vm by its recipe, booted from an
# uncompressed initramfs whose /init copies it into a tmpfs and switch_roots to systemd (as above,
# pivot_root needs a real mount as /). A oneshot unit runs scripts/guest/systemd-test.sh.
boot_systemd() {
    debian_root systemd,systemd-sysv,dbus,podman,conmon,crun || return 1
    rm -rf sd && mkdir sd
    tar -xf "$tarball" -C sd
    mkdir -p sd/bundle/rootfs/bin sd/bundle/rootfs/proc sd/bundle/rootfs/dev sd/bundle/rootfs/tmp
    cp "$berth" sd/berth
    cp /bin/busybox sd/bundle/rootfs/bin/busybox
    for t in sh cat echo sleep id ls wc; do ln -s busybox sd/bundle/rootfs/bin/$t; done
    tar -C sd/bundle/rootfs -cf sd/bb.tar .
    cat > sd/bundle/config-sd.json <<'JSON'
{
  "ociVersion": "1.2.0",
  "process": { "user": { "uid": 0, "gid": 0 }, "args": ["/bin/sh", "-c", "sleep 100"],
    "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": true },
  "root": { "path": "rootfs" },
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] } ],
  "linux": {
    "cgroupsPath": "system.slice:berth:sd1",
    "resources": { "memory": { "limit": 67108864 }, "pids": { "limit": 20 },
      "cpu": { "shares": 512, "quota": 50000, "period": 100000 } },
    "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
}
JSON
    cp "$repo/scripts/guest/systemd-test.sh" sd/berth-test.sh
    chmod +x sd/berth-test.sh
    cat > sd/etc/systemd/system/berth-test.service <<'UNIT'
[Unit]
Description=berth systemd driver test
Wants=dbus.service
After=dbus.service basic.target

[Service]
Type=oneshot
ExecStart=/berth-test.sh
StandardOutput=journal+console
StandardError=journal+console
UNIT
    mkdir -p sd/etc/systemd/system/default.target.wants
    ln -s ../berth-test.service sd/etc/systemd/system/default.target.wants/berth-test.service
    echo berth-guest > sd/etc/hostname
    # No udev in this root: a getty would wait 90 s for its tty's device unit.
    ln -s /dev/null "sd/etc/systemd/system/serial-getty@ttyS0.service"
    ln -s /dev/null "sd/etc/systemd/system/getty@tty1.service"
    fail=0
    boot_root sd /lib/systemd/systemd "systemd.unified_cgroup_hierarchy=1 systemd.show_status=0" sd \
        'features-"systemd":true' 'created' 'unit-67108864-20-59-500ms-yes' \
        'files-67108864-20-59-50000_100000' 'procs-1' 'updated-134217728-134217728-30-30' \
        'exec-0::/system.slice/berth-sd1.scope' 'stats' 'paused' 'resumed' 'killed' \
        'after-delete-not-found-dir-gone' 'default-0::/system.slice/berth-sd2.scope' \
        'default-after-not-found' 'bad-.*linux.cgroupsPath: invalid slice name' \
        'cgopts-before-.*nsdelegate' \
        'cgopts-cgroupfs-ns-none-cg-none-ran-[0-9]*-same' 'cgopts-cgroupfs-ns-none-cg-own-ran-[0-9]*-same' \
        'cgopts-cgroupfs-ns-own-cg-none-ran-[0-9]*-same' 'cgopts-cgroupfs-ns-own-cg-own-ran-[0-9]*-same' \
        'cgopts-systemd-ns-none-cg-none-ran-[0-9]*-same' 'cgopts-systemd-ns-none-cg-own-ran-[0-9]*-same' \
        'cgopts-systemd-ns-own-cg-none-ran-[0-9]*-same' 'cgopts-systemd-ns-own-cg-own-ran-[0-9]*-same' \
        'cgopts-control-changed' 'cgopts-restored-same' \
        'podman-imported' 'podman-run-hello' 'podman-memory-67108864-67108864' 'podman-runtime-/berth' 'podman-exec-in' \
        'podman-pause-paused' 'podman-unpause-running' 'podman-after-not-found' 'done-at' || fail=1
    grep -aq "RESULT-sd-bad-state-left" sd-console.log && { echo "a bad create left its state"; fail=1; }
    return $fail
}

# The SELinux guest: Debian's kernel booted with security=selinux, a Debian bookworm root with
# selinux-policy-default and berth's test module (scripts/guest/berth-test.cil: two domains that
# differ only in reading berth_secret_t, and a mount type) compiled in on the host by semodule in the
# chroot, booted by the shim into scripts/guest/selinux-test.sh as PID 1, which loads the policy,
# labels the root and enforces.
boot_selinux() {
    debian_root selinux-policy-default,policycoreutils,selinux-utils || return 1
    rm -rf se && mkdir se
    tar -xf "$tarball" -C se
    cp "$repo/scripts/guest/berth-test.cil" se/berth-test.cil
    chroot se semodule -n -i /berth-test.cil > semodule.log 2>&1 || { cat semodule.log; return 1; }
    mkdir -p se/bundle/rootfs/bin se/bundle/rootfs/proc se/bundle/rootfs/dev se/bundle/rootfs/tmp \
        se/bundle/rootfs/vol
    cp "$berth" se/berth
    cp /bin/busybox se/bundle/rootfs/bin/busybox
    for t in sh cat echo sleep grep tr; do ln -s busybox se/bundle/rootfs/bin/$t; done
    cp "$repo/scripts/guest/selinux-test.sh" se/selinux-test.sh
    se_config() { # name label mountlabel script
        cat > "se/bundle/config-$1.json" <<JSON
{
  "ociVersion": "1.2.0",
  "process": { "user": { "uid": 0, "gid": 0 }, "args": ["/bin/sh", "-c", "$4"],
    "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": true, "selinuxLabel": "$2" },
  "root": { "path": "rootfs" },
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] },
    { "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"] },
    { "destination": "/vol", "type": "bind", "source": "/vol", "options": ["rbind", "ro"] } ],
  "linux": { "mountLabel": "$3",
    "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ] }
}
JSON
    }
    probe="tr -d '\\\\000' < /proc/self/attr/current; echo; grep ' /tmp ' /proc/mounts | grep -o 'berth_mount_t' | head -1; cat /vol/secret 2>/dev/null || echo DENIED"
    se_config free system_u:system_r:berth_free_t:s0 system_u:object_r:berth_mount_t:s0 "$probe"
    se_config confined system_u:system_r:berth_confined_t:s0 system_u:object_r:berth_mount_t:s0 "$probe"
    se_config badlabel system_u:system_r:nonexistent_t:s0 system_u:object_r:berth_mount_t:s0 "true"
    se_config badmount system_u:system_r:berth_free_t:s0 system_u:object_r:nonexistent_t:s0 "true"
    se_config sleep system_u:system_r:berth_free_t:s0 system_u:object_r:berth_mount_t:s0 "sleep 100"
    fail=0
    boot_root se /selinux-test.sh "security=selinux selinux=1 enforcing=0" se \
        'enforce-1' 'features-"selinux":{"enabled":true}' \
        'free system_u:system_r:berth_free_t:s0 berth_mount_t host secret' \
        'confined system_u:system_r:berth_confined_t:s0 berth_mount_t DENIED' \
        'badlabel .*process.selinuxLabel "system_u:system_r:nonexistent_t:s0".*EINVAL' \
        'badmount .*mounts.1. (/dev).*context=system_u:object_r:nonexistent_t:s0.*EINVAL' \
        'exec-default system_u:system_r:berth_free_t:s0' \
        'exec-label system_u:system_r:berth_confined_t:s0' 'done' || fail=1
    grep -aq "RESULT-se-bad.*-state-left" se-console.log && { echo "a bad label left state"; fail=1; }
    return $fail
}

# The CRIU guest: a Debian bookworm root with Debian's CRIU, booted by the shim into
# scripts/guest/criu-test.sh as PID 1 (cgroup v2): berth checkpoint and restore.
boot_criu() {
    debian_root criu,iproute2,kmod,podman,conmon,crun || return 1
    rm -rf cr && mkdir cr
    tar -xf "$tarball" -C cr
    # The kernel's modules (CRIU's socket diag modules are modules in Debian's kernel).
    mkdir -p cr/lib/modules && cp -a kernel/lib/modules/* cr/lib/modules/
    mkdir -p cr/bundle/rootfs/bin cr/bundle/rootfs/proc cr/bundle/rootfs/dev cr/bundle/rootfs/tmp
    cp "$berth" cr/berth
    cp /bin/busybox cr/bundle/rootfs/bin/busybox
    for t in sh cat echo sleep; do ln -s busybox cr/bundle/rootfs/bin/$t; done
    mkdir -p cr/bundle/rootfs/data cr/bundle/rootfs/ro
    cp "$repo/scripts/guest/criu-test.sh" cr/criu-test.sh
    chmod +x cr/criu-test.sh
    fail=0
    boot_root cr /criu-test.sh "" cr 'check-0' 'plain-dumped' 'plain-restored' \
        'c1-running-[0-9]' 'c1-checkpointed' 'c1-gone-after-checkpoint' 'c1-stopped-at' \
        'c1-confined-CapEff: 0000000000000020 .*NoNewPrivs: 0 Seccomp: 2' 'c1-restored-status:running' \
        'c1-counter-continues' 'c1-confinement-restored' 'c1-leave-running' 'c1-pre-dumped' \
        'c2-cgroup-67108864' 'c2-never-outside-its-cgroup' \
        'c1-dumped-after-pre' 'c1new-restored-continues' 'c2-running-[0-9]' 'c2-checkpointed' \
        'c2-restored-continues' 'c2-after-ro-data.* ro-kept rw-kept .*root-ro-kept' \
        'c3-refused-.*volume at /data' 'c4-refused-.*Landlock' 'c4-still-running' 'c5-failed' \
        'c6-checkpointed' 'c6-restore-.*without no_new_privs' 'c6-nothing-runs' \
        'podman-imported' 'podman-running-[0-9]' 'podman-checkpointed-exited' 'podman-restored-continues-.*-running' \
        'tty-running-[0-9]*-/dev/pts/0' 'tty-checkpointed-exited' 'tty-restored-continues-.*-/dev/pts/0' \
        'tty-output-after-restore' 'c7-lazy-status-ready' 'c7b-lazy-restored-continues' \
        'c7-lazy-checkpoint-done' 'c7-gone' 'c8-checkpointed' 'c9-refused-.*joined its .* namespace by path' \
        'c8-restored-into-the-bundles-namespaces-crhost' 'c10-checkpointed' 'c10-restored-into-the-bundles-pid-namespace' \
        'done' || fail=1
    grep -aq "RESULT-cr-c[3569]-state-left" cr-console.log && { echo "a failed restore left its state"; fail=1; }
    return $fail
}

what=${1:-all}
# The kernel and apparmor_parser, from Debian's packages (downloaded, extracted, not installed).
image=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
apt-get download -q "$image" apparmor >/dev/null 2>&1
dpkg-deb -x "$image"_*.deb kernel
dpkg-deb -x apparmor_*.deb apparmor
vmlinuz=$(ls kernel/boot/vmlinuz-*)
status=0
if [ "$what" = all ] || [ "$what" = apparmor ]; then
    start=$(date +%s)
    if boot_apparmor; then echo "apparmor/cgroup guest: PASS ($(( $(date +%s) - start )) s)"; else
        echo "apparmor/cgroup guest: FAIL"; status=1; fi
fi
if [ "$what" = all ] || [ "$what" = systemd ]; then
    start=$(date +%s)
    if boot_systemd; then echo "systemd guest: PASS ($(( $(date +%s) - start )) s)"; else
        echo "systemd guest: FAIL"; status=1; fi
fi
if [ "$what" = all ] || [ "$what" = selinux ]; then
    start=$(date +%s)
    if boot_selinux; then echo "SELinux guest: PASS ($(( $(date +%s) - start )) s)"; else
        echo "SELinux guest: FAIL"; status=1; fi
fi
if [ "$what" = all ] || [ "$what" = criu ]; then
    start=$(date +%s)
    if boot_criu; then echo "CRIU guest: PASS ($(( $(date +%s) - start )) s)"; else
        echo "CRIU guest: FAIL"; status=1; fi
fi
[ $status = 0 ] && echo PASS || echo FAIL
exit $status
