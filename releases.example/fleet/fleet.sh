#!/usr/bin/env bash
# Fleet mode for real on one machine: a 3-member etcd cluster on 127.0.0.1 and three agents
# (`serve`, hosts web-1..3), each with its own root and its own demo app, following one repo.
#
#   releases.example/fleet/fleet.sh up       start etcd and the agents; the first version rolls out
#   releases.example/fleet/fleet.sh push     commit a new demo version; watch it roll out host by host
#   releases.example/fleet/fleet.sh status   release-agent fleet status
#   releases.example/fleet/fleet.sh down     stop the agents, their apps and etcd
#
# Everything lives under releases.example/fleet/root/ (ignored by git). Ports: etcd clients
# FLEET_BASE+1..3 (default 24791..24793), peers +11..13, the apps 8481..8483, serve 9481..9483.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
root=$here/root
base=${FLEET_BASE:-24790}
action=${1:-up}
command -v etcd >/dev/null || { echo "Error: etcd is not installed; apt-get install -y etcd-server" >&2; exit 1; }
swift build --package-path "$top" --product release-agent >&2
swift build --package-path "$top" --product release-agent-full >&2
bin="$(swift build --package-path "$top" --show-bin-path)/release-agent"
endpoints="http://127.0.0.1:$((base + 1)),http://127.0.0.1:$((base + 2)),http://127.0.0.1:$((base + 3))"
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

wait_live() {
  local sha i h
  sha=$(git -C "$root/repo" rev-parse HEAD)
  for (( i = 0; i < 600; i++ )); do
    local live=0
    for h in 1 2 3; do
      curl -fsS "http://127.0.0.1:$((8480 + h))/" 2>/dev/null | grep -q "${sha:0:12}" && live=$((live + 1))
    done
    [ "$live" = 3 ] && { echo "all 3 hosts serve ${sha:0:12}"; return 0; }
    sleep 0.2
  done
  echo "Error: not every host runs ${sha:0:12} after 120 s; see $root/web-*.log" >&2
  return 1
}

case $action in
up)
  mkdir -p "$root"
  cluster=""
  for m in 1 2 3; do cluster+="m$m=http://127.0.0.1:$((base + 10 + m)),"; done
  for m in 1 2 3; do
    [ -f "$root/etcd-m$m.pid" ] && kill -0 "$(cat "$root/etcd-m$m.pid")" 2>/dev/null && continue
    state=new; [ -d "$root/etcd-m$m" ] && state=existing
    etcd --name "m$m" --data-dir "$root/etcd-m$m" --listen-client-urls "http://127.0.0.1:$((base + m))" \
      --advertise-client-urls "http://127.0.0.1:$((base + m))" --listen-peer-urls "http://127.0.0.1:$((base + 10 + m))" \
      --initial-advertise-peer-urls "http://127.0.0.1:$((base + 10 + m))" --initial-cluster "${cluster%,}" \
      --initial-cluster-state "$state" --initial-cluster-token release-agent-demo --log-level warn \
      >> "$root/etcd-m$m.log" 2>&1 &
    echo $! > "$root/etcd-m$m.pid"
  done
  for (( i = 0; i < 150; i++ )); do
    curl -fsS "http://127.0.0.1:$((base + 1))/health" 2>/dev/null | grep -q true && break; sleep 0.2
  done
  echo "etcd: $endpoints"
  [ -d "$root/repo/.git" ] || echo "committed demo version $(commit)"
  for h in 1 2 3; do
    [ -f "$root/web-$h.pid" ] && kill -0 "$(cat "$root/web-$h.pid")" 2>/dev/null && continue
    DEMO_PORT=$((8480 + h)) nohup "$bin" serve --root "$root/web-$h" --repo "$root/repo" --host-id "web-$h" "${fleet[@]}" \
      --fleet-canary 1 --fleet-max-parallel 1 --build ./build.sh --hooks-dir "$top/releases.example/hooks" \
      --health-url "http://127.0.0.1:$((8480 + h))/health" --listen "127.0.0.1:$((9480 + h))" \
      --allow-unsigned --poll-interval 2s >> "$root/web-$h.log" 2>&1 < /dev/null &
    echo $! > "$root/web-$h.pid"
    echo "web-$h: serve on http://127.0.0.1:$((9480 + h)), app on http://127.0.0.1:$((8480 + h))/"
  done
  wait_live
  ;;
push)
  echo "committed demo version $(commit); the agents see it within 2 s, the canary goes first"
  wait_live
  for h in 1 2 3; do curl -fsS "http://127.0.0.1:$((8480 + h))/" | sed "s/^/web-$h: /"; done
  ;;
status)
  "$bin" fleet status --root "$root/web-1" "${fleet[@]}"
  ;;
down)
  for pidfile in "$root"/web-*.pid "$root"/web-*/run/demo.pid "$root"/etcd-m*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  echo "stopped the agents, their apps and etcd (data kept in $root)"
  ;;
*)
  echo "usage: $0 [up|push|status|down]" >&2
  exit 2
  ;;
esac
