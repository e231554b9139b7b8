#!/usr/bin/env bash
# Installs what tsbpf needs on a fresh Debian machine (as root): clang and
# libbpf's headers to compile BPF C, bpftool for vmlinux.h, then npm packages
# and the native addon, and bundles the CLI into dist/cli/ (esbuild). Idempotent: does nothing that is already done.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
need=()
command -v clang >/dev/null || need+=(clang)
command -v bpftool >/dev/null || need+=(bpftool)
[ -e /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
command -v make >/dev/null || need+=(make)
command -v g++ >/dev/null || need+=(g++)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >&2
fi
if [ ! -e node_modules/.package-lock.json ] || [ ! -e build/Release/tsbpf_native.node ] || [ package.json -nt node_modules/.package-lock.json ] || [ native/tsbpf.c -nt build/Release/tsbpf_native.node ]; then
  npm install --no-audit --no-fund >&2
fi
# The CLI runs dist/cli/main.js (the sources bundled by esbuild) when it is newer than every source.
if [ ! -e dist/cli/main.js ] || [ -n "$(find src -name '*.ts' -newer dist/cli/main.js -print -quit)" ]; then
  npm run -s build:cli >&2
fi
