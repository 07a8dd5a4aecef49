# Functions never probed: the rt_sigreturn trampoline (libc's, by address;
# any function whose code it is, by name), the vDSO, the agent itself,
# ld.so's TLS entry.  Each is refused with one line saying why, the target
# untouched; a glob skips them silently when something else matched, and
# says so on one line when nothing did; -p marks them.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_ifunc
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

# refused: exit 1, one line, the launched target never runs its main
refused() { # NAME PATTERN PROBE
  "$VPROBE" -c "$3 { }" -- "$T" 1 > "$TMP/o" 2>"$TMP/e"
  check "$1: exit status" 1 "$?"
  check_match "$1: says why" "$2" "$(cat "$TMP/e")"
  check "$1: one line" 1 "$(wc -l < "$TMP/e")"
}
refused "sigreturn code, by name" \
  '^vprobe: VMX:ENTER:vt_restorer: vt_ifunc.vt_restorer is never probed: signal return$' \
  VMX:ENTER:vt_restorer
refused "EXIT as well" 'never probed: signal return$' VMX:EXIT:vt_ifunc.vt_restorer
refused "the agent" \
  '^vprobe: VMX:ENTER:libvpagent.vpagent_start: libvpagent.vpagent_start is never probed: the vprobe agent itself$' \
  VMX:ENTER:libvpagent.vpagent_start
refused "__tls_get_addr" 'is never probed: thread-local storage access$' VMX:ENTER:__tls_get_addr
refused "a glob of never-probed functions only" \
  '^vprobe: VMX:ENTER:vt_restor\*: every match skipped \(1: vt_ifunc.vt_restorer is never probed: signal return\)$' \
  'VMX:ENTER:vt_restor*'
# a glob that matches others too skips them without a word
out=$("$VPROBE" -c 'aggr c[0][1]; VMX:ENTER:vt_ifunc.[mv]* { c[PROBENAME]++; }
VMXUnload { printa(c, "%=s %count$=d\n"); }' -- "$T" 10 2>"$TMP/e"); rc=$?
check "glob: exit status" 0 "$rc"
check "glob: no error" "" "$(cat "$TMP/e")"
check "glob: main probed, the trampoline not" "VMX:ENTER:vt_ifunc.main 1" \
  "$(printf '%s\n' "$out" | grep '^VMX:')"

# by address, in a running process: libc's __restore_rt, the vDSO
"$T" 100 30 > "$TMP/out" &
tpid=$!
for _ in $(seq 100); do grep -q ready "$TMP/out" && break; sleep 0.05; done
rt=$(awk '/^restorer/ { print $2 }' "$TMP/out")
vdso=$(awk '$6 == "[vdso]" { split($1, a, "-"); print "0x" a[1] }' /proc/$tpid/maps)
"$VPROBE" -x $tpid -c "VMX:$rt { }" > /dev/null 2>"$TMP/e"; rc=$?
check "__restore_rt by address: refused" 1 "$rc"
check "__restore_rt by address: why" "vprobe: VMX:$rt: never probed: signal return" "$(cat "$TMP/e")"
if [ -n "$vdso" ]; then
  "$VPROBE" -x $tpid -c "VMX:$vdso { }" > /dev/null 2>"$TMP/e"; rc=$?
  check "vDSO: refused" 1 "$rc"
  check_match "vDSO: why" "^vprobe: VMX:$vdso: in \[vdso\], never probed: " "$(cat "$TMP/e")"
fi
"$VPROBE" -x $tpid -r > /dev/null 2>"$TMP/e"
check_match "target untouched" "code intact" "$(cat "$TMP/e")"
kill -0 $tpid 2>/dev/null || fail "the target died"
kill $tpid 2>/dev/null; wait $tpid 2>/dev/null

# -p marks them
out=$("$VPROBE" -p '*restorer' -- "$T" 1)
check "-p marks" "VMX:ENTER:vt_ifunc.vt_restorer (never probed: signal return)" "$out"
out=$("$VPROBE" -p '*tls_get_addr' -- "$T" 1)
check_match "-p marks __tls_get_addr" "__tls_get_addr \(never probed: thread-local storage access\)" "$out"
done_testing
