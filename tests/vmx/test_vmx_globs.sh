# Probes all over libc, in a multi-threaded target that lives in libc
# (getpid, malloc/free, string functions, snprintf, signals to itself) and
# checks every result: the target never dies, its checksum is the
# unprobed run's, vprobe exits 0 (or 1 with one line if the controller
# refuses what the glob matched).  Launch mode (patched before main) and
# attach mode (patched while the threads run through libc).
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_glibc
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

want=$("$T" 4 20000 | grep checksum)
check_match "unprobed run" '^checksum [0-9a-f]+ errors 0 signals 80$' "$want"

# One run: the target's line must be the unprobed one; vprobe exits 0, or
# 1 with exactly one line saying what it refuses.
run() {
  local what=$1 probes=$2 out rc lines
  out=$(timeout 120 "$VPROBE" --cpu-limit 0 -c "aggr c[0][1]; $probes
        VMXUnload { printa(c, \"%=s %count\$=d\\n\"); }" -- "$T" 4 20000 2>"$TMP/err"); rc=$?
  grep -Ev 'placed as a trap|placed as traps' "$TMP/err" >"$TMP/err2"
  if [ $rc = 1 ]; then
    lines=$(wc -l <"$TMP/err2")
    check "$what: refused with one line" 1 "$lines"
    return
  fi
  check "$what: vprobe exit status" 0 "$rc"
  check "$what: the target's checksum" "$want" "$(printf '%s\n' "$out" | grep checksum)"
  check_match "$what: probes fired" '^n [1-9][0-9]*$' "$out"
  [ -s "$TMP/err2" ] && fail "$what: stderr: $(head -3 "$TMP/err2")"
}
run "getpid and another" 'VMX:ENTER:libc.getpid { c["n"]++; } VMX:ENTER:libc.malloc { c["m"]++; }'
run "ENTER:libc.*" 'VMX:ENTER:libc.* { c["n"]++; }'
run "ENTER:libc.__*" 'VMX:ENTER:libc.__* { c["n"]++; }'
run "EXIT:libc.*" 'VMX:EXIT:libc.* { c["n"]++; }'
run "ENTER:*" 'VMX:ENTER:* { c["n"]++; }'
# a probe doing real work in the hooks: strings, the clock, the CPU number
run "ENTER:libc.* with built-ins" \
  'VMX:ENTER:libc.* { string s; sprintf(s, "%d %d", PCPUID, TSC); c["n"]++; }'

# A trap site in a libc function the interpreter itself used (PCPUID:
# sched_getcpu): its hook ran inside the SIGTRAP handler, reached the same
# int3 with SIGTRAP blocked, and the kernel killed the target.  The site:
# sched_getcpu's `pop; ret` (the jump would run past the ret).
LIBC=$(ldd "$T" | awk '/libc\.so/ {print $3}')
off=$(objdump -d --no-show-raw-insn --disassemble=sched_getcpu "$LIBC" 2>/dev/null |
  awk '/<sched_getcpu(@.*)?>:$/ {base = $1}
       /^ *[0-9a-f]+:/ { a = substr($1, 1, length($1) - 1)
         if (prev ~ /pop/ && $2 == "ret" && !done) { print base, pa; done = 1 }
         prev = $2; pa = a }' | { read -r b a && printf '0x%x\n' $((0x$a - 0x$b)); })
if [ -n "$off" ]; then
  run "trap site in sched_getcpu, probe reading PCPUID" \
    "int k; VMX:OFFSET:libc.sched_getcpu:$off { c[\"n\"]++; k = PCPUID; }"
else
  echo "# no pop; ret in sched_getcpu: trap-site check skipped"
fi

# A fork child does not keep the shared region (nor write access to it).
out=$(timeout 60 "$VPROBE" --cpu-limit 0 -c 'aggr c[0][1]; VMX:ENTER:libc.getpid { c["n"]++; }' \
      -- "$T" 2 1000 fork 2>"$TMP/err"); rc=$?
check "fork: exit status" 0 "$rc"
check_match "fork: the child maps no region" '^child-region no$' "$out"

# Attach: the threads are inside libc while int3s go in and come out.
big=$("$T" 4 4000000 | grep checksum)
"$T" 4 4000000 >"$TMP/out" 2>&1 &
tpid=$!
for _ in $(seq 50); do grep -q ready "$TMP/out" && break; sleep 0.05; done
timeout 60 "$VPROBE" --cpu-limit 0 -x $tpid -d 0.5 -c 'aggr c[0][1];
  VMX:ENTER:libc.* { c["n"]++; } VMX:EXIT:libc.* { c["x"]++; }' >"$TMP/aout" 2>"$TMP/aerr"
rc=$?
wait $tpid; trc=$?
check "attach: vprobe exit status" 0 "$rc"
check "attach: target exit status" 0 "$trc"
check "attach: the target's checksum" "$big" "$(grep checksum "$TMP/out")"
done_testing
