#!/bin/sh
# One deploy with a canary analysis of a constant query: the analysis stage's own time
# against its schedule (initial delay + (count - 1) x interval).
set -eu
bin=${RELEASE_AGENT_BIN:-$(cd "$(dirname "$0")/.." && pwd)/.build/debug/release-agent}
dir=$(mktemp -d)
port=19391
prometheus --config.file=/dev/null --storage.tsdb.path="$dir/tsdb" --web.listen-address=127.0.0.1:$port >"$dir/prom.log" 2>&1 &
prom=$!
trap 'kill $prom 2>/dev/null; rm -rf "$dir"' EXIT
i=0; until curl -sf http://127.0.0.1:$port/-/ready >/dev/null; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.1; done
git init -q -b main "$dir/repo" && git -C "$dir/repo" commit -q --allow-empty -m one
"$bin" deploy --root "$dir/root" --repo "$dir/repo" --analysis-prometheus http://127.0.0.1:$port \
  --analysis 'constant: vector(0) <= 1' --analysis-initial-delay 5s --analysis-interval 1s --analysis-count 3 2>&1 | grep -E '^analysis [0-9]'
