# -d N runs a 1 Hz probe N times: the tick due at exactly N s is the last
# one, not lost to the stop.  The local engine and a VMX process target;
# and a sub-millisecond period in a process.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
need_built "$VPROBE" "$T"

out=$("$VPROBE" -d 3 -c 'VMX1Hz { printf("t\n"); }' 2>&1)
check "local engine: -d 3 at 1 Hz" "t
t
t" "$out"
out=$("$VPROBE" -d 1 -c 'VMX10Hz { printf("t\n"); }' 2>&1 | grep -c '^t$')
check "local engine: -d 1 at 10 Hz" 10 "$out"

"$T" loop 30 >/dev/null &
P=$!
trap 'kill $P 2>/dev/null; rm -rf "$TMP"' EXIT
sleep 0.2
out=$("$VPROBE" -d 3 -x $P -c 'VMX1Hz { printf("t\n"); }' 2>&1)
check "process target: -d 3 at 1 Hz" "t
t
t" "$out"
# At 10 Hz the end of -d races the agent's last tick more closely.
out=$("$VPROBE" -d 1 -x $P -c 'VMX10Hz { printf("t\n"); }' 2>&1 | grep -c '^t$')
check "process target: -d 1 at 10 Hz" 10 "$out"
# A period under a millisecond is kept in a process too (the agent's wait
# was rounded to whole milliseconds: USEC:100 fired about 900 times a
# second); 3000 leaves room for a busy machine.
n=$("$VPROBE" -d 1 -x $P -c 'int n; USEC:100 { n++; } VMXUnload { printf("%d\n", n); }' 2>&1)
[ "$n" -gt 3000 ] 2>/dev/null || fail "process target: USEC:100 fired $n times in 1 s (want about 10000)"
kill $P 2>/dev/null
done_testing
