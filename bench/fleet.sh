#!/usr/bin/env bash
# Fleet mode against a real 3-member etcd (Debian's etcd-server) on 127.0.0.1:
#   1. 20 agents deploy one push at once (as 20 webhooks would start them), for
#      fleet-max-parallel K = 1, 2, 5: the time from the push to the last host live, against
#      the floor ceil(20 / K) x one host's activation (an activate hook that sleeps 1 s);
#   2. 20 `serve` agents idle for 60 s: etcd requests per host per minute (etcd's own counter).
# usage: bench/fleet.sh [HOSTS]       (default 20); writes the "fleet" section of BENCHMARKS.md
set -euo pipefail
. "$(dirname "$0")/lib.sh"
hosts=${1:-20}
command -v etcd >/dev/null || { echo "Error: etcd is not installed; apt-get install -y etcd-server" >&2; exit 1; }
# RELEASE_AGENT_BIN: a release build already made (packaging/deb.sh leaves one in .build/release).
bin=${RELEASE_AGENT_BIN:-$(release_agent_binary)}
work=$(mktemp -d "$(bench_base)/ra-fleet-XXXX")
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cluster="" endpoints=""
declare -a cports pports
for i in 1 2 3; do cports[i]=$(port); pports[i]=$(port); cluster+="m$i=http://127.0.0.1:${pports[i]},"; done
cluster=${cluster%,}
for i in 1 2 3; do
  etcd --name "m$i" --data-dir "$work/etcd-m$i" --listen-client-urls "http://127.0.0.1:${cports[i]}" \
    --advertise-client-urls "http://127.0.0.1:${cports[i]}" --listen-peer-urls "http://127.0.0.1:${pports[i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${pports[i]}" --initial-cluster "$cluster" \
    --initial-cluster-state new --initial-cluster-token bench --log-level warn > "$work/etcd-m$i.log" 2>&1 &
  pids+=($!)
  endpoints+="http://127.0.0.1:${cports[i]},"
done
endpoints=${endpoints%,}
for (( i = 0; i < 100; i++ )); do
  curl -fsS "http://127.0.0.1:${cports[1]}/health" 2>/dev/null | grep -q true && break; sleep 0.2
done

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@example.invalid \
  GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@example.invalid
git init -q -b main "$work/repo"
mkdir -p "$work/hooks"
cat > "$work/hooks/activate" <<'HOOK'
#!/bin/sh
echo "start $(date +%s.%N)" >> "$FLEET_LOG"
sleep 1
echo "end $(date +%s.%N)" >> "$FLEET_LOG"
HOOK
chmod +x "$work/hooks/activate"
common=(--repo "$work/repo" --fleet-etcd "$endpoints" --fleet bench --hooks-dir "$work/hooks" --fleet-lease-ttl 10s)

rows=""
for k in 1 2 5; do
  git -C "$work/repo" commit -q --allow-empty -m "push for K=$k"
  export FLEET_LOG="$work/activations-$k.log"
  t0=$(now)
  jobs=()
  for (( h = 1; h <= hosts; h++ )); do
    "$bin" deploy --root "$work/host$h" --host-id "h$h" --fleet-max-parallel "$k" "${common[@]}" \
      > "$work/deploy-$k-$h.log" 2>&1 &
    jobs+=($!)
  done
  failed=0
  for job in "${jobs[@]}"; do wait "$job" || failed=$((failed + 1)); done
  t1=$(now)
  total=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  one=$(paste -d' ' <(grep start "$FLEET_LOG" | cut -d' ' -f2) <(grep end "$FLEET_LOG" | cut -d' ' -f2) \
    | awk '{print $2 - $1}' | median)
  floor=$(awk -v n="$hosts" -v k="$k" -v one="$one" 'BEGIN { printf "%.1f", int((n + k - 1) / k) * one }')
  peak=$(python3 - "$FLEET_LOG" <<'PY'
import sys
edges = []
for line in open(sys.argv[1]):
    kind, t = line.split()
    edges.append((float(t), 1 if kind == "start" else -1))
now = most = 0
for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
    now += step; most = max(most, now)
print(most)
PY
)
  rows+="| $k | $hosts | $total s | $floor s (ceil($hosts/$k) x $(printf '%.2f' "$one") s) | $(ratio "$total" "$floor") | $peak | $failed |"$'\n'
done

# Idle: 20 serve agents, etcd's count of gateway requests over 60 s.
requests() {
  local sum=0 i n
  for i in 1 2 3; do
    n=$(curl -fsS "http://127.0.0.1:${cports[i]}/metrics" | awk '/^grpc_server_started_total/ {s += $2} END {print s + 0}')
    sum=$((sum + n))
  done
  echo "$sum"
}
serves=()
for (( h = 1; h <= hosts; h++ )); do
  "$bin" serve --root "$work/host$h" --host-id "h$h" "${common[@]}" --allow-unsigned --listen 127.0.0.1:0 \
    --poll-interval 10s > "$work/serve-$h.log" 2>&1 &
  serves+=($!)
done
sleep 5
before=$(requests)
sleep 60
after=$(requests)
for pid in "${serves[@]}"; do kill "$pid" 2>/dev/null || true; done
per_host=$(awk -v a="$before" -v b="$after" -v n="$hosts" 'BEGIN { printf "%.2f", (b - a) / n }')

out=$(mktemp)
{
  echo "## fleet: $hosts agents, one push, a 3-member etcd (\`bash bench/fleet.sh $hosts\`)"
  echo
  echo "Machine: $(machine_line); etcd $(etcd --version | head -1 | awk '{print $3}'); $(date -u +%Y-%m-%d)."
  echo "Each agent: its own root, \`deploy\` started for all at once, an activate hook that sleeps 1 s."
  echo
  echo "| fleet-max-parallel K | hosts | push to last host live | floor | ratio | most activating at once | failed |"
  echo "|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Idle: $hosts \`serve\` agents for 60 s: $per_host etcd requests per host per minute (etcd's"
  echo "grpc_server_started_total, all members, before and after). An idle serve sends the keepalive"
  echo "of its registration's lease every third of fleet-lease-ttl (10 s here: 18 a minute) and, at"
  echo "each poll (poll-interval 10 s here: 6 a minute), one read of the fleet's \`target\` (a pending"
  echo "fleet rollback); waiting for canaries or a slot is a watch, not a poll loop."
  echo "The gap to the floor grows with K: the agents start at once on a few cores (process start,"
  echo "fetch and checkout of each), and a freed slot is taken by the next waiter one watch event and"
  echo "a range read later."
} > "$out"
cat "$out"
write_section fleet "$out"
