# Sourced by the scripts/gpu/*.sh that run on a lent GPU machine (through the device tool, with .whl carried):
# install the carried wheels, set the environment, and define run_until.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1

run_until() {  # SECONDS LOG CMD...: run CMD, output appended to LOG; after SECONDS, SIGTERM to CMD alone
    # (a trainer checkpoints and exports on SIGTERM; `timeout` would signal the whole process group, and
    # DataLoader workers killed under it end the run unsaved). KILL 60 s later if it is still running.
    local seconds=$1 log=$2; shift 2
    "$@" >> "$log" 2>&1 &
    local pid=$!
    (sleep "$seconds"; kill -TERM $pid; sleep 60; kill -KILL $pid) > /dev/null 2>&1 &  # silent: holds no caller pipe
    local watchdog=$!
    wait $pid; local rc=$?
    kill $watchdog 2>/dev/null
    echo "== exit $rc" >> "$log"
}

pack_runs() {  # ROOT NAME...: report each run ROOT/NAME and pack its log, final weights and losses into $OUT/NAME.tgz
    local root=$1 name; shift
    for name in "$@"; do
        echo "== $name: $(wc -l < $root/$name/losses.jsonl) logged; last: $(tail -n 1 $root/$name/losses.jsonl)"
        tail -n 3 $root/$name.log
        tar czf $OUT/$name.tgz -C $root $name.log $name/final $name/losses.jsonl
    done
    ls -la $OUT
}
