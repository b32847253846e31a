#!/bin/bash
# Finds the vhost-user backend for a device type the way management software does (docs/interop/
# vhost-user.rst, "VhostUserBackend" descriptors): files from /usr/share/qemu/vhost-user, /etc/qemu/vhost-user
# and $XDG_CONFIG_HOME/qemu/vhost-user (default ~/.config), a file in a more specific directory replacing the
# one of the same name in a less specific one, an empty file hiding it; the survivors sorted by file name;
# the first whose "type" matches wins. Prints "FILE BINARY". ROOT prefixes the first two directories (tests).
#   find-vhost-user-backend.sh TYPE
set -euo pipefail
type=${1:?type}
root=${ROOT:-}
dirs=("$root/usr/share/qemu/vhost-user" "$root/etc/qemu/vhost-user" "${XDG_CONFIG_HOME:-$HOME/.config}/qemu/vhost-user")
declare -A chosen
for d in "${dirs[@]}"; do # least specific first: later directories replace earlier ones
  [ -d "$d" ] || continue
  for f in "$d"/*.json; do
    [ -e "$f" ] || continue
    chosen[$(basename "$f")]=$f
  done
done
for name in $(printf '%s\n' "${!chosen[@]}" | sort); do
  f=${chosen[$name]}
  [ -s "$f" ] || continue # an empty file hides the name
  t=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("type",""), d.get("binary",""))' "$f")
  if [ "${t%% *}" = "$type" ]; then
    echo "$f ${t#* }"
    exit 0
  fi
done
echo "no vhost-user backend of type $type" >&2
exit 1
