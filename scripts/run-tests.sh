#!/usr/bin/env bash
# Run the test tiers in order (unit, integration, vm) and print one closing line
# "tests: N passed, N failed, N skipped" over all of them. Exit non-zero if any tier fails.
# TIERS="unit integration" limits the tiers.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/test-results
tiers=${TIERS:-unit integration vm}
status=0
for t in $tiers; do
  echo "=== test tier: $t"
  npx vitest run --project "$t" --reporter=default --reporter=json --outputFile.json="build/test-results/$t.json" || status=1
done
node -e '
  const fs = require("fs");
  let p = 0, f = 0, s = 0;
  for (const t of process.argv.slice(1)) {
    const file = `build/test-results/${t}.json`;
    if (!fs.existsSync(file)) { f++; console.log(`tier ${t}: no results`); continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    p += r.numPassedTests; f += r.numFailedTests; s += r.numPendingTests + (r.numTodoTests || 0);
    console.log(`tier ${t}: ${r.numPassedTests} passed, ${r.numFailedTests} failed`);
  }
  console.log(`tests: ${p} passed, ${f} failed, ${s} skipped`);
' $tiers
exit $status
