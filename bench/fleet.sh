#!/usr/bin/env bash
# Fleet mode against a real 3-member etcd (Debian's etcd-server) on 127.0.0.1:
#   1. 20 agents deploy one push at once (as 20 webhooks would start them), for
#      fleet-max-parallel K = 1, 2, 5: the time from the push to the last host live, and the
#      rollout phase alone (a build hook holds every host until all have built: from then to
#      the last host live), against the floor ceil(20 / K) x one host's activation (an
#      activate hook that sleeps 1 s);
#   2. 20 `serve` agents polling a counting `git http-backend` every 10 s for 60 s: the ref
#      advertisements the remote served per poll interval (one per interval is the promise);
#   3. the same 20 agents idle with polling off for 180 s: etcd requests per host per minute
#      (etcd's own grpc_server_started_total, all members).
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

start_etcd_cluster "$work"
port() { free_port; }

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
# The barrier: each host logs that it has built, then waits (at most 5 min) until all have.
cat > "$work/hooks/build" <<'HOOK'
#!/bin/sh
echo "built $(date +%s.%N)" >> "$BUILD_LOG"
n=0; while [ "$(wc -l < "$BUILD_LOG")" -lt "$HOSTS" ] && [ $n -lt 3000 ]; do sleep 0.1; n=$((n+1)); done
HOOK
chmod +x "$work/hooks/build"
export HOSTS=$hosts
common=(--fleet-etcd "$endpoints" --fleet bench --hooks-dir "$work/hooks" --fleet-lease-ttl 10s)

# The remote's side: a counting git http-backend (no auth) serving the repository.
cat > "$work/git-http.py" <<'PY'
import http.server, os, subprocess, sys
ROOT, PORT, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self): self.cgi()
    def do_POST(self): self.cgi()
    def cgi(self):
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(LOG, "a") as f: f.write(self.command + " " + self.path + "\n")
        path, _, query = self.path.partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=ROOT, GIT_HTTP_EXPORT_ALL="1", PATH_INFO=path, QUERY_STRING=query,
                   REQUEST_METHOD=self.command, CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(data)))
        out = subprocess.run(["git", "http-backend"], input=data, env=env, capture_output=True).stdout
        head, _, rest = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode().partition(":")
            if name.lower() == "status": status = int(value.split()[0])
            elif name: headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers: self.send_header(name, value)
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
PY
gport=$(port)
python3 "$work/git-http.py" "$work" "$gport" "$work/remote.log" &
pids+=($!)
sleep 1
advertisements() { grep -c '^GET .*/info/refs' "$work/remote.log" 2>/dev/null || echo 0; }

remote="http://127.0.0.1:$gport/repo/.git"

rows=""
for k in 1 2 5; do
  git -C "$work/repo" commit -q --allow-empty -m "push for K=$k"
  export FLEET_LOG="$work/activations-$k.log" BUILD_LOG="$work/built-$k.log"
  t0=$(now)
  jobs=()
  for (( h = 1; h <= hosts; h++ )); do
    "$bin" deploy --root "$work/host$h" --host-id "h$h" --fleet-max-parallel "$k" "${common[@]}" --repo "$remote" \
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
  # The rollout phase: from the last host built (the barrier opens) to the last host live.
  phase=$(awk '/^built/ {b = ($2 > b ? $2 : b)} END {print b}' "$BUILD_LOG" | \
    awk -v lf="$FLEET_LOG" '{built = $1; while ((getline line < lf) > 0) { split(line, f, " "); if (f[1] == "end" && f[2] > last) last = f[2] } printf "%.1f", last - built}')
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
  rows+="| $k | $hosts | $total s | $phase s | $floor s (ceil($hosts/$k) x $(printf '%.2f' "$one") s) | $(ratio "$phase" "$floor") | $peak | $failed |"$'\n'
done

requests() { etcd_requests; }
start_serves() {
  serves=()
  for (( h = 1; h <= hosts; h++ )); do
    "$bin" serve --root "$work/host$h" --host-id "h$h" "${common[@]}" --repo "$remote" \
      --allow-unsigned --listen 127.0.0.1:0 --poll-interval "$1" > "$work/serve-$1-$h.log" 2>&1 &
    serves+=($!)
  done
}
stop_serves() { for pid in "${serves[@]}"; do kill "$pid" 2>/dev/null || true; done; wait "${serves[@]}" 2>/dev/null || true; }

# 2. Polling every 10 s: what the remote serves per interval.
start_serves 10s
sleep 15
a0=$(advertisements); t0=$(date +%s)
sleep 60
a1=$(advertisements); t1=$(date +%s)
stop_serves
intervals=$(( t1 / 10 - t0 / 10 ))
per_interval=$(awk -v a="$a0" -v b="$a1" -v n="$intervals" 'BEGIN { printf "%.2f", (b - a) / n }')

# 3. Polling off, idle: what etcd is asked, per host per minute.
start_serves 0
sleep 15
before=$(requests)
sleep 180
after=$(requests)
stop_serves
per_host=$(awk -v a="$before" -v b="$after" -v n="$hosts" 'BEGIN { printf "%.2f", (b - a) / n / 3 }')

out=$(mktemp)
{
  echo "## fleet: $hosts agents, one push, a 3-member etcd (\`bash bench/fleet.sh $hosts\`)"
  echo
  echo "Machine: $(machine_line); etcd $(etcd --version | head -1 | awk '{print $3}'); $(date -u +%Y-%m-%d)."
  echo "Each agent: its own root, \`deploy\` started for all at once, an activate hook that sleeps 1 s."
  echo
  echo "| fleet-max-parallel K | hosts | push to last host live | rollout phase (all built to last live) | floor | phase / floor | most activating at once | failed |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s' "$rows"
  echo
  echo "Remote: $hosts \`serve\` agents with poll-interval 10 s, for 60 s ($intervals intervals): $per_interval"
  echo "ref advertisements per interval at the remote (a counting \`git http-backend\`). Each host"
  echo "polling by itself would be $hosts."
  echo
  echo "Idle: the same $hosts \`serve\` agents, polling off, for 180 s: $per_host etcd requests per host"
  echo "per minute (etcd's grpc_server_started_total, all members, before and after). An idle serve"
  echo "renews its registration's lease every third of fleet-presence-ttl (3m: once a minute) and"
  echo "holds one watch stream on \`head\`, \`target\`, \`paused\` and \`poll/\`, created at start."
  echo "The gap of the whole push to the floor grows with K: the agents start at once on a few cores"
  echo "(process start, fetch, checkout and build of each); the rollout phase leaves that out."
} > "$out"
cat "$out"
write_section fleet "$out"
