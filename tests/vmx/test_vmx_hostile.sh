# A probed process that writes over the memory it shares with vprobe (ring
# heads, record lengths, the space's layout, random bytes) while vprobe
# drains: vprobe says so in one line, ends the run with status 1, and never
# crashes; run with the plain vprobe and with the ASan/UBSan one.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_scribble
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"
SAN_BUILD=${VPROBE_SAN_BUILD:-$VPROBE_TOP/build-san}

S='aggr c[0][1];
VMX:ENTER:scr_tick { c["n"]++; if (ARG0 % 200 == 0) { printf("tick %d\n", ARG0); } }
VMXUnload { printa(c, "%=s %count$=d\n"); }'

# run_one VPROBE MODE TAG
run_one() {
  local vp=$1 mode=$2 tag="$3 $2" rc n
  ASAN_OPTIONS=detect_leaks=0 timeout 30 "$vp" -c "$S" -- "$T" "$mode" 1.2 \
    >"$TMP/out" 2>"$TMP/err"
  rc=$?
  if [ $rc -ge 124 ]; then fail "$tag: vprobe died or hung (status $rc)"; cat "$TMP/err"; fi
  if grep -q 'AddressSanitizer\|runtime error:' "$TMP/err"; then
    fail "$tag: sanitizer report"; head -20 "$TMP/err"
  fi
  check_match "$tag: the target ran" '^ready$' "$(cat "$TMP/out")"
  n=$(grep -c 'shared memory corrupted' "$TMP/err")
  if [ "$mode" = none ]; then
    check "$tag: exit status" 0 "$rc"
    check "$tag: no corruption reported" 0 "$n"
    check_match "$tag: output drained" '^tick [0-9]+$' "$(cat "$TMP/out")"
    check_match "$tag: Unload ran" '^n [0-9]+$' "$(cat "$TMP/out")"
    return
  fi
  check "$tag: exit status" 1 "$rc"
  check "$tag: one corruption line" 1 "$n"
  [ "$mode" = table ] && check_match "$tag: found by the post-mortem check" \
    'table counters' "$(cat "$TMP/err")"
  check_match "$tag: the line" \
    '^vprobe: process [0-9]+: shared memory corrupted \(.+\); probes ended$' \
    "$(grep 'shared memory corrupted' "$TMP/err")"
}

for mode in none heads reclen header random table; do run_one "$VPROBE" $mode plain; done

if [ -x "$SAN_BUILD/bin/vprobe" ] && [ -f "$SAN_BUILD/lib/libvpagent.so" ]; then
  for mode in none heads reclen header random table; do run_one "$SAN_BUILD/bin/vprobe" $mode san; done
else
  echo "no $SAN_BUILD/bin/vprobe: the ASan/UBSan half is not run"
fi
done_testing
