#!/usr/bin/env bash
# bench/webhook.sh [SECONDS] [CONNECTIONS]   (defaults 10 s, 32 connections)
#
# Signed GitHub push webhooks on loopback, side by side: `release-agent serve` against
# adnanh/webhook (Debian package `webhook`) with the same HMAC-SHA256 rule, loaded by wrk
# (Debian package `wrk`) for a bounded time each. Records requests/s and p99 latency, and
# after each burst whether deploys were lost or duplicated, in BENCHMARKS.md.
# Needs: wrk, webhook, git (installed with apt-get when missing and running as root).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
seconds=${1:-10}
connections=${2:-32}
for tool in wrk webhook git; do
  if ! command -v "$tool" >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "bench: $tool is missing: apt-get install wrk webhook git" >&2; exit 2; }
    apt-get install -y wrk webhook git >&2
  fi
done
agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-webhook-XXXXXX")
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

secret=bench-secret-$$
printf '%s' "$secret" > "$work/secret"
body='{"ref":"refs/heads/main","after":"1111111111111111111111111111111111111111","deleted":false}'
sig="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=b@b.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=b@b.invalid
git init -q -b main "$work/repo"
git -C "$work/repo" commit -q --allow-empty -m base
"$agent" deploy --root "$work/root" --repo "$work/repo" >/dev/null 2>&1

cat > "$work/signed.lua" <<LUA
local counter = 0
local id = 0
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-GitHub-Event"] = "push"
wrk.headers["X-Hub-Signature-256"] = "$sig"
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) id = wrk.thread:get("id") or 0 end
function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = string.format("bench-%d-%d", id, counter)
  return wrk.format()
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done; return 1; }

# --- release-agent serve -------------------------------------------------------
ours_port=$(free_port)
"$agent" serve --root "$work/root" --repo "$work/repo" --webhook-secret-file "$work/secret" \
  --poll-interval 0 --build true --listen "127.0.0.1:$ours_port" 2>"$work/serve.log" &
pids+=($!)
wait_http "http://127.0.0.1:$ours_port/healthz"
git -C "$work/repo" commit -q --allow-empty -m "burst target"
head=$(git -C "$work/repo" rev-parse HEAD)
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/signed.lua" "http://127.0.0.1:$ours_port/webhook" > "$work/ours.txt"
for _ in $(seq 1 600); do
  curl -s "http://127.0.0.1:$ours_port/healthz" | grep -q '"deploying":false' && break; sleep 0.1
done
ours_current=$(readlink "$work/root/current")
ours_deploys=$(grep -c "\"sha\":\"$head\"" "$work/root/.release-agent/history.jsonl" || true)

# --- adnanh/webhook --------------------------------------------------------------
theirs_port=$(free_port)
cat > "$work/run.sh" <<SH
#!/bin/sh
echo run >> "$work/webhook-runs"
SH
chmod +x "$work/run.sh"
cat > "$work/hooks.json" <<JSON
[{"id": "deploy", "execute-command": "$work/run.sh", "command-working-directory": "$work",
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$secret",
    "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}}}]
JSON
: > "$work/webhook-runs"
webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$theirs_port" >"$work/webhook.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$theirs_port/"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$work/signed.lua" "http://127.0.0.1:$theirs_port/hooks/deploy" > "$work/theirs.txt"
sleep 2
theirs_runs=$(wc -l < "$work/webhook-runs")
theirs_errors=$(grep -c "too many open files" "$work/webhook.log" || true)

rps() { awk '/Requests\/sec/ {print $2}' "$1"; }
p99() { awk '$1 == "99%" {print $2}' "$1"; }
total() { awk '/requests in/ {print $1}' "$1"; }
non2xx() { awk '/Non-2xx/ {print $NF}' "$1"; }
ratio=$(awk -v a="$(rps "$work/ours.txt")" -v b="$(rps "$work/theirs.txt")" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 2 ? "met" : "not met") }')
cat > "$work/section.md" <<MD
## Signed webhooks on loopback: release-agent serve vs adnanh/webhook

Written by \`bench/webhook.sh $seconds $connections\` on $(date -u +%Y-%m-%d). Machine: $(machine_line).
wrk -t2 -c$connections -d${seconds}s, every request a GitHub push with a valid
X-Hub-Signature-256 and its own X-GitHub-Delivery; both servers check HMAC-SHA256.

| server | requests/s | p99 latency | requests | non-2xx | deploys started |
|---|---|---|---|---|---|
| release-agent serve | $(rps "$work/ours.txt") | $(p99 "$work/ours.txt") | $(total "$work/ours.txt") | $(non2xx "$work/ours.txt") | $ours_deploys of the burst's head (triggers coalesce) |
| webhook 2.8.0 (async hook) | $(rps "$work/theirs.txt") | $(p99 "$work/theirs.txt") | $(total "$work/theirs.txt") | $(non2xx "$work/theirs.txt") | $theirs_runs hook runs ($theirs_errors "too many open files" lines) |

Rate ratio ours / webhook: **$ratio** (target at least 2: $verdict).
After the burst, release-agent's current is \`$ours_current\` (the burst's head is \`releases/$head\`):
$( [ "$ours_current" = "releases/$head" ] && echo "no deploy lost" || echo "LOST: the head is not live" ),
$( [ "${ours_deploys:-0}" -le 1 ] && echo "no deploy duplicated" || echo "the head was deployed $ours_deploys times" ).
MD
write_section webhook "$work/section.md"
cat "$work/section.md"
