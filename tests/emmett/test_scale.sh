#!/usr/bin/env bash
# The compiler stays linear (or n log n) in its input: for each shape of
# script (many locals, blocks, #defines, globals, functions, a call chain
# the VP type inference walks, string literals, adjacent literals, probes)
# the CPU time for 8N items must stay under 24 times the time for N (a
# quadratic pass gives 64).  N is chosen so that the small case takes about
# 50 ms or more; each figure is the best of 3 runs, so a busy machine does
# not fail it.
# emmett covers epp/lex/parse/check/gen, vprobe -g adds VP read, verify
# and image.
. "$VPROBE_TOP/tests/lib.sh"
need_built "$EMMETT" "$VPROBE"
# Under ASan/UBSan the figures are the sanitizer's (and take minutes): the
# suite runs this test on the plain build.
grep -aq __asan_init "$EMMETT" && skip "timings of a sanitizer build say nothing of the compiler"

# gen KIND N: a script with N items of KIND on standard output
gen() {
  awk -v k="$1" -v n="$2" 'BEGIN {
    if (k == "locals") { print "VMXLoad {"; for (i = 0; i < n; i++) print "  int v" i ";"; print "  v0 = 1; }" }
    if (k == "blocks") { print "VMXLoad {"; for (i = 0; i < n; i++) print "  { int x; x = " i "; }"; print "}" }
    if (k == "defines") { for (i = 0; i < n; i++) print "#define D" i " " i; print "VMXLoad { printf(\"%d\\n\", D0); }" }
    if (k == "globals") { for (i = 0; i < n; i++) print "int g" i ";"; print "VMXLoad { g0 = 1; }" }
    if (k == "funcs") { for (i = 0; i < n; i++) print "int f" i "(int a) { return a + " i "; }"; print "VMXLoad { f0(1); }" }
    if (k == "chain") { for (i = 0; i < n; i++) print "string c" i "() { return c" i + 1 "(); }";
                        print "string c" n "() { return \"x\"; }"; print "VMXLoad { printf(\"%s\\n\", c0()); }" }
    if (k == "strings") { print "VMXLoad {"; for (i = 0; i < n; i++) print "  printf(\"s" i "\\n\");"; print "}" }
    if (k == "concat") { printf "VMXLoad { printf("; for (i = 0; i < n; i++) printf " \"a%d\"", i; print "); }" }
    if (k == "probes") { for (i = 0; i < n; i++) print "USEC:" 1000 + i " { }" }
  }'
}

# cpu_ms FILE CMD...: best CPU time (user + system) of 3 runs, in ms
cpu_ms() {
  local f=$1 best=999999 t
  shift
  for _ in 1 2 3; do
    t=$( { TIMEFORMAT='%3U %3S'; time timeout 60 "$@" >/dev/null 2>"$TMP/err"; } 2>&1 | tail -n1)
    t=$(awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%d", (a[1] + a[2]) * 1000 }')
    [ "$t" -lt "$best" ] && best=$t
    [ "$t" -gt 20000 ] && break # quadratic already: no need to wait twice more
  done
  echo "$best"
}

# scale KIND N TOOL: time for N and 8N; the ratio must stay under 24 (n log n
# with cache effects measured 6 to 11; quadratic is 64)
scale() {
  local k=$1 n=$2 tool=$3 a b
  gen "$k" "$n" > "$TMP/small.emt"
  gen "$k" $((8 * n)) > "$TMP/big.emt"
  run() {
    if [ "$tool" = emmett ]; then cpu_ms x "$EMMETT" -o "$TMP/out.vp" "$1"
    else cpu_ms x "$VPROBE" --max-probes=10000000 --max-code=1000000000 -g "$1"; fi
  }
  a=$(run "$TMP/small.emt")
  b=$(run "$TMP/big.emt")
  echo "$k: $n in $a ms, $((8 * n)) in $b ms ($tool)"
  [ "$a" -ge 20 ] || { echo "  (small case under 20 ms: figure not meaningful)"; return; }
  [ $((b)) -lt $((24 * a)) ] || fail "$k: $((8 * n)) items take $b ms, $n take $a ms (ratio over 24)"
}

scale locals 40000 emmett
scale blocks 20000 emmett
scale defines 100000 emmett
scale concat 100000 emmett
scale globals 20000 vprobe
scale funcs 10000 vprobe
scale chain 10000 vprobe
scale strings 20000 vprobe
scale probes 20000 vprobe
done_testing
