#!/bin/sh
# PID 1 of the SELinux guest of scripts/vm-test.sh (Debian's kernel booted with security=selinux):
# loads Debian's selinux-policy-default with berth's test module (scripts/guest/berth-test.cil),
# labels the root, turns enforcing on, then runs containers with process.selinuxLabel and
# linux.mountLabel. Prints RESULT-se-* lines; the host decides PASS or FAIL.
say() { echo "RESULT-se-$*" > /dev/console; }
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mount -t selinuxfs selinuxfs /sys/fs/selinux
load_policy -i > /dev/console 2>&1
setfiles -F -e /proc -e /sys -e /dev -e /run -e /tmp \
    /etc/selinux/default/contexts/files/file_contexts / > /dev/null 2>&1
mkdir -p /vol
echo "host secret" > /vol/secret
chcon system_u:object_r:berth_secret_t:s0 /vol/secret
setenforce 1
say "enforce-$(cat /sys/fs/selinux/enforce)"
say "self-$(cat /proc/self/attr/current | tr -d '\0')"
/berth features | tr -d ' \n' | grep -o '"selinux":{"enabled":[a-z]*}' | sed 's/^/RESULT-se-features-/' > /dev/console
B="/berth --root /run/berth"
run() {
    cp "/bundle/config-$1.json" /bundle/config.json
    $B run --bundle /bundle "se-$1" 2>&1 | tr '\n' ' '
}
say "free $(run free)"
say "confined $(run confined)"
say "badlabel $(run badlabel)"
[ -e /run/berth/se-badlabel ] && say "badlabel-state-left"
say "badmount $(run badmount)"
[ -e /run/berth/se-badmount ] && say "badmount-state-left"
# exec: the process label given to exec (runc's --process-label), and the container's by default.
cp /bundle/config-sleep.json /bundle/config.json
$B create --bundle /bundle se-exec && $B start se-exec
say "exec-default $($B exec se-exec cat /proc/self/attr/current | tr -d '\0')"
say "exec-label $($B exec --process-label system_u:system_r:berth_confined_t:s0 se-exec cat /proc/self/attr/current | tr -d '\0')"
$B delete --force se-exec
say "done"
echo o > /proc/sysrq-trigger
