#!/usr/bin/env bash
# Regenerates everything in results/synth-quick/ with the commands its README names (about an hour on two
# CPU cores). Run from the repository root in the project's environment: bash results/synth-quick/regenerate.sh
# DIAG_RUNS holds the diagnostic runs (retrained with the probes' hooks; not committed).
set -euo pipefail
OUT=results/synth-quick
DIAG_RUNS=${DIAG_RUNS:-$(mktemp -d)}
rm -rf "$OUT/runs" "$OUT/diagnose" "$OUT"/{runs.csv,summary.csv,table.md,faithfulness.md,nrg.csv}
time ratbench run --methods rnp,ver --datasets synth --seeds 1,2 --profile quick --jobs 2 --results "$OUT"
time ratbench run --methods all --datasets synth-appearance --seeds 1,2 --profile quick --jobs 2 --results "$OUT"
ratbench report --results "$OUT" --baseline rnp
DIAG=(--methods rnp,ver --datasets synth-appearance --seeds 1,2 --profile quick --jobs 2 --results "$DIAG_RUNS"
      --out "$OUT/diagnose" --set probes=nonoverlap,lipschitz)
time ratbench diagnose --probe lipschitz "${DIAG[@]}"
ratbench diagnose --probe nonoverlap "${DIAG[@]}"
ratbench diagnose --probe gold "${DIAG[@]}"
time ratbench diagnose --probe random-dz --methods rnp --datasets synth-appearance --seeds 1,2 --profile quick \
    --jobs 2 --results "$DIAG_RUNS" --out "$OUT/diagnose"
time ratbench diagnose --probe sweep --methods ver --datasets synth-appearance --seeds 1,2 --profile quick \
    --jobs 2 --results "$DIAG_RUNS" --out "$OUT/diagnose" --values 0,0.3,0.5
