#!/usr/bin/env bash
# bench/figures.sh [RUNS]   (default 9)
#
# The speed figures beside the deploy comparison, each against its floor or peer in the
# same run, on tmpfs when present: tar -x floor, no-op poll vs git ls-remote, rollback
# without hooks, serve idle RSS and CPU (IDLE_SECONDS, default 60), peak RSS of a cold
# 20,000-file deploy, and deploy time against repository size and changed files
# (table, and bench/scaling.png when matplotlib can be installed with pip).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-9}
idle=${IDLE_SECONDS:-60}
agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-figures-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null

# time_ms CMD...: wall ms of one run
# fresh_deploy ROOT REPO SHA: times a deploy of SHA after removing any earlier build of it
fresh_deploy() {
  rm -rf "$1/releases/$3" "$1/.release-agent/releases/$3.json"
  time_ms "$agent" deploy --root "$1" --repo "$2" --build true --sha "$3"
  settle "$1"
}

echo "figures: making the 20,000-file repository" >&2
mapfile -t shas < <(MKREPO_EXTRA_COMMITS=2 "$shared/mkrepo.sh" 20000 "$work/repo")
last=${shas[-1]}

# --- peak RSS of a cold deploy (fetch + checkout of 20,000 files) ---------------
if [ -x /usr/bin/time ]; then
  /usr/bin/time -o "$work/peak" -f "%M" "$agent" deploy --root "$work/root" --repo "$work/repo" --build true --sha "${shas[3]}" >/dev/null 2>&1
  peak_kb=$(tail -1 "$work/peak")
else
  "$agent" deploy --root "$work/root" --repo "$work/repo" --build true --sha "${shas[3]}" >/dev/null 2>&1
  peak_kb=0
fi
"$agent" deploy --root "$work/root" --repo "$work/repo" --build true --sha "${shas[4]}" >/dev/null 2>&1

# --- tar -x floor vs our one-commit deploy ---------------------------------------
git -C "$work/repo" archive --format=tar "$last" > "$work/tree.tar"
: > "$work/tar.ms"; : > "$work/ours.ms"
for (( i = 0; i < runs; i++ )); do
  rm -rf "$work/tar"; mkdir "$work/tar"
  time_ms tar -xf "$work/tree.tar" -C "$work/tar" >> "$work/tar.ms"
  fresh_deploy "$work/root" "$work/repo" "${shas[$(( i % 2 == 0 ? 5 : 4 ))]}" >> "$work/ours.ms"
done
tar_ms=$(median < "$work/tar.ms"); ours_ms=$(median < "$work/ours.ms")
floor_ratio=$(ratio "$ours_ms" "$tar_ms")

# --- no-op poll vs git ls-remote -----------------------------------------------------
"$agent" deploy --root "$work/poll" --repo "$work/repo" --build true >/dev/null 2>&1
: > "$work/poll.ms"; : > "$work/lsremote.ms"
for (( i = 0; i < runs * 2; i++ )); do
  time_ms "$agent" poll --root "$work/poll" --repo "$work/repo" >> "$work/poll.ms"
  time_ms git ls-remote "$work/repo" refs/heads/main >> "$work/lsremote.ms"
done
poll_ms=$(median < "$work/poll.ms"); ls_ms=$(median < "$work/lsremote.ms")
# The floor under any poll that links libgit2: a Swift program that links it (statically
# linked Swift runtime, as ours) and exits at once. Loading libgit2's ~15 shared libraries
# (mbedTLS, libssh2, OpenSSL's libcrypto, Kerberos, ...) is most of it.
floor_ms=""
printf 'import Glibc\n@_silgen_name("git_libgit2_features") func features() -> Int32\nif CommandLine.arguments.count > 5 { print(features()) }\n' > "$work/floor.swift"
if swiftc -O -static-stdlib "$work/floor.swift" -o "$work/floor" -lgit2 >/dev/null 2>&1; then
  : > "$work/floor.ms"
  for (( i = 0; i < runs * 2; i++ )); do time_ms "$work/floor" >> "$work/floor.ms"; done
  floor_ms=$(median < "$work/floor.ms")
fi
poll_ratio=$(ratio "$poll_ms" "$ls_ms")

# --- rollback without hooks ---------------------------------------------------------
: > "$work/rollback.ms"
for (( i = 0; i < runs * 2; i++ )); do
  target=${shas[$(( i % 2 == 0 ? 4 : 5 ))]}
  time_ms "$agent" rollback --root "$work/root" "$target" >> "$work/rollback.ms"
done
rollback_ms=$(median < "$work/rollback.ms")

# --- serve idle: RSS and CPU over $idle s --------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'bench' > "$work/secret"
"$agent" serve --root "$work/root" --repo "$work/repo" --webhook-secret-file "$work/secret" \
  --listen "127.0.0.1:$port" --poll-interval 0 2>/dev/null &
serve_pid=$!; pids+=("$serve_pid")
sleep 2
ticks() { awk '{print $14 + $15}' "/proc/$serve_pid/stat"; }
cpu0=$(ticks); sleep "$idle"; cpu1=$(ticks)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$serve_pid/status")
dirty_kb=$(awk '/^Private_Dirty/ {print $2}' "/proc/$serve_pid/smaps_rollup" 2>/dev/null || echo "?")
hz=$(getconf CLK_TCK)
idle_cpu_ms=$(( (cpu1 - cpu0) * 1000 / hz ))

# --- scaling --------------------------------------------------------------------------
: > "$work/scaling.tsv"
for n in 1000 20000 100000; do
  echo "figures: scaling, $n files" >&2
  mapfile -t s < <(MKREPO_EXTRA_COMMITS=2 "$shared/mkrepo.sh" "$n" "$work/repo-$n")
  "$agent" deploy --root "$work/scale-$n" --repo "$work/repo-$n" --build true --sha "${s[4]}" >/dev/null 2>&1
  : > "$work/s.ms"
  for (( i = 0; i < 3; i++ )); do
    fresh_deploy "$work/scale-$n" "$work/repo-$n" "${s[$(( i % 2 == 0 ? 5 : 4 ))]}" >> "$work/s.ms"
  done
  echo -e "files\t$n\t$(median < "$work/s.ms")" >> "$work/scaling.tsv"
  rm -rf "$work/scale-$n" "$work/repo-$n"
done
git -C "$work/repo" checkout -q "$last" 2>/dev/null || true
for changed in 1 100 10000; do
  echo "figures: scaling, $changed changed files" >&2
  (cd "$work/repo" && git checkout -q -B main "$last" &&
    for (( k = 0; k < changed; k++ )); do echo "changed" >> "src/$(( k / 1000 ))/$(( (k / 100) % 10 ))/file_$k.txt"; done &&
    git -c user.name=b -c user.email=b@b.invalid commit -qam "change $changed" )
  sha=$(git -C "$work/repo" rev-parse HEAD)
  "$agent" deploy --root "$work/root" --repo "$work/repo" --build true --sha "$last" >/dev/null 2>&1 || true
  time=$(time_ms "$agent" deploy --root "$work/root" --repo "$work/repo" --build true --sha "$sha")
  echo -e "changed\t$changed\t$time" >> "$work/scaling.tsv"
done

plot="no plot (matplotlib not available)"
if python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib >/dev/null 2>&1; then
  python3 - "$work/scaling.tsv" "$top/bench/scaling.png" <<'PY' && plot="![scaling](bench/scaling.png)"
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
f = [(int(r[1]), float(r[2])) for r in rows if r[0] == "files"]
c = [(int(r[1]), float(r[2])) for r in rows if r[0] == "changed"]
a.plot([x for x, _ in f], [y for _, y in f], "o-"); a.set_xscale("log"); a.set_xlabel("files in the repository"); a.set_ylabel("deploy ms"); a.set_title("one-commit deploy vs size")
b.plot([x for x, _ in c], [y for _, y in c], "o-"); b.set_xscale("log"); b.set_xlabel("files changed (20,000-file repo)"); b.set_ylabel("deploy ms"); b.set_title("one-commit deploy vs change")
fig.tight_layout(); fig.savefig(sys.argv[2], dpi=100)
PY
fi

verdict() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "le" ? v <= t : v < t); print (ok ? "met" : "not met") }'; }
{
  echo "## Floors, poll, rollback, memory, scaling"
  echo
  echo "Written by \`bench/figures.sh $runs\` (IDLE_SECONDS=$idle) on $(date -u +%Y-%m-%d). Machine: $(machine_line), $base. Release build (\`--static-swift-stdlib\`); medians."
  echo
  echo "| figure | release-agent | peer or floor | ratio | target |"
  echo "|---|---|---|---|---|"
  echo "| one-commit deploy, 20,000 files, build true | $ours_ms ms | tar -x of the tree from the page cache: $tar_ms ms | $floor_ratio | at most 1.3: $(verdict "$floor_ratio" 1.3 le) |"
  echo "| no-op poll, process start to exit | $poll_ms ms | git ls-remote, same local remote: $ls_ms ms | $poll_ratio | at most 1.5: $(verdict "$poll_ratio" 1.5 le) |"
  [ -n "$floor_ms" ] && echo "| (floor) a Swift program that only links libgit2, start to exit | $floor_ms ms | git ls-remote: $ls_ms ms | $(ratio "$floor_ms" "$ls_ms") | |"
  echo "| rollback without hooks | $rollback_ms ms | naive_rollback.sh: 28 ms (NOTES.md) | | under 10 ms: $(verdict "$rollback_ms" 10 lt) |"
  echo "| serve idle RSS after ${idle} s | $(( rss_kb / 1024 )) MiB ($rss_kb KiB) | | | at most 25 MB: $(verdict "$rss_kb" 25000 le) |"
  echo "| serve idle private dirty memory (the part of RSS that is not clean, reclaimable file pages) | $(awk -v k="${dirty_kb:-0}" 'BEGIN { printf "%.1f", k / 1024 }') MiB ($dirty_kb KiB) | | | |"
  echo "| serve idle CPU over ${idle} s | $idle_cpu_ms ms | | | none (one 10 ms clock tick of /proc accounting allowed): $( [ "$idle_cpu_ms" -le 10 ] && echo met || echo "not met" ) |"
  echo "| peak RSS, cold deploy of 20,000 files (fetch + checkout) | $(( peak_kb / 1024 )) MiB ($peak_kb KiB) | | | at most 64 MB: $(verdict "$peak_kb" 65536 le) |"
  echo
  echo "Scaling (one-commit deploy, median of 3 for size, 1 run for changed files):"
  echo
  echo "| axis | value | deploy ms |"
  echo "|---|---|---|"
  awk -F'\t' '{ printf "| %s | %s | %s |\n", ($1 == "files" ? "files in the repository" : "files changed (20,000-file repo)"), $2, $3 }' "$work/scaling.tsv"
  echo
  echo "$plot"
} > "$work/section.md"
write_section figures "$work/section.md"
cat "$work/section.md"
