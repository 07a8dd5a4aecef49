# GUEST and VMM engine: the gdb stub client (gdb.c), the engine (guest*.c),
# offset discovery with Zydis (x86dec.c), QMP and QEMU trace events (qmp.c,
# qtrace.c); guest kernel symbols (src/sym/ksym*.c).
LIB_SRC += $(wildcard src/guest/*.c src/sym/ksym*.c)
