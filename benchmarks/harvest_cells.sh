#!/usr/bin/env bash
# Copy a sweep's finished cells from a frozen worktree into this checkout and commit them.
#
#   bash benchmarks/harvest_cells.sh WORKTREE [RESULTS_NAME]     # RESULTS_NAME: default main-cpu
#
# Long sweeps run from `git worktree add --detach WORKTREE HEAD` so that editing this checkout cannot
# change the code or profile under them. A cell counts as finished when its results.json and seedN.log
# exist; its folder (without checkpoints/), seedN.log and seedN.yaml are copied and committed. Cells
# this checkout already has are skipped, and so are cells the WORKTREE's own checkout tracks: those are
# an older commit's files, not the sweep's output (copying them back would undo a `git mv` revision).
set -euo pipefail
wt=$(cd "${1:?usage: harvest_cells.sh WORKTREE [RESULTS_NAME]}" && pwd)
name=${2:-main-cpu}
here=$(git rev-parse --show-toplevel)
added=()
shopt -s nullglob
for res in "$wt"/benchmarks/results/"$name"/cells/*/*/seed*/results.json; do
  res=${res#"$wt"/}
  cell=$(dirname "$res"); parent=$(dirname "$cell"); seed=$(basename "$cell")
  [ -f "$wt/$parent/$seed.log" ] || continue
  [ -f "$here/$res" ] && continue
  git -C "$wt" ls-files --error-unmatch "$res" >/dev/null 2>&1 && continue
  mkdir -p "$here/$parent"
  tar -C "$wt" --exclude=checkpoints -cf - "$cell" "$parent/$seed.log" "$parent/$seed.yaml" | tar -C "$here" -xf -
  added+=("$cell" "$parent/$seed.log" "$parent/$seed.yaml")
done
if [ ${#added[@]} -eq 0 ]; then echo "nothing new"; exit 0; fi
cd "$here"
git add -f "${added[@]}"
labels=$(printf '%s\n' "${added[@]}" | grep -v '\.log$\|\.yaml$' | sed "s|benchmarks/results/$name/cells/||" | paste -sd, -)
git commit -q -m "$name sweep: $(( ${#added[@]} / 3 )) finished cells ($labels)" -- "${added[@]}"
echo "committed $(( ${#added[@]} / 3 )): $labels"
