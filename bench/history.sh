#!/usr/bin/env bash
# bench/history.sh [LINES] [RUNS]   (defaults 1000000 and 21)
#
# status, history -n 5 and rollback with a history of LINES lines (issue 17, target: status
# under 20 ms with 1,000,000 lines). The lines are written straight into history.jsonl, as
# an agent from before rotation would have left them; then one deploy rotates the file and
# the same figures are taken again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
lines=${1:-1000000}
runs=${2:-21}
agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-history-XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b


repo=$work/repo root=$work/root
git init -q -b main "$repo"
for n in 1 2; do echo "$n" > "$repo/v"; git -C "$repo" add -A; git -C "$repo" commit -qm "c$n"; "$agent" deploy --root "$root" --repo "$repo" >/dev/null 2>&1; done
a=$(git -C "$repo" rev-parse HEAD~1)
python3 - "$root/.release-agent/history.jsonl" "$lines" "$a" <<'PY'
import json, sys
path, count, sha = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keep = open(path).read()
with open(path, "w") as out:
    line = json.dumps({"event": "deploy", "result": "ok", "sha": sha, "seconds": 0.25, "subject": "old", "time": 1.7e9, "trigger": "poll"}, sort_keys=True) + "\n"
    for _ in range(count):
        out.write(line)
    out.write(keep)
PY
size_before=$(du -m "$root/.release-agent/history.jsonl" | cut -f1)
status_before=$(measure "$agent" status --root "$root")
tail_before=$(measure "$agent" history --root "$root" -n 5)
rollback_before=$(measure sh -c "'$agent' rollback --root '$root' && '$agent' rollback --root '$root' $(git -C "$repo" rev-parse HEAD)")
echo 3 > "$repo/v"; git -C "$repo" commit -qam c3
"$agent" deploy --root "$root" --repo "$repo" >/dev/null 2>&1
size_after=$(du -k "$root/.release-agent/history.jsonl" | cut -f1)
archive=$(du -k "$root/.release-agent/history.old.jsonl.gz" | cut -f1)
status_after=$(measure "$agent" status --root "$root")
tail_after=$(measure "$agent" history --root "$root" -n 5)

out=$(mktemp)
cat > "$out" <<MD
## History with $lines lines (bench/history.sh)

\`bash bench/history.sh $lines $runs\` on $(date -u +%Y-%m-%d), $(machine_line), tmpfs; medians of
$runs runs of the static release binary, wall time including process start.

| | before rotation ($size_before MiB file) | after one deploy rotated it (${size_after} KiB kept, ${archive} KiB gzip archive) | target |
|---|---|---|---|
| \`status\` | $status_before ms | $status_after ms | < 20 ms |
| \`history -n 5\` | $tail_before ms | $tail_after ms | |
| \`rollback\` there and back (two runs) | $rollback_before ms | | |

Readers go from the end of \`history.jsonl\` (status, \`history -n\`, rollback's and prune's
activation walk); \`/metrics\` reads \`totals.json\`, kept as events are appended.
MD
write_section history "$out"
cat "$out"
