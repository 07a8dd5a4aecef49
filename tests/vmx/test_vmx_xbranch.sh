# Branches from one function to a label inside another (issue 17): glibc's
# __mempcpy_*_erms jumps 3 bytes into __memmove_*_erms; vt_xbranch's
# xb_plus does the same into xb_add.  The agent sees only the branches of
# the function it patches: the controller's sweep of the module gives each
# point its room, and a jump that would cover such a label is a trap.  The
# target checks every result and prints a checksum: it must be the
# unprobed run's, with xb_add, with every function of the program and of
# libc probed, and with everything probed.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_xbranch
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

N=20000
want=$("$T" $N)
check_match "unprobed run" '^checksum [0-9a-f]+ errors 0$' "$want"

# run NAME PROBES: the target's output must be the unprobed one, vprobe
# exits 0 with nothing on stderr but trap notes, probes fired.
run() {
  local what=$1 probes=$2 out rc
  out=$(timeout 60 "$VPROBE" --cpu-limit 0 -c "aggr c[0][1]; $probes
        VMXUnload { printa(c, \"%=s %count\$=d\\n\"); }" -- "$T" $N 2>"$TMP/err"); rc=$?
  check "$what: vprobe exit status" 0 "$rc"
  check "$what: the target's output" "$want" "$(printf '%s\n' "$out" | grep checksum)"
  check_match "$what: probes fired" '^n [1-9][0-9]*$' "$out"
  grep -Ev 'placed as a trap|placed as traps' "$TMP/err" >"$TMP/err2"
  [ -s "$TMP/err2" ] && fail "$what: stderr: $(head -3 "$TMP/err2")"
  out_=$out
}

run "ENTER:xb_add" 'VMX:ENTER:xb_add { c["n"]++; }'
check "ENTER:xb_add: every call counted" "n $N" "$(printf '%s\n' "$out_" | grep '^n ')"
# the 5-byte jump would cover the label 3 bytes in: a trap
check_match "ENTER:xb_add: placed as a trap" 'ENTER:vt_xbranch.xb_add: placed as a trap' \
  "$(cat "$TMP/err")"
run "ENTER:xb_add and xb_plus" 'VMX:ENTER:xb_add { c["n"]++; } VMX:ENTER:xb_plus { c["p"]++; }'
check "ENTER:xb_plus: every call counted" "p $N" "$(printf '%s\n' "$out_" | grep '^p ')"
# libc's string functions: memmove's label reached from mempcpy
run "ENTER:libc.*" 'VMX:ENTER:libc.* { c["n"]++; }'
run "ENTER:libc.* and ENTER:vt_xbranch.*" \
  'VMX:ENTER:libc.* { c["n"]++; } VMX:ENTER:vt_xbranch.* { c["v"]++; }'
run "EXIT:libc.*" 'VMX:EXIT:libc.* { c["n"]++; }'
run "ENTER:*" 'VMX:ENTER:* { c["n"]++; }'
done_testing
