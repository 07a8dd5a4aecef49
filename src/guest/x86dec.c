/*
 * x86dec.c - offset discovery in guest code with Zydis (see guest_dec.h).
 *
 * The seeds find structure offsets the way a person reading a disassembly
 * would: sys_getpid ends with a load of current->tgid into the return
 * register, get_task_comm passes &tsk->comm to a string copy.  The Debian
 * kernel returns through `jmp __x86_return_thunk` or `ret`; both end the
 * scan, as does any direct jmp out of the function.
 */
#include "guest/guest_dec.h"

#include <Zydis/Zydis.h>

typedef struct dec {
  ZydisDecoder d;
  const uint8_t *code;
  size_t n, pos;
  uint64_t pc;
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
} dec;

static void dec_init(dec *x, const uint8_t *code, size_t n, uint64_t pc) {
  ZydisDecoderInit(&x->d, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  x->code = code;
  x->n = n;
  x->pos = 0;
  x->pc = pc;
}

/* Next instruction; 0 at the end or on bytes that do not decode. */
static int dec_next(dec *x) {
  if (x->pos >= x->n) return 0;
  if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&x->d, x->code + x->pos, x->n - x->pos,
                                           &x->in, x->ops)))
    return 0;
  x->pos += x->in.length;
  return 1;
}

static uint64_t here(const dec *x) { return x->pc + x->pos; }

/* A direct branch's target (the instruction just decoded). */
static int branch_target(const dec *x, uint64_t *target) {
  const ZydisDecodedOperand *op = &x->ops[0];
  if (x->in.operand_count_visible < 1 || op->type != ZYDIS_OPERAND_TYPE_IMMEDIATE ||
      !op->imm.is_relative)
    return -1;
  *target = here(x) + (uint64_t)op->imm.value.s;
  return 0;
}

/* The end of the function: ret, or a jmp leaving the code we hold. */
static int is_exit(const dec *x) {
  if (x->in.mnemonic == ZYDIS_MNEMONIC_RET) return 1;
  if (x->in.mnemonic != ZYDIS_MNEMONIC_JMP) return 0;
  uint64_t t;
  if (branch_target(x, &t) < 0) return 1; /* indirect: a tail call */
  return t < x->pc || t >= x->pc + x->n;
}

static int is_reg(const ZydisDecodedOperand *op, ZydisRegister largest) {
  return op->type == ZYDIS_OPERAND_TYPE_REGISTER &&
         ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, op->reg.value) == largest;
}

/* A memory operand based on a general register (not RIP, not a segment
 * override like %gs:, which addresses per-CPU data). */
static int is_struct_mem(const ZydisDecodedOperand *op) {
  return op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base != ZYDIS_REGISTER_NONE &&
         op->mem.base != ZYDIS_REGISTER_RIP && op->mem.segment != ZYDIS_REGISTER_GS &&
         op->mem.segment != ZYDIS_REGISTER_FS && op->mem.disp.has_displacement;
}

int x86dec_offatret(const uint8_t *code, size_t n, uint64_t pc, int64_t *off) {
  dec x;
  int found = 0;
  dec_init(&x, code, n, pc);
  while (dec_next(&x)) {
    if (is_exit(&x)) break;
    ZydisMnemonic m = x.in.mnemonic;
    if ((m == ZYDIS_MNEMONIC_MOV || m == ZYDIS_MNEMONIC_MOVZX ||
         m == ZYDIS_MNEMONIC_MOVSX || m == ZYDIS_MNEMONIC_MOVSXD) &&
        x.in.operand_count_visible == 2 && is_reg(&x.ops[0], ZYDIS_REGISTER_RAX) &&
        is_struct_mem(&x.ops[1])) {
      *off = x.ops[1].mem.disp.value;
      found = 1;
    } else if (x.in.operand_count_visible >= 1 && is_reg(&x.ops[0], ZYDIS_REGISTER_RAX) &&
               m != ZYDIS_MNEMONIC_CDQE && m != ZYDIS_MNEMONIC_CWDE &&
               m != ZYDIS_MNEMONIC_CDQ && m != ZYDIS_MNEMONIC_CQO &&
               (x.ops[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
      found = 0; /* rax overwritten by something else: not a plain load */
    } else if (m == ZYDIS_MNEMONIC_CALL) {
      found = 0; /* the call's result is what returns */
    }
  }
  return found ? 0 : -1;
}

int x86dec_offatstrcpy(const uint8_t *code, size_t n, uint64_t pc, int64_t *off) {
  dec x;
  int pending = 0, found = 0;
  int64_t disp = 0;
  dec_init(&x, code, n, pc);
  while (dec_next(&x)) {
    if (is_exit(&x)) break;
    ZydisMnemonic m = x.in.mnemonic;
    if (m == ZYDIS_MNEMONIC_LEA && is_reg(&x.ops[0], ZYDIS_REGISTER_RSI) &&
        is_struct_mem(&x.ops[1])) {
      disp = x.ops[1].mem.disp.value;
      pending = 1;
    } else if (m == ZYDIS_MNEMONIC_ADD && is_reg(&x.ops[0], ZYDIS_REGISTER_RSI) &&
               x.ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
      disp = x.ops[1].imm.value.s;
      pending = 1;
    } else if (m == ZYDIS_MNEMONIC_CALL && pending) {
      *off = disp; /* the last copy source before a call wins */
      found = 1;
      pending = 0;
    } else if (x.in.operand_count_visible >= 1 && is_reg(&x.ops[0], ZYDIS_REGISTER_RSI) &&
               (x.ops[0].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) {
      pending = 0;
    }
  }
  return found ? 0 : -1;
}

int x86dec_first_branch(const uint8_t *code, size_t n, uint64_t pc, uint64_t *target,
                        int *is_call) {
  dec x;
  dec_init(&x, code, n, pc);
  while (dec_next(&x)) {
    ZydisMnemonic m = x.in.mnemonic;
    if ((m == ZYDIS_MNEMONIC_CALL || m == ZYDIS_MNEMONIC_JMP) && branch_target(&x, target) == 0) {
      *is_call = m == ZYDIS_MNEMONIC_CALL;
      return 0;
    }
  }
  return -1;
}

int x86dec_successors(const uint8_t *code, size_t n, uint64_t pc, uint64_t *next) {
  dec x;
  dec_init(&x, code, n, pc);
  if (!dec_next(&x)) return -1;
  uint64_t fall = here(&x), target;
  switch (x.in.meta.category) {
  case ZYDIS_CATEGORY_COND_BR:
    if (branch_target(&x, &target) < 0) return -1;
    next[0] = fall, next[1] = target;
    return target == fall ? 1 : 2;
  case ZYDIS_CATEGORY_UNCOND_BR:
  case ZYDIS_CATEGORY_CALL:
    if (branch_target(&x, &target) < 0) return -1;
    next[0] = target;
    return 1;
  case ZYDIS_CATEGORY_RET:
  case ZYDIS_CATEGORY_INTERRUPT:
  case ZYDIS_CATEGORY_SYSCALL:
  case ZYDIS_CATEGORY_SYSTEM:
    return -1;
  default:
    /* rep-prefixed string instructions loop on their own address. */
    if (x.in.attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE | ZYDIS_ATTRIB_HAS_REPNE))
      return -1;
    next[0] = fall;
    return 1;
  }
}

int x86dec_nop_len(const uint8_t *code, size_t n) {
  dec x;
  dec_init(&x, code, n, 0);
  if (!dec_next(&x) || x.in.mnemonic != ZYDIS_MNEMONIC_NOP) return 0;
  return x.in.length;
}

int x86dec_push_imm(const uint8_t *code, size_t n, int64_t *imm) {
  dec x;
  dec_init(&x, code, n, 0);
  if (!dec_next(&x) || x.in.mnemonic != ZYDIS_MNEMONIC_PUSH || x.in.operand_count_visible != 1 ||
      x.ops[0].type != ZYDIS_OPERAND_TYPE_IMMEDIATE || x.in.operand_width != 64)
    return 0;
  *imm = x.ops[0].imm.value.s; /* sign-extended to 64 bits by the decoder */
  return x.in.length;
}

int x86dec_insn_at(const uint8_t *code, size_t n, size_t off, size_t *start) {
  dec x;
  dec_init(&x, code, n, 0);
  *start = 0;
  while (x.pos < off) {
    *start = x.pos;
    if (!dec_next(&x)) return -1;
  }
  return x.pos == off ? 0 : 1;
}
