#!/usr/bin/env bash
# Run the README's main job (`mona-kit run`, no arguments) and keep its record under
# benchmarks/results/main-job/, so the numbers the README quotes for it come from a committed file.
#
#   bash benchmarks/record_main_job.sh        # from a checkout set up by install.sh; ~5-12 min on 2 cores
#
# Writes main-job/output.txt (what the command printed, with its wall time and the commit it ran) and
# main-job/runs/<run>/ (config.yaml, env.json, metrics.jsonl, results.json of each method; no weights).
# The previous record is replaced only after the new run has finished.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
out=benchmarks/results/main-job
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
commit=$(git rev-parse --short HEAD)
[ -z "$(git status --porcelain --untracked-files=no -- mona_kit plugins)" ] || commit="$commit (with uncommitted changes)"
load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
.venv/bin/mona-kit run --no-progress | tee "$tmp/output.txt"  # the README's command; bars off for the log
wall=$(( $(date +%s) - start ))
{
  echo
  echo "command: .venv/bin/mona-kit run --no-progress   (recorded by benchmarks/record_main_job.sh)"
  echo "commit: $commit; wall: $((wall / 60)) min $((wall % 60)) s; cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; load average before the start: $load"
} >> "$tmp/output.txt"
mkdir -p "$tmp/runs"
grep '^run directory: ' "$tmp/output.txt" | sed 's/^run directory: //' | while read -r run; do
  mkdir -p "$tmp/runs/$(basename "$run")"
  cp "$run"/config.yaml "$run"/env.json "$run"/metrics.jsonl "$run"/results.json "$tmp/runs/$(basename "$run")/"
done
rm -rf "$out"
mkdir -p "$out"
mv "$tmp/output.txt" "$tmp/runs" "$out/"
echo "recorded in $out/"
