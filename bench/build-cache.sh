#!/usr/bin/env bash
# bench/build-cache.sh [RUNS]   (default 5)
#
# build-cache measured on the build it saves: a Python app whose build makes a virtualenv and
# installs its requirements from wheels this script makes (PACKAGES packages of MODULES
# modules each, default 40 x 150; no network at any point). Per run, one cold deploy
# (no live release) and one warm deploy of the next commit with build-cache = [".venv"]; the
# build stage's seconds come from each release's record, the copy's from its own line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-5}
packages=${PACKAGES:-40}
modules=${MODULES:-150}
agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-build-cache-XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
if ! python3 -c 'import ensurepip' 2>/dev/null; then
  echo "Error: python3 with venv is needed; apt-get install -y python3-venv" >&2
  exit 1
fi

# Wheels written directly as zip files (a wheel is one): no build backend, nothing fetched.
python3 - "$work/wheels" "$packages" "$modules" <<'PY'
import base64, hashlib, os, sys, zipfile
out, packages, modules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(out, exist_ok=True)
for p in range(packages):
    name, version = f"benchpkg{p:03d}", "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"VALUE = {p}\n"}
    for m in range(modules):
        files[f"{name}/mod{m:03d}.py"] = "".join(f"def f{i}(x):\n    return x * {i} + {m}\n" for i in range(60))
    files[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    with zipfile.ZipFile(f"{out}/{name}-{version}-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in files.items():
            z.writestr(path, text)
PY

repo=$work/repo
git init -q -b main "$repo"
for (( p = 0; p < packages; p++ )); do printf 'benchpkg%03d==1.0\n' "$p"; done > "$repo/requirements.txt"
printf 'import benchpkg000\nprint("app", benchpkg000.VALUE)\n' > "$repo/app.py"
git -C "$repo" add -A && git -C "$repo" commit -q -m app
build="python3 -m venv .venv && .venv/bin/python -m pip install -q --no-index --find-links $work/wheels -r requirements.txt && .venv/bin/python app.py"

build_seconds() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["buildSeconds"])' "$1/.release-agent/releases/$2.json"; }
: > "$work/cold"; : > "$work/warm"; : > "$work/copy"
for (( r = 0; r < runs; r++ )); do
  root=$work/root-$r
  "$agent" deploy --root "$root" --repo "$repo" --build "$build" --build-cache .venv >/dev/null 2>&1
  build_seconds "$root" "$(git -C "$repo" rev-parse HEAD)" >> "$work/cold"
  echo "# run $r" >> "$repo/app.py" && git -C "$repo" commit -q -am "run $r"
  "$agent" deploy --root "$root" --repo "$repo" --build "$build" --build-cache .venv 2> "$work/log" >/dev/null
  build_seconds "$root" "$(git -C "$repo" rev-parse HEAD)" >> "$work/warm"
  sed -n 's/.*build    cache: .* in \([0-9.]*\)\(m\?s\)$/\1 \2/p' "$work/log" |
    awk '{ print ($2 == "ms" ? $1 / 1000 : $1) }' >> "$work/copy"
  sed -n 's/.*build    cache: \([0-9]* files* ([0-9.]* MiB)\).*/\1/p' "$work/log" > "$work/size"
  grep -q "cache: " "$work/log" || { cat "$work/log" >&2; exit 1; }
  rm -rf "$root"
done
two() { awk '{ printf "%.2f", $1 }'; }
cold=$(median < "$work/cold" | two); warm=$(median < "$work/warm" | two); copy=$(median < "$work/copy" | two)
size=$(cat "$work/size")
files=$(find "$work/wheels" -name '*.whl' | wc -l)
section=$work/section
{
  echo "### build-cache: a virtualenv build, cold vs warm"
  echo
  echo "\`bench/build-cache.sh $runs\` on $(date -u +%Y-%m-%d), $(machine_line), work dir on $base;"
  echo "agent: \`$agent\`. The build: \`python3 -m venv .venv\` and \`pip install --no-index\` of"
  echo "$files local wheels ($packages packages x $modules modules). Medians of $runs runs, the build stage's"
  echo "seconds as each release's record gives them (the warm one includes the copy)."
  echo
  echo "| build | seconds |"
  echo "|---|---|"
  echo "| cold (no live release) | $cold |"
  echo "| warm, \`build-cache = [\".venv\"]\` | $warm |"
  echo "| of which the copy of \`.venv\` ($size) | $copy |"
  echo
  echo "Warm is $(ratio "$warm" "$cold") of cold. What stays of the warm build is \`python3 -m venv\`"
  echo "running ensurepip again and pip finding every requirement satisfied; the copy is a"
  echo "small part of it. The agent was a debug build when RELEASE_AGENT_BIN names one."
} > "$section"
cat "$section"
write_section build-cache "$section"
