#!/usr/bin/env bash
# npm test: set up what is missing, type-check, then run every test file with
# node's test runner (TSBPF_TEST_FILES narrows it to some files).
# The VM suite (test/vm.test.ts: guest kernels 6.1 and 6.12 under QEMU, a few
# minutes) is part of it; TSBPF_TEST_HOST_ONLY=1 or `npm test -- --host-only`
# runs the host suite alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for arg in "$@"; do
  case "$arg" in
    --host-only) export TSBPF_TEST_HOST_ONLY=1 ;;
    *) echo "usage: npm test [-- --host-only]" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
npx tsc --noEmit -p .
files=${TSBPF_TEST_FILES:-test/*.test.ts}
if [ "${TSBPF_TEST_HOST_ONLY:-}" = 1 ] && [ -z "${TSBPF_TEST_FILES:-}" ]; then
  files=$(printf '%s\n' test/*.test.ts | grep -vx 'test/vm\.test\.ts')
fi
# shellcheck disable=SC2086
exec node --import tsx --test --test-concurrency=1 $files
