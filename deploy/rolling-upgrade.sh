#!/usr/bin/env bash
# A rolling upgrade of a farm's front ends, one at a time: drain it until it
# holds no connection, stop it, upgrade it, start it, wait until it is linked
# and reporting its load, undrain it, and wait until it takes clients again.
# Stopping, upgrading and starting are the admin's commands (systemd on each
# box, say), given as templates; the drain state lives in the router, so the
# front end comes back drained and takes clients only when undrained.
#
# It stops at the first step that fails and says which; the front end it
# was on is then left drained (or stopped), which is safe: the others serve
# its clients. See deploy/five-boxes/README.md, "Rolling upgrade".
set -euo pipefail

usage() {
  cat <<'EOF'
usage: deploy/rolling-upgrade.sh --stop CMD --start CMD [options] [NAME...]

Upgrades the front ends NAME... in that order (default: every c2s that
`xfarm status` lists, by name), one at a time.

  --stop CMD           command that stops a front end, e.g. 'ssh {host} systemctl stop xfarm-c2s@{name}'
  --start CMD          command that starts it, e.g. 'ssh {host} systemctl start xfarm-c2s@{name}'
  --upgrade CMD        command run while it is stopped, e.g.
                       "ssh {host} 'cd /opt/xfarm && git pull --ff-only && npm ci && npm run build'"
                       (default: none)
                       In each, {name} is the front end's name and {host} its host.
  --host NAME=HOST     the host of front end NAME (default: its c2s.public_host, from xfarm status)
  --rate N             connected clients moved a second by the drain (default: xfarm's)
  --timeout SECONDS    how long a drain may take to empty the front end (default 600)
  --ready-timeout S    how long a front end may take to leave the farm once stopped, and to
                       link and report once started, and to take clients once undrained (default 120)
  --xfarm CMD          how to run xfarm (default: xfarm; e.g. 'node /opt/xfarm/dist/cli/xfarm.js')
  --config FILE        the farm's config, passed to xfarm (default: $XFARM_CONFIG or ./xfarm.toml)
EOF
}

stop_tmpl="" start_tmpl="" upgrade_tmpl="" rate="" timeout=600 ready_timeout=120 xfarm_cmd="xfarm"
config=()
declare -A hosts=()
names=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stop) stop_tmpl=$2; shift 2 ;;
    --start) start_tmpl=$2; shift 2 ;;
    --upgrade) upgrade_tmpl=$2; shift 2 ;;
    --host) hosts[${2%%=*}]=${2#*=}; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --ready-timeout) ready_timeout=$2; shift 2 ;;
    --xfarm) xfarm_cmd=$2; shift 2 ;;
    --config) config=(--config "$2"); shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) echo "rolling-upgrade: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if [ -z "$stop_tmpl" ] || [ -z "$start_tmpl" ]; then
  echo "rolling-upgrade: --stop and --start are required" >&2
  usage >&2
  exit 2
fi
read -r -a xfarm <<<"$xfarm_cmd"

say() { printf '%s rolling-upgrade: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# Where the upgrade stands, for the message if a step fails.
current="" step="" left=""
on_exit() {
  local code=$?
  [ "$code" -eq 0 ] && return
  if [ -n "$current" ]; then
    say "FAILED at \"$step\" of $current: $left" >&2
    say "the other front ends serve its clients; once it is fixed: ${xfarm_cmd} c2s undrain $current${config[*]:+ ${config[*]}}" >&2
  fi
}
trap on_exit EXIT

# One line per front end the router knows: NAME HOST STATE SESSIONS CONNECTIONS
# (STATE: draining or active; "-" for a load not yet reported).
front_ends() {
  "${xfarm[@]}" status --json "${config[@]}" | node -e '
    let text = "";
    process.stdin.on("data", (d) => (text += d)).on("end", () => {
      for (const e of JSON.parse(text).entries) {
        if (e.role !== "c2s") continue;
        const l = e.load;
        console.log([e.name, e.info.host, e.info.draining ? "draining" : "active", l ? l.sessions : "-", l ? l.connections : "-"].join(" "));
      }
    });'
}

# The line of front end $1, or nothing.
front_end() { front_ends | awk -v n="$1" '$1 == n'; }

# Polls (once a second, up to $1 seconds) until the shell test $2 holds for
# `line`, the front end's status line ($3); fails after the timeout.
wait_for() {
  local limit=$1 test=$2 name=$3 start=$SECONDS line
  while :; do
    line=$(front_end "$name")
    if eval "$test"; then return 0; fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      say "$name: not there after ${limit} s (status: ${line:-not linked})" >&2
      return 1
    fi
    sleep 1
  done
}

# Runs a template with {name} and {host} filled in.
run() {
  local cmd=${1//\{name\}/$2}
  cmd=${cmd//\{host\}/$3}
  say "$2: $cmd"
  sh -c "$cmd"
}

all=$(front_ends)
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <(awk '{ print $1 }' <<<"$all" | sort)
fi
[ ${#names[@]} -gt 0 ] || { say "the router knows no front end" >&2; exit 1; }
for name in "${names[@]}"; do
  if [ -z "${hosts[$name]:-}" ]; then
    host=$(awk -v n="$name" '$1 == n { print $2 }' <<<"$all")
    [ -n "$host" ] || { say "$name is not linked to the router and has no --host" >&2; exit 1; }
    hosts[$name]=$host
  fi
done

began=$SECONDS
say "front ends, in turn: ${names[*]}"
for name in "${names[@]}"; do
  host=${hosts[$name]}
  # Someone else must take its clients: a front end linked, reporting, not draining.
  others=$(front_ends | awk -v n="$name" '$1 != n && $3 == "active" && $5 != "-"' | wc -l)
  if [ "$others" -eq 0 ]; then
    say "no other front end takes clients now: $name is left as it is" >&2
    exit 1
  fi
  current=$name
  t0=$SECONDS
  step="drain" left="$name is draining or drained"
  say "$name ($host): draining"
  "${xfarm[@]}" c2s drain "$name" ${rate:+--rate "$rate"} --wait --timeout "$timeout" "${config[@]}"
  step="stop" left="$name is drained; it may or may not be running"
  run "$stop_tmpl" "$name" "$host"
  # Gone from the router's table: its process has ended and let go of its link.
  wait_for "$ready_timeout" '[ -z "$line" ]' "$name"
  if [ -n "$upgrade_tmpl" ]; then
    step="upgrade" left="$name is drained and stopped"
    run "$upgrade_tmpl" "$name" "$host"
  fi
  step="start" left="$name is drained; it may or may not be running"
  run "$start_tmpl" "$name" "$host"
  # Linked and reporting its load (the router has drained it again as it linked).
  wait_for "$ready_timeout" '[ -n "$line" ] && [ "$(cut -d" " -f5 <<<"$line")" != "-" ]' "$name"
  step="undrain" left="$name is running, drained"
  "${xfarm[@]}" c2s undrain "$name" "${config[@]}"
  wait_for "$ready_timeout" '[ "$(cut -d" " -f3 <<<"$line")" = active ]' "$name"
  say "$name: upgraded and serving, in $((SECONDS - t0)) s"
  current=""
done
say "done: ${names[*]} in $((SECONDS - began)) s"
