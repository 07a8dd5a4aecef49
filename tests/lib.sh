# Shared helpers for shell tests.  Source it: . "$VPROBE_TOP/tests/lib.sh"
set -u
: "${VPROBE_TOP:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${VPROBE_BUILD:=$VPROBE_TOP/build}"
VPROBE=$VPROBE_BUILD/bin/vprobe
EMMETT=$VPROBE_BUILD/bin/emmett
TMP=$(mktemp -d /tmp/vptest.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
nfail=0

skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*"; nfail=$((nfail + 1)); }
# check NAME EXPECTED ACTUAL
check() {
  if [ "$2" != "$3" ]; then
    fail "$1"; echo "  expected: $(printf '%q' "$2")"; echo "  actual:   $(printf '%q' "$3")"
  fi
}
# check_match NAME REGEX ACTUAL
check_match() {
  if ! printf '%s' "$3" | grep -Eq -- "$2"; then
    fail "$1"; echo "  pattern: $2"; echo "  actual:  $(printf '%q' "$3")"
  fi
}
need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
done_testing() { [ $nfail = 0 ] && { echo ok; exit 0; }; echo "$nfail checks failed"; exit 1; }
