#!/usr/bin/env bash
# bench_vmx.sh - what a VMX probe hit costs: the loop target calls work()
# N times per thread (10M by default) uninstrumented, then under
#   VMX:ENTER:work { calls++; }          (1 and 4 threads)
#   VMX:EXIT:work  { calls++; }
#   VMX:ENTER:work { vmxstack(stack); ticks[stack]++; }
# with the agent loaded but no code patched (VMXLoad only), and under
# bpftrace's `uprobe:BIN:work { @c = count(); }` (fewer calls: a
# uprobe costs microseconds).  The target times its own loop (LOOP_TIME), so
# loading and draining are not counted.  Prints ns per hit, by default CPU
# time over hits (the process's CPU time during the loop: robust on a busy
# machine, and the real cost with several threads), METRIC=elapsed for wall
# time; and the added cost against the uninstrumented loop; the best of
# RUNS runs.  Uses `vprobe SCRIPT.vp -- CMD` when it works, else the agent
# test's built-in minimal controller (tests/vmx/test_agent_load bench).
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${VPROBE_BUILD:-$TOP/build}
VPROBE=$B/bin/vprobe
LOOP=$B/tests/vmx/targets/loop
N=${N:-10000000}
NBPF=${NBPF:-200000}
RUNS=${RUNS:-3}
TMP=$(mktemp -d /tmp/vpbench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

[ -x "$LOOP" ] && [ -f "$B/lib/libvpagent.so" ] || { echo "skipped: build first (make)"; exit 77; }

cat >"$TMP/enter.vp" <<'EOF'
(defaggr calls 0 0)
(vprobe VMX:ENTER:work (aggrinc calls () ()))
EOF
cat >"$TMP/exit.vp" <<'EOF'
(defaggr calls 0 0)
(vprobe VMX:EXIT:work (aggrinc calls () ()))
EOF
cat >"$TMP/none.vp" <<'EOF'
(definteger x 0)
(vprobe VMXLoad (setint x 1))
EOF
cat >"$TMP/stack.vp" <<'EOF'
(defaggr ticks 0 1)
(defstring st)
(vprobe VMX:ENTER:work (vmxstack st) (aggrinc ticks () (st)))
EOF

# How to run a probed loop: vprobe if launch mode works, else the test's.
mode=test
if [ -x "$VPROBE" ] &&
   out=$(timeout 60 "$VPROBE" --cpu-limit 0 "$TMP/enter.vp" -- "$LOOP" 1000 1 2>/dev/null) &&
   printf '%s' "$out" | grep -q '^total 502500$'; then
  mode=vprobe
fi

METRIC=${METRIC:-cpu}
elapsed() { sed -n "s/^${METRIC}_ns //p" "$1" | tail -n1; }

# best CMD... : the smallest time of RUNS runs
best() {
  local b="" e i
  for i in $(seq "$RUNS"); do
    LOOP_TIME=1 timeout 600 "$@" >"$TMP/out" 2>"$TMP/err"
    e=$(elapsed "$TMP/err")
    [ -n "$e" ] || continue
    if [ -z "$b" ] || [ "$e" -lt "$b" ]; then b=$e; fi
  done
  echo "${b:-0}"
}

probed() { # SCRIPT THREADS
  if [ $mode = vprobe ]; then
    best "$VPROBE" --cpu-limit 0 "$TMP/$1.vp" -- "$LOOP" "$N" "$2"
  else
    best env VPROBE_BUILD="$B" "$B/tests/vmx/test_agent_load" bench "$N" "$2" "$1"
  fi
}

nsper() { awk -v e="$1" -v h="$2" 'BEGIN { printf "%.1f", e / h }'; }
row() { # LABEL ELAPSED HITS BASE_ELAPSED
  local per add
  per=$(nsper "$2" "$3")
  add=$(awk -v e="$2" -v b="$4" -v h="$3" 'BEGIN { printf "%.1f", (e - b) / h }')
  printf '%-34s %10s ns/hit %10s ns added\n' "$1" "$per" "$add"
}

echo "VMX bench: $N calls of work() per thread, best of $RUNS, $METRIC time, via $mode"
plain1=$(best "$LOOP" "$N" 1)
plain4=$(best "$LOOP" "$N" 4)
printf '%-34s %10s ns/call\n' "uninstrumented, 1 thread" "$(nsper "$plain1" "$N")"
printf '%-34s %10s ns/call\n' "uninstrumented, 4 threads" "$(nsper "$plain4" $((4 * N)))"
e0=$(probed none 1)
row "agent loaded, no probe point" "$e0" "$N" "$plain1"
e1=$(probed enter 1)
row "ENTER calls++, 1 thread" "$e1" "$N" "$plain1"
e4=$(probed enter 4)
row "ENTER calls++, 4 threads" "$e4" $((4 * N)) "$plain4"
ex=$(probed exit 1)
row "EXIT calls++, 1 thread" "$ex" "$N" "$plain1"
es=$(probed stack 1)
row "ENTER ticks[stack]++, 1 thread" "$es" "$N" "$plain1"

# bpftrace on the same binary, if it can run here.
bpf=""
if command -v bpftrace >/dev/null && [ "$(id -u)" = 0 ]; then
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
  LOOP_TIME=1 timeout 300 bpftrace -e "uprobe:$LOOP:work { @c = count(); }" \
    -c "$LOOP $NBPF 1" >"$TMP/bpf.out" 2>"$TMP/bpf.err"
  bpf=$(elapsed "$TMP/bpf.err")
  [ -z "$bpf" ] && bpf=$(elapsed "$TMP/bpf.out")
fi
if [ -n "$bpf" ]; then
  plainb=$(awk -v p="$plain1" -v n="$N" -v m="$NBPF" 'BEGIN { printf "%d", p * m / n }')
  row "bpftrace uprobe count, 1 thread" "$bpf" "$NBPF" "$plainb"
  awk -v b="$bpf" -v nb="$NBPF" -v e="$e1" -v n="$N" -v p="$plain1" 'BEGIN {
    vb = b / nb; ve = e / n; vp = p / n
    printf "ratios: ENTER/uninstrumented %.1fx, bpftrace/ENTER %.0fx\n", ve / vp, vb / ve }'
else
  echo "bpftrace: skipped (not available or cannot attach uprobes)"
  awk -v e="$e1" -v n="$N" -v p="$plain1" 'BEGIN {
    printf "ratios: ENTER/uninstrumented %.1fx\n", (e / n) / (p / n) }'
fi
