LIB_SRC += $(wildcard src/vp/*.c)
