# Sourced (not run) by the scripts that debootstrap a Debian root from the host's Debian mirror:
# scripts/lab-docker-image (the compose lab's base image) and scripts/vm-image (the VM lab's
# disk image). Functions only; the caller has `set -euo pipefail`.
#
#   debian_mirror SUITE               the mirror the host's apt uses for SUITE (one-line
#                                     sources.list/*.list or deb822 *.sources); nothing if none
#   debian_mirror_or_die SUITE WHO    PODMESH_LAB_MIRROR, else the host's mirror, else exit 1
#   debootstrap_root ROOT SUITE INCLUDE MIRROR LOG
#                                     a --variant=minbase root with INCLUDE (comma-separated);
#                                     package scripts start no daemons on this host meanwhile
#   release_root ROOT                 kills what runs chrooted in ROOT and unmounts what is
#                                     mounted under it (a failed debootstrap leaves /proc etc.)
#
# The mirror is never written into the repository: each machine uses its own.

debian_mirror() {
  local suite="$1" f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$suite" '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      if ($(i+1)==s) { print $i; exit } }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$suite" 'BEGIN{RS=""} /(^|\n)Types:[^\n]*deb( |\n|$)/ {
      uri=""; ok=0; n=split($0, l, "\n")
      for (k=1; k<=n; k++) {
        if (l[k] ~ /^URIs:/) { split(l[k], u, " "); uri=u[2] }
        if (l[k] ~ /^Suites:/) { m=split(l[k], w, " "); for (j=2; j<=m; j++) if (w[j]==s) ok=1 }
      }
      if (ok && uri!="") { print uri; exit } }' "$f"
  done
}

debian_mirror_or_die() {
  local suite="$1" who="$2" m
  m="${PODMESH_LAB_MIRROR:-$(debian_mirror "$suite" | head -n1)}"
  if [ -z "$m" ]; then
    echo "$who: no Debian $suite mirror in /etc/apt/sources.list(.d); set PODMESH_LAB_MIRROR" >&2
    exit 1
  fi
  printf '%s\n' "$m"
}

debootstrap_root() {
  local root="$1" suite="$2" include="$3" mirror="$4" log="$5"
  mkdir -p "$root"
  if ! debootstrap --variant=minbase --include="$include" --foreign "$suite" "$root" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2; echo "debootstrap (first stage) of $suite from $mirror failed; log above" >&2; return 1
  fi
  # Package scripts must not start daemons (etcd, sshd) on this host while the root is configured.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  if ! chroot "$root" /debootstrap/debootstrap --second-stage >>"$log" 2>&1; then
    tail -20 "$log" >&2; echo "debootstrap (second stage) of $suite failed; log above" >&2; return 1
  fi
  rm -f "$root/usr/sbin/policy-rc.d"
  chroot "$root" apt-get clean
  rm -rf "$root/var/lib/apt/lists/"* "$root/var/log/"*.log
}

release_root() {
  local root="$1" p m
  [ -d "$root" ] || return 0
  for p in /proc/[0-9]*; do
    [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ] && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  findmnt -rn -o TARGET | { grep -F "$root/" || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
}
