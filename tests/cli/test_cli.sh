# vprobe's command line without a target: the contract of DESIGN.md section 5.
. "$VPROBE_TOP/tests/lib.sh"
[ -x "$VPROBE" ] || { echo "no $VPROBE"; exit 1; }

check "--version" "vprobe 1.0" "$("$VPROBE" --version)"
check "-c prints 42" "42" "$("$VPROBE" -c 'VMXLoad { printf("%d\n", 6*7); }')"

# Hand-written VP, from a file and from standard input (-i).
cat > "$TMP/hello.vp" <<'VP'
; the reference's first script, on a target-free probe
(vprobe VMXLoad
  (printf "hello!\n"))
VP
check "VP file" "hello!" "$("$VPROBE" "$TMP/hello.vp")"
check "VP on stdin" "hello!" "$("$VPROBE" -i < "$TMP/hello.vp")"

# emmett writes VP that vprobe runs.
printf 'VMXLoad { printf("%%s\\n", "via emmett"); }\n' > "$TMP/e.emt"
"$EMMETT" -o "$TMP/e.vp" "$TMP/e.emt" || fail "emmett -o"
check "emmett output runs" "via emmett" "$("$VPROBE" "$TMP/e.vp")"
check_match "emmett output is VP" '^\(vprobe VMXLoad' "$(cat "$TMP/e.vp")"

# -D and -I reach the preprocessor.
mkdir -p "$TMP/inc"
echo '#define ANSWER 42' > "$TMP/inc/answer.h"
printf '#include "answer.h"\nVMXLoad { printf("%%d %%d\\n", ANSWER, N); }\n' > "$TMP/d.emt"
check "-D -I" "42 7" "$("$VPROBE" -I "$TMP/inc" -D N=7 "$TMP/d.emt")"

# Streams: -o, -e, -b.
"$VPROBE" -o "$TMP/out" -e "$TMP/err" -b "$TMP/bin" -c '
int x; VMXLoad { printf("to out\n"); writeint(0x0102030405060708, 8); writeint(0xab, 1); x = 1 / (x - x); }' \
  || fail "streams run"
check "-o" "to out" "$(cat "$TMP/out")"
check_match "-e gets the uncaught exception" '^vprobe: VMXLoad: DivisionByZeroError' "$(cat "$TMP/err")"
check "-b binary records" "0807060504030201ab" "$(od -An -tx1 "$TMP/bin" | tr -d ' \n')"

# Periodic probes, -d, Unload.
out=$("$VPROBE" -d 1.1 -c 'int n; USEC:100000 { n++; } VMXUnload { printf("%d\n", n); }')
[ "$out" -ge 9 ] && [ "$out" -le 11 ] || fail "USEC:100000 for 1.1 s fired $out times (want 10 +-1)"
out=$("$VPROBE" -d 2.5 -c 'VMX1Hz { printf("tick\n"); }' | grep -c tick)
check "VMX1Hz for 2.5 s" "2" "$out"
out=$("$VPROBE" -d 0.55 -c 'VMX10Hz { printf("t\n"); }' | grep -c t)
check "VMX10Hz for 0.55 s" "5" "$out"

# Ctrl-C unloads cleanly: Unload probes fire and output is flushed.
"$VPROBE" -o "$TMP/int" -c 'VMXLoad { printf("loaded\n"); } VMX10Hz { } VMXUnload { printf("unloaded\n"); }' &
pid=$!
sleep 0.7; kill -INT $pid; wait $pid; rc=$?
check "SIGINT exit status" "0" "$rc"
check "SIGINT runs VMXUnload" "loaded
unloaded" "$(cat "$TMP/int")"

# -a logs and clears aggregates each second.
out=$("$VPROBE" -a -d 2.2 -c 'aggr c[0][1]; USEC:100000 { c["tick"]++; }')
check "-a prints each second" "2" "$(printf '%s\n' "$out" | grep -c '^strKey0')"

# -g lists globals.
check_match "-g" "counter" "$("$VPROBE" -g -c 'int counter; aggr a[1]; VMXLoad { counter = 1; a[1]++; }')"

# Errors: one line, exit 1, with the place.
err=$("$VPROBE" -c 'VMXLoad { printf("%d\n", 1) }' 2>&1); rc=$?
check "syntax error status" "1" "$rc"
check "syntax error is one line" "1" "$(printf '%s\n' "$err" | wc -l)"
check_match "syntax error place" '^vprobe: -c:1:[0-9]+: error: ' "$err"
err=$("$VPROBE" /nonexistent.emt 2>&1); rc=$?
check "missing file status" "1" "$rc"
check_match "missing file message" '^vprobe: /nonexistent.emt: ' "$err"
err=$("$VPROBE" -c 'GUEST:do_sys_open { }' 2>&1); rc=$?
check "probe needing a target" "1" "$rc"
check_match "probe needing a target message" 'GUEST:do_sys_open: needs a target|needs' "$err"
err=$("$VPROBE" -d abc -c 'VMXLoad {}' 2>&1); rc=$?
check "bad -d" "1" "$rc"
check_match "bad -d message" '^vprobe: abc: not a number' "$err"
"$VPROBE" -q >/dev/null 2>&1; check "unknown option status" "2" "$?"
err=$("$VPROBE" 2>&1); rc=$?
check "no script" "1" "$rc"

# Destructive built-ins are refused without --destructive.
err=$("$VPROBE" -c 'VMX:ENTER:main { setgpr(0, 1); }' 2>&1); rc=$?
check "destructive refused" "1" "$rc"
check_match "destructive message" 'destructive' "$err"

# vprobe.allow = FALSE keeps non-root users out.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && [ ! -e /etc/vprobe.conf ]; then
  echo 'vprobe.allow = FALSE' > /etc/vprobe.conf
  err=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$VPROBE" -c 'VMXLoad {}' 2>&1); rc=$?
  rm -f /etc/vprobe.conf
  check "allow=FALSE status" "1" "$rc"
  check_match "allow=FALSE message" 'vprobe.allow' "$err"
fi

# -t writes a tracing program (it needs a process: without one it says so).
err=$("$VPROBE" -t 'libc.malloc:1' 2>&1); rc=$?
check "-t without target" "1" "$rc"
check_match "-t needs a target" 'VMX:ENTER:libc.malloc: needs a target' "$err"
done_testing
