# A probe that raises an uncaught exception on every hit of a hot probe
# point writes a handful of lines a second, with counts, not one line per
# hit: the first at once, then "(repeated N times in the last 1 s)" each
# second, the rest at unload however the run ends.
. "$VPROBE_TOP/tests/lib.sh"
need_built "$VPROBE"

# sum_repeats FILE: the fires the lines of FILE account for.
sum_repeats() {
  awk '/^vprobe: USEC:100: DivisionByZeroError/ { n++ }
       match($0, /repeated [0-9]+ time/) { n += substr($0, RSTART + 9, RLENGTH - 14) - 1 }
       END { print n + 0 }' "$1"
}

# Local engine, ~10k fires a second for 2.5 s.
"$VPROBE" -d 2.5 -e "$TMP/err" -c 'int n, x; USEC:100 { n++; x = 1 / (x - x); }
VMXUnload { printf("%d\n", n); }' > "$TMP/out" || fail "hot exception run"
fires=$(cat "$TMP/out")
lines=$(wc -l < "$TMP/err")
[ "$lines" -ge 3 ] && [ "$lines" -le 5 ] || fail "2.5 s of errors gave $lines lines (want 3..5)"
check_match "first line as it was" '^vprobe: USEC:100: DivisionByZeroError: ' "$(head -n1 "$TMP/err")"
check_match "a count each second" \
  '^vprobe: USEC:100: DivisionByZeroError: .* \(repeated [0-9]+ times in the last 1(\.[01])? s\)$' \
  "$(sed -n 2p "$TMP/err")"
check "every fire accounted for" "$fires" "$(sum_repeats "$TMP/err")"
[ "$fires" -ge 2000 ] || fail "only $fires fires in 2.5 s"

# The count comes at the end of the second even when no error follows: the
# errors stop after 500 fires, the count is there long before unload.
"$VPROBE" -d 3.5 -e "$TMP/err2" -c 'int n, x; USEC:100 { n++; if (n <= 500) { x = 1 / (x - x); } }' &
pid=$!
sleep 2
check_match "count while running" '\(repeated 499 times in the last 1(\.[01])? s\)$' "$(cat "$TMP/err2")"
wait $pid
check "no more lines after" 2 "$(wc -l < "$TMP/err2")"

# Distinct lines are counted apart; the run ending early (-d 0.5) still
# reports its counts.
"$VPROBE" -d 0.5 -e "$TMP/err3" -c 'int x;
USEC:100 { x = 1 / (x - x); } USEC:150 { x = 2 / (x - x); }' || fail "two errors"
check "two distinct lines, two counts" 4 "$(wc -l < "$TMP/err3")"
check "counts at unload" 2 "$(grep -c 'repeated [0-9]* times in the last 0\.[3-6] s' "$TMP/err3")"

# Output (RT_OUT) is data: identical lines are all printed.
check "output lines not folded" 300 \
  "$("$VPROBE" -d 0.5 -c 'int n; USEC:100 { n++; if (n <= 300) { printf("same\n"); } }' | grep -c same)"

# A process target: the same through the VMX engine, ended by the target.
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
if [ -x "$T" ] && [ -f "$VPROBE_BUILD/lib/libvpagent.so" ]; then
  out=$("$VPROBE" -e "$TMP/err4" -c 'int x; VMX:ENTER:work_add { x = 1 / (x - x); }' \
        -- "$T" count 2 300000); rc=$?
  check "VMX: exit status" 0 "$rc"
  check "VMX: target output intact" "sum=90000300000" "$out"
  # (records lost to the full rings are reported on lines of their own)
  lines=$(grep -c 'work_add: DivisionByZeroError' "$TMP/err4")
  [ "$lines" -ge 2 ] && [ "$lines" -le 6 ] || { fail "VMX: $lines error lines"; head "$TMP/err4"; }
  check_match "VMX: counted" 'VMX:ENTER:vt_work.work_add: DivisionByZeroError: .*\(repeated [0-9]+ times' "$(cat "$TMP/err4")"
fi
done_testing
