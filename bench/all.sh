#!/usr/bin/env bash
# bench/all.sh: the whole benchmark suite, in one command; writes BENCHMARKS.md.
#   bench/deploy.sh   one-commit deploy vs the shell-script baseline
#   bench/figures.sh  tar floor, poll vs ls-remote, rollback, serve idle, peak RSS, scaling
#   bench/webhook.sh  signed webhooks vs adnanh/webhook under wrk
set -euo pipefail
here=$(dirname "$0")
bash "$here/deploy.sh" "${DEPLOY_RUNS:-9}"
bash "$here/figures.sh" "${FIGURE_RUNS:-9}"
bash "$here/webhook.sh" "${WEBHOOK_SECONDS:-10}" 32
