# VMX launch mode, end to end: vprobe [script] -- CMD ARGS loads the script
# into CMD before main runs (LD_PRELOAD'd agent) and ends when CMD does.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"
if "$VPROBE" -x $$ -p nothing 2>&1 | grep -q 'not available in this build'; then
  fail "vprobe was linked without the VMX engine (a weak reference does not pull src/vmx out of libvprobe.a)"
  done_testing
fi

COUNT='aggr c[0][1];
VMX:ENTER:work_add { c["n"]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }'

# Exact call counts, one thread and eight, millions of calls.
out=$("$VPROBE" -c "$COUNT" -- "$T" count 1 2000000 2>"$TMP/err"); rc=$?
check "1 thread: exit status" 0 "$rc"
check_match "1 thread: target output intact" '^sum=2000001000000$' "$out"
check_match "1 thread: 2M calls counted" '^n 2000000$' "$out"
out=$("$VPROBE" -c "$COUNT" -- "$T" count 8 250000 2>>"$TMP/err"); rc=$?
check "8 threads: exit status" 0 "$rc"
check_match "8 threads: target output" '^sum=250001000000$' "$out"
check_match "8 threads: 2M calls counted" '^n 2000000$' "$out"

# Arguments (typed and ARGn) and return values.
out=$("$VPROBE" -c '
VMX:ENTER:work_mul(int a, int b) { if (a == 3000) { printf("mul %d %d\n", a, b); } }
VMX:EXIT:work_mul { if (ARG0 == 9000) { printf("ret %d\n", ARG0); } }
VMX:ENTER:work_tick { if (ARG0 == 12345) { printf("tick %d\n", ARG0); } }' -- "$T" loop 0.2 2>>"$TMP/err")
check_match "typed parameters" '^mul 3000 3$' "$out"
check_match "EXIT sees the return value" '^ret 9000$' "$out"
check_match "ARG0 without declaring" '^tick 12345$' "$out"

# Memory built-ins: main's argv[0] through getvmx and getvmxstr; a bad
# address raises the catchable memory error.
out=$("$VPROBE" -c 'string s;
VMX:ENTER:main {
  getvmxstr(s, getvmx(ARG1));
  printf("argv0 %s\n", s);
  try { getvmx(0x10); printf("no fault\n"); }
  catch (MemAccessError) { printf("caught getvmx\n"); }
  try { getvmxstr(s, 0x20); printf("no fault\n"); }
  catch (VmxMemAccessError) { printf("caught getvmxstr\n"); }
}' -- "$T" loop 0.01 2>>"$TMP/err")
check_match "getvmxstr reads argv[0]" "^argv0 $T\$" "$out"
check "a bad address raises MemAccessError" "caught getvmx caught getvmxstr" \
  "$(printf '%s\n' "$out" | grep '^caught\|no fault' | tr '\n' ' ' | sed 's/ $//')"

# Globs expand to every match, PROBENAME tells which fired: work_tick runs
# exactly 1000 times per work_mul call.
out=$("$VPROBE" -c 'aggr c[0][1];
VMX:ENTER:work_* { c[PROBENAME]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' -- "$T" loop 0.2 2>>"$TMP/err")
ticks=$(printf '%s\n' "$out" | awk '$1 == "VMX:ENTER:vt_work.work_tick" { print $2 }')
muls=$(printf '%s\n' "$out" | awk '$1 == "VMX:ENTER:vt_work.work_mul" { print $2 }')
[ -n "$ticks" ] && [ -n "$muls" ] && [ "$muls" -gt 0 ] || fail "glob work_*: $out"
check "glob: 1000 ticks per mul" "$((muls * 1000))" "${ticks:-x}"
check_match "glob: loop output intact" '^done [0-9]+000$' "$out"

# The profiler finds the hot code (the counting thread and what it calls),
# symbolized; a fixed amount of work, so a busy machine gets as many samples.
out=$("$VPROBE" -c 'aggr p[0][1]; string s;
VMX:PROFILE:1msec { vmxstack(s, 1); p[s]++; }
VMXUnload { printa(p, "%=s|%count$=d\n"); }' -- "$T" count 1 400000000 2>>"$TMP/err")
all=$(printf '%s\n' "$out" | awk -F'|' 'NF == 2 { n += $2 } END { print n + 0 }')
hot=$(printf '%s\n' "$out" | awk -F'|' 'NF == 2 && $1 ~ /^vt_work\.(count_thread|work_add)\+0x/ { n += $2 } END { print n + 0 }')
[ "$all" -ge 50 ] || fail "profile: only $all samples: $out"
[ $((hot * 10)) -ge $((all * 8)) ] || fail "profile: $hot of $all samples in the hot loop: $out"
# A stack key, symbolized: work_mul called from loop called from main.
out=$("$VPROBE" -c 'aggr p[0][1]; string s;
VMX:ENTER:work_mul { vmxstack(s, 3); p[s]++; }
VMXUnload { printa(p, "%=s|%count$=d\n"); }' -- "$T" loop 0.2 2>>"$TMP/err")
check_match "stack symbolized" '^vt_work\.work_mul\+0x0 <- vt_work\.loop\+0x[0-9a-f]+ <- vt_work\.main\+0x[0-9a-f]+\|[0-9]+$' "$out"

# Exit status and output of CMD untouched; stdin passes through.
out=$("$VPROBE" -c 'VMXLoad { printf("loaded\n"); }' -- "$T" status 3 2>>"$TMP/err"); rc=$?
check "CMD's exit status" 3 "$rc"
check_match "CMD's output" '^hello$' "$out"
check_match "VMXLoad fires" '^loaded$' "$out"
"$VPROBE" -c 'VMXLoad { }' -- sh -c 'exit 5' 2>>"$TMP/err"; check "sh -c 'exit 5'" 5 "$?"
check "stdin reaches CMD" "abc" "$(echo abc | "$VPROBE" -c 'VMXLoad { }' -- cat 2>>"$TMP/err")"
"$VPROBE" -c 'VMXLoad { }' -- sh -c 'kill -TERM $$' 2>>"$TMP/err"; check "killed CMD: 128+SIGTERM" 143 "$?"

# Where a jump does not fit (a one-byte function), the probe is a trap and
# vprobe says so; it still counts exactly.
P=$VPROBE_BUILD/tests/vmx/targets/prologue
if [ -x "$P" ]; then
  out=$("$VPROBE" -c 'aggr c[0][1];
VMX:ENTER:tiny_fn { c["tiny"]++; } VMX:ENTER:rip_fn { c["rip"]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' -- "$P" 5000 2>"$TMP/e8"); rc=$?
  check "trap: exit status" 0 "$rc"
  check_match "trap: target results right" '^bad 0$' "$out"
  check_match "trap: exact count (main and call_fn call it)" '^tiny 10000$' "$out"
  check_match "jump beside it: exact count" '^rip 5000$' "$out"
  check "trap: said on the error stream" "vprobe: VMX:ENTER:prologue.tiny_fn: placed as a trap (slower)" "$(cat "$TMP/e8")"
fi

# A program nothing can be preloaded into, or none at all: said plainly.
if [ -x /bin/busybox ] && ! readelf -l /bin/busybox 2>/dev/null | grep -q INTERP; then
  "$VPROBE" -c 'VMXLoad { }' -- /bin/busybox true 2>"$TMP/e0"; rc=$?
  check "static program: exit 1" 1 "$rc"
  check_match "static program: message" 'statically linked program' "$(cat "$TMP/e0")"
fi
"$VPROBE" -c 'VMXLoad { }' -- /nonexistent/cmd 2>"$TMP/e0"; rc=$?
check "missing command: exit 127" 127 "$rc"
check_match "missing command: message" '^vprobe: /nonexistent/cmd: No such file or directory$' "$(cat "$TMP/e0")"

# A probe matching nothing loads nothing and runs nothing.
out=$("$VPROBE" -c 'VMX:ENTER:nosuch { }' -- "$T" status 0 2>"$TMP/e1"); rc=$?
check "no match: exit 1" 1 "$rc"
check "no match: CMD did not run" "" "$out"
check_match "no match: message" '^vprobe: VMX:ENTER:nosuch: no function matches in process [0-9]+$' "$(cat "$TMP/e1")"

# Bad reads raise MemAccessError in the probe; the target goes on.
out=$("$VPROBE" -c 'VMX:ENTER:work_mul { int x; x = *(uint64 *)0; }' -- "$T" loop 0.2 2>"$TMP/e2"); rc=$?
check "bad read: target exit status" 0 "$rc"
check_match "bad read: target finished" '^done ' "$out"
check_match "bad read: MemAccessError" 'vprobe: VMX:ENTER:vt_work.work_mul: MemAccessError' "$(cat "$TMP/e2")"

# fork: the child runs clean (its calls not counted, no crash).
out=$("$VPROBE" -c "$COUNT" -- "$T" fork 100000 2>>"$TMP/err"); rc=$?
check "fork: exit status" 0 "$rc"
check_match "fork: child ran" '^child 100000$' "$out"
check_match "fork: child status 0" 'child-status 0$' "$out"
check_match "fork: only the parent's calls" '^n 200000$' "$out"

# exec: probes end with a message, the new program runs normally.
out=$("$VPROBE" -c 'VMX:ENTER:work_tick { }' -- "$T" exec 0.3 2>"$TMP/e3"); rc=$?
check "exec: exit status" 0 "$rc"
check_match "exec: new program ran" '^done ' "$out"
check_match "exec: message" "^vprobe: process [0-9]+ exec'd; probes ended$" "$(cat "$TMP/e3")"

# -p lists the probe points of a command.
out=$("$VPROBE" -p 'work_*' -- "$T" status 0 2>>"$TMP/err")
check "-p work_*" "VMX:ENTER:vt_work.work_add
VMX:ENTER:vt_work.work_mul
VMX:ENTER:vt_work.work_tick" "$(printf '%s\n' "$out" | sort)"
check_match "-p libc.mall*" '^VMX:ENTER:libc.malloc$' "$("$VPROBE" -p 'libc.mall*' -- "$T" status 0)"

if [ $nfail != 0 ]; then echo "stderr of the runs:"; cat "$TMP/err"; fi
done_testing
