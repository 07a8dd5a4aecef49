# The test VM: tools/mkvm builds it from Debian packages, tools/vm boots it
# (1 and 2 vCPUs, two VMs at once), the guest dumps its kallsyms to the host,
# runs its workload and powers off.
. "$VPROBE_TOP/tests/lib.sh"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"

img=$VPROBE_TOP/build/vm-image
"$VPROBE_TOP/tools/mkvm" "$img" > "$TMP/mkvm.log" 2>&1
rc=$?
[ $rc = 77 ] && skip "$(tail -n1 "$TMP/mkvm.log")"
[ $rc = 0 ] || { cat "$TMP/mkvm.log"; fail "mkvm exit $rc"; done_testing; }
check "image has a kernel" yes "$([ -s "$img/vmlinuz" ] && echo yes)"
check "image has an initrd" yes "$([ -s "$img/initrd.img" ] && echo yes)"
# Cached: a second run does no work.
check_match "mkvm is idempotent" "up to date" "$("$VPROBE_TOP/tools/mkvm" "$img" 2>&1)"

vm=$VPROBE_TOP/tools/vm
a=$TMP/a b=$TMP/b
trap '"$vm" stop "$a"; "$vm" stop "$b"; rm -rf "$TMP"' EXIT

# A stays up after its workload; B powers off after its own.
out_a=$("$vm" start "$a" --image "$img" --workload ls --secs 3 --stay 2>&1)
check_match "start prints the endpoints" "^pid=[0-9]+ gdb=$a/gdb.sock qmp=$a/qmp.sock kallsyms=$a/kallsyms$" "$out_a"
# A second VM alongside the first, with 2 vCPUs.
out_b=$("$vm" start "$b" --image "$img" --smp 2 --workload ls --secs 5 --nokaslr 2>&1)
check_match "a second VM starts alongside" "^pid=[0-9]+ gdb=$b/gdb.sock" "$out_b"
check "sockets" yes "$([ -S "$a/gdb.sock" ] && [ -S "$a/qmp.sock" ] && [ -S "$b/gdb.sock" ] && echo yes)"
pid_a=${out_a#pid=}; pid_a=${pid_a%% *}
pid_b=${out_b#pid=}; pid_b=${pid_b%% *}
check "both run" yes "$(kill -0 "$pid_a" && kill -0 "$pid_b" && echo yes)"
check_match "one VM per directory" "already runs" "$("$vm" start "$a" --image "$img" 2>&1)"

for d in "$a" "$b"; do
  n=$(wc -l < "$d/kallsyms")
  check "kallsyms of $(basename "$d") is large" yes "$([ "$n" -gt 10000 ] && echo yes)"
  check_match "kallsyms has do_sys_openat2 at a kernel address" \
    "^ffffffff[0-9a-f]{8} [tT] do_sys_openat2$" "$(grep ' do_sys_openat2$' "$d/kallsyms")"
  check_match "kallsyms has the per-CPU current task" " (current_task|pcpu_hot)$" \
    "$(grep -E ' (current_task|pcpu_hot)$' "$d/kallsyms")"
  check_match "kallsyms ends with a full line" "^1$" "$(tail -c1 "$d/kallsyms" | od -An -c | grep -c '\\n')"
done
check_match "KASLR on by default" "^ffffffff[0-9a-f]{8} T _text$" "$(grep ' _text$' "$a/kallsyms" | grep -v '^ffffffff81000000')"
check "--nokaslr" "ffffffff81000000 T _text" "$(grep ' _text$' "$b/kallsyms")"
check_match "1 vCPU" "WORKLOAD START ls cpus=1 " "$(grep -a 'WORKLOAD START' "$a/console.log")"
check_match "2 vCPUs" "WORKLOAD START ls cpus=2 " "$(grep -a 'WORKLOAD START' "$b/console.log")"

check_match "wait sees the workload end" "^WORKLOAD DONE ls rounds=[1-9]" "$("$vm" wait "$a" --timeout 60)"
check_match "wait sees the second end" "^WORKLOAD DONE ls rounds=[1-9]" "$("$vm" wait "$b" --timeout 60)"
check_match "workload rounds on the console" "wl round 2" "$(cat "$a/console.log")"
# B powers off by itself (no --stay): QEMU exits.  A stays until stopped.
i=0
while kill -0 "$pid_b" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
check "QEMU exits after poweroff" gone "$(kill -0 "$pid_b" 2>/dev/null && echo running || echo gone)"
check "--stay keeps it up" running "$(kill -0 "$pid_a" 2>/dev/null && echo running || echo gone)"
"$vm" stop "$a"
check "stop ends it" gone "$(kill -0 "$pid_a" 2>/dev/null && echo running || echo gone)"
check "status after stop" "not running" "$("$vm" status "$a")"
done_testing
