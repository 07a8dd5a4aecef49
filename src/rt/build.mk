LIB_SRC += $(wildcard src/rt/*.c)
