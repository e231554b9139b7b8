#!/usr/bin/env bash
# bench/startup.ts inside a Debian guest kernel (tsbpf vm, QEMU), next to BCC's opensnoop:
#   bash bench/startup-guest.sh [6.12|6.1] [extra bench/startup.ts options...]
#   bash bench/startup-guest.sh 6.12 -- CMD...   (CMD in the same guest instead, to look around)
#   TSBPF_STAGE_ONLY=1 bash bench/startup-guest.sh 6.12   (stage only; prints the directory)
# The guest has no clang: tsbpf runs from CO-RE objects built here. BCC needs the guest
# kernel's headers and its own runtime, none of which the guest image has, so this stages
#   - linux-headers-RELEASE + linux-headers-...-common (apt-get download, dpkg-deb -x),
#     with /lib/modules/RELEASE/{build,source} pointing at them, as the packages install it;
#   - the host's bpfcc-tools (apt-get install bpfcc-tools): /usr/sbin/opensnoop-bpfcc,
#     python3.11 and its standard library, python3-bpfcc, libbcc and what ldd lists for them;
# under one directory that is copied over the guest's /usr (--file DIR:/usr).
set -euo pipefail
series=${1:-6.12}
shift || true
cd "$(dirname "$0")/.."
bash scripts/setup.sh   # among others, dist/cli/ up to date: a stale bundle would run through tsx

pkg=$(node bin/tsbpf.js vm kernels | awk -v s="$series" '$1 == s { print $2 }')
[ -n "$pkg" ] || { echo "no Debian kernel for series $series" >&2; exit 1; }
release=${pkg#linux-image-}        # 6.12.117+deb12-cloud-amd64
common=${release%-cloud-amd64}-common
[ "$common" != "$release-common" ] || common=${release%-amd64}-common

command -v opensnoop-bpfcc >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y bpfcc-tools >&2

stage=${TSBPF_BENCH_STAGE:-${TMPDIR:-/tmp}/tsbpf-startup-guest-$release}
if [ ! -e "$stage/.complete" ]; then
  rm -rf "$stage"
  mkdir -p "$stage/debs" "$stage/x" "$stage/usr"
  (cd "$stage/debs" && apt-get download -q -o APT::Sandbox::User=root "linux-headers-$release" "linux-headers-$common" >&2)
  for deb in "$stage"/debs/*.deb; do dpkg-deb -x "$deb" "$stage/x"; done
  mkdir -p "$stage/usr/src" "$stage/usr/lib/modules/$release"
  mv "$stage"/x/usr/src/* "$stage/usr/src/"
  ln -s "/usr/src/linux-headers-$release" "$stage/usr/lib/modules/$release/build"
  ln -s "/usr/src/linux-headers-$common" "$stage/usr/lib/modules/$release/source"
  rm -rf "$stage/x" "$stage/debs"
  # BCC's runtime, dereferenced (the guest's /lib is the same merged-/usr symlink as here).
  copy() { for f in "$@"; do mkdir -p "$stage$(dirname "$f")"; cp -rL "$f" "$stage$(dirname "$f")/"; done; }
  copy /usr/sbin/opensnoop-bpfcc /usr/bin/python3.11 /usr/lib/python3/dist-packages/bcc
  ln -s python3.11 "$stage/usr/bin/python3"
  mkdir -p "$stage/usr/lib/python3.11"
  (cd /usr/lib/python3.11 && tar --exclude=test --exclude=__pycache__ --exclude=idlelib --exclude=tkinter --exclude=ensurepip -cf - .) | tar -xf - -C "$stage/usr/lib/python3.11"
  libs=$(ldd /usr/lib/x86_64-linux-gnu/libbcc.so.0 /usr/bin/python3.11 /usr/lib/python3.11/lib-dynload/*.so 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u)
  for lib in $libs; do
    real=$(readlink -f "$lib"); dir=/usr/lib/x86_64-linux-gnu
    mkdir -p "$stage$dir"; cp -L "$real" "$stage$dir/$(basename "$lib")"
  done
  # and those bcc's Python opens with ctypes by name
  for lib in libbcc.so.0 librt.so.1 libdl.so.2 libpthread.so.0; do cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$stage/usr/lib/x86_64-linux-gnu/"; done
  touch "$stage/.complete"
fi
echo "staged $(du -sh "$stage" | cut -f1) in $stage" >&2
# TSBPF_STAGE_ONLY=1: only stage, and print where (bench/bcc-corpus-guest.ts boots its own guest).
if [ "${TSBPF_STAGE_ONLY:-}" = 1 ]; then echo "$stage"; exit 0; fi

objects="$stage/objects"
node --import tsx scripts/build-bpf.ts "$objects" >/dev/null

vm=(node bin/tsbpf.js vm run --kernel "$series" --mem 4G --timeout 3000 --file "$stage/usr:/usr" --file "$objects" --)
if [ "${1:-}" = "--" ]; then shift; exec "${vm[@]}" "$@"; fi
exec "${vm[@]}" node --import tsx bench/startup.ts --objects "$objects" --bcc /usr/sbin/opensnoop-bpfcc "$@"
