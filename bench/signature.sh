#!/usr/bin/env bash
# bench/signature.sh [RUNS]   (default 11)
#
# Issue 14: what verify-signatures adds to a deploy. Each run deploys a new commit signed
# with an ssh key (and, for gpg, with a gpg key), with and without the check.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
runs=${1:-11}
agent=$(release_agent_binary)
base=$(bench_base)
work=$(mktemp -d "$base/ra-signature-XXXXXX")
trap 'rm -rf "$work"' EXIT
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b

ssh-keygen -q -t ed25519 -N "" -f "$work/key"
echo "b@b namespaces=\"git\" $(cut -d' ' -f1,2 "$work/key.pub")" > "$work/allowed"
export GNUPGHOME=$work/gnupg; mkdir -m 700 "$GNUPGHOME"
gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key 'B <b@b>' ed25519 sign never 2>/dev/null
gpg --batch --output "$work/keyring.gpg" --export b@b

# deploy_ms FORMAT KEY VERIFY...: median ms of deploying a fresh signed commit, RUNS times
deploy_ms() {
  local format=$1 key=$2; shift 2
  local repo=$work/repo-$format-$# root=$work/root-$format-$#
  rm -rf "$repo" "$root"; git init -q -b main "$repo"
  git -C "$repo" config gpg.format "$format"; git -C "$repo" config user.signingkey "$key"
  for (( i = 0; i <= runs; i++ )); do
    echo "$i" > "$repo/v"; git -C "$repo" add -A; git -C "$repo" commit -q -S -m "c$i"
    local t0 t1; t0=$(now); "$agent" deploy --root "$root" --repo "$repo" "$@" >/dev/null 2>&1; t1=$(now)
    settle "$root"
    [ "$i" -gt 0 ] && awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", (b - a) / 1e6 }'
  done | median
}
plain=$(deploy_ms ssh "$work/key")
ssh=$(deploy_ms ssh "$work/key" --verify-signatures ssh --allowed-signers "$work/allowed")
gpgplain=$(deploy_ms openpgp b@b)
gpg=$(deploy_ms openpgp b@b --verify-signatures gpg --gpg-keyring "$work/keyring.gpg")
add() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", a - b }'; }

file=$(mktemp)
cat > "$file" <<MD
## What a signature check adds to a deploy (bench/signature.sh)

\`bash bench/signature.sh $runs\` on $(date -u +%Y-%m-%d), $(machine_line), tmpfs; medians of $runs
deploys of a new one-file commit each, static release binary.

| | deploy without the check | with \`verify-signatures\` | added |
|---|---|---|---|
| ssh (\`ssh-keygen -Y check-novalidate\`, \`find-principals\`, \`verify\`) | $plain ms | $ssh ms | $(add "$ssh" "$plain") ms |
| gpg (\`gpgv\`) | $gpgplain ms | $gpg ms | $(add "$gpg" "$gpgplain") ms |
MD
write_section signature "$file"
cat "$file"
