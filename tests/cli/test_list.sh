# -p GLOB: one matching rule for every listing, fixed names included.  A
# glob matches a listed name whole, or, without a DOMAIN: prefix, its
# location (libc.malloc) or function (malloc).  A glob that matches
# nothing prints nothing and exits 0, as an empty listing.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_work
need_built "$VPROBE" "$T"

# a process target: dynamic names, with and without the domain prefix
for g in 'VMX:ENTER:vt_work.work_t*' 'vt_work.work_t*' 'work_t*'; do
  check "-p $g" "VMX:ENTER:vt_work.work_tick" "$("$VPROBE" -p "$g" -- "$T" 1)"
done
out=$("$VPROBE" -p 'libc.mall*' -- "$T" 1)
check_match "-p libc.mall* lists malloc" '^VMX:ENTER:libc\.malloc$' "$out"
check "-p mall* is -p libc.mall* here" "$out" "$("$VPROBE" -p 'mall*' -- "$T" 1 | grep '^VMX:ENTER:libc\.')"
check "-p work_tick* has no fixed names" "" "$("$VPROBE" -p 'work_tick*' -- "$T" 1 | grep -v ':')"
# a prefix is the domain's: another domain's prefix selects nothing
check "-p GUEST:ENTER:work_t* on a process" "" "$("$VPROBE" -p 'GUEST:ENTER:work_t*' -- "$T" 1)"

# fixed names go through the same rule
check "-p VMX*Hz" "VMX1Hz
VMX10Hz" "$("$VPROBE" -p 'VMX*Hz' -- "$T" 1)"
check "-p USEC*" "USEC:N" "$("$VPROBE" -p 'USEC*' -- "$T" 1)"
check "-p VMX:PROFILE:*" "VMX:PROFILE:Nmsec" "$("$VPROBE" -p 'VMX:PROFILE:*' -- "$T" 1)"
all=$("$VPROBE" -p -- "$T" 1)
check "-p lists fixed names first" "VMXLoad VMXUnload VMX1Hz VMX10Hz USEC:N VMX:PROFILE:Nmsec" \
  "$(printf '%s\n' "$all" | head -6 | tr '\n' ' ' | sed 's/ $//')"
check_match "-p lists functions" '^VMX:ENTER:vt_work\.work_tick$' "$all"

# no match: nothing, exit 0
out=$("$VPROBE" -p 'no_such_probe_zz*' -- "$T" 1); rc=$?
check "no match prints nothing" "" "$out"
check "no match exits 0" 0 "$rc"

# no target: the target-free probes, filtered the same way
check "-p without a target" "VMXLoad
VMXUnload
VMX1Hz
VMX10Hz
USEC:N" "$("$VPROBE" -p)"
check "-p VMX*Hz without a target" "VMX1Hz
VMX10Hz" "$("$VPROBE" -p 'VMX*Hz')"
check "-p USEC* without a target" "USEC:N" "$("$VPROBE" -p 'USEC*')"
out=$("$VPROBE" -p 'no_such_probe_zz*'); rc=$?
check "no match without a target" "0:" "$rc:$out"

done_testing
