#!/usr/bin/env bash
# bench_guest.sh - what GUEST and VMM probes cost a running VM.
#
# The test VM runs its `ls` workload for SECS seconds of guest time (the
# guest clock stands still while QEMU's gdb stub holds the VM stopped), so
# the workload's wall time grows by what the probes cost the VM: the stops
# and whatever QEMU does around them.  The workload ends on a whole second
# of guest uptime, so a run varies by up to a second: the per-hit figures
# need a function hit a thousand times or more.  Measured, each on a fresh
# boot:
#   base     no debugger attached
#   enter    vprobe: GUEST:ENTER:FN { n++; }   (FN=scheduler_tick: every tick)
#   gdb      gdb -batch, `break FN` + `commands; silent; continue; end`
#   usec     vprobe: USEC:1000 { ticks[RIP]++; }
# Prints the cost per hit ((wall - base) / hits) for vprobe and gdb with
# their ratio, and the guest slowdown under USEC:1000.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
B=${VPROBE_BUILD:-$TOP/build}
VPROBE=$B/bin/vprobe
FN=${FN:-scheduler_tick}
SECS=${SECS:-12}
TMP=$(mktemp -d /tmp/vpbench.XXXXXX)
vm=$TOP/tools/vm
d=$TMP/vm
trap '"$vm" stop "$d" >/dev/null 2>&1; rm -rf "$TMP"' EXIT

[ -x "$VPROBE" ] || { echo "skipped: build first (make)"; exit 77; }
"$TOP/tools/mkvm" "$TOP/build/vm-image" > "$TMP/mkvm.log" 2>&1 ||
  { echo "skipped: $(tail -n1 "$TMP/mkvm.log")"; exit 77; }

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# Boot with a 2 s delay before the workload, so a probe can be armed first;
# start "$@" (a tracer, in the background) once the guest is up, and time
# WORKLOAD START..DONE on the console.  Sets WALL_MS; the tracer's output
# is in $TMP/tracer.out.
run_case() {
  "$vm" start "$d" --workload ls --secs "$SECS" --delay 2 > "$TMP/start.out" 2>&1 ||
    { cat "$TMP/start.out"; exit 1; }
  local tracer=""
  if [ $# -gt 0 ]; then
    "$@" > "$TMP/tracer.out" 2>&1 &
    tracer=$!
  fi
  local t0="" t1="" i=0
  while [ $i -lt 6000 ]; do
    if [ -z "$t0" ] && grep -aq '^WORKLOAD START' "$d/console.log"; then t0=$(now_ms); fi
    if grep -aq '^WORKLOAD DONE' "$d/console.log"; then t1=$(now_ms); break; fi
    sleep 0.02; i=$((i + 1))
  done
  if [ -n "$tracer" ]; then
    kill -INT "$tracer" 2>/dev/null
    wait "$tracer" 2>/dev/null
  fi
  "$vm" stop "$d" >/dev/null 2>&1
  WALL_MS=$(( ${t1:-0} - ${t0:-0} ))
}

addr_of() { grep -E " [tT] $1\$" "$d/kallsyms" | head -1 | cut -d' ' -f1; }

# The engine's own time per stop (stop reply in to continue out), from
# VPROBE_GUEST_STATS; the rest of a hit's cost is QEMU's.
engine_ms() { sed -n 's/.* \([0-9.]*\) ms of engine time per stop.*/\1/p' "$TMP/tracer.out" | head -1; }
export VPROBE_GUEST_STATS=1

M() { echo "-m gdb=unix:$d/gdb.sock -s $d/kallsyms"; }

cat > "$TMP/enter.emt" <<EOF
aggr n[0][1];
GUEST:ENTER:$FN { n["hits"]++; }
VMMUnload { printa(n, "%=s %count\$=d\n"); }
EOF
cat > "$TMP/usec.emt" <<'EOF'
aggr ticks[1][0];
aggr n[0][1];
USEC:1000 { ticks[RIP]++; n["fires"]++; }
VMMUnload { printa(n, "%=s %count$=d\n"); }
EOF

run_case
base=$WALL_MS
echo "base: workload ${SECS}s of guest time took ${base} ms"

run_case "$VPROBE" -m "gdb=unix:$d/gdb.sock" -s "$d/kallsyms" "$TMP/enter.emt"
enter=$WALL_MS
hits=$(sed -n 's/^hits \([0-9]*\).*/\1/p' "$TMP/tracer.out" | head -1)
enter_engine=$(engine_ms)
hits=${hits:-0}

# gdb: a silent breakpoint that continues, printing one line per hit so
# the hits can be counted.  The kallsyms file exists once the VM is up.
gdb_case() {
  local a; a=$(addr_of "$FN")
  cat > "$TMP/gdb.cmd" <<EOF
set pagination off
set confirm off
target remote $d/gdb.sock
break *0x$a
commands
silent
printf "hit\\n"
continue
end
continue
EOF
  exec gdb -batch -nx -x "$TMP/gdb.cmd"
}
command -v gdb >/dev/null && {
  run_case gdb_case
  gdbwall=$WALL_MS
  gdbhits=$(grep -c '^hit$' "$TMP/tracer.out")
}

run_case "$VPROBE" -m "gdb=unix:$d/gdb.sock" -s "$d/kallsyms" "$TMP/usec.emt"
usec=$WALL_MS
fires=$(sed -n 's/^fires \([0-9]*\).*/\1/p' "$TMP/tracer.out" | head -1)
usec_engine=$(engine_ms)

per() { # extra_ms hits -> ms per hit with 3 decimals
  [ "${2:-0}" -gt 0 ] || { echo "n/a"; return; }
  awk -v e="$1" -v h="$2" 'BEGIN { printf "%.3f", e / h }'
}
vp_per=$(per $((enter - base)) "$hits")
echo "vprobe GUEST:ENTER:$FN: $hits hits, workload ${enter} ms: ${vp_per} ms a hit"
if [ -n "${gdbwall:-}" ]; then
  gdb_per=$(per $((gdbwall - base)) "$gdbhits")
  echo "gdb silent breakpoint:  $gdbhits hits, workload ${gdbwall} ms: ${gdb_per} ms a hit"
  awk -v a="$vp_per" -v b="$gdb_per" 'BEGIN { if (a > 0 && b > 0) printf "ratio: gdb / vprobe = %.1fx (goal: vprobe <= 1 ms a hit)\n", b / a }'
fi
awk -v u="$usec" -v b="$base" -v f="${fires:-0}" 'BEGIN {
  printf "USEC:1000 { ticks[RIP]++; }: %d fires, workload %d ms: guest slowdown %.0f%% (goal < 20%%)\n",
         f, u, (u - b) * 100.0 / b }'
# A sample is a stop and a resume without a breakpoint: what a stop costs
# the guest.  A breakpoint hit costs that plus QEMU's flush of its
# translated code, which its gdb stub does at every breakpoint stop.
usec_per=$(per $((usec - base)) "${fires:-0}")
echo "per stop: vprobe engine ${enter_engine:-?} ms (ENTER), ${usec_engine:-?} ms (USEC); whole sample ${usec_per} ms; so QEMU's code flush costs about $(awk -v a="$vp_per" -v b="$usec_per" 'BEGIN { if (a > 0 && b > 0) printf "%.3f", a - b; else print "n/a" }') ms a hit"
