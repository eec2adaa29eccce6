#!/usr/bin/env bash
# Rolling update of one usher pool through the admin API, one backend at a time:
# drain it, wait until its in-flight requests are done, run your restart command,
# wait until usher's health checks pass on it again, then enable it.
# Needs bash and curl only. See docs/operations.md.
#
# Usage: scripts/rolling-update.sh --admin URL --pool NAME [options] -- COMMAND [ARG...]
#
#   COMMAND              run once per backend with USHER_BACKEND=host:port and
#                        USHER_POOL=NAME in its environment; it should return when
#                        the backend process is back. A non-zero exit stops the update.
#   --admin URL          the admin API, e.g. http://127.0.0.1:9090 (default: $USHER_ADMIN_URL)
#   --pool NAME          the pool to update
#   --token TOKEN        admin token (default: $USHER_ADMIN_TOKEN)
#   --drain-timeout S    most seconds to wait for in-flight requests to finish (default 60)
#   --health-timeout S   most seconds to wait for a restarted backend to pass its checks (default 60)
#   --no-health-wait     enable right after COMMAND (pools without healthCheck)
#
# Backends an operator already set to draining or disabled are skipped. A backend
# is drained only while another backend of the pool is healthy. On any failure the
# script stops and leaves the backend it was working on draining, so no traffic
# reaches a backend that may be broken; it prints how to enable it.
#
# Exit codes: 0 every backend updated, 1 a step failed, 2 wrong usage.
set -euo pipefail

admin=${USHER_ADMIN_URL:-}
pool=''
token=${USHER_ADMIN_TOKEN:-}
drain_timeout=60
health_timeout=60
health_wait=1

usage() {
  sed -n '7,18p' "$0" | sed -E 's/^# ?//' >&2
  exit "${1:-2}"
}
say() { printf 'rolling-update: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --admin) admin=${2:?--admin needs a URL}; shift 2 ;;
    --pool) pool=${2:?--pool needs a name}; shift 2 ;;
    --token) token=${2:?--token needs a value}; shift 2 ;;
    --drain-timeout) drain_timeout=${2:?--drain-timeout needs seconds}; shift 2 ;;
    --health-timeout) health_timeout=${2:?--health-timeout needs seconds}; shift 2 ;;
    --no-health-wait) health_wait=0; shift ;;
    -h | --help) usage 0 ;;
    --) shift; break ;;
    *) say "unknown option $1"; usage ;;
  esac
done
[ -n "$admin" ] && [ -n "$pool" ] && [ $# -gt 0 ] || usage
[[ $drain_timeout =~ ^[0-9]+$ && $health_timeout =~ ^[0-9]+$ ]] || { say 'timeouts are whole seconds'; usage; }
admin=${admin%/}

# Percent-encodes what an address or pool name may hold that a path segment may not.
encode() {
  local s=${1//%/%25}
  s=${s//:/%3A}
  s=${s//\[/%5B}
  s=${s//\]/%5D}
  s=${s//\//%2F}
  printf '%s' "$s"
}

# api METHOD PATH: prints the JSON body; dies unless the status is 2xx.
# The token goes through curl's stdin config, so it never shows in `ps`.
api() {
  local out status
  out=$(
    if [ -n "$token" ]; then
      local t=${token//\\/\\\\}
      printf 'header = "Authorization: Bearer %s"\n' "${t//\"/\\\"}"
    fi | curl -sS --max-time 10 -K - -X "$1" -w '\n%{http_code}' "$admin$2"
  ) || die "cannot reach the admin API at $admin$2"
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  case $status in
    2??) printf '%s\n' "$out" ;;
    *) die "$1 $2: HTTP $status: $(printf '%s' "$out" | tr -s ' \n' ' ')" ;;
  esac
}

# field NAME: the values of "NAME": ... in the JSON on stdin, one a line, quotes removed.
# usher's views have no nested key clashes for the names used here.
field() { grep -oE "\"$1\": (\"[^\"]*\"|[0-9a-z.]+)" | sed -E "s/^\"$1\": \"?//; s/\"\$//" || true; }

# lines_into NAME: reads stdin into the array NAME, one element a line (bash 3.2 has no mapfile).
lines_into() {
  eval "$1=()"
  local line
  while IFS= read -r line; do eval "$1+=(\"\$line\")"; done
}

pool_path="/api/pools/$(encode "$pool")"
backend_path() { printf '%s/backends/%s' "$pool_path" "$(encode "$1")"; }

left_draining() {
  local auth=''
  # shellcheck disable=SC2016 # the variable's name, not the token, goes into the message
  [ -z "$token" ] || auth='-H "Authorization: Bearer $USHER_ADMIN_TOKEN" '
  say "$1 is left draining; when it is fine: curl -X POST $auth$admin$(backend_path "$1")/enable"
}

view=$(api GET "$pool_path")
lines_into addresses < <(printf '%s\n' "$view" | field address)
lines_into admin_states < <(printf '%s\n' "$view" | field adminState)
[ ${#addresses[@]} -gt 0 ] || die "pool $pool has no backends"
say "pool $pool: ${#addresses[@]} backend(s): ${addresses[*]}"

updated=0
for i in "${!addresses[@]}"; do
  address=${addresses[$i]}
  if [ "${admin_states[$i]}" != enabled ]; then
    say "$address: skipped, an operator set it ${admin_states[$i]}"
    continue
  fi
  path=$(backend_path "$address")

  # Never take the last healthy backend out.
  others=0
  view=$(api GET "$pool_path")
  lines_into now_addresses < <(printf '%s\n' "$view" | field address)
  lines_into now_states < <(printf '%s\n' "$view" | field state)
  for j in "${!now_addresses[@]}"; do
    if [ "${now_addresses[$j]}" != "$address" ] && [[ ${now_states[$j]} == healthy || ${now_states[$j]} == slow-start ]]; then
      others=$((others + 1))
    fi
  done
  [ $others -gt 0 ] || die "$address: not drained: no other backend of pool $pool is healthy"

  api POST "$path/drain" >/dev/null
  say "$address: draining"
  deadline=$((SECONDS + drain_timeout))
  while :; do
    in_flight=$(api GET "$path" | field inFlight)
    [ "$in_flight" = 0 ] && break
    if [ $SECONDS -ge $deadline ]; then
      left_draining "$address"
      die "$address: still $in_flight request(s) in flight after ${drain_timeout}s"
    fi
    sleep 0.2
  done

  say "$address: no requests in flight; running the restart command"
  if ! USHER_BACKEND=$address USHER_POOL=$pool "$@"; then
    left_draining "$address"
    die "$address: the restart command failed"
  fi

  if [ $health_wait = 1 ]; then
    # Wait for a passing check that started after the command returned: checks never
    # overlap, so the second one completing after the newest result seen now qualifies.
    mark=$(api GET "$path" | field at | tail -n 1)
    deadline=$((SECONDS + health_timeout))
    while :; do
      view=$(api GET "$path")
      newer=0
      while IFS= read -r at; do
        [[ -n $at && $at > $mark ]] && newer=$((newer + 1))
      done < <(printf '%s\n' "$view" | field at)
      last_ok=$(printf '%s\n' "$view" | field ok | tail -n 1)
      healthy=$(printf '%s\n' "$view" | field healthy)
      [ $newer -ge 2 ] && [ "$last_ok" = true ] && [ "$healthy" = true ] && break
      if [ $SECONDS -ge $deadline ]; then
        left_draining "$address"
        [ -n "$(printf '%s\n' "$view" | field at)" ] || die "$address: no health check results; does pool $pool have a healthCheck? (else pass --no-health-wait)"
        die "$address: not healthy ${health_timeout}s after the restart"
      fi
      sleep 0.2
    done
    say "$address: health checks pass"
  fi

  state=$(api POST "$path/enable" | field state)
  say "$address: enabled ($state)"
  updated=$((updated + 1))
done
say "pool $pool: $updated backend(s) updated"
