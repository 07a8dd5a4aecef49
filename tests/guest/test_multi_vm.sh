# Two VMs in one run (-m a:VM -m b:VM, -s a:FILE -s b:FILE): one script and
# one set of aggregates, probes without a prefix in both VMs, a:/b: probes
# in one, vmname() telling them apart, each VM with its own symbols (their
# KASLR offsets differ), errors for unnamed or unknown VMs, and both VMs
# finishing their workloads after unload.
. "$VPROBE_TOP/tests/lib.sh"
need_vm_image
a=$TMP/a
b=$TMP/b
start_vm "$a" --workload ls --secs 30 --stay
start_vm "$b" --workload ls --secs 30 --stay
VMS="-m a:gdb=unix:$a/gdb.sock -m b:gdb=unix:$b/gdb.sock -s a:$a/kallsyms -s b:$b/kallsyms"

cat > "$TMP/two.emt" <<'EOS'
aggr opens[0][1];
aggr only[0][1];
aggr names[0][1];
GUEST:ENTER:do_sys_openat2 { opens[vmname()]++; }
b:GUEST:ENTER:do_sys_openat2 { only[vmname()]++; }
b:GUEST:ENTER:do_sys_open* { names[PROBENAME]++; }
a:VMMLoad { printf("loaded in %s\n", vmname()); }
VMMUnload { printf("unload %s\n", vmname()); }
b:VMMUnload {
  printa(opens, "opens %=s %count$=d\n");
  printa(only, "only %=s %count$=d\n");
  printa(names, "name %=s\n");
}
EOS
res=$("$VPROBE" $VMS -d 4 "$TMP/two.emt" 2>&1)
check_match "a:VMMLoad fires in a" "^loaded in a$" "$res"
check "a:VMMLoad fires in a only" "1" "$(printf '%s\n' "$res" | grep -c '^loaded in')"
check_match "VMMUnload fires in a" "^unload a$" "$res"
check_match "VMMUnload fires in b" "^unload b$" "$res"
check_match "opens counted in a" "^opens a [1-9][0-9]*$" "$res"
check_match "opens counted in b" "^opens b [1-9][0-9]*$" "$res"
check_match "b: probe fires in b" "^only b [1-9][0-9]*$" "$res"
check "b: probe never fires in a" "" "$(printf '%s\n' "$res" | grep '^only a')"
check_match "PROBENAME of a bound glob keeps its VM" "^name b:GUEST:ENTER:do_sys_openat2$" "$res"

# The example: both VMs in its tables, sampled in kernel and user mode.
res=$(VPROBE_LIB=$VPROBE_TOP/lib "$VPROBE" -m "a:$(cat "$a/qemu.pid")" -m "b:$(cat "$b/qemu.pid")" \
  -s "a:$a/kallsyms" -s "b:$b/kallsyms" "$VPROBE_TOP/examples/guest/two_vms.emt" -d 4 2>&1)
check_match "two_vms: system calls in a" "^ *a +(wl_[a-z]+|init) +[1-9]" "$res"
check_match "two_vms: system calls in b" "^ *b +(wl_[a-z]+|init) +[1-9]" "$res"
check_match "two_vms: samples by mode" "^ *[ab] +(kernel|user) +[1-9]" "$res"

# -a logs the aggregates once a second for all VMs, not once per VM.
res=$("$VPROBE" $VMS -a -d 2.5 -c 'aggr opens[0][1]; GUEST:ENTER:do_sys_openat2 { opens[vmname()]++; }' 2>&1)
n=$(printf '%s\n' "$res" | grep -c 'strKey0')
[ "$n" -ge 2 ] && [ "$n" -le 3 ] || fail "-a: $n tables in 2.5 s (want 2 or 3): $res"

# Errors: several VMs need names; a probe's VM must be one of them.
res=$("$VPROBE" -m "gdb=unix:$a/gdb.sock" -m "gdb=unix:$b/gdb.sock" -c 'VMMLoad { }' 2>&1)
check_match "two unnamed VMs are refused" "^vprobe: -m gdb=unix:.*each needs a name" "$res"
res=$("$VPROBE" $VMS -c 'c:VMMLoad { printf("x\n"); }' 2>&1)
check_match "a probe for an unknown VM is refused" "^vprobe: c:VMMLoad: no VM named c" "$res"
res=$("$VPROBE" -m "gdb=unix:$a/gdb.sock" -c 'a:VMMLoad { printf("x\n"); }' 2>&1)
check_match "a VM name needs -m NAME:VM" "^vprobe: a:VMMLoad: no VM named a" "$res"
res=$("$VPROBE" -m "a:gdb=unix:$a/gdb.sock" -m "a:gdb=unix:$b/gdb.sock" -c 'VMMLoad { }' 2>&1)
check_match "a name given twice is refused" "VM named a is given twice" "$res"
res=$("$EMMETT" -o "$TMP/x.vp" /dev/stdin <<< 'web:VMXLoad { }' 2>&1)
check_match "a VM prefix only goes with GUEST and VMM probes" "unknown probe 'web:VMXLoad'" "$res"

check_match "VM a finishes its workload" "WORKLOAD DONE" "$("$VPROBE_TOP/tools/vm" wait "$a" --timeout 150 2>&1)"
check_match "VM b finishes its workload" "WORKLOAD DONE" "$("$VPROBE_TOP/tools/vm" wait "$b" --timeout 150 2>&1)"
done_testing
