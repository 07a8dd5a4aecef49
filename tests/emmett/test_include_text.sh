#!/usr/bin/env bash
# Errors never quote the text of an #include: the user named the file but
# may not be allowed to read it (vprobe may run as root).  Each case puts a
# secret word where the first error falls and checks the message names the
# file, line and column but not the word; the same text given directly (the
# script itself, -c) is still quoted.
. "$VPROBE_TOP/tests/lib.sh"
need_built "$EMMETT"

# hidden NAME LINE:COL TEXT: #include a file holding TEXT; the error must be
# at FILE:LINE:COL and hold no "s3cr3t"
hidden() {
  printf '%s\n' "$3" > "$TMP/$1.txt"
  printf 'int x;\n#include "%s.txt"\nVMXLoad { }\n' "$1" > "$TMP/$1.emt"
  local out
  out=$("$EMMETT" -o "$TMP/out.vp" "$TMP/$1.emt" 2>&1)
  local rc=$?
  check "$1: exit status" 1 "$rc"
  check_match "$1: names the file, line and column" "^$TMP/$1.txt:$2: error: " "$out"
  case "$out" in *s3cr3t*) fail "$1: quotes the included text: $out" ;; esac
  [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "$1: not one line: $out"
}

hidden shadow 1:1 's3cr3t:$6$salt$hash:19000:0:99999:7:::'
hidden shadow2 1:1 'root:s3cr3t:19000:0:99999:7:::'
hidden stray 1:5 'int @s3cr3t;'
hidden number 1:9 'int x = 0s3cr3t;'
hidden escape 1:20 'VMXLoad { printf("\s3cr3t"); }'
hidden directive 1:1 '#s3cr3t directive'
hidden error 1:1 '#error s3cr3t'
hidden ifexpr 1:7 '#if 1 s3cr3t'
hidden undeclared 1:11 'VMXLoad { s3cr3t(); }'
hidden redefined 1:5 'int x;'
hidden badtype 1:1 's3cr3t y;'
hidden nested 1:10 '#include "s3cr3t.h"'

# the parser still says what it expected
printf 'int y\nint s3cr3t;\n' > "$TMP/exp.txt"
out=$("$EMMETT" -o "$TMP/out.vp" /dev/stdin 2>&1 <<EOF
#include "$TMP/exp.txt"
EOF
)
check_match "expected token said" "exp.txt:2:1: error: expected ';' after declaration|exp.txt:1:6: error: expected ';'" "$out"

# a #warning in an include is shown without its text, and compiling goes on
printf '#warning s3cr3t\nint w;\n' > "$TMP/warn.txt"
printf '#include "warn.txt"\nVMXLoad { }\n' > "$TMP/warn.emt"
out=$("$EMMETT" -o "$TMP/out.vp" "$TMP/warn.emt" 2>&1)
check "warning: exit status" 0 "$?"
check "warning text hidden" "$TMP/warn.txt:1:1: warning: #warning in an included file" "$out"

# text given directly is quoted as before
printf 'VMXLoad { s3cr3t(); }\n' > "$TMP/direct.emt"
out=$("$EMMETT" -o "$TMP/out.vp" "$TMP/direct.emt" 2>&1)
check "script text quoted" "$TMP/direct.emt:1:11: error: unknown function 's3cr3t'" "$out"
if [ -x "$VPROBE" ]; then
  out=$("$VPROBE" -c '#s3cr3t' 2>&1)
  check_match "-c text quoted" "unknown directive #s3cr3t" "$out"
  out=$("$VPROBE" -c "#include \"$TMP/shadow.txt\"" 2>&1)
  check "vprobe -c include: exit status" 1 "$?"
  case "$out" in *s3cr3t*) fail "vprobe -c include quotes the file: $out" ;; esac
fi
done_testing
