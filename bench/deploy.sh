#!/usr/bin/env bash
# bench/deploy.sh [RUNS]   (default 5)
#
# Times a one-commit `release-agent deploy` of a 20,000-file repository against
# the shell-script baseline (../shared/bench/naive_deploy.sh) and Capistrano 3 (SSHKit's
# local backend, bench/capistrano/) in the same run, on tmpfs (/dev/shm) when present,
# taking turns, and writes BENCHMARKS.md.
# Needs: git, a release build (made here with `swift build -c release`), and `cap`
# (Debian's capistrano; installed here with apt when run as root, else left out).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-5}
files=${BENCH_FILES:-20000}
[ -x "$shared/mkrepo.sh" ] || { echo "bench: $shared/mkrepo.sh not found; set SHARED_BENCH" >&2; exit 2; }

agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "bench: making a $files-file repository with $((runs + 1)) deployable commits in $work" >&2
mapfile -t shas < <(MKREPO_EXTRA_COMMITS=$runs "$shared/mkrepo.sh" "$files" "$work/repo")
first=${shas[3]}

now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2))}'; }
minmax() { sort -n | awk 'NR==1{min=$1} {max=$1} END {print min "-" max}'; }

ours() { "$agent" deploy --root "$work/ours" --repo "$work/repo" --build true --sha "$1" >/dev/null 2>&1; }
if ! command -v cap >/dev/null && [ "$(id -u)" = 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y capistrano >/dev/null 2>&1 || true
fi
have_cap=$(command -v cap >/dev/null && echo yes || echo no)
cap_deploy() {
  (cd "$top/bench/capistrano" && CAP_REPO="$work/repo" CAP_REV="$1" CAP_DEPLOY_TO="$work/cap" \
    cap bench deploy >/dev/null 2>&1)
}
naive() { NAIVE_BUILD=true NAIVE_HEALTH=: "$shared/naive_deploy.sh" "$work/repo" "$1" "$work/naive" >/dev/null 2>&1; }

t0=$(now); ours "$first"; t1=$(now); cold_ours=$(ms "$t0" "$t1")
t0=$(now); naive "$first"; t1=$(now); cold_naive=$(ms "$t0" "$t1")
cold_cap=-
if [ "$have_cap" = yes ]; then t0=$(now); cap_deploy "$first"; t1=$(now); cold_cap=$(ms "$t0" "$t1"); fi

: > "$work/ours.ms"; : > "$work/naive.ms"; : > "$work/cap.ms"
for (( i = 0; i < runs; i++ )); do
  sha=${shas[$((4 + i))]}
  t0=$(now); ours "$sha"; t1=$(now); ms "$t0" "$t1" >> "$work/ours.ms"
  settle "$work/ours"
  t0=$(now); naive "$sha"; t1=$(now); ms "$t0" "$t1" >> "$work/naive.ms"
  if [ "$have_cap" = yes ]; then
    t0=$(now); cap_deploy "$sha"; t1=$(now); ms "$t0" "$t1" >> "$work/cap.ms"
    [ "$(cat "$work/cap/current/REVISION")" = "$sha" ] || { echo "bench: capistrano's deploy of $sha did not land" >&2; exit 1; }
  fi
  [ "$(readlink "$work/ours/current")" = "releases/$sha" ] || { echo "bench: our deploy of $sha did not land" >&2; exit 1; }
done

m_ours=$(median < "$work/ours.ms"); m_naive=$(median < "$work/naive.ms")
r_ours=$(minmax < "$work/ours.ms"); r_naive=$(minmax < "$work/naive.ms")
if [ "$have_cap" = yes ]; then
  m_cap=$(median < "$work/cap.ms"); r_cap=$(minmax < "$work/cap.ms")
  r_cap_ratio=$(awk -v a="$m_ours" -v b="$m_cap" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
  cap_row="| Capistrano $(cap --version 2>/dev/null | awk '{print $3}') (SSHKit local backend, git strategy) | $m_cap | $r_cap | $cold_cap |"
  cap_line="Ratio ours / Capistrano: **$r_cap_ratio**."
else
  cap_row="| Capistrano | not run: \`cap\` not installed | | |"
  cap_line=""
fi
ratio=$(awk -v a="$m_ours" -v b="$m_naive" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r <= 0.5 ? "met" : "not met") }')
fs=$(df -T "$work" | awk 'NR==2 {print $2}')

cat > "$work/section.md" <<MD
## One-commit deploy of a $files-file repository (build \`true\`)

Written by \`bench/deploy.sh $runs\` on $(date -u +%Y-%m-%d). Machine: $(machine_line),
file system $fs at $base. Release build, \`--static-swift-stdlib\`.

Each run deploys the next commit of the same repository (made by \`../shared/bench/mkrepo.sh\`),
taking turns; times are wall clock from process start to exit, in ms. After each of our
deploys the bench waits for its niced background removal of pruned releases to finish
(outside the timed window, as in production), so that it never overlaps a peer's run.

| tool | median | min-max | cold first deploy |
|---|---|---|---|
| release-agent deploy --sha | $m_ours | $r_ours | $cold_ours |
| naive_deploy.sh (git clone --mirror, archive \| tar, mv) | $m_naive | $r_naive | $cold_naive |
$cap_row

Ratio ours / script: **$ratio** (target at most 0.5: $verdict). $cap_line
MD
write_section deploy "$work/section.md"
cat "$work/section.md"
