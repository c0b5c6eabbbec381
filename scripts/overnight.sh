#!/usr/bin/env bash
# A benchmark run that outlives the ssh session, a crash of the run and a reboot, and leaves the
# morning's status and report in its folder.
#
#   bash scripts/overnight.sh start OUT_DIR -- RUN_ARGS...  start `jetson_benchmark.py run RUN_ARGS
#                                   --output OUT_DIR/results.csv`, detached; returns once it runs
#                                   (its CSV begun) or was refused, waiting SAV_OVERNIGHT_START_WAIT_S (120)
#   bash scripts/overnight.sh status OUT_DIR   this script's state, then the run's own `status`
#                                   (exit code 0 when the run finished cleanly, as `status`'s)
#   bash scripts/overnight.sh stop OUT_DIR     end the run between two rows; nothing resumes it
#   bash scripts/overnight.sh resume OUT_DIR   continue it (after stop, or after a give-up once
#                                   the cause is fixed); `resume --boot` is what a reboot runs
#
# How it works:
# - start records the run in OUT_DIR/overnight/: its arguments, environment (less the ssh
#   session's variables), working folder and interpreter (PYTHON, default python3, resolved). Every
#   later attempt runs exactly that command with --resume, which skips the jobs that have a row
#   and drops a half-written last line, so each (video, object, model) ends with one row.
# - Detached: `systemd-run --user` (a transient unit) where the user manager lingers (without
#   `loginctl enable-linger` the user's units end at logout); else a tmux session; else setsid.
#   SAV_OVERNIGHT_LAUNCHER=systemd|tmux|setsid chooses. None of them survives a reboot, so:
# - Reboot: start adds an @reboot line to the user's crontab (`resume --boot OUT_DIR`); at boot it
#   waits SAV_OVERNIGHT_BOOT_DELAY_S (60) and continues the run unless it ended or was stopped.
#   The line is removed when the run ends or is stopped.
# - Crash (kill -9, the OOM killer, a segfault of the driver process): the loop runs the command
#   again after SAV_OVERNIGHT_RESTART_DELAY_S (10 s). After SAV_OVERNIGHT_MAX_STALLED (3) attempts
#   in a row, reboots included, that added no row, it gives up (state gave-up).
# - The run's exit code ends the loop: 0 done; 1 done-with-failures (rerun the failed jobs with
#   --retry_failed, as status.txt says) or, with jobs left, incomplete when --fail_fast stopped it
#   (otherwise, a full disk or an error of the driver's own, it runs again as after a crash);
#   2 refused (bad arguments: start says so and exits 2); 3 too-many-failures. SIGTERM or SIGHUP
#   (a shutdown, `systemctl --user stop`) leaves the run to the next boot; SIGINT (Ctrl-C) stops it.
# - One loop per folder: it holds OUT_DIR/overnight/loop.lock (freed by the kernel at its end).
#
# OUT_DIR holds results.csv and the CLI's files beside it; power-before.txt, power-resumed-N.txt
# (each resume: a reboot undoes `jetson_clocks`) and power-after.txt (`nvpmodel -q`, `jetson_clocks
# --show`, or sudo -n); when the run ends, status.txt (`status`), report.md and report.html
# (`report --html`); overnight/ (state, log: every attempt's output, the recorded command).
# Exit codes: 0 fine; 1 the run is not finished cleanly (status), or ended badly already (start);
# 2 refused, with one line on stderr.
set -uo pipefail
NAME=overnight.sh
SCRIPT="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
REPO=$(dirname "$(dirname "$SCRIPT")")
MARK="# sav-overnight"
FINAL_STATES="done done-with-failures incomplete refused too-many-failures gave-up"

die() {
  echo "$NAME: $*" >&2
  exit 2
}
now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
log() { echo "[$(now)] $NAME: $*"; }

usage() {
  sed -n '5,11p' "$SCRIPT" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

paths() { # OUT, META, CSV from an absolute folder
  OUT=$1 META=$1/overnight CSV=$1/results.csv
}

existing() { # the folder of an earlier start, made absolute
  [[ -n ${1:-} ]] || usage
  local dir
  dir=$(cd -- "$1" 2>/dev/null && pwd) || die "$1: no such folder"
  paths "$dir"
  [[ -f $META/args ]] || die "$OUT was not started by $NAME (no overnight/args): bash $SCRIPT start $1 -- RUN_ARGS..."
}

state() { cat "$META/state" 2>/dev/null || echo unknown; }
set_state() {
  printf '%s\n' "$1" >"$META/state.new" && mv -f "$META/state.new" "$META/state"
}
is_final() { [[ " $FINAL_STATES " == *" $1 "* ]]; }

loop_alive() { # whether a loop (or the run it started) holds the folder's lock
  [[ -e $META/loop.lock ]] || return 1
  ! flock -n "$META/loop.lock" true 2>/dev/null
}

rows() { if [[ -f $CSV ]]; then wc -l <"$CSV" | tr -d ' '; else echo 0; fi; }

save_env() { # the environment, less what belongs to the ssh session or the terminal
  local kv
  while IFS= read -r -d '' kv; do
    case "${kv%%=*}" in
      SSH_* | XDG_SESSION_* | XDG_RUNTIME_DIR | DBUS_SESSION_BUS_ADDRESS | DISPLAY | WAYLAND_DISPLAY | TMUX | TMUX_PANE | TERM | \
        TERM_* | COLORTERM | STY | WINDOW | SHLVL | PWD | OLDPWD | _ | INVOCATION_ID | JOURNAL_STREAM | MANAGERPID | \
        SYSTEMD_EXEC_PID | LS_COLORS | MAIL | COLUMNS | LINES | BASH_FUNC_*) continue ;;
    esac
    printf '%s\0' "$kv"
  done < <(env -0) >"$META/env"
}

restore_env() { # the recorded environment, over what the launcher (or cron) gave
  local kv
  while IFS= read -r -d '' kv; do
    export "${kv?}" 2>/dev/null || true
  done <"$META/env"
  if [[ -z ${XDG_RUNTIME_DIR:-} && -d /run/user/$(id -u) ]]; then
    XDG_RUNTIME_DIR=/run/user/$(id -u) # systemd-run --user finds the user manager there
    export XDG_RUNTIME_DIR
  fi
}

record_power() { # FILE WHY: the power mode and clocks now
  {
    echo "# $2: $(now) on $(uname -n)"
    echo "\$ nvpmodel -q"
    if command -v nvpmodel >/dev/null; then
      nvpmodel -q 2>&1 || echo "(exit code $?)"
    else
      echo "(nvpmodel not found)"
    fi
    echo "\$ jetson_clocks --show"
    if ! command -v jetson_clocks >/dev/null; then
      echo "(jetson_clocks not found)"
    elif ! jetson_clocks --show 2>/dev/null; then
      echo "(jetson_clocks --show needs root here; sudo -n jetson_clocks --show:)"
      sudo -n jetson_clocks --show 2>&1 || echo "(exit code $?: a sudoers NOPASSWD line for jetson_clocks lets this be recorded)"
    fi
  } >"$1"
}

hook_line() { printf '@reboot /bin/bash %q resume --boot %q >>%q 2>&1 %s %s\n' "$SCRIPT" "$OUT" "$META/log" "$MARK" "$OUT"; }
without_hook() { awk -v tail=" $MARK $OUT" 'length($0) < length(tail) || substr($0, length($0) - length(tail) + 1) != tail'; }

add_boot_hook() {
  if ! command -v crontab >/dev/null; then
    log "warning: no crontab here, so a reboot will not continue the run; after one: bash $SCRIPT resume $OUT"
    return 0
  fi
  local current
  current=$(crontab -l 2>/dev/null) || current=""
  { [[ -z $current ]] || without_hook <<<"$current"; hook_line; } | crontab - ||
    log "warning: the @reboot line could not be added (crontab failed); after a reboot: bash $SCRIPT resume $OUT"
}

remove_boot_hook() {
  command -v crontab >/dev/null || return 0
  local current kept
  current=$(crontab -l 2>/dev/null) || return 0
  kept=$(without_hook <<<"$current")
  [[ $kept == "$current" ]] || printf '%s\n' "$kept" | crontab - || log "warning: the @reboot line could not be removed: crontab -e"
}

launcher() { # systemd, tmux or setsid
  local chosen=${SAV_OVERNIGHT_LAUNCHER:-auto}
  case "$chosen" in
    systemd | tmux | setsid) echo "$chosen" ;;
    auto)
      if command -v systemd-run >/dev/null && command -v loginctl >/dev/null &&
        [[ $(loginctl show-user "$(id -un)" --property=Linger --value 2>/dev/null) == yes ]]; then
        echo systemd
      elif command -v tmux >/dev/null; then
        echo tmux
      else
        echo setsid
      fi
      ;;
    *) die "SAV_OVERNIGHT_LAUNCHER=$chosen: choose systemd, tmux or setsid (or leave it unset)" ;;
  esac
}

launch() { # the loop, detached from this session; records how
  local how name loop
  how=$(launcher) || exit 2
  name="sav-overnight-$(date +%Y%m%d-%H%M%S)-$$"
  loop=(/bin/bash "$SCRIPT" _loop "$OUT")
  if [[ $how == systemd ]]; then
    if systemd-run --user --quiet --collect --unit="$name" --property=TimeoutStopSec=300 -- "${loop[@]}" 2>>"$META/log"; then
      echo "systemd-run --user unit $name (journalctl --user -u $name; its output goes to overnight/log)" >"$META/launcher"
      return 0
    fi
    log "systemd-run --user failed (see above): tmux or setsid instead" >>"$META/log"
    how=setsid
    if command -v tmux >/dev/null; then how=tmux; fi
  fi
  if [[ $how == tmux ]]; then
    if tmux new-session -d -s "$name" "$(printf '%q ' "${loop[@]}")" 2>>"$META/log"; then
      echo "tmux session $name" >"$META/launcher"
      return 0
    fi
    log "tmux failed (see above): setsid instead" >>"$META/log"
  fi
  setsid "${loop[@]}" </dev/null >>"$META/log" 2>&1 &
  echo "setsid, process $!" >"$META/launcher"
}

finish() { # FINAL_STATE WHY: the after-record, the morning's files, no boot hook, the state
  log "the run ended: $1 ($2)"
  record_power "$OUT/power-after.txt" "after the run ($1)"
  if [[ -f $CSV ]]; then
    "$PYBIN" "$REPO/jetson_benchmark.py" status "$CSV" >"$OUT/status.txt" 2>&1
    "$PYBIN" "$REPO/jetson_benchmark.py" report "$CSV" --html "$OUT/report.html" --force >"$OUT/report.md" ||
      log "warning: report --html failed (exit code $?), see above"
  else
    { echo "$CSV: no rows: the run was refused"; grep 'error: ' "$META/log" | tail -n 1; } >"$OUT/status.txt"
  fi
  remove_boot_hook
  set_state "$1"
}

cmd_loop() { # the loop that runs the command until it ends (launched by start and resume)
  paths "$1"
  exec >>"$META/log" 2>&1 </dev/null
  exec 9>>"$META/loop.lock"
  flock -w 5 9 || { # a moment's wait: `status` probes the lock by taking it briefly
    log "another loop is running this run; this one ends"
    exit 0
  }
  restore_env
  echo $$ >"$META/pid"
  local cwd rc attempt count stalled max=${SAV_OVERNIGHT_MAX_STALLED:-3}
  cwd=$(cat "$META/cwd")
  PYBIN=$(cat "$META/python")
  cd "$cwd" || {
    finish refused "cannot enter $cwd, where the run was started"
    exit 0
  }
  mapfile -d '' -t ARGS <"$META/args"
  local command=("$PYBIN" "$REPO/jetson_benchmark.py" run "${ARGS[@]}" --output "$CSV" --resume)
  trap 'log "signal received: the run ends between two rows"' TERM HUP INT
  while [[ $(state) == running ]]; do
    count=$(rows)
    stalled=$(cat "$META/stalled" 2>/dev/null || echo 0)
    if [[ -f $META/rows_at_start && $(cat "$META/rows_at_start") == "$count" ]]; then stalled=$((stalled + 1)); else stalled=0; fi
    echo "$stalled" >"$META/stalled"
    echo "$count" >"$META/rows_at_start"
    if ((stalled >= max)); then
      finish gave-up "$stalled attempts in a row added no row; fix the cause (see this log), then: bash $SCRIPT resume $OUT"
      exit 0
    fi
    attempt=$(($(cat "$META/attempts" 2>/dev/null || echo 0) + 1))
    echo "$attempt" >"$META/attempts"
    log "attempt $attempt, $count lines in results.csv: $(printf '%q ' "${command[@]}")"
    "${command[@]}"
    rc=$?
    if [[ $(state) != running ]]; then
      log "the run ended (exit code $rc) and the state is $(state): the loop ends"
      exit 0
    fi
    case $rc in
      0) finish "done" "every job has a row, none failed" ;;
      1) if [[ $("$PYBIN" "$REPO/jetson_benchmark.py" status "$CSV" 2>/dev/null) =~ jobs:\ ([0-9]+)\ of\ ([0-9]+)\  ]] &&
        ((BASH_REMATCH[1] < BASH_REMATCH[2])); then
        if [[ " ${command[*]} " == *" --fail_fast "* ]]; then
          finish incomplete "exit code 1 with jobs left (--fail_fast stopped it): see the run's last lines above"
        else # the driver died of an error of its own (a bug, memory): run it again, as for a crash
          log "exit code 1 with jobs left (a crash of the driver?): again in ${SAV_OVERNIGHT_RESTART_DELAY_S:-10} s"
          sleep "${SAV_OVERNIGHT_RESTART_DELAY_S:-10}"
          continue
        fi
      else
        finish done-with-failures "exit code 1: some jobs failed; status.txt says how to run them again"
      fi ;;
      2) finish refused "exit code 2: the run refused its arguments or files (the line above says why)" ;;
      3) finish too-many-failures "exit code 3: too many failed jobs in a row; fix the cause, then: bash $SCRIPT resume $OUT" ;;
      130)
        set_state stopped
        remove_boot_hook
        log "stopped by SIGINT (Ctrl-C); continue with: bash $SCRIPT resume $OUT"
        ;;
      129 | 143) log "ended by SIG$(kill -l $((rc - 128))) (a shutdown?): the next boot continues it, or now: bash $SCRIPT resume $OUT" ;;
      *)
        if ((rc > 128)); then rc="$rc, SIG$(kill -l $((rc - 128)))"; fi
        log "the run died (exit code $rc): again in ${SAV_OVERNIGHT_RESTART_DELAY_S:-10} s"
        sleep "${SAV_OVERNIGHT_RESTART_DELAY_S:-10}"
        continue
        ;;
    esac
    exit 0
  done
  log "the state is $(state): nothing to run"
}

cmd_start() {
  [[ $# -ge 1 ]] || usage
  local dir=$1 arg
  shift
  [[ ${1:-} == -- ]] && shift
  (($#)) || die "no arguments for the run: bash $SCRIPT start OUT_DIR -- --split_dir DIR --models a,b ..."
  local args=()
  for arg in "$@"; do
    case "$arg" in
      --output | --output=*) die "leave out $arg: the run's CSV is OUT_DIR/results.csv" ;;
      --resume) ;; # every attempt adds it
      *) args+=("$arg") ;;
    esac
  done
  local absolute=$dir
  [[ $absolute == /* ]] || absolute=$PWD/$dir
  # The crontab line's paths: cron reads % as a newline, and /bin/sh cannot read the $'...' quoting
  # that printf %q gives other characters. What is left once printable ASCII but % is deleted must be nothing.
  [[ $absolute$SCRIPT != *$'\n'* && -z $(LC_ALL=C tr -d ' -$&-~' <<<"$absolute$SCRIPT") ]] ||
    die "$absolute: a path with %, a newline or characters other than printable ASCII cannot go in a crontab line"
  [[ ! -e $dir/overnight ]] || die "$dir: a run was started there already: bash $SCRIPT status $dir (or resume it, or choose another folder)"
  [[ ! -e $dir/results.csv ]] || die "$dir/results.csv exists already: choose another folder"
  PYBIN=$(command -v "${PYTHON:-python3}") || die "no Python '${PYTHON:-python3}' here: set PYTHON"
  [[ $PYBIN == /* ]] || PYBIN="$(cd "$(dirname "$PYBIN")" && pwd)/$(basename "$PYBIN")"
  launcher >/dev/null
  mkdir -p -- "$dir" || die "cannot create $dir"
  paths "$(cd -- "$dir" && pwd)"
  mkdir "$META" || die "cannot create $META"
  printf '%s\n' "$PYBIN" >"$META/python"
  pwd >"$META/cwd"
  printf '%s\0' "${args[@]}" >"$META/args"
  printf '%q ' "$PYBIN" "$REPO/jetson_benchmark.py" run "${args[@]}" --output "$CSV" --resume >"$META/command"
  echo >>"$META/command"
  save_env
  set_state running
  record_power "$OUT/power-before.txt" "before the run (overnight.sh start)"
  add_boot_hook >>"$META/log"
  launch
  local waited=0 limit=${SAV_OVERNIGHT_START_WAIT_S:-120} current
  while [[ $(state) == running && ! -s $CSV ]] && ((waited < limit * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  current=$(state)
  case "$current" in
    refused) die "the run was refused: $(grep 'error: ' "$META/log" | tail -n 1)" ;;
    running) echo "$NAME: started ($(cat "$META/launcher")): $OUT/results.csv" ;;
    *) echo "$NAME: the run ended already: $current (see $OUT/status.txt)" ;;
  esac
  echo "  follow it: tail -f $META/log"
  echo "  how far:   bash $SCRIPT status $OUT"
  [[ $current == running || $current == "done" ]]
}

cmd_resume() {
  local boot=0
  if [[ ${1:-} == --boot ]]; then
    boot=1
    shift
  fi
  existing "${1:-}"
  restore_env
  local current
  current=$(state)
  if ((boot)) && [[ $current != running ]]; then
    log "boot: the run is $current: nothing to continue"
    remove_boot_hook
    return 0
  fi
  case "$current" in
    running) ;;
    done | done-with-failures)
      echo "$NAME: the run ended ($current): nothing to continue; see $OUT/status.txt"
      return 0
      ;;
    refused) die "the run was refused ($OUT/status.txt says why): start another with other arguments" ;;
    *) rm -f "$META/rows_at_start" "$META/stalled" ;; # stopped, gave up, ...: a person says go on
  esac
  if loop_alive; then
    echo "$NAME: it is running already ($(cat "$META/launcher" 2>/dev/null))"
    return 0
  fi
  if ((boot)); then
    sleep "${SAV_OVERNIGHT_BOOT_DELAY_S:-60}" # the GPU driver, the user manager and the clocks settle
    loop_alive && return 0
  fi
  set_state running
  local n=1
  while [[ -e $OUT/power-resumed-$n.txt ]]; do n=$((n + 1)); done
  record_power "$OUT/power-resumed-$n.txt" "$( ((boot)) && echo "after a reboot" || echo "resumed by hand") (overnight.sh resume)"
  add_boot_hook >>"$META/log"
  launch
  if ((boot)); then # cron sends this output to the log
    log "resumed after a reboot ($(cat "$META/launcher"))"
  else
    log "resumed ($(cat "$META/launcher")): $OUT" | tee -a "$META/log"
  fi
}

cmd_stop() {
  existing "${1:-}"
  local current loop cli
  current=$(state)
  if is_final "$current"; then
    echo "$NAME: the run ended already ($current)"
    return 0
  fi
  set_state stopped
  remove_boot_hook
  log "stop asked" >>"$META/log"
  if loop_alive; then
    loop=$(cat "$META/pid" 2>/dev/null)
    cli=$(pgrep -P "$loop" 2>/dev/null | head -n 1)
    kill -TERM "${cli:-$loop}" 2>/dev/null
    echo "$NAME: asked the run to end between two rows (SIGTERM to process ${cli:-$loop}); waiting for it"
    flock -w "${SAV_OVERNIGHT_STOP_WAIT_S:-900}" "$META/loop.lock" true || die "it still runs after ${SAV_OVERNIGHT_STOP_WAIT_S:-900} s: kill $loop ${cli}"
  fi
  echo "$NAME: stopped; nothing continues it at boot. To continue: bash $SCRIPT resume $OUT"
}

cmd_status() {
  existing "${1:-}"
  restore_env
  local current alive=no rc=1
  current=$(state)
  loop_alive && alive=yes
  echo "$NAME: $current; running now: $alive; attempts: $(cat "$META/attempts" 2>/dev/null || echo 0); $(cat "$META/launcher" 2>/dev/null)"
  if [[ $current == running && $alive == no ]]; then
    echo "  not running now: the next boot continues it (crontab @reboot), or now: bash $SCRIPT resume $OUT"
  fi
  echo "  log: $META/log"
  [[ -f $OUT/report.html ]] && echo "  report: $OUT/report.html (and report.md, status.txt)"
  if [[ -f $CSV ]]; then
    (cd "$(cat "$META/cwd")" 2>/dev/null || true; "$(cat "$META/python")" "$REPO/jetson_benchmark.py" status "$CSV")
    rc=$?
  else
    echo "$CSV: no rows yet"
  fi
  return "$rc"
}

subcommand=${1:-}
shift || true
case "$subcommand" in
  start) cmd_start "$@" ;;
  resume) cmd_resume "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  _loop) cmd_loop "$@" ;;
  -h | --help) sed -n '2,/^set -uo/p' "$SCRIPT" | sed '$d; s/^# \{0,1\}//' ;;
  *) usage ;;
esac
