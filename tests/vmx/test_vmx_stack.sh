# vmxstack through code built without frame pointers: the controller's
# unwind table (.eh_frame CFI, src/vmx/vmx_unwind.c) steps the frames of
# nofp (-fomit-frame-pointer) and of libc, where a frame-pointer walk stops
# after the first frame.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/nofp
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

H='0x[0-9a-f]+'
out=$("$VPROBE" -c 'VMX:ENTER:leaf { string s; vmxstack(s, 4); printf("%s\n", s); }' \
      -- "$T" 3 2>"$TMP/err"); rc=$?
check "exit status" 0 "$rc"
check_match "target output intact" '^nofp done 3$' "$out"
check "leaf <- middle <- outer <- main, every call" 3 \
  "$(printf '%s\n' "$out" | grep -Ec "^nofp\.leaf\+0x0 <- nofp\.middle\+$H <- nofp\.outer\+$H <- nofp\.main\+$H\$")"

# On through libc (no frame pointers either) to the program's _start.
out=$("$VPROBE" -c 'VMX:ENTER:leaf { string s; vmxstack(s, 10); printf("%s\n", s); }' \
      -- "$T" 1 2>>"$TMP/err")
check_match "through libc to _start" \
  "^nofp\.leaf\+0x0 <- nofp\.middle\+$H <- nofp\.outer\+$H <- nofp\.main\+$H <- .*libc\.__libc_start_main\+$H <- nofp\._start\+$H\$" "$out"

# EXIT: the walk starts where leaf returns to, inside middle.
out=$("$VPROBE" -c 'VMX:EXIT:leaf { string s; vmxstack(s, 4); printf("%s\n", s); }' \
      -- "$T" 1 2>>"$TMP/err")
check_match "EXIT: leaf <- middle <- outer <- main" \
  "^nofp\.leaf\+0x0 <- nofp\.middle\+$H <- nofp\.outer\+$H <- nofp\.main\+$H\$" "$out"

# A program and a library of the system: malloc called from libc and ls
# unwinds past the first caller (a frame-pointer walk gives one frame or
# garbage there).
if [ -x /bin/ls ]; then
  out=$("$VPROBE" -c 'VMX:ENTER:malloc { string s; vmxstack(s, 6); printf("%s\n", s); }' \
        -- /bin/ls / 2>>"$TMP/err")
  check_match "/bin/ls: malloc stacks reach __libc_start_main" \
    "^libc\.malloc\+0x0 <- .*libc\.__libc_start_main\+$H" "$out"
fi
[ -s "$TMP/err" ] && { echo "stderr:"; cat "$TMP/err"; }
done_testing
