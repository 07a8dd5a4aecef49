# VMX attach mode, end to end: vprobe -x PID loads into a running process
# (ptrace + dlopen of the agent), detaches leaving its code bytes as they
# were; a SIGKILLed vprobe leaves the target healthy; -r checks and repairs.
# Targets loop until SIGUSR1, so a slow machine cannot end them early.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"
need_root
if "$VPROBE" -x $$ -p nothing 2>&1 | grep -q 'not available in this build'; then
  fail "vprobe was linked without the VMX engine (a weak reference does not pull src/vmx out of libvprobe.a)"
  done_testing
fi

# start MODE ARGS: run the target in the background, wait for "ready".
start() {
  "$T" "$@" > "$TMP/tout" & tpid=$!
  for _ in $(seq 200); do grep -q ready "$TMP/tout" && return; sleep 0.05; done
  fail "target did not start"
}
# finish NAME [LINE]: end the target's loop; it must exit 0 having printed
# LINE (default "done N").
finish() {
  kill -USR1 $tpid 2>/dev/null
  wait $tpid; local rc=$?
  check "$1: target exit status" 0 "$rc"
  check_match "$1: target finished its loop" "${2:-^done [0-9]+}" "$(cat "$TMP/tout")"
}
# code FUNC: 32 bytes of the target's code at FUNC, read from /proc/PID/mem
# (symbol values read once: nm is slow on a busy machine).
nm "$T" > "$TMP/nm"
# Through a live thread: the main one may have ended (pthread_exit).
code() {
  local v base tid p=$tpid
  for tid in $(ls "/proc/$tpid/task" 2>/dev/null); do
    grep -q . "/proc/$tid/maps" 2>/dev/null && { p=$tid; break; }
  done
  v=$(awk -v f="$1" '$3 == f { print $1 }' "$TMP/nm")
  base=$(awk -v t="$T" '$6 == t && $3 == "00000000" { split($1, a, "-"); print a[1]; exit }' "/proc/$p/maps")
  dd if="/proc/$p/mem" bs=32 count=1 iflag=skip_bytes skip=$((0x$base + 0x$v)) 2>/dev/null | od -An -tx1 | tr -d ' \n'
}
# await FILE TEXT: wait until FILE holds TEXT (a probe's output).
await() { for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return; sleep 0.05; done; fail "no '$2' in $1"; }

# Attach, count, detach at -d: code restored, target unharmed.
start loop 600
before="$(code work_tick) $(code work_mul)"
[ ${#before} -gt 100 ] || fail "cannot read the target's code ($before)"
out=$("$VPROBE" -x $tpid -d 1 -c 'aggr c[0][1];
VMXLoad { printf("attached\n"); }
VMX:ENTER:work_tick { c["t"]++; }
VMX:ENTER:work_mul(int a, int b) { c["m"]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' 2>"$TMP/err"); rc=$?
check "attach: exit status" 0 "$rc"
check_match "attach: VMXLoad ran" "^attached$" "$out"
t=$(printf '%s\n' "$out" | awk '$1 == "t" { print $2 }')
m=$(printf '%s\n' "$out" | awk '$1 == "m" { print $2 }')
[ "${t:-0}" -gt 10000 ] && [ "${m:-0}" -gt 10 ] || fail "attach: counts t=$t m=$m"
# the last call may be counted on either side of the unload: 1000 ticks a mul
[ $(( ${t:-0} / 1000 - ${m:-0} )) -ge -1 ] && [ $(( ${t:-0} / 1000 - ${m:-0} )) -le 1 ] ||
  fail "attach: $t ticks for $m muls"
check "attach: code bytes identical after detach" "$before" "$(code work_tick) $(code work_mul)"
check_match "-p on a live process" '^VMX:ENTER:vt_work.work_mul$' "$("$VPROBE" -x $tpid -p 'work_m*')"
"$VPROBE" -x $tpid -r 2>"$TMP/r1"
check_match "-r after a clean detach" "code intact" "$(cat "$TMP/r1")"
# attach again: the agent is already there
out=$("$VPROBE" -x $tpid -d 0.5 -c 'aggr c[0][1]; VMX:ENTER:work_tick { c["t"]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' 2>>"$TMP/err")
check_match "second attach counts" '^t [0-9]+$' "$out"
check "second attach: code bytes identical" "$before" "$(code work_tick) $(code work_mul)"
finish attach

# Every thread, threads created after attach included; the main thread is
# blocked in pthread_join (a system call) when vprobe gets in.
start waves 4 600
before="$(code work_tick)"
out=$("$VPROBE" -x $tpid -d 1.5 -c 'aggr c[1][0];
VMX:ENTER:work_tick { c[THREADID]++; }
VMXUnload { printa(c, "%=d %count$=d\n"); }' 2>>"$TMP/err"); rc=$?
check "threads: exit status" 0 "$rc"
nth=$(printf '%s\n' "$out" | grep -c '^[0-9]')
[ "$nth" -ge 8 ] || fail "threads: probes fired in $nth threads (want the threads of 2+ waves): $out"
check "threads: code bytes identical after detach" "$before" "$(code work_tick)"
finish threads '^threads [0-9]+$'

# The main thread has ended (pthread_exit): vprobe gets in through another.
start orphan 600
before="$(code work_tick)"
[ ${#before} = 64 ] || fail "orphan: cannot read the code ($before)"
out=$("$VPROBE" -x $tpid -d 0.5 -c 'aggr c[0][1]; VMX:ENTER:work_tick { c["t"]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' 2>>"$TMP/err"); rc=$?
check "orphan: exit status" 0 "$rc"
check_match "orphan: counts" '^t [0-9]+$' "$out"
check "orphan: code bytes identical" "$before" "$(code work_tick)"
finish orphan

# Bad reads: caught, reported, target goes on.
start loop 600 100
"$VPROBE" -x $tpid -d 0.5 -c 'VMX:ENTER:work_mul { int x; x = *(uint64 *)0; }' 2>"$TMP/e2"
check "bad read: vprobe exit status" 0 "$?"
check_match "bad read: MemAccessError" 'vprobe: VMX:ENTER:vt_work.work_mul: MemAccessError' "$(cat "$TMP/e2")"
finish "bad read"

# SIGKILL of vprobe: the agent sees the socket close and restores everything.
start loop 600
before="$(code work_tick) $(code work_mul)"
"$VPROBE" -x $tpid -o "$TMP/o3" -c 'VMXLoad { printf("in\n"); } VMX:ENTER:work_tick { } VMX:EXIT:work_mul { }' 2>"$TMP/e3" & vpid=$!
await "$TMP/o3" in
sleep 0.3
kill -0 $vpid 2>/dev/null || fail "SIGKILL: vprobe ended early: $(cat "$TMP/e3")"
kill -KILL $vpid; wait $vpid 2>/dev/null
for _ in $(seq 40); do [ "$(code work_tick) $(code work_mul)" = "$before" ] && break; sleep 0.05; done
check "SIGKILL: code bytes restored" "$before" "$(code work_tick) $(code work_mul)"
"$VPROBE" -x $tpid -r 2>"$TMP/r2"
check_match "SIGKILL: -r finds the code intact" "code intact" "$(cat "$TMP/r2")"
finish SIGKILL

# -r repairs code left patched (here: a stray int3 in a function the loop
# never calls), naming the place, with every thread stopped meanwhile.
start loop 600
before="$(code work_add)"
v=$(awk '$3 == "work_add" { print $1 }' "$TMP/nm")
base=$(awk -v t="$T" '$6 == t && $3 == "00000000" { split($1, a, "-"); print a[1]; exit }' "/proc/$tpid/maps")
printf '\314' | dd of="/proc/$tpid/mem" bs=1 count=1 oflag=seek_bytes seek=$((0x$base + 0x$v + 2)) conv=notrunc 2>/dev/null
[ "$(code work_add)" != "$before" ] || fail "could not patch the target for -r"
"$VPROBE" -x $tpid -r 2>"$TMP/r3"; rc=$?
check "-r repair: exit status" 0 "$rc"
check_match "-r repair: names the place" "restored 1 bytes at vt_work.work_add\+0x2" "$(cat "$TMP/r3")"
check "-r repair: code bytes back" "$before" "$(code work_add)"
finish "-r repair"

# Ctrl-C detaches cleanly: Unload probes fire, code restored.
start loop 600
before="$(code work_tick)"
"$VPROBE" -x $tpid -o "$TMP/int" -c 'aggr c[0][1]; VMX:ENTER:work_tick { c["t"]++; }
VMXLoad { printf("loaded\n"); } VMXUnload { printf("unloaded\n"); }' 2>>"$TMP/err" & vpid=$!
await "$TMP/int" loaded
kill -INT $vpid; wait $vpid
check "SIGINT: exit status" 0 "$?"
check "SIGINT: Load and Unload ran" "loaded
unloaded" "$(cat "$TMP/int")"
check "SIGINT: code bytes identical" "$before" "$(code work_tick)"
finish SIGINT

# exec of the target ends the probes with a message.
start exec 600
"$VPROBE" -x $tpid -o "$TMP/o7" -c 'VMXLoad { printf("in\n"); } VMX:ENTER:work_tick { }' 2>"$TMP/e7" & vpid=$!
await "$TMP/o7" in
kill -USR1 $tpid
wait $vpid; check "exec: vprobe exit status" 0 "$?"
check_match "exec: message" "^vprobe: process $tpid exec'd; probes ended\$" "$(cat "$TMP/e7")"
wait $tpid; check "exec: target exit status" 0 "$?"
check_match "exec: the new program ran" '^done ' "$(cat "$TMP/tout")"

# A process that exits while attached ends the session, Unload probes
# run (by vprobe, for the agent that went with the process).
start loop 600
"$VPROBE" -x $tpid -o "$TMP/o4" -c 'aggr c[0][1]; VMXLoad { printf("in\n"); }
VMX:ENTER:work_tick { c["t"]++; } VMXUnload { printa(c, "%=s %count$=d\n"); }' 2>"$TMP/e4" & vpid=$!
await "$TMP/o4" in
sleep 0.3
finish "target exit"
for _ in $(seq 100); do kill -0 $vpid 2>/dev/null || break; sleep 0.05; done
if kill -0 $vpid 2>/dev/null; then fail "target exit: vprobe still running"; kill $vpid; fi
wait $vpid; check "target exit: vprobe exit status" 0 "$?"
check_match "target exit: Unload probes ran" '^t [0-9]+$' "$(cat "$TMP/o4")"

# Errors.
"$VPROBE" -x 999999999 -c 'VMX:ENTER:work_tick { }' 2>"$TMP/e5"
check "no such process: exit 1" 1 "$?"
check_match "no such process: message" '^vprobe: process 999999999: no such process$' "$(cat "$TMP/e5")"
start loop 600
before="$(code work_tick)"
"$VPROBE" -x $tpid -c 'VMX:ENTER:work_tick { } VMX:ENTER:nosuch_* { }' 2>"$TMP/e6"
check "no match: exit 1" 1 "$?"
check_match "no match: message" "^vprobe: VMX:ENTER:nosuch_\\*: no function matches in process $tpid\$" "$(cat "$TMP/e6")"
check "no match: nothing touched" "$before" "$(code work_tick)"
check "no match: no agent loaded" "" "$(grep libvpagent "/proc/$tpid/maps")"
finish "no match"

if [ $nfail != 0 ]; then echo "stderr of the sessions:"; cat "$TMP/err"; fi
done_testing
