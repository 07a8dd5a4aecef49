#!/usr/bin/env bash
# Hand-written VP through the vprobe binary: the reference's examples with
# target-free probes, exceptions on the error stream, verifier errors.
. "${VPROBE_TOP:-$(dirname "$0")/../..}/tests/lib.sh"
need_built "$VPROBE"

out=$(printf '%s\n' '(vprobe VMXLoad (cond ((== 1 0) (printf "A"))' \
  '((== 1 1) (printf "B"))' '(1 (printf "C"))))' | timeout 20 "$VPROBE" -d 1 -i 2>&1)
check "cond prints B" "B" "$out"

out=$(echo '(vprobe VMXLoad (logint (do (+ 1 1) (* 3 3))))' | timeout 20 "$VPROBE" -d 1 -i 2>&1)
check "do/logint prints 9" "9" "$out"

cat > "$TMP/e.vp" <<'VP'
(definteger n 5)
(vprobe VMXLoad (logint (load 8 0)))
(vprobe VMXLoad (while 1 (setint n (+ n 1))))
(vprobe VMXLoad (printf "still %d\n" (> n 5)))
VP
err=$(timeout 20 "$VPROBE" -d 1 "$TMP/e.vp" 2>&1 >/dev/null)
out=$(timeout 20 "$VPROBE" -d 1 "$TMP/e.vp" 2>/dev/null)
check_match "MemAccessError line" "vprobe: VMXLoad: MemAccessError: cannot read 8 bytes at 0x0" "$err"
check_match "budget line" "vprobe: VMXLoad: BudgetExceededError: budget of 20000 exceeded \(runaway loop\?\)" "$err"
check "next probe still runs" "still 1" "$out"

printf '(vprobe VMXLoad\n  (frob 1))\n' > "$TMP/bad.vp"
err=$(timeout 20 "$VPROBE" "$TMP/bad.vp" 2>&1); rc=$?
check "verifier error exit" 1 "$rc"
check_match "verifier error line:col" "2:4: error: unknown function 'frob'" "$err"

done_testing
