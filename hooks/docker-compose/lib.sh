# shellcheck shell=sh
# Sourced by hooks/docker-compose/{start,stop,activate}; not a hook itself (no event has its name).
# Settings it reads:
#   COMPOSE_PROJECT    base of the project names (default app): the slot on port P is project
#                      app-P (lower-case letters, digits, '-' and '_', as compose v2 requires)
#   COMPOSE_BIN        the compose command (default: "docker compose" when that plugin answers,
#                      else docker-compose, which is what Debian 12 ships)
#   COMPOSE_FILE_NAME  the compose file in the release (default: the first of compose.yaml,
#                      compose.yml, docker-compose.yaml, docker-compose.yml)

die() {
  echo "docker-compose/${0##*/}: $*" >&2
  exit 1
}

case ${RELEASE_PORT:-} in
  '' | *[!0-9]*) die "RELEASE_PORT is not set: these hooks are for strategy = blue-green, with two slots" ;;
esac

# compose v2 refuses a project name outside [a-z0-9][a-z0-9_-]*, and v1 silently drops the
# other characters ("my app" becomes "myapp"), so the stop hook could miss what start made:
# refuse such a name here instead.
base=${COMPOSE_PROJECT:-app}
case $base in
  '' | [!a-z0-9]* | *[!a-z0-9_-]*)
    die "COMPOSE_PROJECT='$base' is not a compose project name: use lower-case letters, digits, '-' and '_', starting with a letter or digit" ;;
esac

# The project of the slot on port $1. Named after the port, not a colour: the old hooks named
# it app-blue/app-green from BLUE_PORT (default 5001), and when that matched neither slot both
# slots were one project, so the candidate's `up` replaced the live container and `stop` then
# took the new one down. Two slots are two ports, so two projects, whatever is set; and two
# agents on one host cannot share a port, so they cannot share a project either.
project() { printf '%s-%s\n' "$base" "$1"; }

# Sets $compose: COMPOSE_BIN, else the plugin when it answers, else docker-compose.
# shellcheck disable=SC2034 # the hooks that source this file use it
find_compose() {
  if [ -n "${COMPOSE_BIN:-}" ]; then
    compose=$COMPOSE_BIN
    command -v "${compose%% *}" >/dev/null 2>&1 || die "COMPOSE_BIN='$COMPOSE_BIN': ${compose%% *} is not a command here"
  elif docker compose version >/dev/null 2>&1; then
    compose="docker compose"
  elif command -v docker-compose >/dev/null 2>&1; then
    compose=docker-compose
  else
    die "neither 'docker compose' nor docker-compose is installed: apt-get install docker-compose, or set COMPOSE_BIN"
  fi
}

# Fails with the engine's own last line when no Docker engine answers (stopped, no permission).
require_engine() {
  out=$(docker version --format '{{.Server.Version}}' 2>&1) ||
    die "the Docker engine does not answer ($(printf '%s\n' "$out" | tail -n 1)): is dockerd running, and is this user in group docker?"
}

# The compose file of release dir $1 on stdout; fails when it has none.
compose_file() {
  if [ -n "${COMPOSE_FILE_NAME:-}" ]; then
    set -- "$1/$COMPOSE_FILE_NAME"
  else
    set -- "$1/compose.yaml" "$1/compose.yml" "$1/docker-compose.yaml" "$1/docker-compose.yml"
  fi
  for f; do
    if [ -f "$f" ]; then
      printf '%s\n' "$f"
      return 0
    fi
  done
  return 1
}

# Removes every container and network labelled as project $1, whatever state `up` left them
# in (created, running, exited) and with no compose file needed; fails if any remains.
remove_project() {
  ids=$(docker ps --all --quiet --filter "label=com.docker.compose.project=$1") || return 1
  if [ -n "$ids" ]; then
    # shellcheck disable=SC2086
    docker stop $ids >/dev/null 2>&1 || true
    # shellcheck disable=SC2086
    docker rm --force $ids >/dev/null || return 1
  fi
  nets=$(docker network ls --quiet --filter "label=com.docker.compose.project=$1") || return 1
  # shellcheck disable=SC2086
  [ -z "$nets" ] || docker network rm $nets >/dev/null || return 1
  [ -z "$(docker ps --all --quiet --filter "label=com.docker.compose.project=$1")" ]
}
