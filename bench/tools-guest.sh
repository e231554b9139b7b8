#!/usr/bin/env bash
# bench/tools-guest.ts in a Debian guest kernel, tsbpf's event tools beside BCC's:
#   bash bench/tools-guest.sh [6.12|6.1] [extra bench/tools-guest.ts options...]
# BCC's runtime and the kernel's headers are staged by bench/startup-guest.sh (the same
# directory, made there on first use with one short boot); this adds the BCC tools it
# benchmarks (biosnoop-bpfcc, tcpconnect-bpfcc) and a scratch raw disk (/dev/vda in the
# guest) for direct-I/O dd. Takes the kernel-test lock; several minutes of both cores.
set -euo pipefail
series=${1:-6.12}
shift || true
cd "$(dirname "$0")/.."

pkg=$(node bin/tsbpf.js vm kernels | awk -v s="$series" '$1 == s { print $2 }')
[ -n "$pkg" ] || { echo "no Debian kernel for series $series" >&2; exit 1; }
release=${pkg#linux-image-}
stage=${TSBPF_BENCH_STAGE:-${TMPDIR:-/tmp}/tsbpf-startup-guest-$release}
if [ ! -e "$stage/.complete" ]; then
  TSBPF_BENCH_STAGE=$stage flock /tmp/tsbpf-kernel.lock bash bench/startup-guest.sh "$series" -- true
fi
for tool in biosnoop tcpconnect; do
  [ -e "$stage/usr/sbin/$tool-bpfcc" ] || cp -L "/usr/sbin/$tool-bpfcc" "$stage/usr/sbin/"
done

objects="$stage/objects"
node --import tsx scripts/build-bpf.ts "$objects" >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/tsbpf-tools-guest-XXXXXX")
trap 'rm -rf "$work"' EXIT
truncate -s 256M "$work/scratch.img"

flock /tmp/tsbpf-kernel.lock node bin/tsbpf.js vm run --kernel "$series" --mem 4G --timeout 3000 \
  --file "$stage/usr:/usr" --file "$objects" --disk "$work/scratch.img" -- \
  node --import tsx bench/tools-guest.ts --bcc --disk /dev/vda --objects "$objects" "$@"
