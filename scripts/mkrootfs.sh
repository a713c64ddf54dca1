#!/bin/sh
# Builds the bundled busybox rootfs in rootfs/ (or $1) from Debian's busybox-static.
# Installs busybox-static when it is missing. Idempotent; no binaries are kept in git.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-"$here/rootfs"}
bb=/bin/busybox
if ! dpkg -s busybox-static >/dev/null 2>&1; then
    echo "mkrootfs: installing busybox-static" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
mkdir -p "$dest"
for d in bin sbin etc proc sys dev tmp root home usr/bin usr/sbin var/tmp run mnt; do
    mkdir -p "$dest/$d"
done
chmod 1777 "$dest/tmp" "$dest/var/tmp"
cp "$bb" "$dest/bin/busybox.new" && mv "$dest/bin/busybox.new" "$dest/bin/busybox"
chmod 0755 "$dest/bin/busybox"
# One symlink per applet, relative so the rootfs works wherever it is.
"$dest/bin/busybox" --list-full | while read -r applet; do
    case "$applet" in bin/busybox|"") continue ;; esac
    dir=$(dirname "$applet")
    mkdir -p "$dest/$dir"
    up=$(printf '%s' "$dir" | sed 's|[^/][^/]*|..|g')
    ln -sfn "$up/bin/busybox" "$dest/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dest/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' > "$dest/etc/group"
echo "mkrootfs: busybox rootfs ready in $dest"
