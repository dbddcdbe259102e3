# Shared by the bench scripts: tmpfs work dirs, timing, and writing one section of BENCHMARKS.md.
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${SHARED_BENCH:-$top/../shared/bench}

bench_base() {
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then echo /dev/shm; else echo "${TMPDIR:-/tmp}"; fi
}

# The binary the README tells operators to install: release, Swift runtime linked in
# statically (no libswiftCore/Foundation symbol binding at every start), in .build-static.
# RELEASE_AGENT_BIN names another build instead (say so beside the figure).
release_agent_binary() {
  if [ -n "${RELEASE_AGENT_BIN:-}" ]; then echo "$RELEASE_AGENT_BIN"; return; fi
  local flags=(-c release --static-swift-stdlib --scratch-path "$top/.build-static" --package-path "$top")
  swift build "${flags[@]}" --product release-agent >&2
  swift build "${flags[@]}" --product release-agent-full >&2
  echo "$(swift build "${flags[@]}" --show-bin-path)/release-agent"
}

# settle ROOT: waits (at most 30 s) until the background removal of pruned releases under
# ROOT is done, so that it does not run during the next timed run, ours or a peer's.
settle() {
  local trash="$1/.release-agent/trash" i
  for (( i = 0; i < 300; i++ )); do
    [ -z "$(ls -A "$trash" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  echo "bench: $trash still not empty after 30 s" >&2
}

# Timing helpers shared by the scripts: wall ms of one run, the median of a column, the
# median of RUNS runs of a command, a ratio with two decimals.
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
time_ms() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1; t1=$(now); awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'; }
measure() { local i; for (( i = 0; i < runs; i++ )); do time_ms "$@"; done | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

machine_line() {
  echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr)"
}

# write_section NAME FILE: replace the section NAME of BENCHMARKS.md with FILE's content.
write_section() {
  local name=$1 file=$2 out="$top/BENCHMARKS.md"
  [ -f "$out" ] || printf '# Benchmarks\n\nEach section is written by the script it names; run them from a fresh clone.\n' > "$out"
  python3 - "$out" "$name" "$file" <<'PY'
import sys, re
out, name, file = sys.argv[1:]
text = open(out).read()
body = open(file).read().rstrip() + "\n"
start, end = f"<!-- section:{name} -->", f"<!-- /section:{name} -->"
block = f"{start}\n{body}{end}\n"
if start in text:
    text = re.sub(re.escape(start) + ".*?" + re.escape(end) + "\n?", lambda m: block, text, flags=re.S)
else:
    text = text.rstrip() + "\n\n" + block
open(out, "w").write(text)
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_etcd_cluster WORK: a 3-member etcd (Debian's etcd-server) on 127.0.0.1, data under
# WORK; sets `endpoints` (comma-separated client URLs), `cports` and `etcd_pids`, and adds the
# members to `pids` (the caller's cleanup kills them).
start_etcd_cluster() {
  local work=$1 cluster="" i
  endpoints="" cports=() etcd_pids=()
  local -a pports
  for i in 1 2 3; do cports[i]=$(free_port); pports[i]=$(free_port); cluster+="m$i=http://127.0.0.1:${pports[i]},"; done
  cluster=${cluster%,}
  for i in 1 2 3; do
    etcd --name "m$i" --data-dir "$work/etcd-m$i" --listen-client-urls "http://127.0.0.1:${cports[i]}" \
      --advertise-client-urls "http://127.0.0.1:${cports[i]}" --listen-peer-urls "http://127.0.0.1:${pports[i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${pports[i]}" --initial-cluster "$cluster" \
      --initial-cluster-state new --initial-cluster-token bench --log-level warn > "$work/etcd-m$i.log" 2>&1 &
    pids+=($!)
    etcd_pids[i]=$!
    endpoints+="http://127.0.0.1:${cports[i]},"
  done
  endpoints=${endpoints%,}
  for (( i = 0; i < 100; i++ )); do
    curl -fsS "http://127.0.0.1:${cports[1]}/health" 2>/dev/null | grep -q true && break; sleep 0.2
  done
}

# etcd_requests: etcd's count of requests (each unary call, each keepalive and each watch
# stream created is one started gRPC call; the HTTP gateway's too), all members.
etcd_requests() {
  local sum=0 i n
  for i in 1 2 3; do
    n=$(curl -fsS "http://127.0.0.1:${cports[i]}/metrics" | awk '/^grpc_server_started_total/ {s += $2} END {print s + 0}')
    sum=$((sum + n))
  done
  echo "$sum"
}

# etcd_rss: the members' resident memory now and at its peak (VmRSS / VmHWM), in MiB.
etcd_rss() {
  local i out=""
  for i in 1 2 3; do
    out+=$(awk '/^VmRSS/ {r = $2} /^VmHWM/ {h = $2} END {printf "%d/%d ", r / 1024, h / 1024}' "/proc/${etcd_pids[i]}/status")
  done
  echo "${out% }"
}
