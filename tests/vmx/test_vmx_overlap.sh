# Probe sites over each other (issue 17): xb_mix's entry jump displaces 7
# bytes, and +2 is an instruction boundary inside them.  ENTER and
# OFFSET:0x2 in one script (the entry becomes a trap: another point is a
# target), and in two vprobes attached one after the other (the second
# load sees the first's live site: a point inside a live jump is refused;
# a jump over a live site becomes a trap).  The target checks every result.
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_xbranch
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"

N=20000
want=$("$T" $N)
check_match "unprobed run" '^checksum [0-9a-f]+ errors 0$' "$want"

# One script, launch mode.
out=$(timeout 60 "$VPROBE" --cpu-limit 0 -c 'aggr c[0][1];
  VMX:ENTER:xb_mix { c["e"]++; } VMX:OFFSET:xb_mix:0x2 { c["o"]++; }
  VMXUnload { printa(c, "%=s %count$=d\n"); }' -- "$T" $N 2>"$TMP/err"); rc=$?
check "one script: vprobe exit status" 0 "$rc"
check "one script: the target's output" "$want" "$(printf '%s\n' "$out" | grep checksum)"
check "one script: ENTER fired" "e $N" "$(printf '%s\n' "$out" | grep '^e ')"
check "one script: OFFSET fired" "o $N" "$(printf '%s\n' "$out" | grep '^o ')"
check_match "one script: the entry is a trap" 'ENTER:vt_xbranch.xb_mix: placed as a trap' \
  "$(cat "$TMP/err")"

[ "$(id -u)" = 0 ] || { echo "# not root: the two-vprobe cases skipped"; done_testing; }

# bytes PID ADDR: 16 bytes of code at ADDR in process PID.
bytes() { dd if=/proc/$1/mem bs=1 skip=$(($2)) count=16 2>/dev/null | od -An -tx1 | tr -d ' \n'; }

# two FIRST SECOND: vprobe A places FIRST; vprobe B places SECOND while
# A's site is live and stays after A is gone; the target must finish with
# every result right and xb_mix's bytes as they were.  Sets aout bout berr.
two() {
  local what=$1 first=$2 second=$3 arc brc trc addr before
  "$T" 0 4 >"$TMP/tout" & local tpid=$!
  for _ in $(seq 100); do grep -q ready "$TMP/tout" && break; sleep 0.05; done
  addr=$(awk '/^ready/ {print $2}' "$TMP/tout")
  before=$(bytes $tpid "$addr")
  timeout 60 "$VPROBE" --cpu-limit 0 -x $tpid -d 1 -c "VMXLoad { printf(\"loaded\\n\"); }
    aggr c[0][1]; $first { c[\"a\"]++; } VMXUnload { printa(c, \"%=s %count\$=d\\n\"); }" \
    >"$TMP/aout" 2>"$TMP/aerr" & local apid=$!
  for _ in $(seq 200); do grep -q loaded "$TMP/aout" && break; sleep 0.05; done
  check "$what: first vprobe loaded" "loaded" "$(head -1 "$TMP/aout")"
  timeout 60 "$VPROBE" --cpu-limit 0 -x $tpid -d 2 -c "aggr c[0][1];
    $second { c[\"b\"]++; } VMXUnload { printa(c, \"%=s %count\$=d\\n\"); }" \
    >"$TMP/bout" 2>"$TMP/berr"; brc=$?
  wait $apid; arc=$?
  check "$what: code bytes after both" "$before" "$(bytes $tpid "$addr")"
  wait $tpid; trc=$?
  check "$what: first vprobe exit status" 0 "$arc"
  check "$what: second vprobe exit status" 0 "$brc"
  check "$what: target exit status" 0 "$trc"
  check_match "$what: the target's results" '^calls [1-9][0-9]* errors 0$' "$(cat "$TMP/tout")"
  check_match "$what: the first probe fired" '^a [1-9][0-9]*$' "$(cat "$TMP/aout")"
  aout=$(cat "$TMP/aout") bout=$(cat "$TMP/bout") berr=$(cat "$TMP/berr")
}

# A's entry jump is live: B's point at +2 lies inside it, refused.
two "entry, then +2" 'VMX:ENTER:xb_mix' 'VMX:OFFSET:xb_mix:0x2'
check_match "entry, then +2: refused" 'OFFSET:vt_xbranch.xb_mix:0x2: could not be placed' "$berr"
check "entry, then +2: never fired" "" "$bout"
# A's jump at +2 is live: B's entry jump would cover it, a trap instead.
two "+2, then entry" 'VMX:OFFSET:xb_mix:0x2' 'VMX:ENTER:xb_mix'
check_match "+2, then entry: a trap" 'ENTER:vt_xbranch.xb_mix: placed as a trap' "$berr"
check_match "+2, then entry: fired" '^b [1-9][0-9]*$' "$bout"
done_testing
