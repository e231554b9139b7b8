#!/usr/bin/env bash
# npm test: type-check, then run the three suites with node's test runner, in
# this order, each with its own summary:
#   unit    test/unit/*.test.ts: no root, no clang, no kernel (parsing, CO-RE,
#           codecs, dialect translation) on the committed objects of
#           test/fixtures/ (scripts/build-fixtures.ts builds them from C)
#   kernel  test/kernel/*.test.ts: root, clang, this host's kernel
#   vm      test/vm/*.test.ts: guest kernels 6.1 and 6.12 under QEMU (minutes)
# `npm test -- --unit` runs the unit suite alone and needs neither root nor
# clang (nor does it run scripts/setup.sh); `--host-only` (or
# TSBPF_TEST_HOST_ONLY=1) runs unit and kernel; `--kernel` and `--vm` one suite.
# TSBPF_TEST_FILES="test/unit/a.test.ts test/kernel/b.test.ts" runs those files alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
suites=(unit kernel vm)
[ "${TSBPF_TEST_HOST_ONLY:-}" = 1 ] && suites=(unit kernel)
for arg in "$@"; do
  case "$arg" in
    --host-only) suites=(unit kernel) ;;
    --unit) suites=(unit) ;;
    --kernel) suites=(kernel) ;;
    --vm) suites=(vm) ;;
    *) echo "usage: npm test [-- --unit | --kernel | --vm | --host-only]" >&2; exit 2 ;;
  esac
done
# The unit suite needs only node and the npm packages: no apt, no addon, no clang.
if [ "${suites[*]}" != unit ] || [ -n "${TSBPF_TEST_FILES:-}" ]; then
  bash scripts/setup.sh
  # The workloads and peers the kernel and vm suites drive (a fresh machine has none of them):
  # ip/tc (packets), mkfs.xfs/mkfs.btrfs (fsslower), openssl and GnuTLS (sslsniff),
  # <sys/sdt.h> (USDT fixtures), Debian's python3 (USDT probes), bpfcc-tools (BCC's tools without a mirror: bcc-corpus).
  missing=()
  for p in iproute2 xfsprogs btrfs-progs openssl libgnutls28-dev systemtap-sdt-dev python3 bpfcc-tools; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2; }
  fi
fi
npx tsc --noEmit -p .
if [ -n "${TSBPF_TEST_FILES:-}" ]; then
  # shellcheck disable=SC2086
  exec node --import tsx --test --test-concurrency=1 $TSBPF_TEST_FILES
fi
failed=()
passed_total=0
failed_total=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for suite in "${suites[@]}"; do
  echo "# suite: $suite (test/$suite/)"
  start=$SECONDS
  # shellcheck disable=SC2046
  node --import tsx --test --test-concurrency=1 $(printf '%s\n' test/"$suite"/*.test.ts) | tee "$log" || failed+=("$suite")
  passed_total=$((passed_total + $(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1 | grep . || echo 0)))
  failed_total=$((failed_total + $(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1 | grep . || echo 0)))
  echo "# suite $suite: $((SECONDS - start)) s"
done
[ ${#failed[@]} -gt 0 ] && echo "# failed suites: ${failed[*]}" >&2
# One closing line for all suites together (each suite's own summary is above).
echo "tests: $passed_total passed, $failed_total failed"
[ ${#failed[@]} -eq 0 ]
