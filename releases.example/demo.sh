#!/usr/bin/env bash
# Deploys the bundled demo for real with release-agent.
#
#   releases.example/demo.sh            commit a new demo version and deploy it
#   releases.example/demo.sh rollback   switch current back to the previous version
#   releases.example/demo.sh status     show what is deployed
#   releases.example/demo.sh stop       stop the demo app
#
# Everything it makes lives under releases.example/root/ (ignored by git):
#   root/demo-repo   a git repository holding releases.example/app, one commit per run
#   root/deploy      the deploy root: current -> releases/<sha>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
action=${1:-deploy}

swift build --package-path "$top" --product release-agent >&2
swift build --package-path "$top" --product release-agent-full >&2  # deploy runs it (see README)
bin="$(swift build --package-path "$top" --show-bin-path)/release-agent"
config="$here/release-agent.toml"

case $action in
deploy)
  repo="$here/root/demo-repo"
  mkdir -p "$repo"
  export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
  export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
  export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
  [ -d "$repo/.git" ] || git -C "$repo" init -q -b main
  cp "$here"/app/app.py "$here"/app/build.sh "$repo"/
  n=$(( $(cat "$repo/VERSION" 2>/dev/null || echo 0) + 1 ))
  echo "$n" > "$repo/VERSION"
  git -C "$repo" add -A
  git -C "$repo" commit -q -m "demo version $n"
  "$bin" deploy --config "$config"
  echo "demo version $n is live: $here/root/deploy/current, serving http://127.0.0.1:${DEMO_PORT:-8480}/"
  python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:${DEMO_PORT:-8480}/', timeout=5).read().decode().strip())"
  ;;
rollback)
  "$bin" rollback --config "$config"
  python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:${DEMO_PORT:-8480}/', timeout=5).read().decode().strip())"
  ;;
status | history)
  "$bin" "$action" --config "$config"
  ;;
stop)
  pid=$(cat "$here/root/deploy/run/demo.pid" 2>/dev/null || true)
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && echo "stopped the demo app (pid $pid)"
  ;;
*)
  echo "usage: $0 [deploy|rollback|status|history|stop]" >&2
  exit 2
  ;;
esac
