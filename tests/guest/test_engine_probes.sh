# The rest of the GUEST and VMM probe points and built-ins, end to end
# through vprobe: GUEST:OFFSET (checked against the decoded code), GUEST:0xADDR,
# globs with PROBENAME, GUEST_READ, VMM1Hz and VMM10Hz rates, the Table 2-1
# registers in the kernel, a function's arguments, In and Out from QEMU's
# trace events, and Guest_TripleFault from a VM that ends by triple fault.
. "$VPROBE_TOP/tests/lib.sh"
need_vm_image

# B ends its short workload with a triple fault (--reset; QEMU runs with
# -no-reboot, so the VM is gone after it); a vprobe waits for it meanwhile.
start_vm "$TMP/b" --workload ls --secs 8 --reset
"$VPROBE" -m "gdb=unix:$TMP/b/gdb.sock,qmp=$TMP/b/qmp.sock" -d 120 -c '
Guest_TripleFault { printf("triple fault, vcpu %d\n", VCPUID); }
VMMUnload { printf("unloaded\n"); }' > "$TMP/triple.out" 2>&1 &
triple=$!

start_vm "$TMP/a" --workload ls --secs 60 --stay
d=$TMP/a
M="-m gdb=unix:$d/gdb.sock,qmp=$d/qmp.sock -s $d/kallsyms"
addr=$(sed -n 's/^\([0-9a-f]*\) [tT] do_sys_openat2$/\1/p' "$d/kallsyms")

# 1. The same function four ways.  Every traceable kernel function starts
#    with a 5-byte NOP, so +0x5 is its second instruction.
cat > "$TMP/sites.emt" <<EOF
aggr c[0][1];
GUEST:ENTER:do_sys_openat2 { c["enter"]++; }
GUEST:0x$addr { c["addr"]++; }
GUEST:OFFSET:do_sys_openat2:0x5 {
  c["offset"]++;
  if (RIP == sym2addr("do_sys_openat2") + 5) { c["offset at +5"]++; }
}
GUEST:ENTER:do_sys_open* { c[PROBENAME]++; }
GUEST:OFFSET:do_sys_open*:0x5 { c[PROBENAME]++; }
GUEST_READ:jiffies { c["jiffies read"]++; }
VMMUnload { printa(c, "%=s %count\$=d\n"); }
EOF
res=$("$VPROBE" $M -d 3 "$TMP/sites.emt" 2>&1)
num() { printf '%s\n' "$res" | sed -n "s/^$1 \([0-9]*\)\$/\1/p"; }
en=$(num enter)
check "GUEST:ENTER fires" yes "$([ "${en:-0}" -gt 0 ] && echo yes)"
check "GUEST:0xADDR fires with ENTER at the same address" "$en" "$(num addr)"
off=$(num offset)
check "GUEST:OFFSET +5 fires once a call" yes \
  "$([ "${off:-0}" -ge $((${en:-0} - 1)) ] && [ "${off:-0}" -le "${en:-0}" ] && echo yes)"
check "GUEST:OFFSET sees RIP at the function +5" "$off" "$(num 'offset at +5')"
check "a glob names the function in PROBENAME" "$en" "$(num GUEST:ENTER:do_sys_openat2)"
check "an OFFSET glob names function and offset" "$off" "$(num GUEST:OFFSET:do_sys_openat2:0x5)"
check_match "GUEST_READ:jiffies fires" "^jiffies read [1-9]" "$res"
[ $nfail = 0 ] || echo "$res"

# 2. GUEST:OFFSET must name an instruction of the function.
res=$("$VPROBE" $M -d 1 -c 'GUEST:OFFSET:do_sys_openat2:0x3 { }' 2>&1)
check "OFFSET inside an instruction is refused" \
  "vprobe: GUEST:OFFSET:do_sys_openat2: +0x3 is inside the instruction at do_sys_openat2+0x0" "$res"
res=$("$VPROBE" $M -d 1 -c 'GUEST:OFFSET:do_sys_openat2:0x100000 { }' 2>&1)
check_match "OFFSET past the function is refused" "\+0x100000 is past the end of do_sys_openat2$" "$res"

# 3. VMM1Hz and VMM10Hz fire at their rates (3 s: 3 and 30).
res=$("$VPROBE" $M -d 3 -c 'aggr c[0][1];
VMM1Hz { c["1hz"]++; } VMM10Hz { c["10hz"]++; }
VMMUnload { printa(c, "%=s %count$=d\n"); }' 2>&1)
h1=$(num 1hz) h10=$(num 10hz)
check "VMM1Hz for 3 s fires 2 to 4 times" yes "$([ "${h1:-0}" -ge 2 ] && [ "${h1:-0}" -le 4 ] && echo yes)"
check "VMM10Hz for 3 s fires 24 to 36 times" yes \
  "$([ "${h10:-0}" -ge 24 ] && [ "${h10:-0}" -le 36 ] && echo yes)"

# 4. Registers in a kernel function: kernel CS and SS, paging and long
#    mode on, the per-CPU GS base and stack in the kernel half; the first
#    argument registers hold the file name the process opens.
cat > "$TMP/regs.emt" <<'EOF'
int n;
string f;
GUEST:ENTER:do_sys_openat2 {
  if (n < 3) {
    printf("regs cs=%#x ss=%#x cr0=%#x cr3=%#x cr4=%#x efer=%#x rflags=%#x\n",
           CS, SS, CR0, CR3, CR4, EFER, RFLAGS);
    printf("kernel gsbase=%d rsp=%d rip=%d\n", GSBASE >= 0xffff800000000000,
           RSP >= 0xffff800000000000, RIP == sym2addr("do_sys_openat2"));
    getgueststr(f, ARG1);
    printf("file %s\n", f);
    n++;
  }
}
EOF
res=$("$VPROBE" $M -d 2 "$TMP/regs.emt" 2>&1)
line=$(printf '%s\n' "$res" | grep '^regs ' | head -1)
check_match "kernel CS and SS" "cs=0x10 ss=0x18 " "$line"
check_match "CR0 has PG and PE" "cr0=0x8[0-9a-f]{6}[13579bdf] " "$line"
check_match "EFER has LMA, LME, SCE" "efer=0x[0-9a-f]*[57df][0-9a-f][13579bdf] " "$line"
check_match "CR4 has PAE" "cr4=0x[0-9a-f]*[2367abef][0-9a-f] " "$line"
check_match "RFLAGS bit 1 is set" "rflags=0x[0-9a-f]*[2367abef]$" "$line"
check "GS base, RSP and RIP" "kernel gsbase=1 rsp=1 rip=1" "$(printf '%s\n' "$res" | grep '^kernel ' | head -1)"
check_match "ARG1 is the file name" "^file /" "$res"

# 5. Port I/O from QEMU's trace events: the serial console's data port.
res=$("$VPROBE" $M -d 3 -c 'aggr c[0][1];
Out { if (ARG0 == 0x3f8 && ARG1 == 1) { c["out 0x3f8 byte"]++; } }
In { if (ARG0 >= 0x3f8 && ARG0 <= 0x3ff) { c["in serial"]++; } }
VMMUnload { printa(c, "%=s %count$=d\n"); }' 2>&1)
check_match "Out on the serial data port, a byte at a time" "^out 0x3f8 byte [1-9]" "$res"
check_match "In from the serial registers" "^in serial [1-9]" "$res"

# 6. The triple fault ended B, and its probe fired before vprobe unloaded.
wait $triple
res=$(cat "$TMP/triple.out")
check_match "Guest_TripleFault fires" "^triple fault, vcpu 0$" "$res"
check_match "and the run ends with the VM" "^unloaded$" "$res"

done_testing
