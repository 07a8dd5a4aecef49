# The process cookbook (examples/vmx): each script runs as its "Run:" line
# says, exits 0, and prints a line matching its "Expect:" pattern.
. "$VPROBE_TOP/tests/lib.sh"
cd "$VPROBE_TOP" || exit 1
need_built "$VPROBE_BUILD/lib/libvpagent.so"
for emt in examples/vmx/*.emt; do
  run=$(sed -n 's|^// Run: vprobe ||p' "$emt" | head -n1)
  want=$(sed -n 's|^// Expect: ||p' "$emt" | head -n1)
  [ -n "$run" ] && [ -n "$want" ] || { fail "$emt lacks Run: or Expect:"; continue; }
  out=$(eval "\"\$VPROBE\" $run" 2>"$TMP/err"); rc=$?
  check "$emt exit status" "0" "$rc"
  if ! printf '%s\n' "$out" | grep -Eq -- "$want"; then
    fail "$emt output"; printf '%s\n' "$out" | head -n 15; head -n 5 "$TMP/err"
  fi
done
done_testing
