# The Linux guest preload (lib/linux-guest.emt) and the guest examples
# (examples/guest/*.emt) against the test VM: one boot, several short runs.
. "$VPROBE_TOP/tests/lib.sh"
need_built "$VPROBE"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

# The examples compile with the preload in front (no VM needed).
for f in "$VPROBE_TOP"/examples/guest/*.emt; do
  cat "$VPROBE_TOP/lib/linux-guest.emt" "$f" > "$TMP/ex.emt"
  "$EMMETT" -o "$TMP/ex.vp" "$TMP/ex.emt" > "$TMP/emmett.out" 2>&1 ||
    fail "$(basename "$f") does not compile: $(head -3 "$TMP/emmett.out")"
done

need_vm_image
vm=$TMP/vm
start_vm "$vm" --workload forever
pid=$VM_PID
export VPROBE_LIB=$VPROBE_TOP/lib
run() { timeout 120 "$VPROBE" -m "$pid" -s "$vm/kallsyms" "$@" 2>&1; }

# curprocname()/curpid() from the preload, on a kernel function the
# workload's processes call.
out=$(run -c 'aggr c[0][1];
GUEST:ENTER:do_sys_openat2 { string n; n = curprocname(); c[n]++; printf("P %s %d\n", n, curpid()); }
VMMUnload { printa(c); }' -d 6)
check_match "curprocname names a workload process" "^P wl_(ls|cat|echo|dd|sleep) [0-9]+$" "$out"
check_match "curpid of the workload is not init's" "^P wl_[a-z]+ ([2-9]|[1-9][0-9]+)$" "$out"
check_match "every fire has a name" "^P [^ ]+ [0-9]+$" "$(printf '%s\n' "$out" | grep '^P ' | head -1)"
check "no fire without a name" "" "$(printf '%s\n' "$out" | grep -E '^P +[0-9]*$')"
check_match "aggregate keyed by name" "wl_[a-z]+ +[0-9]+ " "$out"

out=$(run "$VPROBE_TOP/examples/guest/strace.emt" -d 6)
check_match "strace: system calls by process" "^(wl_[a-z]+|init) +[0-9]+ +[0-9]+ [a-z_0-9]+$" "$out"
check_match "strace: summary at unload" "strKey0 +strKey1 +count" "$out"

out=$(run "$VPROBE_TOP/examples/guest/profiler.emt" -d 3)
check_match "profiler: symbolized guest stacks" "[a-z_]+\+0x[0-9a-f]+;[a-z_]" "$out"
check_match "profiler: counts" "[0-9]+ +[0-9.]+%$" "$out"

out=$(run "$VPROBE_TOP/examples/guest/top.emt" -d 3)
check_match "top: interrupts by process, each second" "^ +0x[0-9a-f]+ [a-z]" "$out"
check_match "top: table header" "intKey0 strKey0" "$out"

# The guest went on through all of it.
check "VM still runs" yes "$(kill -0 "$pid" && echo yes)"
done_testing
