#!/usr/bin/env bash
# Builds the libFuzzer harnesses (tools/build-fuzz) and runs each one for a
# bounded time on a copy of its seed corpus (tests/fuzz/corpus/NAME/, left
# untouched), with tests/fuzz/NAME.dict as its dictionary.  Fails if a
# harness does not build or finds a crash, leak, timeout or memory blow-up;
# the reproducer is kept in build-fuzz/crashes/.
#   FUZZ_TIME=SECONDS per harness (default 20)
. "${VPROBE_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
cd "$VPROBE_TOP" || exit 1
FUZZ_TIME=${FUZZ_TIME:-20}

# The harnesses are always built with ASan/UBSan: one pass is enough.
case $(basename "$VPROBE_BUILD") in
  build-san) skip "fuzzers are sanitized builds already; they run in the plain pass" ;;
esac
command -v clang >/dev/null || skip "clang is not installed"

tools/build-fuzz >"$TMP/build.log" 2>&1
rc=$?
if [ $rc = 2 ]; then
  skip "$(tail -n1 "$TMP/build.log")"
elif [ $rc != 0 ]; then
  grep 'build-fuzz:' "$TMP/build.log"
  grep -m5 'error:' "$TMP/build.log"
  fail "tools/build-fuzz: some harnesses did not build"
fi

mkdir -p build-fuzz/crashes
for src in tests/fuzz/fuzz_*.c; do
  h=$(basename "${src%.c}") name=${h#fuzz_}
  [ -x "build-fuzz/$h" ] || continue
  mkdir -p "$TMP/corpus/$name" "$TMP/art/$name"
  cp tests/fuzz/corpus/"$name"/* "$TMP/corpus/$name/" 2>/dev/null
  log=$TMP/$h.log dict=()
  [ -f "tests/fuzz/$name.dict" ] && dict=(-dict="tests/fuzz/$name.dict")
  "build-fuzz/$h" -max_total_time="$FUZZ_TIME" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$TMP/art/$name/" "${dict[@]}" \
    "$TMP/corpus/$name" >"$log" 2>&1
  frc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  if [ $frc = 0 ]; then
    echo "$h: ${runs:-?} runs, no crash"
    continue
  fi
  fail "$h: exit $frc"
  for a in "$TMP/art/$name"/*; do
    [ -f "$a" ] || continue
    cp "$a" build-fuzz/crashes/
    echo "  reproducer: build-fuzz/crashes/$(basename "$a")  (run: build-fuzz/$h build-fuzz/crashes/$(basename "$a"))"
  done
  grep -m1 -A25 -E '^==[0-9]+==|runtime error|ERROR: libFuzzer|deadly signal' "$log" | sed 's/^/  | /'
done
done_testing
