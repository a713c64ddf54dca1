#!/bin/sh
# PID 1 of the CRIU guest of scripts/vm-test.sh (Debian's kernel and Debian's CRIU): checkpoint and
# restore of berth containers. Prints RESULT-cr-* lines; the host decides PASS or FAIL.
say() { echo "RESULT-cr-$*" > /dev/console; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
# The socket diag and nftables modules CRIU probes (Debian builds them as modules; the package's
# modules.dep is made at install, so depmod first).
depmod -a 2>/dev/console
for m in unix_diag inet_diag tcp_diag udp_diag netlink_diag packet_diag af_packet_diag nfnetlink nf_tables; do
    modprobe "$m" 2>&1 | sed 's/^/RESULT-cr-log: /' > /dev/console
done
say "booted-$(uname -r)"
criu check -v4 > /tmp/check.log 2>&1; c=$?; tail -25 /tmp/check.log | sed 's/^/RESULT-cr-log: /' > /dev/console; say "check-$c-$(tail -1 /tmp/check.log)"
# CRIU alone on a plain process, as the baseline.
setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/plain; sleep 0.1; done' < /dev/null > /dev/null 2>&1 &
sleep 1
mkdir -p /tmp/pimg
criu dump -t $! -D /tmp/pimg -o dump.log -v4 --shell-job && say "plain-dumped-$(cat /tmp/plain)"
tail -3 /tmp/pimg/dump.log > /dev/console
criu restore -D /tmp/pimg -o restore.log -v4 --shell-job --restore-detached && sleep 1 && say "plain-restored-$(cat /tmp/plain)"
tail -3 /tmp/pimg/restore.log > /dev/console

# berth: a counter container (its count in a file of its rootfs, or of a volume), checkpointed and
# restored. Its stdio is a file in its rootfs (CRIU reopens it there).
B="/berth --root /run/berth-cr"
# The count (read again when caught between the counter's truncate and its write).
count() {
    for _ in 1 2 3 4 5 6 7 8; do v=$(cat "$1" 2>/dev/null); [ -n "$v" ] && break; sleep 0.05; done
    echo "${v:-none}"
}
config() { # name readonly landlock count-path extra-mounts extra-linux
    cat > /bundle/config.json <<JSON
{
  "ociVersion": "1.2.0",
  "process": { "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"], "cwd": "/", "noNewPrivileges": false,
    "args": ["/bin/sh", "-c", "i=0; while :; do i=\$((i+1)); echo \$i > $4; sleep 0.1; done"] },
  "root": { "path": "rootfs", "readonly": $2 },
  "annotations": { "berth.landlock": "$3" },
  "mounts": [ { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"] } $5 ],
  "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" }, { "type": "uts" } ],
    "maskedPaths": ["/proc/kcore"] $6 }
}
JSON
}
start() { $B run -d --bundle /bundle "$1" < /bundle/rootfs/stdio > /bundle/rootfs/stdio 2>&1; }
# A restore hands its own stdio to the restored init (CRIU's --inherit-fd), as the caller's.
restore() { $B restore "$@" < /bundle/rootfs/stdio 2>/dev/console >> /bundle/rootfs/stdio; }
: > /bundle/rootfs/stdio
# c1 is confined by a seccomp filter and a capability set, which the restore must bring back.
conf=', "seccomp": { "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [ { "names": ["chroot"], "action": "SCMP_ACT_ERRNO" } ] }'
config c1 false off /count "" "$conf"
sed -i 's|"noNewPrivileges": false|"noNewPrivileges": false, "capabilities": { "bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"] }|' /bundle/config.json
status() { grep -E '^(Seccomp|CapEff|CapBnd|NoNewPrivs):' "/proc/$($B state "$1" | grep -o '"pid": [0-9]*' | grep -o '[0-9]*')/status" | tr -s '\t\n' '  '; }
start c1 && sleep 2 && say "c1-running-$(count /bundle/rootfs/count)"
before=$(status c1); say "c1-confined-$before"
$B checkpoint --image-path /tmp/ck1 c1 2>/dev/console && say "c1-checkpointed"
n1=$(count /bundle/rootfs/count); $B state c1 > /dev/null 2>&1 || say "c1-gone-after-checkpoint"
sleep 1; [ "$(count /bundle/rootfs/count)" = "$n1" ] && say "c1-stopped-at-$n1"
restore -d --image-path /tmp/ck1 --bundle /bundle c1 && say "c1-restored-$($B state c1 | grep -o '"status": "[a-z]*"' | tr -d ' "')"
sleep 2; n2=$(count /bundle/rootfs/count); [ "$n2" -gt "$n1" ] 2>/dev/null && say "c1-counter-continues-$n1-$n2"
after=$(status c1); [ "$after" = "$before" ] && say "c1-confinement-restored" || say "c1-confinement-after-$after"
# --leave-running: the dump leaves it counting.
$B checkpoint --leave-running --image-path /tmp/ck2 c1 2>/dev/console && n3=$(count /bundle/rootfs/count) &&
    sleep 1 && [ "$(count /bundle/rootfs/count)" -gt "$n3" ] && say "c1-leave-running"
# A pre-dump, then a dump on top of it, restored into a new id.
$B checkpoint --pre-dump --image-path /tmp/ck3/pre c1 2>/dev/console && say "c1-pre-dumped"
$B checkpoint --image-path /tmp/ck3/final --parent-path ../pre c1 2>/dev/console && say "c1-dumped-after-pre"
n4=$(count /bundle/rootfs/count)
restore -d --image-path /tmp/ck3/final --bundle /bundle c1new && sleep 2 &&
    [ "$(count /bundle/rootfs/count)" -gt "$n4" ] && say "c1new-restored-continues"
$B delete -f c1new

# Volumes and a read-only root: the volume's source reopened from the bundle, read-only kept.
mkdir -p /vol /vol-ro && echo ro-data > /vol-ro/f
config c2 true off "/data/count; cat /proc/self/cgroup >> /data/cg" ', { "destination": "/data", "type": "bind", "source": "/vol", "options": ["rbind", "rw"] }, { "destination": "/ro", "type": "bind", "source": "/vol-ro", "options": ["rbind", "ro"] }' ', "cgroupsPath": "/berth-cr/c2", "resources": { "memory": { "limit": 67108864 } }'
start c2 && sleep 2 && say "c2-running-$(count /vol/count)"
$B checkpoint --image-path /tmp/ck4 c2 2>/dev/console && say "c2-checkpointed"
m1=$(count /vol/count)
restore -d --image-path /tmp/ck4 --bundle /bundle c2 && sleep 2 &&
    [ "$(count /vol/count)" -gt "$m1" ] && say "c2-restored-continues"
c2pid=$($B state c2 | grep -o '"pid": [0-9]*' | grep -o '[0-9]*')
grep -qx "$c2pid" /sys/fs/cgroup/berth-cr/c2/cgroup.procs && say "c2-cgroup-$(cat /sys/fs/cgroup/berth-cr/c2/memory.max)"
# Each tick wrote its cgroup: the restored tree joined it before it ran again (CRIU's post-restore).
[ -s /vol/cg ] && ! grep -v '^0::/berth-cr/c2$' /vol/cg > /dev/console && say "c2-never-outside-its-cgroup-$(wc -l < /vol/cg)"
$B exec c2 sh -c 'cat /ro/f; echo x > /ro/x 2>/dev/null || echo ro-kept; echo y > /data/y && echo rw-kept; echo z > /z 2>/dev/null || echo root-ro-kept' > /tmp/c2.out 2>&1
say "c2-after-$(tr '\n' ' ' < /tmp/c2.out)"
$B delete -f c2
# A restore whose bundle lacks the checkpoint's volume is refused, leaving nothing.
config c3 true off /data/count ""
$B restore -d --image-path /tmp/ck4 --bundle /bundle c3 > /tmp/c3.err 2>&1 || say "c3-refused-$(tr -d '\n' < /tmp/c3.err)"
[ -e /run/berth-cr/c3 ] && say "c3-state-left"

# Landlock: a confined container is refused at checkpoint, and keeps running.
config c4 false best-effort /count ""
start c4 && sleep 1
$B checkpoint --image-path /tmp/ck5 c4 > /tmp/c4.err 2>&1 || say "c4-refused-$(tr -d '\n' < /tmp/c4.err)"
$B state c4 | grep -q '"running"' && say "c4-still-running"
$B delete -f c4
# no_new_privs, which CRIU 3.17 does not restore: the restore is refused and leaves nothing.
config c6 false off /count6 ""
sed -i 's|"noNewPrivileges": false|"noNewPrivileges": true|' /bundle/config.json
start c6 && sleep 1 && $B checkpoint --image-path /tmp/ck6 c6 2>/dev/console && say "c6-checkpointed"
$B restore -d --image-path /tmp/ck6 --bundle /bundle c6 < /bundle/rootfs/stdio >> /bundle/rootfs/stdio 2> /tmp/c6.err; say "c6-restore-$(tr -d '\n' < /tmp/c6.err)"
[ -e /run/berth-cr/c6 ] && say "c6-state-left"
n6=$(count /bundle/rootfs/count6); sleep 1; [ "$(count /bundle/rootfs/count6)" = "$n6" ] && say "c6-nothing-runs"
# A failed restore (no images) leaves no state.
$B restore -d --image-path /tmp/none --bundle /bundle c5 > /tmp/c5.err 2>&1 || say "c5-failed-$(tr -d '\n' < /tmp/c5.err)"
[ -e /run/berth-cr/c5 ] && say "c5-state-left"
$B delete -f c1
# Lazy pages: the dump serves the memory from its page server (the status fd says when), CRIU's
# lazy-pages daemon fetches it for the restore, into a new id, whose count continues.
config c7 false off /count7 ""
start c7 && sleep 1
$B checkpoint --lazy-pages --page-server 127.0.0.1:27270 --status-fd 3 --image-path /tmp/lz c7 3>/tmp/lz.status 2>/dev/console &
ck=$!
for _ in $(seq 1 100); do [ -s /tmp/lz.status ] && break; sleep 0.1; done
[ "$(od -An -tx1 /tmp/lz.status | tr -d ' ')" = "00" ] && say "c7-lazy-status-ready"
l1=$(count /bundle/rootfs/count7)
criu lazy-pages --page-server --address 127.0.0.1 --port 27270 -D /tmp/lz -W /tmp/lz -o lazy-pages.log -v4 > /dev/null 2>&1 &
for _ in $(seq 1 50); do [ -S /tmp/lz/lazy-pages.socket ] && break; sleep 0.1; done
restore -d --lazy-pages --image-path /tmp/lz --bundle /bundle c7b && sleep 2 &&
    [ "$(count /bundle/rootfs/count7)" -gt "$l1" ] && say "c7b-lazy-restored-continues-$l1-$(count /bundle/rootfs/count7)"
wait $ck && say "c7-lazy-checkpoint-done"
$B state c7 > /dev/null 2>&1 || say "c7-gone"
tail -3 /tmp/lz/lazy-pages.log | sed 's/^/RESULT-cr-log: /' > /dev/console
$B delete -f c7b
# Namespaces joined by path (a pod's): the network namespace (an external of the dump) and the uts
# one (joined again at restore) are the bundle's again after the restore, never copies CRIU made.
ip netns add crnet && ip -n crnet link add d0 type dummy
unshare --uts sh -c 'echo crhost > /proc/sys/kernel/hostname; exec sleep 1000' & holder=$!
sleep 0.2
joins() { sed -i "s|{ \"type\": \"uts\" } ]|{ \"type\": \"uts\", \"path\": \"/proc/$holder/ns/uts\" }, { \"type\": \"network\", \"path\": \"/run/netns/crnet\" } ]|" /bundle/config.json; }
config c8 false off /count8 ""
joins
start c8 && sleep 1 && $B checkpoint --image-path /tmp/ck8 c8 2>/dev/console && say "c8-checkpointed"
# A bundle without those paths is refused, leaving nothing.
config c9 false off /count8 ""
$B restore -d --image-path /tmp/ck8 --bundle /bundle c9 > /tmp/c9.err 2>&1 || say "c9-refused-$(tr -d '\n' < /tmp/c9.err)"
[ -e /run/berth-cr/c9 ] && say "c9-state-left"
config c8 false off /count8 ""
joins
restore -d --image-path /tmp/ck8 --bundle /bundle c8 && sleep 1 && {
    p8=$($B state c8 | grep -o '"pid": [0-9]*' | grep -o '[0-9]*')
    [ "$(readlink /proc/$p8/ns/net)" = "net:[$(stat -L -c %i /run/netns/crnet)]" ] &&
        [ "$(readlink /proc/$p8/ns/uts)" = "$(readlink /proc/$holder/ns/uts)" ] &&
        say "c8-restored-into-the-bundles-namespaces-$($B exec c8 cat /proc/sys/kernel/hostname)"
}
$B delete -f c8
kill $holder
ip netns del crnet
# A pid namespace joined by path (a pod sharing its processes): an external of the dump, the
# bundle's again after the restore.
# The namespace's init reaps what is reparented to it, as a pod's pause process does.
unshare --pid --fork sh -c 'while :; do sleep 0.2; done' & pholder=$!
sleep 0.3
pinit=$(cat /proc/$pholder/task/$pholder/children | tr -d ' ')
config c10 false off /count10 ""
sed -i "s|{ \"type\": \"pid\" }|{ \"type\": \"pid\", \"path\": \"/proc/$pinit/ns/pid\" }|" /bundle/config.json
start c10 && sleep 1 && $B checkpoint --image-path /tmp/ck10 c10 2>/dev/console && say "c10-checkpointed"
q1=$(count /bundle/rootfs/count10)
restore -d --image-path /tmp/ck10 --bundle /bundle c10 && sleep 1 && {
    p10=$($B state c10 | grep -o '"pid": [0-9]*' | grep -o '[0-9]*')
    [ "$(readlink /proc/$p10/ns/pid)" = "$(readlink /proc/$pinit/ns/pid)" ] && [ "$(count /bundle/rootfs/count10)" -gt "$q1" ] &&
        say "c10-restored-into-the-bundles-pid-namespace"
}
$B delete -f c10
kill $pholder

# Podman with berth as its runtime: checkpoint and restore of a counter (vfs storage, cgroupfs,
# no network; the image imported from the bundle's rootfs).
P="podman --root /var/tmp/pd --runroot /run/pd --storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime /berth"
tar -C /bundle/rootfs --exclude=./count --exclude=./stdio -cf /tmp/bb.tar . &&
    $P import /tmp/bb.tar localhost/bb > /dev/null 2>/dev/console && say podman-imported
id=$($P run -d --network none --annotation berth.landlock=off localhost/bb sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.1; done' 2>/dev/console)
sleep 2
pc() {
    for _ in 1 2 3 4 5 6 7 8; do v=$($P exec "$id" cat /tmp/n 2>/dev/null); [ -n "$v" ] && break; sleep 0.05; done
    echo "${v:-none}"
}
p1=$(pc); say "podman-running-$p1"
$P container checkpoint "$id" > /dev/null 2>/tmp/pc.err && say "podman-checkpointed-$($P inspect -f '{{.State.Status}}' "$id")"
sed 's/^/RESULT-cr-log: /' /tmp/pc.err | tail -5 > /dev/console
$P container restore "$id" > /dev/null 2>/tmp/pr.err && sleep 1 && p2=$(pc) && [ "$p2" -gt "$p1" ] 2>/dev/null &&
    say "podman-restored-continues-$p1-$p2-$($P inspect -f '{{.State.Status}}' "$id")"
sed 's/^/RESULT-cr-log: /' /tmp/pr.err | tail -5 > /dev/console
$P rm -f -t 0 "$id" > /dev/null 2>&1
# A container with a terminal (conmon holds its master side): CRIU dumps the orphan slave, and at
# restore sends the new master through berth (its RPC notification) to conmon's console socket.
id=$($P run -dt --network none --annotation berth.landlock=off localhost/bb sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n; echo tick-$i; sleep 0.1; done' 2>/dev/console)
sleep 2
t1=$(pc); say "tty-running-$t1-$($P exec "$id" /bin/busybox readlink /proc/1/fd/0)"
$P container checkpoint "$id" > /dev/null 2>/tmp/tc.err && say "tty-checkpointed-$($P inspect -f '{{.State.Status}}' "$id")"
sed 's/^/RESULT-cr-log: /' /tmp/tc.err | tail -5 > /dev/console
$P container restore "$id" > /dev/null 2>/tmp/tr.err && sleep 1 && t2=$(pc) && [ "$t2" -gt "$t1" ] 2>/dev/null &&
    say "tty-restored-continues-$t1-$t2-$($P exec "$id" /bin/busybox readlink /proc/1/fd/0)"
sed 's/^/RESULT-cr-log: /' /tmp/tr.err | tail -5 > /dev/console
# What the restored process writes to its terminal reaches conmon (its log) through the new master.
sleep 1; last=$($P logs "$id" 2>/dev/null | tr -d '\r' | grep -o 'tick-[0-9]*' | tail -1 | cut -d- -f2)
[ "${last:-0}" -gt "$t2" ] 2>/dev/null && say "tty-output-after-restore-$last"
$P rm -f -t 0 "$id" > /dev/null 2>&1
say "done"
echo o > /proc/sysrq-trigger
