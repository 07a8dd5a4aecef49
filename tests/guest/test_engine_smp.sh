# The GUEST and VMM engine on a VM with 2 vCPUs running the disk workload:
# samples come from both vCPUs (VCPUID 0 and 1, NUMVCPUS 2), breakpoint
# probes fire on whichever vCPU hits them and read that vCPU's state, the
# disk static probes (QEMU trace events through QMP, -m PID) fire with
# plausible arguments, and unload lets the workload finish.
. "$VPROBE_TOP/tests/lib.sh"
need_vm_image
vm=$VPROBE_TOP/tools/vm
d=$TMP/vm
start_vm "$d" --smp 2 --workload disk --secs 30 --stay
M="-m gdb=unix:$d/gdb.sock -s $d/kallsyms"

cat > "$TMP/cpus.emt" <<'EOF'
aggr cpus[1][0];
aggr n[0][1];
USEC:5000 { cpus[VCPUID]++; n["vcpus"] <- NUMVCPUS; }
VMMUnload { printa(cpus, "vcpu %=d\n"); printa(n, "%=s %max$=d\n"); }
EOF
res=$("$VPROBE" $M -d 3 "$TMP/cpus.emt" 2>&1)
check_match "samples from vCPU 0" "^vcpu 0$" "$res"
check_match "samples from vCPU 1" "^vcpu 1$" "$res"
check_match "NUMVCPUS is 2" "^vcpus 2$" "$res"

# Breakpoints on both vCPUs: the process names come from the vCPU that hit.
cat > "$TMP/opens.emt" <<'EOF'
aggr opens[1][1];
GUEST:ENTER:do_sys_openat2 { opens[VCPUID, curprocname()]++; }
VMMUnload { printa(opens, "open %=d %=s\n"); }
EOF
res=$("$VPROBE" $M -d 4 "$TMP/opens.emt" 2>&1)
check_match "opens by process name on 2 vCPUs" "^open [01] wl_(ls|cat|dd)" "$res"

# Disk requests: reads and writes, each with a sector count (ARG6).
pid=$VM_PID
cat > "$TMP/disk.emt" <<'EOF'
aggr io[0][1];
Disk_IOStart { io[ARG3 ? "read" : "write"]++; if (ARG6 > 0) { io["sized"]++; } }
Disk_IOFinish { io["done"]++; }
VMMUnload { printa(io, "%=s %count$=d\n"); }
EOF
res=$("$VPROBE" -m "$pid" -s "$d/kallsyms" -d 3 "$TMP/disk.emt" 2>&1)
check_match "Disk_IOStart sees reads" "^read [1-9]" "$res"
check_match "Disk_IOStart sees writes" "^write [1-9]" "$res"
check_match "Disk_IOStart has sector counts" "^sized [1-9]" "$res"
check_match "Disk_IOFinish fires" "^done [1-9]" "$res"

res=$("$vm" wait "$d" --timeout 120 2>&1)
check_match "the guest finishes its workload" "WORKLOAD DONE" "$res"

done_testing
