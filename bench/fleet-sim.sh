#!/usr/bin/env bash
# The fleet gate at scale, without fetch or build: `fleet-sim` runs N simulated `serve` hosts in
# one process against a real 3-member etcd (Debian's etcd-server) on 127.0.0.1. Each host has
# its own root and its own registration on a presence lease, and runs the gate a deploy runs
# (reconcile, admit: canaries and a slot, confirm, finish) around an activation that is a
# sleep of ACTIVATION seconds. For each N and fleet-max-parallel K:
#   the rollout time (all hosts asked at once, as after a published head, to the last one
#   finished) against the floor ceil(N / K) x ACTIVATION;
#   etcd requests per activation (grpc_server_started_total of all members, during the
#   rollout, less the registrations' renewals fleet-sim counts);
#   the members' resident memory after the rollout and at its peak.
# usage: bench/fleet-sim.sh [ACTIVATION]     (default 1 s); writes the "fleet-sim" section
set -euo pipefail
. "$(dirname "$0")/lib.sh"
activation=${1:-1}
command -v etcd >/dev/null || { echo "Error: etcd is not installed; apt-get install -y etcd-server" >&2; exit 1; }
# The same build flags as release_agent_binary: one scratch folder serves both scripts.
flags=(-c release --static-swift-stdlib --scratch-path "$top/.build-static" --package-path "$top")
swift build "${flags[@]}" --product fleet-sim >&2
sim="$(swift build "${flags[@]}" --show-bin-path)/fleet-sim"
work=$(mktemp -d "$(bench_base)/ra-fleet-sim-XXXX")
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# Each simulated host holds an HTTP connection or two to etcd.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
start_etcd_cluster "$work"

rows=""
run=0
# N and K: K = 1, 2, 5 at 20 hosts; 1%, 5% and 10% at 200 and at 1,000.
# CASES (N:K ...) runs chosen rows only, e.g. CASES="1000:5%".
for case in ${CASES:-20:1 20:2 20:5 200:1% 200:5% 200:10% 1000:1% 1000:5% 1000:10%}; do
  n=${case%%:*} k=${case#*:}
  run=$((run + 1))
  mkdir -p "$work/run$run"
  # A fleet of its own per case (its keys under /release-agent/sim<run>/).
  coproc SIM { "$sim" --etcd "$endpoints" --hosts "$n" --parallel "$k" --activation "$activation" \
    --fleet "sim$run" --work "$work/run$run" 2> "$work/sim$run.err"; }
  read -r ready <&"${SIM[0]}"
  [ "$ready" = ready ] || { cat "$work/sim$run.err" >&2; exit 1; }
  before=$(etcd_requests)
  echo go >&"${SIM[1]}"
  read -r result <&"${SIM[0]}"
  after=$(etcd_requests)
  wait "$SIM_PID" || true
  # "rollout 12.34 s, activations 20, failed 0, peak 1, renewals 0"
  rollout=$(awk '{print $2}' <<< "$result")
  echo "fleet-sim $n hosts, K $k: $result" >&2
  done_=$(awk '{gsub(",", "", $5); print $5}' <<< "$result")
  failed=$(awk '{gsub(",", "", $7); print $7}' <<< "$result")
  peak=$(awk '{gsub(",", "", $9); print $9}' <<< "$result")
  renewals=$(awk '{print $11}' <<< "$result")
  # A host that failed says why on the simulator's stderr: shown, not lost with the work dir.
  if [ "$failed" != 0 ]; then grep 'fleet-sim: h' "$work/sim$run.err" | head -5 >&2 || true; fi
  slots=$(awk -v n="$n" -v k="$k" 'BEGIN { if (k ~ /%$/) { p = substr(k, 1, length(k) - 1); s = int(n * p / 100); if (s < 1) s = 1 } else s = k; print s }')
  floor=$(awk -v n="$n" -v s="$slots" -v a="$activation" 'BEGIN { printf "%.1f", int((n + s - 1) / s) * a }')
  per=$(awk -v a="$before" -v b="$after" -v r="$renewals" -v n="$done_" 'BEGIN { printf "%.1f", (b - a - r) / (n > 0 ? n : 1) }')
  rows+="| $n | $k ($slots) | $rollout s | $floor s | $(ratio "$rollout" "$floor") | $peak | $per | $failed | $(etcd_rss) |"$'\n'
  rm -rf "$work/run$run"
done

out=$(mktemp)
{
  echo "## fleet-sim: the fleet gate for 20 to 1,000 simulated hosts (\`bash bench/fleet-sim.sh $activation\`)"
  echo
  echo "Machine: $(machine_line); etcd $(etcd --version | head -1 | awk '{print $3}'), 3 members on 127.0.0.1; $(date -u +%Y-%m-%d)."
  echo "One \`fleet-sim\` process per row (a thread per host, each with its own root, etcd client and"
  echo "registration on a 3m presence lease); every host asks at once; an activation is a sleep of"
  echo "$activation s. Floor: ceil(N / K) x $activation s. Requests: etcd's grpc_server_started_total, all"
  echo "members, during the rollout, less the registrations' renewals, per activation. Memory: each"
  echo "member's RSS after the row / its peak so far, MiB."
  echo
  echo "| hosts N | fleet-max-parallel K (slots) | rollout | floor | rollout / floor | most activating at once | etcd requests per activation | failed | etcd members' memory (MiB) |"
  echo "|---|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
} > "$out"
cat "$out"
[ -n "${CASES:-}" ] || write_section fleet-sim "$out"
