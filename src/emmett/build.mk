LIB_SRC += $(wildcard src/emmett/*.c)
