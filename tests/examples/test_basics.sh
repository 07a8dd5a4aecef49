# Every target-free example in the cookbook runs as its "Run:" line says and
# prints what its .out file holds.
. "$VPROBE_TOP/tests/lib.sh"
cd "$VPROBE_TOP" || exit 1
n=0
for emt in examples/basics/*.emt; do
  expected=${emt%.emt}.out
  [ -f "$expected" ] || { fail "$emt has no $expected"; continue; }
  run=$(sed -n 's|^// Run: vprobe ||p' "$emt" | head -n1)
  [ -n "$run" ] || { fail "$emt has no Run: line"; continue; }
  actual=$(eval "\"\$VPROBE\" $run" 2>&1)
  check "$emt" "$(cat "$expected")" "$actual"
  n=$((n + 1))
done
[ $n -ge 5 ] || fail "only $n examples ran"
done_testing
