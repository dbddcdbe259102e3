#!/usr/bin/env bash
# bench/verify.sh [FILES] [RUNS]   (defaults 20000 and 9)
#
# Issue 13: `verify` of a FILES-file live release (every file hashed as git hashes it)
# against the checkout of the same release (target: no slower than the checkout).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
files=${1:-20000}
runs=${2:-9}
agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-verify-XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
mapfile -t shas < <("$shared/mkrepo.sh" "$files" "$work/repo")
sha=${shas[-1]}
checkouts=() verifies=()
for (( i = 0; i < runs; i++ )); do
  rm -rf "$work/root"
  # The deploy's own checkout line: "checkout 0.31s   ..."
  line=$("$agent" deploy --root "$work/root" --repo "$work/repo" --sha "$sha" 2>&1 | grep '^checkout' || true)
  checkouts+=("$(echo "$line" | awk '{sub("s$", "", $2); printf "%.1f\n", $2 * 1000}')")
  t0=$(now); "$agent" verify --root "$work/root" >/dev/null; t1=$(now)
  verifies+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", (b - a) / 1e6 }')")
done
checkout=$(printf '%s\n' "${checkouts[@]}" | median)
verify=$(printf '%s\n' "${verifies[@]}" | median)
file=$(mktemp)
cat > "$file" <<MD
## verify against the checkout (bench/verify.sh)

\`bash bench/verify.sh $files $runs\` on $(date -u +%Y-%m-%d), $(machine_line), tmpfs; medians of $runs runs
of the static release binary on a $files-file release.

| | ms | target |
|---|---|---|
| checkout (the deploy's own stage line) | $checkout | |
| \`verify\` (whole command: every file hashed, modes, links, added files) | $verify | <= checkout |
MD
write_section verify "$file"
cat "$file"
