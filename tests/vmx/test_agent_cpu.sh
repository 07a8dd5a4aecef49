# Overload control: a probe that uses more of a CPU than --cpu-limit allows
# (default 5%) is disabled after about a second, with exactly one line on
# the error stream naming it, and its site unpatched: the target's speed
# recovers.  With --cpu-limit 0 the same probe runs on (and the target
# stays slow).
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

HOT='int i; int y; VMX:ENTER:work_tick { for (i = 0; i < 300; i++) { y += i; } }
VMX:ENTER:work_mul { y++; }'
calls() { printf '%s\n' "$1" | sed -n 's/^done \([0-9]*\)$/\1/p'; }

out=$(timeout 60 "$VPROBE" -c "$HOT" -- "$T" loop 3 2>"$TMP/err"); rc=$?
check "limited: exit status" 0 "$rc"
check "limited: one line on the error stream" 1 "$(wc -l <"$TMP/err")"
check_match "limited: the line says which and why" \
  '^vprobe: probe VMX:ENTER:work_tick disabled: [0-9.]+% of a CPU over 1 s \(limit 5%, see --cpu-limit\)$' \
  "$(cat "$TMP/err")"
limited=$(calls "$out")

out=$(timeout 60 "$VPROBE" --cpu-limit 0 -c "$HOT" -- "$T" loop 3 2>"$TMP/err0"); rc=$?
check "unlimited: exit status" 0 "$rc"
check "unlimited: nothing on the error stream" "" "$(cat "$TMP/err0")"
unlimited=$(calls "$out")
free=$(calls "$("$T" loop 3)")
echo "# calls in 3 s: unprobed $free, limited $limited, --cpu-limit 0 $unlimited"
[ -n "$limited" ] && [ -n "$unlimited" ] && [ -n "$free" ] || fail "no call counts"
# Disabled after ~1 s and unpatched: most of the run at full speed.
[ "${limited:-0}" -gt $((10 * ${unlimited:-1})) ] || fail "limited run not faster than unlimited"
[ "${limited:-0}" -gt $((${free:-0} / 5)) ] || fail "the target's speed did not recover"

# A cheap probe stays on under the default limit.
out=$(timeout 60 "$VPROBE" -c 'aggr c[0][1]; VMX:ENTER:work_mul { c["n"]++; }
  VMXUnload { printa(c, "%=s %count$=d\n"); }' -- "$T" loop 2 2>"$TMP/err1"); rc=$?
check "cheap probe: exit status" 0 "$rc"
check "cheap probe: nothing on the error stream" "" "$(cat "$TMP/err1")"
check_match "cheap probe: fired" '^n [1-9][0-9]*$' "$out"
done_testing
