#!/usr/bin/env bash
# An accuracy run longer than one remote shell command may last (e.g. 10 minutes): the run
# starts in its own process session (setsid), which outlives the command, and later commands
# follow it. From the repository root on the GPU machine:
#
#   bash benchmarks/accuracy/device_background.sh start ARGS...  # ARGS for benchmarks.accuracy.run
#   bash benchmarks/accuracy/device_background.sh follow SECONDS  # log until done or SECONDS pass
#
# `follow` copies the log and, once the run has finished, its results into the folder named by
# the environment variable OUT (e.g. OUT=benchmarks/results/<date>-<name>).
set -u
dir=/tmp/byol-accuracy
action=${1:?start or follow}
shift
case $action in
start)
    mkdir -p "$dir"
    PYTHONUNBUFFERED=1 PYTHONPATH=. setsid nohup python3 -m benchmarks.accuracy.run "$@" \
        --out "$dir/out" >"$dir/log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
    echo "started pid $(cat "$dir/pid")"
    ;;
follow)
    deadline=$((SECONDS + ${1:?seconds}))
    while kill -0 "$(cat "$dir/pid")" 2>/dev/null && ((SECONDS < deadline)); do
        sleep 10
    done
    # tqdm redraws with carriage returns: keep one line per redraw, drop most of them.
    tr '\r' '\n' <"$dir/log" | grep -v '^\s*$' | awk 'NR % 40 == 0 || !/it\/s|s\/it/' >"$OUT/log.txt"
    tail -c 6000 "$OUT/log.txt"
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
        echo "finished"
        cp "$dir"/out/*.json "$dir"/out/*.csv "$dir"/out/*.html "$dir"/out/*.yaml "$OUT"/ 2>/dev/null
    fi
    ;;
*) echo "unknown action $action" >&2; exit 2 ;;
esac
