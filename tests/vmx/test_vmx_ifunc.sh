# IFUNC functions (libc's strlen, memset) resolved to the implementation
# the process uses: ENTER and EXIT fire once per call with the real
# arguments and return value, under the name the user wrote; an IFUNC
# implemented in the vDSO is refused with one line; -p lists them.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_ifunc
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

N=3000
ref=$("$T" $N | grep '^len=')
# lengths 100..149: exactly N calls of each of ours, whatever else libc does
out=$("$VPROBE" -c 'aggr c[0][1];
VMX:ENTER:libc.memset(uint64 p, int ch, uint64 n) { if (n >= 100 && n < 150) { c[PROBENAME]++; } }
VMX:ENTER:libc.strlen { c[PROBENAME]++; }
VMX:EXIT:libc.strlen { if (ARG0 >= 100 && ARG0 < 150) { c[PROBENAME]++; } }
VMXUnload { printa(c, "%=s %count$=d\n"); }' -- "$T" $N 2>"$TMP/err"); rc=$?
check "launch: exit status" 0 "$rc"
check "launch: no error" "" "$(cat "$TMP/err")"
check "launch: target output intact" "$ref" "$(printf '%s\n' "$out" | grep '^len=')"
check "memset: one fire per call, real arguments" "VMX:ENTER:libc.memset $N" \
  "$(printf '%s\n' "$out" | grep '^VMX:ENTER:libc.memset ')"
check "strlen: return values" "VMX:EXIT:libc.strlen $N" \
  "$(printf '%s\n' "$out" | grep '^VMX:EXIT:libc.strlen ')"
n=$(printf '%s\n' "$out" | awk '$1 == "VMX:ENTER:libc.strlen" { print $2 }')
[ "${n:-0}" -ge $N ] || fail "strlen ENTER fired ${n:-0} times, fewer than $N"

# attach: the same through a running process's GOT
"$T" 200 30 > "$TMP/out" &
tpid=$!
for _ in $(seq 100); do grep -q ready "$TMP/out" && break; sleep 0.05; done
out=$("$VPROBE" -x $tpid -d 0.3 -c 'aggr c[0][1];
VMX:ENTER:libc.strlen { c["strlen"]++; }
VMX:ENTER:libc.memset { c["memset"]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' 2>"$TMP/err2"); rc=$?
check "attach: exit status" 0 "$rc"
check_match "attach: strlen fires" '^strlen [1-9][0-9]*$' "$out"
check_match "attach: memset fires" '^memset [1-9][0-9]*$' "$out"
kill -0 $tpid 2>/dev/null || fail "attach: the target died"
kill $tpid 2>/dev/null; wait $tpid 2>/dev/null

# an IFUNC whose implementation is the vDSO's: one line, refused
"$VPROBE" -c 'VMX:ENTER:libc.gettimeofday { }' -- "$T" 1 > "$TMP/o3" 2>"$TMP/e3"; rc=$?
check "vDSO IFUNC: refused" 1 "$rc"
check_match "vDSO IFUNC: says why" \
  '^vprobe: VMX:ENTER:libc.gettimeofday: libc.gettimeofday is an IFUNC whose implementation in process [0-9]+ is outside its object \(the vDSO.s, never probed\)$' \
  "$(cat "$TMP/e3")"
# -p lists IFUNCs by their names
out=$("$VPROBE" -p 'libc.strlen' -- "$T" 1)
check "-p lists strlen" "VMX:ENTER:libc.strlen" "$out"
done_testing
