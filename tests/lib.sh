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
# need_built FILE...: outputs the suite builds before it runs; one missing
# is a failure, not a skip.
need_built() {
  local f
  for f; do
    [ -e "$f" ] || { fail "missing build output: $f (the suite builds it first)"; done_testing; }
  done
}
done_testing() { [ $nfail = 0 ] && { echo ok; exit 0; }; echo "$nfail checks failed"; exit 1; }

# need_vm_image: QEMU and the test VM image (tools/mkvm builds it once), or
# the test is skipped.  Sets VM_IMAGE.
need_vm_image() {
  command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
  need_built "$VPROBE"
  VM_IMAGE=$VPROBE_TOP/build/vm-image
  "$VPROBE_TOP/tools/mkvm" "$VM_IMAGE" > "$TMP/mkvm.log" 2>&1
  local rc=$?
  [ $rc = 77 ] && skip "$(tail -n1 "$TMP/mkvm.log")"
  [ $rc = 0 ] || { cat "$TMP/mkvm.log"; fail "mkvm exit $rc"; done_testing; }
}

# start_vm DIR [tools/vm start options]: boots a test VM in DIR, stopped
# when the test exits.  Sets VM_PID (QEMU's pid).
VM_DIRS=()
start_vm() {
  local dir=$1 out
  shift
  VM_DIRS+=("$dir")
  trap 'for v in "${VM_DIRS[@]}"; do "$VPROBE_TOP/tools/vm" stop "$v" >/dev/null 2>&1; done; rm -rf "$TMP"' EXIT
  out=$("$VPROBE_TOP/tools/vm" start "$dir" --image "$VM_IMAGE" "$@" 2>&1) ||
    { echo "$out"; fail "the VM in $dir does not start"; done_testing; }
  VM_PID=${out#pid=}
  VM_PID=${VM_PID%% *}
}
