# The GUEST and VMM engine against the test VM (1 vCPU): counts on a guest
# kernel function by process name, periodic sampling rate, a watchpoint, the
# page-fault probe with CR2, EXIT probes, gueststack, errors, the guest
# memory built-ins and a bad address, SIGKILL of vprobe, and unload leaving
# the guest to finish its workload.  One VM for every check.
. "$VPROBE_TOP/tests/lib.sh"
need_vm_image
vm=$VPROBE_TOP/tools/vm
d=$TMP/vm
# The workload runs 60 s of guest time (slower while probed) and the guest
# stays up after it.
start_vm "$d" --workload ls --secs 60 --stay
pid=$VM_PID
M="-m gdb=unix:$d/gdb.sock,qmp=$d/qmp.sock -s $d/kallsyms"

# 1. Counts on a kernel function keyed by the process name (the Linux
#    preload's curprocname), through -m PID this time.
cat > "$TMP/opens.emt" <<'EOF'
aggr opens[0][1];
GUEST:ENTER:do_sys_openat2 { opens[curprocname()]++; }
VMMUnload { printa(opens); }
EOF
res=$("$VPROBE" -m "$pid" -s "$d/kallsyms" -d 3 "$TMP/opens.emt" 2>&1)
check_match "opens by process name name the workload" "wl_(ls|cat|dd)" "$res"

# 2. Periodic sampling: USEC:10000 for 3 s is about 300 fires, with guest
#    registers (the sampled RIPs are kernel or user addresses, not all one).
cat > "$TMP/ticks.emt" <<'EOF'
aggr ticks[0][1];
aggr rips[1][0];
USEC:10000 { ticks["fires"]++; rips[RIP]++; }
VMMUnload { printa(ticks, "%=s %count$=d\n"); printa(rips, "rip %=x\n"); }
EOF
res=$("$VPROBE" $M -d 3 "$TMP/ticks.emt" 2>&1)
n=$(printf '%s\n' "$res" | sed -n 's/.*fires \([0-9]*\).*/\1/p' | head -1)
check "USEC:10000 for 3 s fires 300 +-20%" yes "$([ "${n:-0}" -ge 240 ] && [ "${n:-0}" -le 360 ] && echo yes)"
[ "${n:-0}" -ge 240 ] && [ "${n:-0}" -le 360 ] || echo "  fires: ${n:-none}; output: $res"
nrip=$(printf '%s\n' "$res" | grep -c '^rip ')
check "samples see more than one RIP" yes "$([ "$nrip" -gt 1 ] && echo yes)"

# 3. A watchpoint fires on a guest write: the timer tick writes jiffies.
cat > "$TMP/watch.emt" <<'EOF'
aggr w[0][1];
GUEST_WRITE:jiffies { w["writes"]++; }
VMMUnload { printa(w, "%=s %count$=d\n"); }
EOF
res=$("$VPROBE" $M -d 2 "$TMP/watch.emt" 2>&1)
check_match "GUEST_WRITE:jiffies fires" "writes [1-9][0-9]*" "$res"

# 4. Page faults, with the fault address in CR2 and the error code in ARG0.
cat > "$TMP/pf.emt" <<'EOF'
int n;
Guest_PF { if (n < 5) { printf("pf cr2=%#x err=%#x\n", CR2, ARG0); } n++; }
EOF
res=$("$VPROBE" $M -d 2 "$TMP/pf.emt" 2>&1)
check_match "Guest_PF fires with CR2" "pf cr2=0x[0-9a-f]+ err=0x[0-9a-f]+" "$res"
check "Guest_PF CR2 is not always 0" yes "$(printf '%s\n' "$res" | grep -q 'cr2=0x[1-9a-f]' && echo yes)"

# 5. gueststack, symbolized with the guest's kallsyms; EXIT probes see the
#    return value; ENTER and EXIT counts agree.
cat > "$TMP/stack.emt" <<'EOF'
string s;
int shown;
aggr calls[0][1];
GUEST:ENTER:do_sys_openat2 {
  calls["enter"]++;
  if (!shown) { gueststack(s); printf("stack %s\n", s); shown = 1; }
}
GUEST:EXIT:do_sys_openat2 { calls["exit"]++; }
VMMUnload { printa(calls, "%=s %count$=d\n"); }
EOF
res=$("$VPROBE" $M -d 3 "$TMP/stack.emt" 2>&1)
check_match "gueststack is symbolized" "stack do_sys_openat2;[a-z_0-9]+\+0x[0-9a-f]+" "$res"
en=$(printf '%s\n' "$res" | sed -n 's/^enter \([0-9]*\).*/\1/p')
ex=$(printf '%s\n' "$res" | sed -n 's/^exit \([0-9]*\).*/\1/p')
check "EXIT fires about as often as ENTER" yes \
  "$([ "${en:-0}" -gt 0 ] && [ "${ex:-0}" -ge $((${en:-0} - 3)) ] && [ "${ex:-0}" -le "${en:-0}" ] && echo yes)"

# 6. Listing, and errors that name the thing at fault.
check_match "-p lists guest functions" "^GUEST:do_sys_openat2$" \
  "$("$VPROBE" $M -p 'do_sys_open*' 2>&1)"
res=$("$VPROBE" $M -d 1 -c 'GUEST:ENTER:no_such_function_xyz { }' 2>&1)
check_match "unknown guest symbol" "no guest symbol no_such_function_xyz" "$res"
res=$("$VPROBE" $M -d 1 -c 'HV_Exit { }' 2>&1)
check_match "HV_Exit says it needs KVM" "HV_Exit needs KVM: on a KVM host use VMK:TRACE:kvm:kvm_exit" "$res"

# 7. Guest memory built-ins with the VM stopped: a string and an integer by
#    symbol, and a bad address raising the catchable memory error.
cat > "$TMP/mem.emt" <<'EOF'
string s;
VMMLoad {
  getgueststr(s, "linux_banner");
  printf("banner %s\n", s);
  printf("jiffies set %d\n", getguest("jiffies") != 0);
  try { getguest(0x10); printf("no fault\n"); }
  catch (MemAccessError) { printf("caught getguest\n"); }
  try { printf("%d\n", *(int *)0x18); }
  catch (GuestMemAccessError) { printf("caught load\n"); }
  try { getgueststr(s, 0x20); printf("no fault\n"); }
  catch (MemAccessError) { printf("caught getgueststr\n"); }
}
EOF
res=$("$VPROBE" $M -d 1 "$TMP/mem.emt" 2>&1)
check_match "getgueststr reads linux_banner" "banner Linux version [0-9]" "$res"
check_match "getguest reads jiffies" "jiffies set 1" "$res"
check "a bad guest address raises MemAccessError each way" \
  "caught getguest caught load caught getgueststr" \
  "$(printf '%s\n' "$res" | grep '^caught\|no fault' | tr '\n' ' ' | sed 's/ $//')"

# 8. SIGKILL of vprobe in the middle of a run: the VM runs on (the
#    engine's guardian detaches for it), a fresh session samples changing
#    RIPs.
"$VPROBE" $M -d 30 -c 'GUEST:ENTER:do_sys_openat2 { } USEC:1000 { }' > /dev/null 2>&1 &
vp=$!
sleep 3
kill -9 $vp
wait $vp 2>/dev/null
sleep 1
res=$("$VPROBE" $M -d 2 "$TMP/ticks.emt" 2>&1)
nrip=$(printf '%s\n' "$res" | grep -c '^rip ')
check "after SIGKILL the guest still runs" yes "$([ "$nrip" -gt 1 ] && echo yes)"

# 9. Unload left nothing behind: the workload finishes.
res=$("$vm" wait "$d" --timeout 150 2>&1)
check_match "the guest finishes its workload" "WORKLOAD DONE" "$res"

done_testing
