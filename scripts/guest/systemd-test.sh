#!/bin/sh
# Runs inside the systemd guest of scripts/vm-test.sh (systemd as init, cgroup v2), as a oneshot
# service after boot: berth's systemd cgroup driver, then Podman with --cgroup-manager systemd and
# --runtime berth. Prints RESULT-sd-* lines to the console; the host decides PASS or FAIL.
set -u
say() { echo "RESULT-sd-$*" > /dev/console; }
B="/berth --root /run/berth-sd --systemd-cgroup"
scope=/sys/fs/cgroup/system.slice/berth-sd1.scope
prop() { systemctl show -P "$2" "$1" 2>/dev/null; }

say "booted-in-$(cut -d' ' -f1 /proc/uptime)s"
say "features-$(/berth features | tr -d ' \n' | grep -o '"systemd":[a-z]*' | head -1)"
cp /bundle/config-sd.json /bundle/config.json
$B create --bundle /bundle sd1 2>/dev/console && say created
say "unit-$(prop berth-sd1.scope MemoryMax)-$(prop berth-sd1.scope TasksMax)-$(prop berth-sd1.scope CPUWeight)-$(prop berth-sd1.scope CPUQuotaPerSecUSec)-$(prop berth-sd1.scope Delegate)"
say "files-$(cat $scope/memory.max)-$(cat $scope/pids.max)-$(cat $scope/cpu.weight)-$(cat $scope/cpu.max | tr ' ' _)"
say "procs-$(wc -l < $scope/cgroup.procs)"
$B start sd1
$B update --memory 134217728 --pids-limit 30 sd1 2>/dev/console
say "updated-$(prop berth-sd1.scope MemoryMax)-$(cat $scope/memory.max)-$(prop berth-sd1.scope TasksMax)-$(cat $scope/pids.max)"
$B exec sd1 sh -c 'cat /proc/self/cgroup' > /tmp/exec.out 2>&1 && say "exec-$(cat /tmp/exec.out)"
$B events --stats sd1 | grep -q '"current":1' && say stats
$B pause sd1 && $B state sd1 | grep -q '"paused"' && grep -q "frozen 1" $scope/cgroup.events && say paused
$B resume sd1 && $B state sd1 | grep -q '"running"' && say resumed
$B kill --all sd1 KILL
sleep 1
$B state sd1 | grep -q '"stopped"' && say killed
$B delete sd1 2>/dev/console
say "after-delete-$(prop berth-sd1.scope LoadState)-$([ -e $scope ] && echo dir-left || echo dir-gone)"
# No cgroupsPath: berth-<id>.scope in system.slice, as runc's default (with prefix runc).
sed -e 's|"cgroupsPath": "system.slice:berth:sd1",||' -e 's|"sleep 100"|"cat /proc/self/cgroup"|' \
    /bundle/config-sd.json > /bundle/config.json
say "default-$($B run --bundle /bundle sd2 2>&1 | tr -d '\n')"
say "default-after-$(prop berth-sd2.scope LoadState)"
# A bad slice name: an error naming the field, nothing left.
sed -e 's|system.slice:berth:sd1|bad--name.slice:berth:sd3|' /bundle/config-sd.json > /bundle/config.json
say "bad-$($B run --bundle /bundle sd3 2>&1 | tr -d '\n')"
[ -e /run/berth-sd/sd3 ] && say bad-state-left

# The host's cgroup2 options (systemd mounts /sys/fs/cgroup with nsdelegate,memory_recursiveprot)
# must survive containers that mount cgroup at /sys/fs/cgroup with and without a cgroup namespace,
# with and without a cgroup of their own, with either driver: the kernel re-applies those options
# hierarchy-wide from any new cgroup2 mount made in the initial cgroup namespace.
opts() { awk '$5 == "/sys/fs/cgroup" {print $NF}' /proc/self/mountinfo; }
before=$(opts)
say "cgopts-before-$before"
cgmount='{ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "nodev", "noexec"] },'
cgns='{ "type": "cgroup" },'
n=0
for driver in cgroupfs systemd; do
    for ns in none own; do
        for cg in none own; do
            n=$((n + 1))
            sed -e "s|\"mounts\": \[|\"mounts\": [ $cgmount|" -e 's|"sleep 100"|"ls /sys/fs/cgroup \| wc -l"|' \
                /bundle/config-sd.json > /bundle/config.json
            [ "$ns" = own ] && sed -i "s|\"namespaces\": \[|\"namespaces\": [ $cgns|" /bundle/config.json
            # No cgroup of its own (the systemd driver still makes its default scope).
            [ "$cg" = none ] && sed -i -e '/"cgroupsPath"/d' -e '/"resources"/d' -e '/"cpu": {/d' \
                /bundle/config.json
            flag=""
            [ "$driver" = systemd ] && flag=--systemd-cgroup
            # The cgroupfs driver's own cgroup: under the root, where systemd delegates controllers.
            [ "$driver" = cgroupfs ] && sed -i "s|system.slice:berth:sd1|/berth-cg/c$n|" /bundle/config.json
            out=$(/berth --root /run/berth-cg $flag run --bundle /bundle cg$n 2>&1 | tr -d '\n')
            say "cgopts-$driver-ns-$ns-cg-$cg-ran-$out-$( [ "$(opts)" = "$before" ] && echo same || echo "CHANGED-$(opts)")"
        done
    done
done
# The control: a fresh cgroup2 mount made here (the initial cgroup namespace) without options does
# clear them, so the check above can fail; then systemd's options are put back.
mkdir -p /tmp/cg2 && mount -t cgroup2 none /tmp/cg2 && umount /tmp/cg2
say "cgopts-control-$( [ "$(opts)" = "$before" ] && echo same || echo changed)"
mount -o remount,nsdelegate,memory_recursiveprot /sys/fs/cgroup 2>/dev/null
say "cgopts-restored-$( [ "$(opts)" = "$before" ] && echo same || echo changed)"

# Podman with systemd's cgroup manager and berth as its runtime (vfs storage: no overlay module).
P="podman --root /var/tmp/pd --runroot /run/pd --storage-driver vfs --cgroup-manager systemd --runtime /berth"
$P import /bb.tar localhost/bb >/dev/null 2>/dev/console && say podman-imported
say "podman-run-$($P run --rm --network none localhost/bb echo hello 2>/dev/console)"
id=$($P run -d --network none --memory 64m localhost/bb sleep 100 2>/dev/console)
say "podman-memory-$(cat /sys/fs/cgroup/machine.slice/libpod-$id.scope/memory.max 2>&1)-$(prop libpod-$id.scope MemoryMax)"
say "podman-runtime-$($P inspect -f '{{.OCIRuntime}}' $id)"
say "podman-exec-$($P exec $id echo in 2>/dev/console)"
$P pause $id >/dev/null 2>/dev/console && say "podman-pause-$($P inspect -f '{{.State.Status}}' $id)"
$P unpause $id >/dev/null 2>/dev/console && say "podman-unpause-$($P inspect -f '{{.State.Status}}' $id)"
$P rm -f -t 0 $id >/dev/null 2>/dev/console
say "podman-after-$(prop libpod-$id.scope LoadState)"
say "done-at-$(cut -d' ' -f1 /proc/uptime)s"
systemctl --no-block poweroff
