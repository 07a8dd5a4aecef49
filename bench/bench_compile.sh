# Compile time of a 5,000-line Emmett script (emmett alone, and emmett plus
# the VP verifier through vprobe -g), best of 5 runs.
: "${VPROBE_BUILD:=build}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
{
  echo 'aggr lat[1][1];'
  echo 'bag start[1024];'
  for i in $(seq 1 500); do
    cat <<EMT
int f$i(int a, int b) {
  int s;
  s = 0;
  for (a = 0; a < b; a++) {
    s += a * $i;
  }
  return s;
}
USEC:$((1000 + i)) {
  lat[f$i(1, 2), "k$i"] <- TSC - $i;
}
EMT
  done
} > "$tmp/big.emt"
lines=$(wc -l < "$tmp/big.emt")
best() { # command...: best wall time in ms of 5 runs
  local b=999999 t0 t1 ms
  for _ in 1 2 3 4 5; do
    t0=$(date +%s%N); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; return 1; }; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 )); [ $ms -lt $b ] && b=$ms
  done
  echo $b
}
e=$(best "$VPROBE_BUILD/bin/emmett" -o "$tmp/big.vp" "$tmp/big.emt")
v=$(best "$VPROBE_BUILD/bin/vprobe" --max-probes=1000 --max-code=1000000 -g "$tmp/big.emt")
echo "compile: $lines-line script: emmett ${e} ms, emmett+verify+image ${v} ms ($(( lines * 1000 / (v > 0 ? v : 1) )) lines/s)"

# Scaling: CPU time (best of 3) for generated scripts of 10k, 100k and 1M
# items of one kind; a linear compiler shows about 10x per step.  emmett
# alone for the front end, vprobe -g for the VP verifier and image too.
gen() { # KIND N
  awk -v k="$1" -v n="$2" 'BEGIN {
    if (k == "locals") { print "VMXLoad {"; for (i = 0; i < n; i++) print "  int v" i ";"; print "  v0 = 1; }" }
    if (k == "defines") { for (i = 0; i < n; i++) print "#define D" i " " i; print "VMXLoad { printf(\"%d\\n\", D0); }" }
    if (k == "blocks") { print "VMXLoad {"; for (i = 0; i < n; i++) print "  { int x; x = " i "; }"; print "}" }
    if (k == "funcs") { for (i = 0; i < n; i++) print "int f" i "(int a) { return a + " i "; }"; print "VMXLoad { f0(1); }" }
    if (k == "chain") { for (i = 0; i < n; i++) print "string c" i "() { return c" i + 1 "(); }";
                        print "string c" n "() { return \"x\"; }"; print "VMXLoad { printf(\"%s\\n\", c0()); }" }
  }'
}
cpu() { # best CPU ms of 3 runs of a command
  local b=999999 t
  for _ in 1 2 3; do
    t=$( { TIMEFORMAT='%3U %3S'; time "$@" >/dev/null 2>&1; } 2>&1 | tail -n1)
    t=$(awk -v t="$t" 'BEGIN { split(t, a, " "); printf "%d", (a[1] + a[2]) * 1000 }')
    [ "$t" -lt "$b" ] && b=$t
  done
  echo $b
}
for spec in "locals emmett" "defines emmett" "blocks emmett" "funcs vprobe" "chain vprobe"; do
  set -- $spec
  line="scale: $1 ($2):"
  for n in 10000 100000 1000000; do
    [ "$1" = chain ] && [ $n = 1000000 ] && continue # keeps the bench short
    gen "$1" $n > "$tmp/s.emt"
    if [ "$2" = emmett ]; then set -- "$1" "$2" "$VPROBE_BUILD/bin/emmett" -o "$tmp/s.vp" "$tmp/s.emt"
    else set -- "$1" "$2" "$VPROBE_BUILD/bin/vprobe" --max-probes=10000000 --max-code=2000000000 -g "$tmp/s.emt"; fi
    if ! err=$("${@:3}" 2>&1 >/dev/null); then # a limit, e.g. 16 MiB of preprocessed text
      line="$line $n: (${err##*error: })"
      set -- $spec
      continue
    fi
    line="$line $n: $(cpu "${@:3}") ms"
    set -- $spec
  done
  echo "$line"
done
