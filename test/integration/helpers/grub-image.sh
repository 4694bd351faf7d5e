#!/bin/sh
# Make a tiny image that carries the host's own GRUB (BIOS) tools, their libraries, and busybox
# for the shell tools grub-mkconfig uses: enough for `grub-install` + `update-grub` in a chroot.
# The host has no debootstrapped image cached, and building one takes minutes; this keeps the
# real bootloader code path (the image's own GRUB, run inside the target) testable on loop devices.
set -eu
dir=$1
mkdir -p "$dir/usr/bin" "$dir/usr/sbin" "$dir/usr/lib/x86_64-linux-gnu" "$dir/usr/lib64" "$dir/etc/default" "$dir/boot/grub" "$dir/dev" "$dir/proc" "$dir/sys" "$dir/tmp" "$dir/run" "$dir/root"
for l in bin sbin lib lib64; do ln -sfn usr/$l "$dir/$l"; done
copy() { mkdir -p "$dir$(dirname "$1")"; cp -a "$1" "$dir$1"; }
bins="/usr/sbin/grub-install /usr/sbin/grub-probe /usr/sbin/grub-mkconfig /usr/sbin/update-grub /usr/bin/grub-script-check /usr/bin/grub-mkrelpath /usr/bin/grub-editenv /usr/bin/grub-mkimage"
for b in $bins; do [ -e "$b" ] && copy "$b"; done
for b in $bins; do [ -e "$b" ] && ldd "$b" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}'; done | sort -u | while read -r lib; do
  [ -e "$lib" ] || continue
  real=$(readlink -f "$lib"); base=$(basename "$lib")
  case "$lib" in /lib64/*) tgt=usr/lib64 ;; *) tgt=usr/lib/x86_64-linux-gnu ;; esac
  cp "$real" "$dir/$tgt/$base"
done
cp -a /usr/lib/grub "$dir/usr/lib/"
rm -rf "$dir/usr/lib/grub/x86_64-efi"
mkdir -p "$dir/usr/share"
cp -a /usr/share/grub "$dir/usr/share/"
cp -a /etc/grub.d "$dir/etc/"
[ -e /usr/share/grub/default/grub ] && cp /usr/share/grub/default/grub "$dir/etc/default/grub"
cp /bin/busybox "$dir/usr/bin/busybox"
for a in sh sed grep sort find tr cat mkdir rm mv cp ls head tail basename dirname uname id printf echo test [ awk cut wc readlink touch stat chmod sleep env expr true false which tac mktemp uniq od; do
  [ -e "$dir/usr/bin/$a" ] || ln -s busybox "$dir/usr/bin/$a"
done
printf '#!/bin/sh\nprintf "%%s" "$1"\n' > "$dir/usr/bin/gettext"
chmod 755 "$dir/usr/bin/gettext"
printf 'root:x:0:0:root:/root:/bin/sh\n' > "$dir/etc/passwd"
printf 'PRETTY_NAME="Ferry GRUB test image"\nID=debian\n' > "$dir/etc/os-release"
# grub-probe asks `udevadm info --query path --name DEV` for a partition's disk. A real image has
# udev; this one answers the same question from sysfs, which is all udevadm would do here.
cat > "$dir/usr/bin/udevadm" <<'SH'
#!/bin/sh
for a in "$@"; do dev=$a; done
p=$(readlink -f "/sys/class/block/$(basename "$dev")") || exit 1
echo "${p#/sys}"
SH
chmod 755 "$dir/usr/bin/udevadm"
