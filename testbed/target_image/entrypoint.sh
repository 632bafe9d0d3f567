#!/bin/sh
# systemd 257 and the target's own dockerd need a private cgroup2 view; the host
# gives a cgroup v1 hybrid, so replace it before systemd starts.
set -e
if [ "$(stat -f -c %T /sys/fs/cgroup)" != "cgroup2fs" ]; then
    umount -R /sys/fs/cgroup 2>/dev/null || umount -l /sys/fs/cgroup
    mount -t cgroup2 -o rw,nosuid,nodev,noexec,relatime,nsdelegate cgroup2 /sys/fs/cgroup
fi
# Docker bind-mounts /etc/hostname and /etc/hosts; a VPS owns them and tools rewrite them.
umount /etc/hostname 2>/dev/null || true
umount /etc/hosts 2>/dev/null || true
exec /sbin/init
