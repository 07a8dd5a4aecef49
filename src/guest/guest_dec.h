/*
 * guest_dec.h - offset discovery by decoding guest code with Zydis (the
 * seeds' offatret and offatstrcpy).  Interface of src/guest/x86dec.c.
 */
#ifndef GUEST_DEC_H
#define GUEST_DEC_H

#include <stddef.h>
#include <stdint.h>

/* The displacement of the last load `mov disp(%reg), %eax/%rax` (any
 * width, or movzx/movsx) into the return register before the first `ret`
 * of the function whose code is code[0..n) at address pc.  0 ok, -1 none. */
int x86dec_offatret(const uint8_t *code, size_t n, uint64_t pc, int64_t *off);

/* The displacement added to a pointer register by the last `lea
 * disp(%reg), %rsi` (or `add $disp, %rsi`) before the first call in the
 * code: the source argument of the copy in get_task_comm/__get_task_comm.
 * 0 ok, -1 none. */
int x86dec_offatstrcpy(const uint8_t *code, size_t n, uint64_t pc, int64_t *off);

/* Target of the first direct `call`/`jmp` at or after the start; 0 ok. */
int x86dec_first_branch(const uint8_t *code, size_t n, uint64_t pc,
                        uint64_t *target, int *is_call);

/* Where execution goes after the instruction at pc: 1 or 2 addresses into
 * next (fall-through, direct branch targets), or -1 when that depends on
 * run-time state (ret, indirect branches, rep strings, system
 * instructions). */
int x86dec_successors(const uint8_t *code, size_t n, uint64_t pc, uint64_t *next);

/* Length of the instruction at code if it is a NOP (the 5-byte `nopl` that
 * starts every traceable kernel function), else 0. */
int x86dec_nop_len(const uint8_t *code, size_t n);

/* Length of the instruction at code if it is a 64-bit `push $imm` (how
 * Linux's IRQ entry stubs start), with the value it pushes; else 0. */
int x86dec_push_imm(const uint8_t *code, size_t n, int64_t *imm);

/* Whether off is where an instruction starts when code[0..n) is decoded
 * from its first byte: 0 yes; 1 no, it is inside the instruction at
 * *start; -1 the bytes before it do not decode (*start: where). */
int x86dec_insn_at(const uint8_t *code, size_t n, size_t off, size_t *start);

#endif
