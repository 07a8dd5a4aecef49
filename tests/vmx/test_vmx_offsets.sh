# VMX:OFFSET at every offset of a real function: work() of vt_offsets (a
# loop, a jump-table switch, calls, RIP-relative and TLS data), probed one
# offset per run in a 4-thread launch.  Each offset is either refused with
# one line naming the instruction it falls in (and it is not an
# instruction boundary by objdump's reading), or accepted (and it is one),
# the target's per-thread checksums equal and its sum the unprobed run's;
# where the count is knowable (the first straight-line run of the
# function, no branch lands in it) the probe fires once per call.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_offsets
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"
command -v objdump >/dev/null || skip "no objdump"

ref=$("$T" 4 1500) || fail "the target alone: $ref"
calls=${ref##*calls=}
# work's extent, instruction starts, and where straight-line counting holds
read -r start size < <(nm -S "$T" | awk '$4 == "work" { print $1, $2 }')
[ -n "${size:-}" ] || { fail "no work in nm -S $T"; done_testing; }
start=$((16#$start)); size=$((16#$size))
objdump -d --no-show-raw-insn "$T" | awk '/^[0-9a-f]+ <work>:$/ { on = 1; next } on && /^$/ { exit } on' \
  > "$TMP/dis"
sed -E 's/^ *([0-9a-f]+):.*/\1/' "$TMP/dis" | while read -r h; do echo $((16#$h - start)); done \
  > "$TMP/bounds"
# branch targets inside work, and the offset of the first branch
targets=" $(grep -oE '[0-9a-f]+ <work\+0x[0-9a-f]+>' "$TMP/dis" | sed -E 's/.*\+0x([0-9a-f]+)>/\1/' |
  while read -r h; do echo $((16#$h)); done | tr '\n' ' ')"
fb=$(grep -E "$(printf '\t')(j|call|ret|loop)" "$TMP/dis" | head -n1 | sed -E 's/^ *([0-9a-f]+):.*/\1/')
first_branch=$((16#${fb:-0} - start))
lowest_target=$(printf '%s\n' $targets | sort -n | awk '$1 > 0 { print; exit }')
straight=$(( first_branch < ${lowest_target:-999999} ? first_branch : ${lowest_target:-999999} - 1 ))
is_bound() { grep -qx "$1" "$TMP/bounds"; }

nacc=0 nref=0 ncount=0
t0=$(date +%s)
for ((off = 0; off <= size; off++)); do
  hex=$(printf '0x%x' $off)
  out=$("$VPROBE" -c "aggr c[0][1];
VMX:OFFSET:work:$hex { c[\"n\"]++; }
VMXUnload { printa(c, \"%=s %count\$=d\n\"); }" -- "$T" 4 1500 2>"$TMP/err"); rc=$?
  err=$(cat "$TMP/err")
  if [ $off -lt $size ] && is_bound $off; then
    [ $rc = 0 ] || { fail "+$hex is a boundary but: rc $rc: $err"; continue; }
    check "+$hex: target's sum" "$ref" "$(printf '%s\n' "$out" | grep '^sum=')"
    # a point the agent cannot jump from is a trap site, said on one line
    err=$(printf '%s\n' "$err" | grep -v ": placed as a trap (slower)$")
    [ -z "$err" ] || fail "+$hex: error output: $err"
    if [ $off -le $straight ]; then
      check "+$hex: fires once per call" "n $calls" "$(printf '%s\n' "$out" | grep '^n ')"
      ncount=$((ncount + 1))
    fi
    nacc=$((nacc + 1))
  else
    check "+$hex: refused" 1 "$rc"
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "+$hex: not one line: $err"
    if [ $off -lt $size ]; then
      check_match "+$hex: names the instruction" \
        "^vprobe: VMX:OFFSET:work:$hex: inside the instruction at work\+0x[0-9a-f]+ \(.+, [0-9]+ bytes\); nearest boundaries \+0x[0-9a-f]+ and \+0x[0-9a-f]+\$" "$err"
    else
      check_match "+$hex: past the end" "^vprobe: VMX:OFFSET:work:$hex: offset $hex is past the end of work" "$err"
    fi
    [ -z "$out" ] || fail "+$hex: the target ran: $out"
    nref=$((nref + 1))
  fi
done
echo "work: $size bytes, $nacc offsets accepted ($ncount with exact counts), $nref refused, $(( $(date +%s) - t0 )) s"
[ $nacc -gt 20 ] || fail "only $nacc boundaries"
done_testing
