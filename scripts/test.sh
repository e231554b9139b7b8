#!/usr/bin/env bash
# npm test: set up what is missing, type-check, then run every test file with
# node's test runner (TSBPF_TEST_FILES narrows it to some files).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
npx tsc --noEmit -p .
# shellcheck disable=SC2086
exec node --import tsx --test --test-concurrency=1 ${TSBPF_TEST_FILES:-test/*.test.ts}
