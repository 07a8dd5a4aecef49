# vprobe: `make` builds everything into build/, `make test` runs the whole
# suite, `make demo` boots the bundled VM and traces it.  Each part of the
# pipeline lists its own sources in src/<part>/build.mk; tests are found by
# name (tests/<part>/test_*.c and test_*.sh), so adding a file needs no edit
# here.

CC      ?= cc
.DEFAULT_GOAL := all
BUILD   ?= build
SAN     ?=
O       := $(BUILD)/obj
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -fno-omit-frame-pointer
ifneq ($(SAN),)
CFLAGS  += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
LIBS    := -lelf -ldw -lZydis -lbpf -lpthread -lm

LIB_SRC :=
BINS    :=
EXTRA   :=
# PARTS limits the build to some parts (make PARTS="vp rt" BUILD=build-vp),
# so one part can be built and tested while another is half-written.
PARTS   ?= $(patsubst src/%/build.mk,%,$(wildcard src/*/build.mk))
include $(sort $(PARTS:%=src/%/build.mk))

LIB_OBJ := $(LIB_SRC:%.c=$(O)/%.o)
LIB     := $(BUILD)/lib/libvprobe.a
# tests/sym has no part of its own: each symbol reader goes with its engine.
SYM_TESTS := $(if $(filter vmx,$(PARTS)),$(wildcard tests/sym/test_elfsym*.c)) \
             $(if $(filter guest,$(PARTS)),$(wildcard tests/sym/test_ksym*.c))
TEST_C  := $(sort $(foreach p,$(PARTS),$(wildcard tests/$(p)/test_*.c)) $(SYM_TESTS))
TEST_BINS := $(TEST_C:tests/%.c=$(BUILD)/tests/%)

# Benchmarks: bench/bench_*.c are programs (built by `make bench`),
# bench/bench_*.sh scripts; bench/run runs them all and prints ratios.
BENCH_C := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_C:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: $(O)/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

.PHONY: all deps test demo san clean bench fuzz
all: $(LIB) $(BINS:%=$(BUILD)/bin/%) $(TEST_BINS) $(EXTRA)

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(O)/src/cli/%_main.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS)

$(BUILD)/tests/%: $(O)/tests/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LIBS) -lcmocka

deps:
	@tools/install-deps

san:
	$(MAKE) BUILD=build-san SAN=1 all

# The suite builds three copies: the one it tests, an ASan/UBSan one the
# runner also uses, and a clang one that only has to compile warning-free.
test: deps
	$(MAKE) all
	$(MAKE) san
	$(MAKE) CC=clang BUILD=build-clang all
	tests/run

demo: deps all
	tools/demo

bench: all $(BENCH_BINS)
	bench/run

fuzz:
	tools/build-fuzz

clean:
	rm -rf build build-san build-clang build-fuzz

-include $(shell find $(O) -name '*.d' 2>/dev/null)

