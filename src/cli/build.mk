LIB_SRC += $(wildcard src/ctl/*.c) $(filter-out %_main.c,$(wildcard src/cli/*.c))
BINS    += vprobe emmett
