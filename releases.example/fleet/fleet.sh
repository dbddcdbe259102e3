#!/usr/bin/env bash
# Fleet mode for real on one machine: a 3-member etcd cluster on 127.0.0.1 and three agents
# (`serve`, hosts web-1..3), each with its own root and its own demo app, following one repo.
#
#   releases.example/fleet/fleet.sh up       start etcd and the agents; the first version rolls out
#   releases.example/fleet/fleet.sh push     commit a new demo version; watch it roll out host by host
#   releases.example/fleet/fleet.sh status   release-agent fleet status
#   releases.example/fleet/fleet.sh down     stop the agents, their apps and etcd
#
# Everything lives under FLEET_ROOT (default releases.example/fleet/root/, ignored by git).
# Every port comes from FLEET_BASE (default 24790): etcd clients FLEET_BASE+1..3, peers
# +11..13, the demo apps +21..23, serve +31..33. `up` writes them to FLEET_ROOT/ports, and
# the other commands read the base from there, so only `up` needs FLEET_BASE.
# RELEASE_AGENT_BIN names a built release-agent (release-agent-full next to it) instead of
# `swift build`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
root=${FLEET_ROOT:-$here/root}
action=${1:-up}
if [ -z "${FLEET_BASE:-}" ] && [ "$action" != up ] && [ -f "$root/ports" ]; then
  FLEET_BASE=$(sed -n 's/^FLEET_BASE=\([0-9][0-9]*\)$/\1/p' "$root/ports")
fi
base=${FLEET_BASE:-24790}
case $base in '' | *[!0-9]*) echo "Error: FLEET_BASE must be a number, not '$base'" >&2; exit 2 ;; esac
if [ "$base" -lt 1024 ] || [ "$base" -gt 65400 ]; then
  echo "Error: FLEET_BASE $base is out of range: ports FLEET_BASE+1..+33 must lie in 1025..65535" >&2
  exit 2
fi
etcd_port() { echo $((base + $1)); }
peer_port() { echo $((base + 10 + $1)); }
app_port() { echo $((base + 20 + $1)); }
serve_port() { echo $((base + 30 + $1)); }

binary() {
  if [ -n "${RELEASE_AGENT_BIN:-}" ]; then
    [ -x "$RELEASE_AGENT_BIN" ] || { echo "Error: RELEASE_AGENT_BIN=$RELEASE_AGENT_BIN is not executable" >&2; exit 1; }
    echo "$RELEASE_AGENT_BIN"
    return
  fi
  swift build --package-path "$top" --product release-agent >&2
  swift build --package-path "$top" --product release-agent-full >&2
  echo "$(swift build --package-path "$top" --show-bin-path)/release-agent"
}

endpoints="http://127.0.0.1:$(etcd_port 1),http://127.0.0.1:$(etcd_port 2),http://127.0.0.1:$(etcd_port 3)"
fleet=(--fleet-etcd "$endpoints" --fleet demo)
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid \
  GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid

commit() {
  local repo=$root/repo n
  [ -d "$repo/.git" ] || git -C "$(mkdir -p "$repo" && echo "$repo")" init -q -b main
  cp "$top/releases.example/app/app.py" "$top/releases.example/app/build.sh" "$repo/"
  n=$(( $(cat "$repo/VERSION" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$repo/VERSION"
  git -C "$repo" add -A
  git -C "$repo" commit -q -m "demo version $n"
  echo "$n"
}

# Done means every app answers with the new sha and the fleet records the rollout done on all
# three hosts: an app answers as soon as it is swapped in, before its health check is recorded.
wait_live() {
  local sha i h bin deadline=$((SECONDS + 120))
  sha=$(git -C "$root/repo" rev-parse HEAD)
  bin=$(binary)
  for (( i = 0; i < 600 && SECONDS < deadline; i++ )); do
    local live=0
    for h in 1 2 3; do
      curl -fsS "http://127.0.0.1:$(app_port "$h")/" 2>/dev/null | grep -q "${sha:0:12}" && live=$((live + 1))
    done
    if [ "$live" = 3 ] && "$bin" fleet status --root "$root/web-1" "${fleet[@]}" 2>/dev/null \
      | grep -q "^rollout ${sha:0:12}: 3 host(s) done"; then
      echo "all 3 hosts serve ${sha:0:12}"
      return 0
    fi
    sleep 0.2
  done
  echo "Error: not every host runs ${sha:0:12} after 120 s; see $root/web-*.log" >&2
  return 1
}

# Stops the process a pid file names (TERM, then KILL after 10 s) and removes the file.
stop_pidfile() {
  local pid i
  pid=$(cat "$1" 2>/dev/null || true)
  rm -f "$1"
  case $pid in '' | *[!0-9]*) return 0 ;; esac
  kill "$pid" 2>/dev/null || return 0
  for (( i = 0; i < 100; i++ )); do
    kill -0 "$pid" 2>/dev/null || return 0
    # An exited child of a shell that is gone may linger as a zombie: it is stopped.
    [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$pid/status" 2>/dev/null)" = Z ] && return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

case $action in
up)
  command -v etcd >/dev/null || { echo "Error: etcd is not installed; apt-get install -y etcd-server" >&2; exit 1; }
  bin=$(binary)
  mkdir -p "$root"
  {
    echo "FLEET_BASE=$base"
    echo "etcd clients: $(etcd_port 1) $(etcd_port 2) $(etcd_port 3)"
    echo "etcd peers: $(peer_port 1) $(peer_port 2) $(peer_port 3)"
    echo "apps: $(app_port 1) $(app_port 2) $(app_port 3)"
    echo "serve: $(serve_port 1) $(serve_port 2) $(serve_port 3)"
  } > "$root/ports"
  cluster=""
  for m in 1 2 3; do cluster+="m$m=http://127.0.0.1:$(peer_port "$m"),"; done
  for m in 1 2 3; do
    [ -f "$root/etcd-m$m.pid" ] && kill -0 "$(cat "$root/etcd-m$m.pid")" 2>/dev/null && continue
    state=new; [ -d "$root/etcd-m$m" ] && state=existing
    etcd --name "m$m" --data-dir "$root/etcd-m$m" --listen-client-urls "http://127.0.0.1:$(etcd_port "$m")" \
      --advertise-client-urls "http://127.0.0.1:$(etcd_port "$m")" --listen-peer-urls "http://127.0.0.1:$(peer_port "$m")" \
      --initial-advertise-peer-urls "http://127.0.0.1:$(peer_port "$m")" --initial-cluster "${cluster%,}" \
      --initial-cluster-state "$state" --initial-cluster-token release-agent-demo --log-level warn \
      >> "$root/etcd-m$m.log" 2>&1 < /dev/null &
    echo $! > "$root/etcd-m$m.pid"
  done
  for (( i = 0; i < 150; i++ )); do
    curl -fsS "http://127.0.0.1:$(etcd_port 1)/health" 2>/dev/null | grep -q true && break; sleep 0.2
  done
  echo "etcd: $endpoints"
  [ -d "$root/repo/.git" ] || echo "committed demo version $(commit)"
  for h in 1 2 3; do
    [ -f "$root/web-$h.pid" ] && kill -0 "$(cat "$root/web-$h.pid")" 2>/dev/null && continue
    DEMO_PORT=$(app_port "$h") nohup "$bin" serve --root "$root/web-$h" --repo "$root/repo" --host-id "web-$h" "${fleet[@]}" \
      --fleet-canary 1 --fleet-max-parallel 1 --build ./build.sh --hooks-dir "$top/releases.example/hooks" \
      --health-url "http://127.0.0.1:$(app_port "$h")/health" --listen "127.0.0.1:$(serve_port "$h")" \
      --allow-unsigned --poll-interval 2s >> "$root/web-$h.log" 2>&1 < /dev/null &
    echo $! > "$root/web-$h.pid"
    echo "web-$h: serve on http://127.0.0.1:$(serve_port "$h"), app on http://127.0.0.1:$(app_port "$h")/"
  done
  wait_live
  ;;
push)
  [ -d "$root/repo/.git" ] || { echo "Error: nothing is up in $root; run $0 up first" >&2; exit 1; }
  echo "committed demo version $(commit); the agents see it within 2 s, the canary goes first"
  wait_live
  for h in 1 2 3; do curl -fsS "http://127.0.0.1:$(app_port "$h")/" | sed "s/^/web-$h: /"; done
  ;;
status)
  bin=$(binary)
  "$bin" fleet status --root "$root/web-1" "${fleet[@]}"
  ;;
down)
  # The agents first (so none restarts an app), then the apps, then etcd.
  for pidfile in "$root"/web-*.pid "$root"/web-*/run/demo.pid "$root"/etcd-m*.pid; do
    [ -f "$pidfile" ] || continue
    stop_pidfile "$pidfile"
  done
  echo "stopped the agents, their apps and etcd (data kept in $root)"
  ;;
*)
  echo "usage: $0 [up|push|status|down]" >&2
  exit 2
  ;;
esac
