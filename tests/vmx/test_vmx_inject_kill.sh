# Issue 17: a vprobe killed while it loads its agent into a running process
# must not harm it.  vprobe is SIGKILLed right after each step of the load
# (VPROBE_TEST_INJECT_DIE=N, steps in src/vmx/inject.h), then after random
# delays; each time the target (vt_inj mt: threads checking their own
# registers; vt_inj malloc: the main thread living in libc) must live on
# unharmed, and a normal attach must then work (the agent of the killed
# load found nobody on its socket and went quietly).
. "$VPROBE_TOP/tests/lib.sh"
T=$VPROBE_BUILD/tests/vmx/targets/vt_inj
need_built "$VPROBE" "$VPROBE_BUILD/lib/libvpagent.so" "$T"
need_root
STEPS=8 # INJ_NSTEPS
ls -d /tmp/vprobe.* 2>/dev/null | sort > "$TMP/dirs0"

# start MODE: the target, until SIGUSR1.
start() {
  "$T" "$1" 600 > "$TMP/tout" & tpid=$!
  for _ in $(seq 200); do grep -q ready "$TMP/tout" && return; sleep 0.05; done
  fail "target did not start"
}

# healthy NAME: the target lives, has found nothing wrong, and a normal
# attach counts its calls.
healthy() {
  sleep 0.1
  if ! kill -0 $tpid 2>/dev/null || grep -q bad "$TMP/tout"; then
    fail "$1: target harmed: $(cat "$TMP/tout")"
    done_testing
  fi
  local out
  out=$("$VPROBE" -x $tpid -d 0.2 -c "aggr c[0][1]; VMX:ENTER:inj_tick { c[\"t\"]++; }
VMXUnload { printa(c); }" 2>&1)
  check_match "$1: a probe fires after" '^t +[1-9][0-9]* ' "$out"
}

# finish MODE: the target ends on SIGUSR1 having checked itself.
finish() {
  kill -USR1 $tpid
  wait $tpid; local rc=$?
  check "$1: target exit status" 0 "$rc"
  check_match "$1: target checked itself" "^ok $1 [0-9]+" "$(tail -n1 "$TMP/tout")"
}

# kills MODE RANDOM: every step, then RANDOM random moments.
kills() {
  start "$1"
  for n in $(seq $STEPS); do
    # (in a subshell whose stderr takes the shell's "Killed")
    (VPROBE_TEST_INJECT_DIE=$n "$VPROBE" -x $tpid -c 'VMXLoad { printf("in\n"); }' > "$TMP/o" 2>&1
     echo $? > "$TMP/rc") 2>/dev/null
    check "$1: die after step $n: vprobe was killed" 137 "$(cat "$TMP/rc")"
    healthy "$1: die after step $n"
  done
  for i in $(seq "$2"); do
    "$VPROBE" -x $tpid -c 'VMXLoad { printf("in\n"); }' > "$TMP/o" 2>&1 & vp=$!
    sleep "0.$(printf '%03d' $((RANDOM % 200)))"
    kill -KILL $vp 2>/dev/null; wait $vp 2>/dev/null
    healthy "$1: kill -9 at random ($i)"
  done
  finish "$1"
}

# threads checking their registers, the main one in pthread_join
kills mt 20
# the main thread inside malloc and string functions (moved out of libc)
kills malloc 5

# killed vprobes leave their socket directories
ls -d /tmp/vprobe.* 2>/dev/null | sort | comm -13 "$TMP/dirs0" - | xargs -r rm -rf
done_testing
