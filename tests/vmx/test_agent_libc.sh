# The agent's code that runs in the probed process's own threads (the probe
# hit path, the interpreter and runtime as built into the agent, the signal
# handlers) or while code is being patched calls nothing outside the agent
# library: libc may itself be probed, or carry an int3 mid-commit, and a
# trap taken in a SIGTRAP handler or with SIGTRAP blocked kills the target.
# Each hit-path object's undefined symbols must be defined by another
# hit-path object or be on the allow-list below, with its reason.
. "$VPROBE_TOP/tests/lib.sh"
P=$VPROBE_BUILD/pic/src
SO=$VPROBE_BUILD/lib/libvpagent.so
command -v nm >/dev/null && command -v objdump >/dev/null || skip "no binutils"
need_built "$SO"

HIT="vmx/agent_fire vmx/agent_libc vmx/tramp_live vmx/tramp_sys vmx/ustack vp/exec
     vp/builtin rt/aggr rt/aggrfmt rt/bag rt/format rt/ring rt/space"
# object:symbol  why it is not on the hit path
ALLOW="
*:_GLOBAL_OFFSET_TABLE_     the PIC base, not a call
*:__divti3                  libgcc, linked into the agent statically
*:__udivti3                 libgcc, linked into the agent statically
vmx/agent_fire:tramp_open   agent_tramps, on the agent thread at load
vmx/agent_fire:tramp_ret_stub agent_tramps, on the agent thread at load
rt/ring:malloc              the drain, the controller's
rt/ring:free                the drain, the controller's
"
defined=""
for o in $HIT; do
  [ -f "$P/$o.o" ] || { fail "no $P/$o.o"; continue; }
  defined="$defined $(nm --defined-only "$P/$o.o" | awk '$2 ~ /[TtDdBbRr]/ {print $3}' | tr '\n' ' ')"
done
bad=""
for o in $HIT; do
  [ -f "$P/$o.o" ] || continue
  for s in $(nm --undefined-only "$P/$o.o" | awk '{print $2}'); do
    case " $defined " in *" $s "*) continue ;; esac
    printf '%s\n' "$ALLOW" | grep -Eq "^(\*|$o):$s( |\$)" && continue
    bad="$bad $o:$s"
  done
done
check "hit-path objects call nothing outside the agent" "" "${bad# }"

# The agent's own memcpy & co. must not have been compiled back into calls
# to themselves (loop-to-call distribution), nor call anything but raw
# system calls.
self=$(objdump -dr --no-show-raw-insn "$P/vmx/agent_libc.o" |
  awk '/^[0-9a-f]+ <.*>:$/ {f = substr($2, 2, length($2) - 3)}
       /^ *[0-9a-f]+:\t(call|jmp)/ && index($0, "<" f ">") {print f}' | sort -u | tr '\n' ' ')
check "agent_libc: no function calls itself" "" "$self"
check "agent_libc: only system calls" "" \
  "$(nm --undefined-only "$P/vmx/agent_libc.o" | awk '$2 !~ /^(tsys_|_GLOBAL_OFFSET_TABLE_)/ {print $2}')"

# The profile signal handler lives in agent.o (the agent thread's file):
# the calls in its own body.
calls=$(objdump -dr --no-show-raw-insn "$P/vmx/agent.o" |
  awk '/^[0-9a-f]+ <.*>:$/ {f = $2} f == "<prof_handler>:" && /R_X86_64_(PLT32|PC32|GOTPCREL)/ {
         s = $3; sub(/[-+].*/, "", s); print s }' | sort -u | tr '\n' ' ')
for s in $calls; do
  case " $defined agent_tls_get agent_fire_points tramp_frame_from_uc cur prev_prof " in
    *" $s "*) ;;
    *) case "$s" in .bss|.data|.rodata*|.text*|.LC*) ;; *) fail "prof_handler calls $s" ;; esac ;;
  esac
done

# The linked library: the functions the agent defines for itself are bound
# inside it (hidden), never imported from libc.
imports=$(nm -D --undefined-only "$SO" | awk '{sub(/@.*/, "", $2); print $2}')
for s in memcpy memmove memset memcmp bcmp memchr strlen strnlen strchr strcmp strncmp strcspn \
         strncpy clock_gettime sched_getcpu syscall; do
  printf '%s\n' "$imports" | grep -qx "$s" && fail "libvpagent.so imports $s"
done
readelf -d "$SO" | grep -q 'BIND_NOW\|FLAGS.*NOW' || fail "libvpagent.so is not linked -z now"
done_testing
