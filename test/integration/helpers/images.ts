/** Small images for installer tests. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A tiny Debian-like image: busybox as /bin/sh, users, SSH host keys, ifupdown, update-initramfs. */
export function busyboxImage(dir: string): void {
  const w = (p: string, data: string, mode = 0o644) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), data, { mode });
    fs.chmodSync(path.join(dir, p), mode);
  };
  fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  fs.chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  for (const a of ['sh', 'ls', 'cat', 'id', 'echo']) fs.symlinkSync('busybox', path.join(dir, 'bin', a));
  for (const d of ['dev', 'proc', 'sys', 'tmp', 'root', 'boot', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.chmodSync(path.join(dir, 'tmp'), 0o1777);
  w('etc/hostname', 'master\n');
  w('etc/hosts', '127.0.0.1\tlocalhost\n127.0.1.1\tmaster\n\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  w('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nadmin:x:1000:1000:Admin:/home/admin:/bin/sh\n');
  w('etc/motd', 'Welcome to MASTER.\n');
  w('etc/ssh/sshd_config', 'PermitRootLogin no\n');
  for (const k of ['rsa', 'ed25519']) {
    w(`etc/ssh/ssh_host_${k}_key`, 'PRIVATE\n', 0o600);
    w(`etc/ssh/ssh_host_${k}_key.pub`, `ssh-${k} AAAA master\n`);
  }
  w('etc/machine-id', 'ffffffffffffffffffffffffffffffff\n', 0o444);
  w('var/lib/dbus/machine-id', 'ffffffffffffffffffffffffffffffff\n');
  w('sbin/ifup', '#!/bin/sh\n', 0o755);
  w('usr/sbin/update-initramfs', '#!/bin/sh\necho "update-initramfs $*" > /boot/initramfs-rebuilt\n', 0o755);
  fs.mkdirSync(path.join(dir, 'home/admin'), { recursive: true });
  fs.chownSync(path.join(dir, 'home/admin'), 1000, 1000);
}

