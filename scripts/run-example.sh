#!/usr/bin/env bash
# npm run hello: set up, then run an example from examples/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec npx tsx "examples/$1.ts" "${@:2}"
