/*
 * tramp.c - jump trampolines, int3 traps and the return trampoline (see
 * tramp.h).
 *
 * A jump site: the first instructions covering at least 5 bytes at the probe
 * point are replaced by `jmp rel32` to a trampoline allocated within +-2 GiB:
 *
 *   tramp: lea rsp,[rsp-128]      skip the red zone (OFFSET probes in leaves)
 *          pushfq; push rax..r15; sub rsp,272; movdqu xmm0..15 -> frame
 *          cld; frame.rip = addr; frame.rsp = rsp at the probe point
 *          rdi = arg, rsi = frame; align rsp; call hook
 *          restore everything
 *   tail:  the displaced instructions, relocated; jmp addr+len
 *
 * The vector registers are saved because the hook runs C (and libc string
 * functions use SSE/AVX).  At a function entry (ENTER and EXIT probes, the
 * fast case) only xmm0-7 can be live (arguments), the flags and upper
 * halves are dead by the ABI: movdqu of xmm0-7, no popfq.  At an inner
 * point anything may be live: every xmm, the flags, and the whole extended
 * state through XSAVE/XRSTOR (slower, but exact).
 *
 * A trap site: an int3 at the probe point; the SIGTRAP handler calls the
 * hook with the registers of the signal frame and resumes at the tail (the
 * one displaced instruction, relocated, then a jump back).
 *
 * Writing the jump while other threads run (the scheme Linux uses for its
 * own text): int3 at the first byte, sync every core, move every thread
 * that is inside the displaced bytes out of them, write bytes 1..4, sync,
 * write the jmp opcode, sync.  A thread reaching the point meanwhile traps,
 * and the handler sends it through the tail, which runs the original
 * instructions: it never sees a half-written jump.  A thread that was
 * inside the displaced bytes when the int3 went in (descheduled on an
 * instruction boundary after the first one, which a loaded machine makes
 * common) would resume in the middle of the jump: so every thread that is
 * not asleep in a system call gets a signal (MOVE_SIG), whose handler moves
 * it to the same instruction in the tail, and the jump is written once
 * each has been through the handler or is gone.  A site a thread cannot be
 * moved from (not on an instruction boundary, or a thread that does not
 * answer, its signals blocked) stays an int3 trap site: slower, never
 * wrong.  Cores are synchronized with membarrier's SYNC_CORE command where
 * the kernel has it.  Many sites are written together, so the syncs and
 * the signals are paid once per load.  Unpatching is the same in reverse
 * (no thread is ever inside a jump).
 *
 * Placement: a jump never covers bytes a branch inside the function lands
 * on: relative branches, code addresses taken, jump tables (PIC int32 and
 * absolute 8-byte ones, found from the data addresses the code names).
 * Where the function jumps through a register with no table found, a point
 * other than the entry gets a jump only over a single instruction, else a
 * trap.  An address inside an instruction is refused.  Branches from
 * outside the function (hand-written assembly jumping to a label a few
 * bytes into another function) are the caller's to know: it says how
 * many bytes a jump may displace (TRAMP_ROOM).  Sites of other loads are
 * known here: a jump never displaces a live site's address (a trap then),
 * and an address inside a live jump's displaced bytes is refused.
 *
 * This file builds (allocation, decoding, relocation, trampoline code) and
 * installs the handlers; the handlers themselves and the patch windows
 * (commit, unpatch) are in tramp_live.c, which calls no libc.
 *
 * Global state: the SIGTRAP and SIGSEGV handlers need to find the site table
 * and the previous handlers (tramp_int.h); set once.
 */
#include "vmx/tramp.h"

#include <Zydis/Zydis.h>
#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include "vmx/tramp_int.h"
#include "vmx/tramp_sys.h"

#define CHUNK (64 * 1024)
#define NEAR ((int64_t)1 << 31)

/* ---- code memory near the target ---- */

static uint8_t *code_alloc(tramp_set *s, uint64_t near, size_t n) {
  for (int i = 0; i < s->nchunks; i++) {
    tramp_chunk *c = &s->chunks[i];
    int64_t d = (int64_t)((uint64_t)c->base - near);
    if (d > -NEAR + 2 * CHUNK && d < NEAR - 2 * CHUNK && c->used + n <= CHUNK) {
      uint8_t *p = c->base + c->used;
      c->used += (n + 15) & ~(size_t)15;
      return p;
    }
  }
  if (s->nchunks == MAXCHUNKS)
    return NULL;
  /* Probe for a free spot, nearest first, below and above the code. */
  uint64_t base = near & ~(uint64_t)(CHUNK - 1);
  for (uint64_t d = 1 << 20; d < (uint64_t)1 << 31; d += d < (1 << 26) ? 1 << 20 : 1 << 24) {
    for (int dir = 0; dir < 2; dir++) {
      uint64_t hint = dir ? base + d : base - d;
      if (!dir && base < d)
        continue;
      void *p = mmap((void *)hint, CHUNK, PROT_READ | PROT_EXEC,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
      if (p == MAP_FAILED)
        continue;
      if ((uint64_t)p != hint) { /* old kernel: hint not honoured */
        munmap(p, CHUNK);
        continue;
      }
      tramp_chunk *c = &s->chunks[s->nchunks++];
      c->base = p;
      c->used = (n + 15) & ~(size_t)15;
      return p;
    }
  }
  return NULL;
}

/* The protection of the mapping holding addr, from /proc/self/maps. */
static int page_prot(uint64_t addr) {
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  int prot = PROT_READ | PROT_EXEC;
  if (fd < 0)
    return prot;
  char buf[8192], line[512];
  size_t ll = 0;
  ssize_t n;
  int done = 0;
  while (!done && (n = read(fd, buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n && !done; i++) {
      if (buf[i] != '\n') {
        if (ll < sizeof line - 1)
          line[ll++] = buf[i];
        continue;
      }
      line[ll] = 0;
      ll = 0;
      unsigned long lo, hi;
      char perm[8];
      if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) == 3 && addr >= lo && addr < hi) {
        prot = (perm[0] == 'r' ? PROT_READ : 0) | (perm[1] == 'w' ? PROT_WRITE : 0) |
               (perm[2] == 'x' ? PROT_EXEC : 0);
        done = 1;
      }
    }
  }
  close(fd);
  return prot;
}

/* ---- relocation ---- */

static void put32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }

static int fits32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* Where a relative branch or call decoded at `at` goes (0 if unknown). */
static uint64_t rel_target(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
                           uint64_t at) {
  uint64_t t = 0;
  for (int i = 0; i < in->operand_count_visible; i++)
    if (ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
        ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(in, &ops[i], at, &t)))
      break;
  return t;
}

/* Copy the instruction at `from` (already decoded) to out, which will run
 * at address `to`, fixing RIP-relative operands and relative branches.
 * Returns the bytes written, or -1 if it cannot move. */
static int reloc_one(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops,
                     uint64_t from, uint64_t to, uint8_t *out) {
  const uint8_t *src = (const uint8_t *)from;
  if (!(in->attributes & ZYDIS_ATTRIB_IS_RELATIVE)) {
    memcpy(out, src, in->length);
    return in->length;
  }
  if (in->raw.imm[0].is_relative) { /* branch or call */
    uint64_t target = rel_target(in, ops, from);
    if (!target)
      return -1;
    int n;
    if (in->mnemonic == ZYDIS_MNEMONIC_CALL) {
      out[0] = 0xe8, n = 5;
    } else if (in->mnemonic == ZYDIS_MNEMONIC_JMP) {
      out[0] = 0xe9, n = 5;
    } else if (in->meta.category == ZYDIS_CATEGORY_COND_BR &&
               in->mnemonic != ZYDIS_MNEMONIC_JRCXZ && in->mnemonic != ZYDIS_MNEMONIC_JECXZ &&
               in->mnemonic != ZYDIS_MNEMONIC_JCXZ && in->mnemonic != ZYDIS_MNEMONIC_LOOP &&
               in->mnemonic != ZYDIS_MNEMONIC_LOOPE && in->mnemonic != ZYDIS_MNEMONIC_LOOPNE) {
      int cc = in->opcode_map == ZYDIS_OPCODE_MAP_0F ? in->opcode - 0x80 : in->opcode - 0x70;
      if (cc < 0 || cc > 15)
        return -1;
      out[0] = 0x0f, out[1] = (uint8_t)(0x80 + cc), n = 6;
    } else {
      return -1;
    }
    int64_t rel = (int64_t)(target - (to + n));
    if (!fits32(rel))
      return -1;
    put32(out + n - 4, (int32_t)rel);
    return n;
  }
  /* RIP-relative memory operand: keep the instruction, move the disp32. */
  if (in->raw.disp.size != 32)
    return -1;
  int64_t disp = 0;
  memcpy(&disp, src + in->raw.disp.offset, 4);
  disp = (int32_t)disp;
  uint64_t target = from + in->length + disp;
  int64_t nd = (int64_t)(target - (to + in->length));
  if (!fits32(nd))
    return -1;
  memcpy(out, src, in->length);
  put32(out + in->raw.disp.offset, (int32_t)nd);
  return in->length;
}

static int decode(tramp_set *s, uint64_t at, ZydisDecodedInstruction *in,
                  ZydisDecodedOperand *ops) {
  return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&s->dec, (const void *)at, 15, in, ops)) ? 0 : -1;
}

static int ends_flow(const ZydisDecodedInstruction *in) {
  return in->meta.category == ZYDIS_CATEGORY_RET ||
         in->meta.category == ZYDIS_CATEGORY_UNCOND_BR || in->mnemonic == ZYDIS_MNEMONIC_INT3 ||
         in->mnemonic == ZYDIS_MNEMONIC_UD2 || in->mnemonic == ZYDIS_MNEMONIC_HLT;
}

/* Does t land strictly inside the displaced bytes (addr, addr+len)? */
static int inside(uint64_t t, uint64_t addr, int len) {
  return t > addr && t < addr + (uint64_t)len;
}

/* A jump table at x for code in [lo, hi): int32 entries relative to x (PIC:
 * `lea reg,[rip+x]`, then movslq, add, jmp) or absolute 8-byte entries,
 * read while they point into the function.  1 if an entry lands inside
 * the displaced bytes; *found counts the entries seen. */
static int table_into(uint64_t x, uint64_t lo, uint64_t hi, uint64_t addr, int len,
                      int *found) {
  for (int wide = 0; wide < 2; wide++) {
    int size = wide ? 8 : 4, more = 1;
    for (uint64_t off = 0; more && off < 4096 * 8; off += 256) {
      uint8_t buf[256];
      if (tramp_read(buf, x + off, sizeof buf, 0))
        break;
      for (int i = 0; i + size <= (int)sizeof buf; i += size) {
        int32_t r;
        uint64_t a;
        memcpy(&r, buf + i, 4), memcpy(&a, buf + i, 8);
        uint64_t t = wide ? a : x + (uint64_t)(int64_t)r;
        if (t < lo || t >= hi) {
          more = 0;
          break;
        }
        ++*found;
        if (inside(t, addr, len))
          return 1;
      }
    }
  }
  return 0;
}

/* The address a memory operand (or lea) names without a register: RIP-
 * relative or absolute; 0 if it uses one. */
static uint64_t fixed_addr(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *op,
                           uint64_t at) {
  if (op->type != ZYDIS_OPERAND_TYPE_MEMORY || op->mem.segment == ZYDIS_REGISTER_FS ||
      op->mem.segment == ZYDIS_REGISTER_GS)
    return 0;
  if (op->mem.base == ZYDIS_REGISTER_RIP && op->mem.index == ZYDIS_REGISTER_NONE)
    return at + in->length + (uint64_t)op->mem.disp.value;
  if (op->mem.base == ZYDIS_REGISTER_NONE && op->mem.disp.has_displacement)
    return (uint64_t)op->mem.disp.value;
  return 0;
}

/* Can a branch inside [lo, hi) land strictly inside (addr, addr+len)?
 * Relative branches; addresses taken of code inside the function; jump
 * tables found from the data addresses the code names.  BRANCH_UNKNOWN:
 * no such branch was found, but the function jumps through a register or
 * memory and no table was found for it. */
enum { BRANCH_NONE, BRANCH_INTO, BRANCH_UNKNOWN };
static int branch_into(tramp_set *s, uint64_t lo, uint64_t hi, uint64_t addr, int len) {
  if (!lo || hi <= lo || hi - lo > (1 << 20))
    return BRANCH_UNKNOWN;
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  int indirect = 0, found = 0;
  for (uint64_t p = lo; p < hi;) {
    size_t room = hi - p;
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&s->dec, (const void *)p, room < 15 ? room : 15,
                                             &in, ops))) {
      p++;
      continue;
    }
    if (in.raw.imm[0].is_relative) {
      if (inside(rel_target(&in, ops, p), addr, len))
        return BRANCH_INTO;
    } else if (in.meta.category == ZYDIS_CATEGORY_UNCOND_BR) {
      indirect = 1; /* jmp reg / jmp [mem] */
    }
    for (int i = 0; i < in.operand_count_visible; i++) {
      uint64_t x = fixed_addr(&in, &ops[i], p);
      if (!x)
        continue;
      if (x >= lo && x < hi) { /* code whose address is taken */
        if (inside(x, addr, len))
          return BRANCH_INTO;
        continue;
      }
      if (table_into(x, lo, hi, addr, len, &found))
        return BRANCH_INTO;
    }
    p += in.length;
  }
  return indirect && !found ? BRANCH_UNKNOWN : BRANCH_NONE;
}

/* ---- trampoline code ---- */

typedef struct emit {
  uint8_t *p;
} emit;

static void b(emit *e, int n, ...) {
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++)
    *e->p++ = (uint8_t)va_arg(ap, int);
  va_end(ap);
}
static void u32(emit *e, uint32_t v) { memcpy(e->p, &v, 4), e->p += 4; }
static void u64(emit *e, uint64_t v) { memcpy(e->p, &v, 8), e->p += 8; }

#define XMMAREA 272 /* rip, rsp, 16 xmm */
#define GPRAREA 128 /* 15 registers and rflags */

/* pushfq, push every GPR, room for rip/rsp, save xmm, cld.  At a
 * function entry only xmm0-7 can be live (arguments) and DF is clear. */
static void emit_save(emit *e, int entry) {
  b(e, 1, 0x9c);
  static const uint8_t pushes[] = {0x50, 0x53, 0x51, 0x52, 0x56, 0x57, 0x55}; /* rax..rbp */
  for (size_t i = 0; i < sizeof pushes; i++)
    b(e, 1, pushes[i]);
  for (int r = 0; r < 8; r++)
    b(e, 2, 0x41, 0x50 + r); /* r8..r15 */
  b(e, 3, 0x48, 0x81, 0xec), u32(e, XMMAREA);
  for (int x = 0; x < (entry ? 8 : 16); x++) { /* movdqu [rsp+16+16x], xmmx */
    b(e, 1, 0xf3);
    if (x >= 8)
      b(e, 1, 0x44);
    b(e, 4, 0x0f, 0x7f, 0x84 | (x & 7) << 3, 0x24), u32(e, 16 + 16 * x);
  }
  if (!entry)
    b(e, 1, 0xfc);
}

/* Inside a function (not at an entry) any vector state may be live,
 * upper halves and AVX-512 included, and the hook's C (libc's string
 * functions) may change it: all of it is saved with XSAVE below the frame,
 * which r12 then points to. */
static void emit_xsave(emit *e, uint32_t size) {
  b(e, 3, 0x49, 0x89, 0xe4);                   /* mov r12, rsp */
  b(e, 3, 0x48, 0x81, 0xec), u32(e, size + 64); /* sub rsp, size+64 */
  b(e, 4, 0x48, 0x83, 0xe4, 0xc0);             /* and rsp, -64 */
  b(e, 2, 0x31, 0xc0);                         /* xor eax, eax */
  for (int k = 0; k < 8; k++)                  /* zero the XSAVE header */
    b(e, 4, 0x48, 0x89, 0x84, 0x24), u32(e, 512 + 8 * k);
  b(e, 5, 0xb8, 0xff, 0xff, 0xff, 0xff);       /* mov eax, -1 */
  b(e, 5, 0xba, 0xff, 0xff, 0xff, 0xff);       /* mov edx, -1 */
  b(e, 4, 0x0f, 0xae, 0x24, 0x24);             /* xsave [rsp] */
}

static void emit_xrstor(emit *e) {
  b(e, 5, 0xb8, 0xff, 0xff, 0xff, 0xff); /* mov eax, -1 */
  b(e, 5, 0xba, 0xff, 0xff, 0xff, 0xff); /* mov edx, -1 */
  b(e, 4, 0x0f, 0xae, 0x2c, 0x24);       /* xrstor [rsp] */
  b(e, 3, 0x4c, 0x89, 0xe4);             /* mov rsp, r12 */
}

/* frame in rsi (rsp, or r12 after emit_xsave), call hook(arg, frame) on an
 * aligned stack; rbx keeps rsp. */
static void emit_call(emit *e, uint64_t hook, uint64_t arg, int frame_r12) {
  if (frame_r12)
    b(e, 3, 0x4c, 0x89, 0xe6);     /* mov rsi, r12 */
  else
    b(e, 3, 0x48, 0x89, 0xe6);     /* mov rsi, rsp */
  b(e, 2, 0x48, 0xbf), u64(e, arg); /* movabs rdi, arg */
  b(e, 3, 0x48, 0x89, 0xe3);       /* mov rbx, rsp */
  b(e, 4, 0x48, 0x83, 0xe4, 0xf0); /* and rsp, -16 */
  b(e, 2, 0x48, 0xb8), u64(e, hook); /* movabs rax, hook */
  b(e, 2, 0xff, 0xd0);             /* call rax */
  b(e, 3, 0x48, 0x89, 0xdc);       /* mov rsp, rbx */
}

/* The reverse.  At a function entry the flags are dead (the ABI keeps
 * none across a call), so the slow popfq is skipped. */
static void emit_restore(emit *e, int entry) {
  for (int x = 0; x < (entry ? 8 : 16); x++) { /* movdqu xmmx, [rsp+16+16x] */
    b(e, 1, 0xf3);
    if (x >= 8)
      b(e, 1, 0x44);
    b(e, 4, 0x0f, 0x6f, 0x84 | (x & 7) << 3, 0x24), u32(e, 16 + 16 * x);
  }
  b(e, 3, 0x48, 0x81, 0xc4), u32(e, XMMAREA);
  for (int r = 7; r >= 0; r--)
    b(e, 2, 0x41, 0x58 + r);
  static const uint8_t pops[] = {0x5d, 0x5f, 0x5e, 0x5a, 0x59, 0x5b, 0x58};
  for (size_t i = 0; i < sizeof pops; i++)
    b(e, 1, pops[i]);
  if (entry)
    b(e, 5, 0x48, 0x8d, 0x64, 0x24, 0x08); /* lea rsp,[rsp+8] */
  else
    b(e, 1, 0x9d);
}

/* mov rax, imm; mov [rsp], rax; lea rax, [rsp+off]; mov [rsp+8], rax */
static void emit_riprsp(emit *e, uint64_t rip, uint32_t off) {
  b(e, 2, 0x48, 0xb8), u64(e, rip);
  b(e, 4, 0x48, 0x89, 0x04, 0x24);
  b(e, 4, 0x48, 0x8d, 0x84, 0x24), u32(e, off);
  b(e, 5, 0x48, 0x89, 0x44, 0x24, 0x08);
}

static int emit_jmp(emit *e, uint64_t to) {
  int64_t rel = (int64_t)(to - ((uint64_t)e->p + 5));
  if (!fits32(rel))
    return -1;
  b(e, 1, 0xe9), u32(e, (uint32_t)(int32_t)rel);
  return 0;
}

/* The tail: the displaced instructions relocated, then jmp addr+len.
 * map[off] is where the instruction at addr+off went (if map). */
static int emit_tail(tramp_set *s, emit *e, uint64_t addr, int len, uint8_t *map) {
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  uint8_t *start = e->p;
  if (map)
    memset(map, 0xff, MAXDISP);
  for (int off = 0; off < len;) {
    if (decode(s, addr + off, &in, ops))
      return -1;
    if (map && e->p - start < 0xff)
      map[off] = (uint8_t)(e->p - start);
    int n = reloc_one(&in, ops, addr + off, (uint64_t)e->p, e->p);
    if (n < 0)
      return -1;
    e->p += n;
    off += in.length;
  }
  return emit_jmp(e, addr + len);
}

/* ---- public ---- */

tramp_set *tramp_open(int maxsites, char *err, size_t cap) {
  tramp_set *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, cap, "out of memory");
    return NULL;
  }
  s->maxsites = maxsites;
  s->sites = mmap(NULL, sizeof(tramp_site) * (size_t)maxsites, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->sites == MAP_FAILED) {
    free(s);
    snprintf(err, cap, "mmap: %s", strerror(errno));
    return NULL;
  }
  ZydisDecoderInit(&s->dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  /* tramp_move_handler's record of the threads it moved (it cannot allocate) */
  s->capmoved = 32768;
  s->moved = mmap(NULL, 2 * s->capmoved * sizeof *s->moved, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->moved == MAP_FAILED)
    s->moved = NULL, s->capmoved = 0;
  else
    s->sent = s->moved + s->capmoved;
  tsys_init();
  s->sync_core = syscall(SYS_membarrier, 64 /* REGISTER_..._SYNC_CORE */, 0, 0) == 0;
  unsigned a, bx, c, d;
  if (__get_cpuid(1, &a, &bx, &c, &d) && (c & (1u << 27)) && /* OSXSAVE */
      __get_cpuid_count(0xd, 0, &a, &bx, &c, &d) && bx >= 576 && bx < 65536)
    s->xsave = bx;
  /* The trap handler is installed once per process and kept: a late int3
   * hit after unpatch must still find its way. */
  if (!__atomic_exchange_n(&tramp_trap_set, s, __ATOMIC_SEQ_CST)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = tramp_trap_handler;
    /* SA_NODEFER: a probe's hook run from the handler may itself reach an
     * int3 (a nested hit, quietly skipped); with SIGTRAP blocked that
     * would kill the process. */
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    struct sigaction old;
    sigaction(SIGTRAP, &sa, &old);
    if (old.sa_sigaction != tramp_trap_handler)
      tramp_prev_trap = old;
    sa.sa_sigaction = tramp_move_handler;
    sigaction(MOVE_SIG, &sa, &old);
    if (old.sa_sigaction != tramp_move_handler)
      tramp_prev_move = old;
  }
  return s;
}

int tramp_site_how(const tramp_site *site) {
  return site->failed ? TRAMP_FAILED : site->how;
}

/* Choose how many bytes to displace for a jump: whole instructions, >= 5,
 * not running past the function or past an instruction ending the flow. */
static int jump_len(tramp_set *s, uint64_t addr, uint64_t fn_hi) {
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  int len = 0;
  while (len < 5) {
    if (decode(s, addr + len, &in, ops))
      return -1;
    len += in.length;
    if (len < 5 && ends_flow(&in))
      return -1;
  }
  if (len > MAXDISP || (fn_hi && addr + len > fn_hi))
    return -1;
  return len;
}

/* The live jump site whose displaced bytes hold addr strictly inside. */
static const tramp_site *live_jump_over(tramp_set *s, uint64_t addr) {
  for (int i = 0; i < s->nsites; i++) {
    const tramp_site *t = &s->sites[i];
    if (t->live && t->how == TRAMP_JUMP && inside(addr, t->addr, t->len))
      return t;
  }
  return NULL;
}

/* Does (addr, addr+len) hold a live site's address? */
static int covers_live(tramp_set *s, uint64_t addr, int len) {
  for (int i = 0; i < s->nsites; i++)
    if (s->sites[i].live && inside(s->sites[i].addr, addr, len))
      return 1;
  return 0;
}

static int build_jump(tramp_set *s, tramp_site *t, uint64_t fn_lo, uint64_t fn_hi, int entry,
                      int room) {
  int len = jump_len(s, t->addr, fn_hi);
  /* Code outside the function (another function's branch to a label
   * here, another probe point) may land within the bytes: a trap. */
  if (len < 0 || (room && len > room) || covers_live(s, t->addr, len))
    return -1;
  /* At a function's entry nothing inside branches back into the first
   * bytes in practice, and ENTER must stay fast; elsewhere, where the
   * branches cannot all be known, only a one-instruction jump is sure. */
  int br = branch_into(s, fn_lo, fn_hi, t->addr, len);
  ZydisDecodedInstruction first;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (br == BRANCH_INTO ||
      (br == BRANCH_UNKNOWN && !entry &&
       (decode(s, t->addr, &first, ops) || first.length < len)))
    return -1;
  uint8_t *code = code_alloc(s, t->addr, 1024);
  if (!code)
    return -1;
  uint8_t buf[1024];
  emit e = {buf};
  b(&e, 8, 0x48, 0x8d, 0xa4, 0x24, 0x80, 0xff, 0xff, 0xff); /* lea rsp,[rsp-128] */
  emit_save(&e, entry);
  emit_riprsp(&e, t->addr, XMMAREA + GPRAREA + 128);
  int xs = !entry && s->xsave;
  if (xs)
    emit_xsave(&e, s->xsave);
  emit_call(&e, (uint64_t)t->hook, (uint64_t)t->arg, xs);
  if (xs)
    emit_xrstor(&e);
  emit_restore(&e, entry);
  b(&e, 8, 0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00); /* lea rsp,[rsp+128] */
  /* Relocation fixes depend on where the bytes end up: the tail is
   * emitted in place (the chunk made writable for the moment). */
  size_t head = (size_t)(e.p - buf);
  uint64_t pg = (uint64_t)code & ~(uint64_t)4095;
  uint64_t end = ((uint64_t)code + 1024 + 4095) & ~(uint64_t)4095;
  if (mprotect((void *)pg, end - pg, PROT_READ | PROT_WRITE | PROT_EXEC))
    return -1;
  memcpy(code, buf, head);
  emit re = {code + head};
  int rc = emit_tail(s, &re, t->addr, len, t->tailmap);
  mprotect((void *)pg, end - pg, PROT_READ | PROT_EXEC);
  if (rc)
    return -1;
  t->len = (uint8_t)len;
  t->tramp = code;
  t->tail = code + head;
  t->how = TRAMP_JUMP;
  return 0;
}

static int build_trap(tramp_set *s, tramp_site *t) {
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  if (decode(s, t->addr, &in, ops))
    return -1;
  uint8_t *code = code_alloc(s, t->addr, 64);
  if (!code)
    return -1;
  uint64_t pg = (uint64_t)code & ~(uint64_t)4095;
  uint64_t end = ((uint64_t)code + 64 + 4095) & ~(uint64_t)4095;
  if (mprotect((void *)pg, end - pg, PROT_READ | PROT_WRITE | PROT_EXEC))
    return -1;
  emit e = {code};
  int rc = emit_tail(s, &e, t->addr, in.length, NULL);
  mprotect((void *)pg, end - pg, PROT_READ | PROT_EXEC);
  if (rc)
    return -1;
  t->len = in.length;
  t->tail = code;
  t->how = TRAMP_TRAP;
  return 0;
}

/* The instruction addr falls in, decoding [fn_lo, fn_hi) from its start
 * (addr itself when the function is unknown or undecodable there): an int3
 * or a jump written inside an instruction changes what it does, and is
 * never executed. */
static uint64_t boundary(tramp_set *s, uint64_t addr, uint64_t fn_lo, uint64_t fn_hi) {
  if (!fn_lo || addr <= fn_lo || addr >= fn_hi || fn_hi - fn_lo > (1 << 20))
    return addr;
  ZydisDecodedInstruction in;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  uint64_t p = fn_lo;
  while (p < addr) {
    if (decode(s, p, &in, ops))
      return addr; /* data in the code: cannot tell */
    if (p + in.length > addr)
      return p;
    p += in.length;
  }
  return addr;
}

tramp_site *tramp_prepare(tramp_set *s, uint64_t addr, uint64_t fn_lo, uint64_t fn_hi,
                          int flags, tramp_hook hook, void *arg, char *err, size_t cap) {
  tramp_site *old = tramp_find_site(s, addr);
  if (old && old->live) {
    snprintf(err, cap, "0x%llx: already patched", (unsigned long long)addr);
    return NULL;
  }
  if (!old && s->nsites == s->maxsites) {
    snprintf(err, cap, "too many probe points");
    return NULL;
  }
  const tramp_site *over = live_jump_over(s, addr);
  if (over) {
    snprintf(err, cap, "0x%llx: inside the %d bytes a jump for another probe point displaced"
             " at 0x%llx", (unsigned long long)addr, over->len, (unsigned long long)over->addr);
    return NULL;
  }
  uint64_t at = boundary(s, addr, fn_lo, fn_hi);
  if (at != addr) {
    snprintf(err, cap, "0x%llx: not an instruction boundary (inside the instruction at 0x%llx)",
             (unsigned long long)addr, (unsigned long long)at);
    return NULL;
  }
  int prot = page_prot(addr);
  if (!(prot & PROT_EXEC)) {
    snprintf(err, cap, "0x%llx: not in executable memory", (unsigned long long)addr);
    return NULL;
  }
  tramp_site nt;
  memset(&nt, 0, sizeof nt);
  nt.addr = addr, nt.hook = hook, nt.arg = arg, nt.prot = prot;
  memcpy(nt.orig, (const void *)addr, MAXDISP);
  int entry = (flags & TRAMP_ENTRY) || (fn_lo && fn_lo == addr);
  if (((flags & TRAMP_FORCE_TRAP) || build_jump(s, &nt, fn_lo, fn_hi, entry, (flags >> 8) & 0xff)) &&
      build_trap(s, &nt)) {
    snprintf(err, cap, "0x%llx: instruction cannot be relocated", (unsigned long long)addr);
    return NULL;
  }
  if (old) { /* an earlier load's site here: its slot serves again */
    *old = nt;
    return old;
  }
  tramp_site *t = &s->sites[s->nsites];
  *t = nt;
  /* Published (not live yet) before any int3 can point at it. */
  __atomic_store_n(&s->nsites, s->nsites + 1, __ATOMIC_RELEASE);
  return t;
}

tramp_site *tramp_patch(tramp_set *s, uint64_t addr, uint64_t fn_lo, uint64_t fn_hi,
                        int flags, tramp_hook hook, void *arg, char *err, size_t cap) {
  tramp_site *t = tramp_prepare(s, addr, fn_lo, fn_hi, flags, hook, arg, err, cap);
  if (t && tramp_commit(s, &t, 1) != 1) {
    snprintf(err, cap, "mprotect 0x%llx: %s", (unsigned long long)addr, strerror(errno));
    return NULL;
  }
  return t;
}

uint64_t tramp_ret_stub(tramp_set *s, tramp_ret_hook hook, void *arg) {
  uint8_t buf[1024];
  emit e = {buf};
  b(&e, 4, 0x48, 0x83, 0xec, 0x08); /* sub rsp,8: the slot `ret` will use */
  /* At a return only rax/rdx and xmm0/1 carry values and no flags are
   * live: the entry-style save will do. */
  emit_save(&e, 1);
  emit_riprsp(&e, 0, XMMAREA + GPRAREA + 8);
  emit_call(&e, (uint64_t)hook, (uint64_t)arg, 0);
  b(&e, 4, 0x48, 0x89, 0x84, 0x24), u32(&e, XMMAREA + GPRAREA); /* mov [slot], rax */
  emit_restore(&e, 1);
  /* Not `ret`: the return stack predictor is off by one here (the
   * function's own `ret` came to us), an indirect jump predicts better.
   * [rsp-8] is safe from signal frames, which skip the red zone. */
  b(&e, 5, 0x48, 0x8d, 0x64, 0x24, 0x08); /* lea rsp,[rsp+8] */
  b(&e, 4, 0xff, 0x64, 0x24, 0xf8);       /* jmp [rsp-8] */
  size_t n = (size_t)(e.p - buf);
  /* Anywhere will do; near some code keeps it in the chunk list. */
  uint8_t *code = code_alloc(s, (uint64_t)(void *)tramp_ret_stub, n);
  if (!code)
    return 0;
  uint64_t pg = (uint64_t)code & ~(uint64_t)4095;
  uint64_t end = ((uint64_t)code + n + 4095) & ~(uint64_t)4095;
  if (mprotect((void *)pg, end - pg, PROT_READ | PROT_WRITE | PROT_EXEC))
    return 0;
  memcpy(code, buf, n);
  mprotect((void *)pg, end - pg, PROT_READ | PROT_EXEC);
  return (uint64_t)code;
}

int tramp_guard_install(void) {
  if (__atomic_exchange_n(&tramp_guard_on, 1, __ATOMIC_SEQ_CST))
    return 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = tramp_segv_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, &tramp_prev_segv) || sigaction(SIGBUS, &sa, &tramp_prev_bus))
    return -1;
  return 0;
}

void tramp_guard_remove(void) {
  if (!tramp_guard_ok())
    return;
  sigaction(SIGSEGV, &tramp_prev_segv, NULL);
  sigaction(SIGBUS, &tramp_prev_bus, NULL);
  __atomic_store_n(&tramp_guard_on, 0, __ATOMIC_SEQ_CST);
}

int tramp_guard_ok(void) {
  struct sigaction cur;
  return tramp_guard_on && sigaction(SIGSEGV, NULL, &cur) == 0 &&
         (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == tramp_segv_handler;
}

