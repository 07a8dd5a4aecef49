# src/vmx: the VMX domain.  The controller side (src/vmx/vmx*.c, with the
# ELF symbol reader src/sym/elf*.c) and the in-process modules tests link
# directly (tramp, ustack) go into libvprobe.a.  The agent proper is a shared
# library of its own, injected into probed processes: position-independent,
# only vpagent_start exported, carrying its own copy of the VP interpreter
# and runtime.
LIB_SRC += $(filter-out src/vmx/agent%,$(wildcard src/vmx/*.c)) $(wildcard src/sym/elf*.c)

# It loads images vprobe built and never compiles text: no reader, verifier
# or their call graph (src/vp/compile.c is all that calls them), no probe
# names (the controller resolves them).
AGENT_SRC := $(filter-out src/vp/compile.c src/vp/read.c src/vp/verify.c src/vp/callgraph.c src/vp/probename.c,\
               $(wildcard src/vmx/agent*.c src/vmx/tramp*.c src/vmx/ustack*.c \
                          src/vp/*.c src/rt/*.c))
AGENT_OBJ := $(AGENT_SRC:%.c=$(BUILD)/pic/%.o)
# The agent goes into processes that are not built with sanitizers.
AGENT_CFLAGS := $(filter-out -fsanitize%,$(CFLAGS)) -fPIC -fvisibility=hidden
AGENT_LDFLAGS := $(filter-out -fsanitize%,$(LDFLAGS))
comma := ,
# Refuse undefined symbols once the interpreter and runtime exist.
AGENT_DEFS := $(if $(wildcard src/vp/*.c),$(if $(wildcard src/rt/*.c),-Wl$(comma)-z$(comma)defs))

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(AGENT_CFLAGS) -MMD -MP -c $< -o $@

# agent_libc.c is the agent's own memcpy & co.: its loops must not become
# calls to the functions they define (gcc's loop distribution does that).
AGENT_NOCALLS := -fno-builtin $(if $(findstring clang,$(shell $(CC) --version 2>/dev/null)),,\
                   -fno-tree-loop-distribute-patterns)
$(BUILD)/pic/src/vmx/agent_libc.o: AGENT_CFLAGS += $(AGENT_NOCALLS)

# -z now: no lazy binding, whose resolver (libc's) would run on the hit path.
$(BUILD)/lib/libvpagent.so: $(AGENT_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(AGENT_LDFLAGS) -shared -Wl,-z,now $(AGENT_DEFS) -o $@ $(AGENT_OBJ) -lZydis -lpthread -ldl

EXTRA += $(BUILD)/lib/libvpagent.so

# Probe targets for the tests and the bench: small programs built with frame
# pointers and symbols, in $(BUILD)/tests/vmx/targets/.
VMX_TARGETS := $(patsubst tests/vmx/targets/%.c,$(BUILD)/tests/vmx/targets/%,\
                 $(wildcard tests/vmx/targets/*.c))
$(BUILD)/tests/vmx/targets/%: tests/vmx/targets/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fno-omit-frame-pointer -Wall -Wextra -Werror -o $@ $< -lpthread -ldl

# nofp*.c: the same without frame pointers, for the CFI unwinder.
$(filter $(BUILD)/tests/vmx/targets/nofp%,$(VMX_TARGETS)): $(BUILD)/tests/vmx/targets/%: tests/vmx/targets/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -fomit-frame-pointer -Wall -Wextra -Werror -o $@ $< -lpthread -ldl

EXTRA += $(VMX_TARGETS)

-include $(shell find $(BUILD)/pic -name '*.d' 2>/dev/null)
