# -o, -e, -b and emmett -o as root in a shared sticky directory: a symbolic
# link or a file planted there by another user (nobody) is not written
# through, whatever fs.protected_symlinks/protected_regular say; new files
# are created private (vprobe) or 0644 (emmett's VP).
. "$VPROBE_TOP/tests/lib.sh"
need_built "$VPROBE"
need_root
command -v setpriv >/dev/null || skip "no setpriv"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
chmod 711 "$TMP"
SH=$TMP/shared
mkdir -m 1777 "$SH"
echo precious > "$TMP/victim"; chmod 644 "$TMP/victim"
printf 'VMXLoad { printf("x\\n"); }\n' > "$TMP/s.emt"
SCRIPT='VMXLoad { printf("out\n"); writeint(1, 1); }'

# untouched NAME: the victim file still holds what it held.
untouched() { check "$1: victim untouched" "precious" "$(cat "$TMP/victim")"; }

# A link planted by nobody to a root-owned file, for each stream.
as_nobody ln -s "$TMP/victim" "$SH/link" || fail "nobody plants a link"
for opt in -o -e -b; do
  err=$("$VPROBE" $opt "$SH/link" -c "$SCRIPT" 2>&1 >/dev/null); rc=$?
  check "$opt link: status" 1 "$rc"
  check "$opt link: message" "vprobe: $SH/link: is a symbolic link; not following it" "$err"
  untouched "$opt link"
done
err=$("$EMMETT" -o "$SH/link" "$TMP/s.emt" 2>&1); rc=$?
check "emmett -o link: status" 1 "$rc"
check "emmett -o link: message" "emmett: $SH/link: is a symbolic link; not following it" "$err"
untouched "emmett -o link"
# A dangling link would have created the file it names.
as_nobody ln -s "$TMP/created" "$SH/dangling"
"$VPROBE" -o "$SH/dangling" -c "$SCRIPT" >/dev/null 2>&1
check "dangling link: nothing created" "no" "$([ -e "$TMP/created" ] && echo yes || echo no)"

# A regular file of nobody's in the sticky directory.
as_nobody sh -c "echo theirs > '$SH/theirs'"
err=$("$VPROBE" -o "$SH/theirs" -c "$SCRIPT" 2>&1); rc=$?
check "their file: status" 1 "$rc"
check_match "their file: message" "^vprobe: $SH/theirs: owned by another user in a shared sticky directory" "$err"
check "their file: untouched" "theirs" "$(cat "$SH/theirs")"
err=$("$EMMETT" -o "$SH/theirs" "$TMP/s.emt" 2>&1)
check_match "emmett: their file" "^emmett: $SH/theirs: owned by another user" "$err"
# A second hard link to a root file, when the kernel lets nobody make one.
if as_nobody ln "$TMP/victim" "$SH/hard" 2>/dev/null; then
  "$VPROBE" -o "$SH/hard" -c "$SCRIPT" >/dev/null 2>&1
  untouched "hard link"
fi

# Our own files there are fine: created new (private), or rewritten.
"$VPROBE" -o "$SH/mine" -e "$SH/mine.err" -c "$SCRIPT" || fail "new file in the sticky directory"
check "new -o file" "out" "$(cat "$SH/mine")"
check "new -o file is private" "600" "$(stat -c %a "$SH/mine")"
echo 'a much longer old content than the new one' > "$SH/mine"
"$VPROBE" -o "$SH/mine" -c "$SCRIPT" || fail "rewriting our file"
check "our file rewritten from the start" "out" "$(cat "$SH/mine")"
(umask 022; "$EMMETT" -o "$TMP/e.vp" "$TMP/s.emt") || fail "emmett -o new file"
check "emmett -o new file 0644" "644" "$(stat -c %a "$TMP/e.vp")"
check_match "emmett -o wrote VP" '^\(vprobe VMXLoad' "$(cat "$TMP/e.vp")"

# Links that only root (or the user) could have made are still followed.
check "-o /dev/stdout" "out" "$("$VPROBE" -o /dev/stdout -c "$SCRIPT" | head -n1)"
ln -s "$TMP/target" "$TMP/rootlink"
"$VPROBE" -o "$TMP/rootlink" -c "$SCRIPT" || fail "root's own link in root's directory"
check "root's own link followed" "out" "$(cat "$TMP/target" 2>/dev/null)"
# ... but not nobody's own link in the shared directory, even for nobody.
as_nobody ln -s "$SH/nobody.out" "$SH/nlink"
err=$(as_nobody "$VPROBE" -o "$SH/nlink" -c "$SCRIPT" 2>&1); rc=$?
check "nobody, link in a shared directory" 1 "$rc"

# Other errors stay one line.
err=$("$VPROBE" -o "$TMP/nodir/x" -c "$SCRIPT" 2>&1); rc=$?
check "missing directory: status" 1 "$rc"
check "missing directory: message" "vprobe: $TMP/nodir/x: No such file or directory" "$err"
err=$("$VPROBE" -o "$TMP" -c "$SCRIPT" 2>&1); rc=$?
check "a directory: status" 1 "$rc"
check "a directory: message" "vprobe: $TMP: Is a directory" "$err"
done_testing
