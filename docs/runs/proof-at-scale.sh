#!/usr/bin/env bash
# A worker of the pre-registered runs of docs/protocol.md, sections 2 and 3: it takes the next job of
# docs/runs/proof-at-scale.queue that is neither done nor claimed, runs it with its section's frozen
# code (a shard pinned to the worker's core; a TAM on every core, the other worker waiting), and
# commits each finished shard's scores.json at once (runs survive a change of machine: a new
# machine retrains the TAM it needs and goes on).
#   bash docs/runs/proof-at-scale.sh CORE        # e.g. two workers: CORE 0 and CORE 1
#   bash docs/runs/proof-at-scale.sh --where     # each shard: committed scores, run folder, label, shard
# A session's end kills the workers: the same commands resume (finished stages and answers are kept).
# Env: COPE_FROZEN, COPE_EDITS_CODE (the worktrees of sections 2 and 3), COPE_RUNS (run folders),
# COPE_PASSPHRASE, DRY_RUN=1.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
RUNS=${COPE_RUNS:-$REPO/../eval-runs}
FROZEN=${COPE_FROZEN:-$REPO/../eval-frozen}
EDITS_CODE=${COPE_EDITS_CODE:-$REPO/../eval-edits}
DATA=${COPE_DATA:-$REPO/../shared/data}
CORE=$1
export COPE_PASSPHRASE=${COPE_PASSPHRASE:-eval-runs} HF_HUB_OFFLINE=1
METHODS=base,tam,oppu,oppu_dpo,oppu_cd,cope
MPV="--data $DATA/mpv-commit-bodies --task email --users 60 --max-profile 100 --questions-per-user 5 --tam-items 1000 --tune"
HP="--data $DATA/huffpost-lamp4 --task headline --skip 18 --users 40 --max-profile 100 --questions-per-user 5 --tune"
# section 3: section 1's fresh authors and TAM (the data: docs/benchmarks.md, "Long-form on fresh authors")
FRESH="--data $RUNS/data/mpv-fresh --task email --users 15 --max-profile 100 --questions-per-user 5 --tam-items 1000 --tune"
mkdir -p "$RUNS/claims"

kept() {  # where a job's scores.json is committed (none for a TAM)
  case $1 in
    mpv) echo "docs/results/eval-mpv60-3fold/fold-$2/shard-$3/scores.json" ;;
    hp) echo "docs/results/eval-huffpost-40new/shard-$2/scores.json" ;;
    history) echo "docs/results/eval-mpv-fresh-15x5-history-a1b36e3/shard-$2/scores.json" ;;
    edits) echo "docs/results/eval-mpv-fresh-15x5-edits20/shard-$2/scores.json" ;;
  esac
}

out_of() {  # a shard's run folder (its log: the same name + .log)
  case $1 in
    mpv) echo "$RUNS/mpv60-f$2-s$3" ;;
    hp) echo "$RUNS/hp40-s$2" ;;
    history) echo "$RUNS/fresh-history-s$2" ;;
    edits) echo "$RUNS/fresh-edits-s$2" ;;
  esac
}

shard_of() {  # a shard's --shard
  case $1 in
    mpv) echo "$3/20" ;;
    hp) echo "$2/40" ;;
    history|edits) echo "$2/15" ;;
  esac
}

label() {  # a shard's run, as its commit and docs/benchmarks.md name it
  case $1 in
    mpv) echo "mpv60 fold $2/3" ;;
    hp) echo "HuffPost 40 new users" ;;
    history) echo "fresh mpv, history only (a1b36e3)" ;;
    edits) echo "fresh mpv, --edits 20" ;;
  esac
}

tam_dir() {  # the TAM a job trains or takes
  case $1 in
    mpv*) echo "$RUNS/mpv60-f$2-tam" ;;
    hp*) echo "$RUNS/hp40-tam" ;;
    *) echo "$RUNS/mpv-fresh-tam" ;;
  esac
}

committed() { git -C "$REPO" cat-file -e "HEAD:$(kept "$@")" 2>/dev/null; }  # not just copied

tam_here() {  # the fingerprint of the TAM this machine trained for a job (none yet: empty)
  local gguf
  gguf=$(ls "$(tam_dir "$@")"/tam/*.gguf 2>/dev/null | head -1)
  [ -n "$gguf" ] && "$REPO/.venv/bin/python" -c "import sys; from pathlib import Path
from cope_local.gguf.files import fingerprint; print(fingerprint(Path(sys.argv[1])))" "$gguf"
}

paired_done() {  # section 3 compares a user's two arms, so both take one TAM (docs/protocol.md):
  # an arm committed with another machine's TAM while its partner is not committed runs again
  local other=edits
  [ "$1" = edits ] && other=history
  committed "$other" "$2" && return 0
  local here
  here=$(tam_here "$@")
  [ -z "$here" ] || git -C "$REPO" show "HEAD:$(kept "$@")" | grep -q "\"$here\""
}

needed_by() {  # the shards of the queue that take this TAM
  local name a b
  jobs | while read -r name a b; do
    case $name in *-tam) continue ;; esac
    [ "$(tam_dir "$name" $a $b)" = "$(tam_dir "$@")" ] && echo "$name $a $b"
  done
}

done_already() {  # a TAM is done once trained here, or once none of its shards is left to run
  case $1 in
    *-tam) [ -f "$(tam_dir "$@")/tam/tam.json" ] && return 0
      while read -r job; do committed $job || return 1; done < <(needed_by "$@") ;;
    history|edits) committed "$@" && paired_done "$@" ;;
    *) committed "$@" ;;
  esac
}

ready() {  # a shard needs its TAM
  case $1 in
    mpv|hp) [ -f "$(tam_dir "$@")/tam/tam.json" ] ;;
    history|edits) [ -f "$(tam_dir "$@")/tam/tam.json" ] && [ -d "$RUNS/data/mpv-fresh" ] ;;
    *) true ;;
  esac
}

run() {
  local cope="taskset -c $CORE $REPO/.venv/bin/cope eval" code=$FROZEN
  case $1 in *-tam) cope="$REPO/.venv/bin/cope eval" ;; esac  # every core: the other worker waits
  case $1 in
    mpv-tam) set -- "$RUNS/mpv60-f$2-tam" $MPV --fold "$2/3" --methods tam --shard 0/20 ;;
    hp-tam) set -- "$RUNS/hp40-tam" $HP --methods tam --shard 0/40 ;;
    mpv) set -- "$(out_of "$@")" $MPV --fold "$2/3" --methods $METHODS --shard "$(shard_of "$@")" --tam "$(tam_dir "$@")/tam" ;;
    hp) set -- "$(out_of "$@")" $HP --methods $METHODS --shard "$(shard_of "$@")" --tam "$(tam_dir "$@")/tam" ;;
    fresh-tam) code=$EDITS_CODE
      set -- "$RUNS/mpv-fresh-tam" $FRESH --methods tam --shard 0/15 ;;
    history) code=$EDITS_CODE
      set -- "$(out_of "$@")" $FRESH --methods $METHODS --shard "$(shard_of "$@")" --tam "$(tam_dir "$@")/tam" ;;
    edits) code=$EDITS_CODE
      set -- "$(out_of "$@")" $FRESH --edits 20 --methods $METHODS --shard "$(shard_of "$@")" --tam "$(tam_dir "$@")/tam" ;;
  esac
  local out=$1; shift
  [ -n "${DRY_RUN:-}" ] && { echo "PYTHONPATH=$code $cope $* --out $out"; return 0; }
  # a session's end kills a shard mid-way and the next session resumes it: its log and wall time
  # add up over its attempts (one "== attempt" line each; $out.seconds, written as it runs)
  echo "== attempt $(date -u '+%F %T') UTC, core $CORE" >> "$out.log"
  local spent=0 start pid status
  [ -f "$out.seconds" ] && spent=$(cat "$out.seconds")
  start=$(date +%s)
  PYTHONPATH=$code $cope "$@" --out "$out" >> "$out.log" 2>&1 &
  pid=$!
  # written every 10 s, and once more as it ends
  while echo $(( spent + $(date +%s) - start )) > "$out.seconds"; kill -0 $pid 2>/dev/null; do sleep 10; done
  wait $pid
  status=$?
  # the protocol asks for each shard's CPU: this machine, as the shard ends
  printf '{"cpu": "%s", "amx": %s, "cores": %s, "core": %s, "minutes": %s, "attempts": %s}\n' \
    "$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" \
    "$(grep -q amx_int8 /proc/cpuinfo && echo true || echo false)" "$(nproc --all)" "$CORE" \
    $(( $(cat "$out.seconds") / 60 )) "$(grep -c '^== attempt' "$out.log")" > "$out.machine.json"
  return $status
}

commit() {  # the finished shard's scores.json and machine.json (section 3: and nights.json), alone in
  # their commit (retried while git is busy)
  local path machine out minutes files
  path=$(kept "$@") out=$(out_of "$@")
  machine=$(dirname "$path")/machine.json  # kept with the scores, not in a run folder
  minutes=$(grep -o '"minutes": [0-9]*' "$out.machine.json" | grep -o '[0-9]*$')
  mkdir -p "$REPO/$(dirname "$path")"
  cp "$out/scores.json" "$REPO/$path"
  cp "$out.machine.json" "$REPO/$machine"
  files=("$path" "$machine")
  case $1 in history|edits)  # what its nights learned from: read from the store, which stays behind
    "$REPO/.venv/bin/python" "$REPO/docs/runs/nights.py" --keep "$RUNS" "$path" > /dev/null
    files+=("$(dirname "$path")/nights.json") ;;
  esac
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    if (cd "$REPO" && git add -f "${files[@]}" && git commit -q -m "eval: $(label "$@"), shard $(shard_of "$@") ($minutes min, core $CORE, scores only)" -- "${files[@]}"); then
      rm -rf "$out/store/models"  # the store's dequantized base, 1 GB a shard and derived: 46 kept filled the disk
      return 0
    fi
    sleep 5
  done
  echo "could not commit $path" >&2
}

jobs() { grep -v '^#' "$REPO/docs/runs/proof-at-scale.queue" | grep -v '^$'; }

if [ "$CORE" = --where ]; then  # for docs/runs/queue_names.py: one owner of these names
  jobs | while read -r name a b; do
    case $name in *-tam) continue ;; esac
    printf '%s\t%s\t%s\t%s\n' "$(kept $name $a $b)" "$(out_of $name $a $b)" "$(label $name $a $b)" "$(shard_of $name $a $b)"
  done
  exit 0
fi

if [ -n "${DRY_RUN:-}" ]; then  # the commands, in order, without running them
  jobs | while read -r name a b; do run "$name" $a $b; done
  exit 0
fi

while true; do
  picked="" waiting=0
  while read -r name a b; do
    done_already "$name" $a $b && continue
    waiting=1
    ready "$name" $a $b || continue
    # a claim is a lock the kernel drops when its holders die: no stale claim to clear, no race
    exec 9>"$RUNS/claims/$name-$a-$b.lock"
    if ! flock -n 9; then
      exec 9>&-
      case $name in *-tam) break ;; esac  # a TAM in training has every core: wait for it
      continue
    fi
    picked="$name $a $b"
    break
  done < <(jobs)
  [ $waiting = 0 ] && { echo "every job is done"; exit 0; }
  [ -z "$picked" ] && { sleep 60; continue; }
  set -- $picked
  if run "$@"; then
    case $1 in *-tam) ;; *) commit "$@" ;; esac
  fi
  exec 9>&-
done
