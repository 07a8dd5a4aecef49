# The site policy (vprobe.allow) for users other than root: fail closed on a
# policy that cannot be read or understood, case-insensitive keys and values,
# the last setting winning.  Runs vprobe as nobody; $VPROBE_CONF adds a
# policy file that can only narrow the site's, so tests need not touch
# /etc/vprobe.conf except for one check on the real path.
. "$VPROBE_TOP/tests/lib.sh"
need_built "$VPROBE"
need_root
command -v setpriv >/dev/null || skip "no setpriv"
chmod 711 "$TMP"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
as_nobody "$VPROBE" --version >/dev/null 2>&1 || skip "nobody cannot run $VPROBE"

SCRIPT='VMXLoad { printf("ran\n"); }'
# allowed NAME CONF-TEXT: nobody may use vprobe under this policy.
allowed() {
  printf '%b' "$2" > "$TMP/conf"; chmod 644 "$TMP/conf"
  local out; out=$(VPROBE_CONF=$TMP/conf as_nobody "$VPROBE" -c "$SCRIPT" 2>&1)
  check "$1: allowed" "ran" "$out"
}
# refused NAME CONF-PATH REGEX: nobody is kept out with one line matching.
refused() {
  local out rc
  out=$(VPROBE_CONF=$2 as_nobody "$VPROBE" -c "$SCRIPT" 2>&1); rc=$?
  check "$1: exit status" 1 "$rc"
  check "$1: one line" 1 "$(printf '%s\n' "$out" | wc -l)"
  check_match "$1: message" "$3" "$out"
}
refused_text() {
  printf '%b' "$2" > "$TMP/conf"; chmod 644 "$TMP/conf"
  refused "$1" "$TMP/conf" "$3"
}

if [ ! -e /etc/vprobe.conf ]; then
  check "no policy file: allowed" "ran" "$(as_nobody "$VPROBE" -c "$SCRIPT" 2>&1)"
fi
check "absent VPROBE_CONF file: allowed" "ran" \
  "$(VPROBE_CONF=$TMP/none as_nobody "$VPROBE" -c "$SCRIPT" 2>&1)"

# Fail closed: there but unreadable, a directory, a value not understood.
printf 'vprobe.allow = TRUE\n' > "$TMP/secret"; chmod 600 "$TMP/secret"
refused "unreadable" "$TMP/secret" "^vprobe: $TMP/secret: Permission denied: cannot read the site policy"
mkdir -m 755 "$TMP/dir"
refused "a directory" "$TMP/dir" "^vprobe: $TMP/dir: .*cannot read the site policy"
refused_text "bad value" '# site\nvprobe.allow = maybe\n' "^vprobe: $TMP/conf:2: vprobe.allow must be TRUE or FALSE"
refused_text "empty value" 'vprobe.allow =\n' "conf:1: vprobe.allow must be TRUE or FALSE"
refused_text "no =" 'vprobe.allow TRUE\n' "conf:1: vprobe.allow must be TRUE or FALSE"
refused_text "junk after the value" 'vprobe.allow = TRUE FALSE\n' "must be TRUE or FALSE"
refused_text "unterminated quote" 'vprobe.allow = "TRUE\n' "must be TRUE or FALSE"

# Keys and values in any case, quoted or not, comments, the last one wins.
refused_text "FALSE" 'vprobe.allow = FALSE\n' "^vprobe: $TMP/conf:1: vprobe.allow is FALSE: only root"
refused_text "mixed-case key" 'VProbe.Allow = false\n' "conf:1: vprobe.allow is FALSE"
refused_text "no spaces, 0" 'VPROBE.ALLOW=0\n' "vprobe.allow is FALSE"
refused_text "quoted no" 'vprobe.allow = "No"   # not here\n' "vprobe.allow is FALSE"
refused_text "last wins (FALSE)" 'vprobe.allow = TRUE\n\n  vprobe.allow = "FALSE"\n' "conf:3: vprobe.allow is FALSE"
allowed "last wins (TRUE)" 'vprobe.allow = FALSE\n# comment\n\nVPROBE.allow = "True"\n'
allowed "yes" 'vprobe.allow=yes\n'
allowed "1 with a comment" 'vprobe.allow = 1 # site default\n'
allowed "single quotes" "vprobe.allow = 'TRUE'\n"
allowed "other keys ignored" 'vprobe.allowed = FALSE\nvprobe.enable = FALSE\n#vprobe.allow = FALSE\n'
allowed "no setting" '# nothing here\n'

# Root is never kept out.
printf 'vprobe.allow = FALSE\n' > "$TMP/conf"
check "root with FALSE" "ran" "$(VPROBE_CONF=$TMP/conf "$VPROBE" -c "$SCRIPT" 2>&1)"

# The real site file, unreadable by the user: refused (it used to let
# everyone in).  Only when the machine has none of its own.
if [ ! -e /etc/vprobe.conf ]; then
  (umask 077; echo 'vprobe.allow = TRUE' > /etc/vprobe.conf)
  out=$(as_nobody "$VPROBE" -c "$SCRIPT" 2>&1); rc=$?
  echo 'VProbe.Allow = False' > /etc/vprobe.conf; chmod 644 /etc/vprobe.conf
  out2=$(VPROBE_CONF=$TMP/none as_nobody "$VPROBE" -c "$SCRIPT" 2>&1); rc2=$?
  rm -f /etc/vprobe.conf
  check "unreadable /etc/vprobe.conf: status" 1 "$rc"
  check_match "unreadable /etc/vprobe.conf: message" \
    '^vprobe: /etc/vprobe.conf: Permission denied: cannot read the site policy' "$out"
  check "mixed-case FALSE in /etc/vprobe.conf: status" 1 "$rc2"
  check_match "mixed-case FALSE in /etc/vprobe.conf" '^vprobe: /etc/vprobe.conf:1: vprobe.allow is FALSE' "$out2"
fi
done_testing
