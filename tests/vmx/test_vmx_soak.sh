# The soak, short: 40 random scripts (tests/soak/emtgen.c) against the live
# multi-threaded vt_soak through tools/soak.  No vprobe crash or hang, no
# target crash, hang or wrong result, no bad offset placed, and the
# generator's scripts compile (at most 2 of 40 refused by the compiler).
# The generator is also checked for reproducible output.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_soak
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"
command -v objdump >/dev/null || skip "no objdump"
need_root

# The generator: same seed, same script; other seed, other script.
${CC:-cc} -O2 -o "$TMP/emtgen" "$VPROBE_TOP/tests/soak/emtgen.c" || fail "emtgen does not build"
check "emtgen: reproducible" "$("$TMP/emtgen" 12345 | md5sum)" "$("$TMP/emtgen" 12345 | md5sum)"
[ "$("$TMP/emtgen" 1 | md5sum)" != "$("$TMP/emtgen" 2 | md5sum)" ] || fail "emtgen: seeds 1 and 2 give one script"
# every generated script compiles
bad=0
for s in $(seq 100 139); do
  "$TMP/emtgen" $s > "$TMP/g.emt"
  "$EMMETT" -o /dev/null "$TMP/g.emt" 2>> "$TMP/gerr" || bad=$((bad + 1))
done
check "emtgen: scripts the compiler refuses (of 40): $(head -n1 "$TMP/gerr")" 0 "$bad"

# The short soak; the seed changes with the day so the suite covers more.
seed=${SOAK_SEED:-$(( $(date +%j) % 100 + 1 ))}
SOAK_KEEP=$TMP/keep SOAK_CHECK_EVERY=10 "$VPROBE_TOP/tools/soak" 40 $seed > "$TMP/soak" 2>&1
rc=$?
fig() { awk -v k="$1" 'index($0, "soak: " k " ") == 1 { print $(NF) }' "$TMP/soak"; }
for k in "vprobe crashes" "vprobe hangs" "target crashes" "target hangs" "wrong results" \
         "bad offsets accepted" "code not intact after detach"; do
  check "soak seed $seed: $k" 0 "$(fig "$k")"
done
comp=$(sed -n 's/^soak: refused [0-9]* (compiler \([0-9]*\),.*/\1/p' "$TMP/soak")
[ -n "$comp" ] && [ "$comp" -le 2 ] || fail "soak seed $seed: $comp scripts refused by the compiler"
check "soak seed $seed: exit status" 0 "$rc"
if [ $nfail != 0 ]; then
  cat "$TMP/soak"
  for d in "$TMP"/keep/*/; do
    [ -d "$d" ] || continue
    echo "--- $d: $(cat "$d/command")"
    grep -E '^(VMX|USEC)' "$d/script.emt"
    tail -n3 "$d/stderr"
  done
fi
done_testing
