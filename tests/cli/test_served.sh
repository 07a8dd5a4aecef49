# Every probe of a script must have a target in the run: one that could
# never fire is refused at load with one line and exit 1 (it used to sit
# idle, exit 0), and the process is not touched.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

"$T" loop 20 >"$TMP/tout" 2>&1 &
tpid=$!
trap 'kill $tpid 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do grep -q ready "$TMP/tout" && break; sleep 0.05; done

# served: VMX and target-free probes in a process
out=$("$VPROBE" -x $tpid -d 0.3 -c 'VMXLoad { printf("load\n"); } USEC:1000 { } VMX:ENTER:work_tick { }' 2>&1)
check "a process serves VMX and target-free probes" "load" "$out"

# a VMM probe in a process run
out=$("$VPROBE" -x $tpid -d 0.3 -c 'VMXLoad { printf("load\n"); } VMM1Hz { printf("x\n"); }' 2>&1); rc=$?
check "VMM1Hz with -x: exit status" 1 "$rc"
check "VMM1Hz with -x: one line" "vprobe: VMM1Hz: no target for it in this run (a process serves VMX and target-free probes; GUEST and VMM probes need -m VM, in a run of their own)" "$out"

# -m and -x together: the GUEST half is refused, not silently dropped
out=$("$VPROBE" -m gdb=unix:$TMP/none -x $tpid -d 0.3 -c 'GUEST:ENTER:do_sys_openat2 { } VMX:ENTER:work_tick { }' 2>&1); rc=$?
check "GUEST with -x: exit status" 1 "$rc"
check_match "GUEST with -x: one line naming the probe" '^vprobe: GUEST:ENTER:do_sys_openat2: no target for it in this run' "$out"
check "GUEST with -x: one line" 1 "$(printf '%s\n' "$out" | wc -l)"

# a VMX probe in a VM run (refused before any connection is tried)
out=$("$VPROBE" -m gdb=unix:$TMP/none -c 'VMXLoad { }' 2>&1); rc=$?
check "VMXLoad with -m: exit status" 1 "$rc"
check "VMXLoad with -m: one line" "vprobe: VMXLoad: no target for it in this run (a VM serves GUEST and VMM probes; VMX probes need -x PID or -- CMD, in a run of their own)" "$out"

# the process is untouched by the refusals and still running
kill -0 $tpid 2>/dev/null || fail "the target died"
"$VPROBE" -x $tpid -r >"$TMP/r" 2>&1
check_match "the code is intact" "code intact" "$(cat "$TMP/r")"
done_testing
