#!/usr/bin/env bash
# Runs the openai-client tests against a rocforge binary. Installs the pinned `openai` package
# from the npm registry into tests/server/js/node_modules (gitignored) once; later runs reuse it.
# Exit 77 (ctest: SKIPPED) with the reason when node/npm, the model or the package is unavailable.
# usage: run.sh <rocforge binary> <default test data dir>
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:?rocforge binary}
data=${ROCFORGE_TEST_DATA:-${2:?test data dir}}
model="$data/models/stories260K/stories260K.gguf"

command -v node >/dev/null || { echo "SKIPPED: node not found"; exit 77; }
command -v npm >/dev/null || { echo "SKIPPED: npm not found"; exit 77; }
[ -f "$model" ] || { echo "SKIPPED: fixture $model not found (set ROCFORGE_TEST_DATA)"; exit 77; }
[ -x "$bin" ] || { echo "FAILED: $bin is not an executable"; exit 1; }

want=$(node -e "console.log(require('$here/package.json').dependencies.openai)")
have=$(node -e "try{console.log(require('$here/node_modules/openai/package.json').version)}catch(e){}" 2>/dev/null)
if [ "$have" != "$want" ]; then
  # Several builds share the source tree: one installer at a time.
  exec 9>"$here/.npm-install.lock"
  flock 9
  have=$(node -e "try{console.log(require('$here/node_modules/openai/package.json').version)}catch(e){}" 2>/dev/null)
  if [ "$have" != "$want" ]; then
    if ! out=$(cd "$here" && timeout 120 npm ci --no-audit --no-fund --prefer-offline 2>&1); then
      echo "SKIPPED: npm install of openai@$want failed (registry unreachable?):"
      echo "$out" | tail -5
      exit 77
    fi
  fi
  flock -u 9
fi

cd "$here"
ROCFORGE_BIN="$bin" ROCFORGE_MODEL="$model" exec node --test --test-reporter=spec openai_client.test.mjs
