/*
 * exec.c - the VP interpreter: one probe fire of a loaded image.
 *
 * A stack machine dispatched with computed goto.  All of its state lives
 * in one struct on the C stack (value stack, string arena, call and handler
 * stacks), so a fire never calls malloc or takes a lock: it can run inside
 * a probed process, in a signal handler.  Image indices were checked by
 * vpi_load; what depends on the path taken (call depth, stack and arena
 * space, budget) is checked here.
 */
#include <sched.h>
#include <stdarg.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include "vp/image.h"

typedef struct vpx_call {
  const uint32_t *ret;
  uint64_t *fp;
  const vpi_func *f;
  uint32_t sbase, hbase, retslot;
} vpx_call;

typedef struct vpx_handler {
  const uint32_t *pc;
  uint64_t *sp;
  uint32_t depth, mask;
} vpx_handler;

typedef struct vpx {
  rt_thread *th;
  const vp_image *img;
  const vp_fire *fire;
  uint64_t *gints;
  char (*gstrs)[RT_STR];
  const char *probename;
  uint64_t tid; /* THREADID, asked of the kernel once per fire */
  int exc;
  char why[160];
  vpx_call calls[VPI_MAX_DEPTH + 1];
  vpx_handler hs[VPI_MAX_HANDLERS];
  uint64_t stk[VPI_MAX_STACK];
  char arena[VPI_MAX_SLOTS][RT_STR];
} vpx;

static const char *sref(vpx *x, uint64_t r) {
  uint32_t i = (uint32_t)r;
  switch (r >> 32) {
  case VPX_REF_POOL: {
    uint32_t n = x->img->h->pool_len;
    return x->img->pool + (i < n ? i : n - 1);
  }
  case VPX_REF_GLOBAL:
    return i < x->img->h->nstrs ? x->gstrs[i] : "";
  case VPX_REF_SLOT:
    return i < VPI_MAX_SLOTS ? x->arena[i] : "";
  case VPX_REF_PROBENAME:
    return x->probename;
  default:
    return "";
  }
}

/* Where a write through reference r goes; literals are not writable, so
 * a write to one lands in a scratch buffer nobody reads. */
static char *wref(vpx *x, uint64_t r, char *scratch) {
  uint32_t i = (uint32_t)r;
  if (r >> 32 == VPX_REF_GLOBAL && i < x->img->h->nstrs)
    return x->gstrs[i];
  if (r >> 32 == VPX_REF_SLOT && i < VPI_MAX_SLOTS)
    return x->arena[i];
  return scratch;
}

static void scopy(char *dst, const char *src) {
  size_t n = strnlen(src, RT_STR - 1);
  memmove(dst, src, n);
  dst[n] = 0;
}

static uint64_t reg(vpx *x, int r) {
  const vp_target *t = x->fire->target;
  uint64_t v;
  if (t && t->reg && t->reg(t->self, r, &v) == 0)
    return v;
  switch (r) {
  case VP_REG_TSC:
  case VP_REG_PTSC:
    return __rdtsc();
  case VP_REG_TSC_HZ:
    return x->img->tsc_hz;
  case VP_REG_PCPUID: {
    int c = sched_getcpu();
    return c < 0 ? 0 : (uint64_t)c;
  }
  case VP_REG_THREADID:
    if (!x->tid)
      x->tid = (uint64_t)syscall(SYS_gettid);
    return x->tid;
  case VP_REG_NUMVCPUS:
    return 1;
  default:
    return 0;
  }
}

/* Format a message: kinds says each argument's type, 's' or 'i'. */
static void fmt(char *out, size_t cap, const char *f, const char *kinds,
                ...) {
  rt_arg a[4];
  int n = 0;
  va_list ap;
  va_start(ap, kinds);
  for (; kinds[n] && n < 4; n++) {
    a[n].is_str = kinds[n] == 's';
    a[n].s = a[n].is_str ? va_arg(ap, const char *) : NULL;
    a[n].i = a[n].is_str ? 0 : va_arg(ap, uint64_t);
  }
  va_end(ap);
  rt_format(out, cap, f, a, n);
}

static const char *bag_name(vpx *x, uint32_t id) {
  const vpi_header *h = x->img->h;
  for (uint32_t i = 0; i < h->ndefs; i++)
    if (x->img->defs[i].kind == VPI_DEF_BAG && x->img->defs[i].index == id)
      return x->img->pool + x->img->defs[i].name;
  return "?";
}

/* An uncaught exception: one line on the error stream. */
static void report(vpx *x) {
  char line[RT_STR + 200];
  rt_arg a[3] = {{1, 0, x->probename}, {1, 0, vp_exc_name(x->exc)},
                 {1, 0, x->why}};
  size_t len = rt_format(line, sizeof line, "vprobe: %s: %s: %s\n", a, 3);
  rt_emit(x->th, RT_ERR, line, len);
}

static int read_mem(vpx *x, int model, uint64_t addr, void *buf, size_t n) {
  const vp_target *t = x->fire->target;
  if (!t || !t->read)
    return -1;
  return t->read(t->self, model, addr, buf, n);
}

_Static_assert(RT_STR == VP_STR_MAX, "a VP string fills one runtime string slot");

int vp_read_str(int (*read)(void *self, int model, uint64_t addr, void *buf, size_t n),
                void *self, int model, uint64_t addr, char *dst) {
  size_t got = 0;
  while (got < VP_STR_MAX - 1) {
    size_t want = VP_STR_MAX - 1 - got, room = 4096 - ((addr + got) & 4095);
    if (room < want)
      want = room;
    if (read(self, model, addr + got, dst + got, want) < 0) {
      if (got == 0)
        return -1;
      break;
    }
    if (memchr(dst + got, 0, want))
      return 0;
    got += want;
  }
  dst[got] = 0;
  return 0;
}

static int read_str(vpx *x, int model, uint64_t addr, char *dst) {
  const vp_target *t = x->fire->target;
  if (!t || !t->read)
    return -1;
  return vp_read_str(t->read, t->self, model, addr, dst);
}

static const char *const fn_names[VP_FN_COUNT] = {
  "getguest", "getgueststr", "getguestphys", "gueststack", "getvmx",
  "getvmxstr", "vmxstack", "sym2addr", "offatret", "offatstrcpy",
  "curprocname", "curpid", "vmname", "setgpr", "setphysgpr", "setvmw", "setguest",
  "genmce", "skipfunction", "setwatchpoint", "removewatchpoint"};

int vp_run(rt_thread *th, const vp_image *img, const vp_fire *fire) {
  if (!th || !img || !fire || fire->probe < 0 ||
      (uint32_t)fire->probe >= img->h->nprobes)
    return VP_EXC_NONE;
  vpx x_, *x = &x_;
  x->th = th;
  x->img = img;
  x->fire = fire;
  x->exc = VP_EXC_NONE;
  x->tid = 0;
  x->why[0] = 0;
  x->gints = img->h->nints ? rt_thread_ints(th) : NULL;
  x->gstrs = img->h->nstrs ? rt_thread_strs(th) : NULL;
  const vpi_func *f = img->entry[fire->probe];
  x->probename = fire->probename ? fire->probename
                                 : img->pool + img->probes[fire->probe].name;
  const uint32_t budget = img->h->budget, maxdepth = img->h->max_depth;
  const uint32_t *base = img->code + f->start, *pc = base;
  uint64_t *fp = x->stk, *sp = fp + f->nlocals;
  uint32_t sbase = 0, depth = 0, nh = 0, cost = f->cost;
  for (uint32_t i = 0; i < f->nslots; i++)
    x->arena[i][0] = 0;
  uint32_t w;
  uint64_t a, b;
  char scratch[RT_STR];

  static const void *const labels[256] = {
    [OP_PUSHI] = &&L_PUSHI, [OP_PUSHK] = &&L_PUSHK, [OP_PUSHS] = &&L_PUSHS,
    [OP_PROBENAME] = &&L_PROBENAME, [OP_GETG] = &&L_GETG,
    [OP_SETG] = &&L_SETG, [OP_GETSH] = &&L_GETSH, [OP_SETSH] = &&L_SETSH,
    [OP_GETL] = &&L_GETL, [OP_SETL] = &&L_SETL, [OP_GSTR] = &&L_GSTR,
    [OP_LSTR] = &&L_LSTR, [OP_SETSTR] = &&L_SETSTR, [OP_REG] = &&L_REG,
    [OP_ARG] = &&L_ARG, [OP_POP] = &&L_POP, [OP_DROP] = &&L_DROP,
    [OP_JMP] = &&L_JMP, [OP_JZ] = &&L_JZ, [OP_JNZ] = &&L_JNZ,
    [OP_LOOP] = &&L_LOOP, [OP_BOOL] = &&L_BOOL, [OP_NOT] = &&L_NOT,
    [OP_BNOT] = &&L_BNOT, [OP_NEG] = &&L_NEG, [OP_SEXT] = &&L_SEXT,
    [OP_ZEXT] = &&L_ZEXT, [OP_ADD] = &&L_ADD, [OP_SUB] = &&L_SUB,
    [OP_MUL] = &&L_MUL, [OP_DIV] = &&L_DIV, [OP_MOD] = &&L_MOD,
    [OP_SHL] = &&L_SHL, [OP_SHR] = &&L_SHR, [OP_SAR] = &&L_SAR,
    [OP_XOR] = &&L_XOR, [OP_OR] = &&L_OR, [OP_AND] = &&L_AND,
    [OP_SDIV] = &&L_SDIV, [OP_SMOD] = &&L_SMOD, [OP_GT] = &&L_GT,
    [OP_LT] = &&L_LT, [OP_GE] = &&L_GE, [OP_LE] = &&L_LE, [OP_EQ] = &&L_EQ,
    [OP_NE] = &&L_NE, [OP_SGT] = &&L_SGT, [OP_SLT] = &&L_SLT,
    [OP_SGE] = &&L_SGE, [OP_SLE] = &&L_SLE, [OP_STREQ] = &&L_STREQ,
    [OP_STRNE] = &&L_STRNE, [OP_STRCMP] = &&L_STRCMP, [OP_CALL] = &&L_CALL,
    [OP_RET] = &&L_RET, [OP_PRINTF] = &&L_PRINTF,
    [OP_SPRINTF] = &&L_SPRINTF, [OP_LOGINT] = &&L_LOGINT,
    [OP_LOGSTR] = &&L_LOGSTR, [OP_SYSTIME] = &&L_SYSTIME,
    [OP_CYC2MS] = &&L_CYC2MS, [OP_WRITEINT] = &&L_WRITEINT,
    [OP_FETCHADD] = &&L_FETCHADD, [OP_CMPXCHG] = &&L_CMPXCHG,
    [OP_LOAD] = &&L_LOAD, [OP_LOADSTR] = &&L_LOADSTR, [OP_AGGR] = &&L_AGGR,
    [OP_AGGRINC] = &&L_AGGRINC, [OP_AGGRPRINT] = &&L_AGGRPRINT,
    [OP_AGGRCLEAR] = &&L_AGGRCLEAR, [OP_BAGINS] = &&L_BAGINS,
    [OP_BAGREM] = &&L_BAGREM, [OP_BAGNEXT] = &&L_BAGNEXT,
    [OP_TCALL] = &&L_TCALL, [OP_TRY] = &&L_TRY, [OP_ENDTRY] = &&L_ENDTRY,
    [OP_JEXC] = &&L_JEXC, [OP_RAISE] = &&L_RAISE,
  };
#define NEXT(n)                                                                \
  do {                                                                         \
    pc += (n);                                                                 \
    w = *pc;                                                                   \
    goto *labels[w & 0xff];                                                    \
  } while (0)
#define A (w >> 8)
#define SPACE rt_thread_space(th) /* only the handlers that need it ask */
#define RAISE(e)                                                               \
  do {                                                                         \
    x->exc = (e);                                                              \
    goto L_throw;                                                              \
  } while (0)
#define BIN(name, expr)                                                        \
  L_##name : {                                                                 \
    uint64_t b_ = *--sp, a_ = sp[-1];                                          \
    sp[-1] = (expr);                                                           \
  }                                                                            \
  NEXT(1);

  if (cost > budget) {
    fmt(x->why, sizeof x->why, "budget of %d exceeded (runaway loop?)", "i",
        (uint64_t)budget);
    x->exc = VP_EXC_BUDGET;
    goto L_uncaught;
  }
  NEXT(0);

L_PUSHI:
  *sp++ = (uint64_t)(int64_t)((int32_t)w >> 8);
  NEXT(1);
L_PUSHK:
  *sp++ = (uint64_t)pc[1] | (uint64_t)pc[2] << 32;
  NEXT(3);
L_PUSHS:
  *sp++ = VPX_REF(VPX_REF_POOL, A);
  NEXT(1);
L_PROBENAME:
  *sp++ = VPX_REF(VPX_REF_PROBENAME, 0);
  NEXT(1);
L_GETG:
  *sp++ = x->gints[A];
  NEXT(1);
L_SETG:
  x->gints[A] = sp[-1];
  NEXT(1);
L_GETSH:
  *sp++ = __atomic_load_n(rt_shared_int(SPACE, A), __ATOMIC_SEQ_CST);
  NEXT(1);
L_SETSH:
  __atomic_store_n(rt_shared_int(SPACE, A), sp[-1], __ATOMIC_SEQ_CST);
  NEXT(1);
L_GETL:
  *sp++ = fp[A];
  NEXT(1);
L_SETL:
  fp[A] = sp[-1];
  NEXT(1);
L_GSTR:
  *sp++ = VPX_REF(VPX_REF_GLOBAL, A);
  NEXT(1);
L_LSTR:
  *sp++ = VPX_REF(VPX_REF_SLOT, sbase + A);
  NEXT(1);
L_SETSTR:
  b = *--sp;
  scopy(wref(x, sp[-1], scratch), sref(x, b));
  NEXT(1);
L_REG:
  *sp++ = reg(x, (int)A);
  NEXT(1);
L_ARG:
  *sp++ = fire->args[A];
  NEXT(1);
L_POP:
  sp--;
  NEXT(1);
L_DROP:
  sp -= A;
  NEXT(1);
L_JMP:
  pc = base + A;
  NEXT(0);
L_JZ:
  if (*--sp)
    NEXT(1);
  pc = base + A;
  NEXT(0);
L_JNZ:
  if (!*--sp)
    NEXT(1);
  pc = base + A;
  NEXT(0);
L_LOOP:
  cost += pc[1];
  if (cost > budget) {
    fmt(x->why, sizeof x->why, "budget of %d exceeded (runaway loop?)", "i",
        (uint64_t)budget);
    RAISE(VP_EXC_BUDGET);
  }
  pc = base + A;
  NEXT(0);
L_BOOL:
  sp[-1] = sp[-1] != 0;
  NEXT(1);
L_NOT:
  sp[-1] = sp[-1] == 0;
  NEXT(1);
L_BNOT:
  sp[-1] = ~sp[-1];
  NEXT(1);
L_NEG:
  sp[-1] = (uint64_t)0 - sp[-1];
  NEXT(1);
L_SEXT:
  sp[-1] = A == 8    ? (uint64_t)(int64_t)(int8_t)sp[-1]
           : A == 16 ? (uint64_t)(int64_t)(int16_t)sp[-1]
                     : (uint64_t)(int64_t)(int32_t)sp[-1];
  NEXT(1);
L_ZEXT:
  sp[-1] = A == 8 ? (uint8_t)sp[-1] : A == 16 ? (uint16_t)sp[-1]
                                              : (uint32_t)sp[-1];
  NEXT(1);
  BIN(ADD, a_ + b_)
  BIN(SUB, a_ - b_)
  BIN(MUL, a_ * b_)
  BIN(SHL, a_ << (b_ & 63))
  BIN(SHR, a_ >> (b_ & 63))
  BIN(SAR, (uint64_t)((int64_t)a_ >> (b_ & 63)))
  BIN(XOR, a_ ^ b_)
  BIN(OR, a_ | b_)
  BIN(AND, a_ & b_)
  BIN(GT, a_ > b_)
  BIN(LT, a_ < b_)
  BIN(GE, a_ >= b_)
  BIN(LE, a_ <= b_)
  BIN(EQ, a_ == b_)
  BIN(NE, a_ != b_)
  BIN(SGT, (int64_t)a_ > (int64_t)b_)
  BIN(SLT, (int64_t)a_ < (int64_t)b_)
  BIN(SGE, (int64_t)a_ >= (int64_t)b_)
  BIN(SLE, (int64_t)a_ <= (int64_t)b_)
  BIN(STREQ, strcmp(sref(x, a_), sref(x, b_)) == 0)
  BIN(STRNE, strcmp(sref(x, a_), sref(x, b_)) != 0)
  BIN(STRCMP, (uint64_t)(int64_t)strcmp(sref(x, a_), sref(x, b_)))
L_DIV:
L_MOD:
L_SDIV:
L_SMOD:
  b = *--sp;
  a = sp[-1];
  if (!b) {
    scopy(x->why, "division by zero");
    RAISE(VP_EXC_DIVZERO);
  }
  switch (w & 0xff) {
  case OP_DIV: sp[-1] = a / b; break;
  case OP_MOD: sp[-1] = a % b; break;
  default:
    if ((int64_t)b == -1) /* INT64_MIN / -1 overflows in C */
      sp[-1] = (w & 0xff) == OP_SDIV ? (uint64_t)0 - a : 0;
    else if ((w & 0xff) == OP_SDIV)
      sp[-1] = (uint64_t)((int64_t)a / (int64_t)b);
    else
      sp[-1] = (uint64_t)((int64_t)a % (int64_t)b);
  }
  NEXT(1);

L_CALL: {
  const vpi_func *g = &img->funcs[A];
  uint64_t *nfp = sp - g->nparams;
  uint32_t nsb = sbase + f->nslots;
  if (depth >= maxdepth) {
    fmt(x->why, sizeof x->why, "call depth %d exceeded", "i",
        (uint64_t)maxdepth);
    RAISE(VP_EXC_DEPTH);
  }
  if (nfp + g->nlocals + g->maxstack > x->stk + VPI_MAX_STACK ||
      nsb + g->nslots > VPI_MAX_SLOTS) {
    fmt(x->why, sizeof x->why, "stack space exceeded at call depth %d", "i",
        (uint64_t)depth);
    RAISE(VP_EXC_DEPTH);
  }
  cost += 10 + g->cost;
  if (cost > budget) {
    fmt(x->why, sizeof x->why, "budget of %d exceeded (runaway loop?)", "i",
        (uint64_t)budget);
    RAISE(VP_EXC_BUDGET);
  }
  x->calls[depth] = (vpx_call){pc + 2, fp, f, sbase, nh, pc[1]};
  depth++;
  f = g;
  fp = nfp;
  for (uint32_t i = g->nparams; i < g->nlocals; i++)
    fp[i] = 0;
  sp = fp + g->nlocals;
  sbase = nsb;
  for (uint32_t i = 0; i < g->nslots; i++)
    x->arena[sbase + i][0] = 0;
  pc = base = img->code + g->start;
  NEXT(0);
}
L_RET: {
  uint64_t v = sp[-1];
  if (!depth)
    return VP_EXC_NONE;
  vpx_call *c = &x->calls[--depth];
  if (f->ret_str) {
    char *dst = x->arena[c->sbase + c->retslot];
    scopy(dst, sref(x, v));
    v = VPX_REF(VPX_REF_SLOT, c->sbase + c->retslot);
  }
  sp = fp;
  *sp++ = v;
  nh = c->hbase;
  f = c->f;
  fp = c->fp;
  sbase = c->sbase;
  base = img->code + f->start;
  pc = c->ret;
  NEXT(0);
}

L_PRINTF:
L_SPRINTF: {
  uint32_t k = A, mask = pc[1];
  rt_arg args[VPI_MAX_ARGS];
  uint64_t *v = sp - k;
  for (uint32_t i = 0; i < k; i++) {
    args[i].is_str = (mask >> i) & 1;
    args[i].i = v[i];
    args[i].s = args[i].is_str ? sref(x, v[i]) : NULL;
  }
  if ((w & 0xff) == OP_PRINTF) {
    char out[1024];
    size_t n = rt_format(out, sizeof out, args[0].s ? args[0].s : "",
                         args + 1, (int)k - 1);
    rt_emit(th, RT_OUT, out, n);
    sp = v;
  } else {
    char out[RT_STR];
    rt_format(out, sizeof out, args[0].s ? args[0].s : "", args + 1,
              (int)k - 1);
    sp = v - 1;
    scopy(wref(x, *sp, scratch), out);
  }
  *sp++ = 1;
  NEXT(2);
}
L_LOGINT: {
  char out[32];
  rt_arg arg = {0, sp[-1], NULL};
  size_t n = rt_format(out, sizeof out, "%d", &arg, 1);
  rt_emit(th, RT_OUT, out, n);
  sp[-1] = 1;
  NEXT(1);
}
L_LOGSTR: {
  const char *s = sref(x, sp[-1]);
  rt_emit(th, RT_OUT, s, strnlen(s, RT_STR - 1));
  sp[-1] = 1;
  NEXT(1);
}
L_SYSTIME: {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  *sp++ = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
  NEXT(1);
}
L_CYC2MS: {
  uint64_t hz = img->tsc_hz, c = sp[-1];
  sp[-1] = hz ? (uint64_t)((unsigned __int128)c * 1000u / hz) : 0;
  NEXT(1);
}
L_WRITEINT: {
  unsigned char buf[8];
  b = *--sp;
  a = sp[-1];
  uint32_t n = b < 1 ? 1 : b > 8 ? 8 : (uint32_t)b;
  for (uint32_t i = 0; i < n; i++)
    buf[i] = (unsigned char)(a >> (8 * i));
  rt_emit(th, RT_BIN, buf, n);
  sp[-1] = 1;
  NEXT(1);
}
L_FETCHADD:
  if (A >> 23) {
    sp[-1] = __atomic_fetch_add(rt_shared_int(SPACE, A & 0x7fffff),
                                sp[-1], __ATOMIC_SEQ_CST);
  } else {
    a = x->gints[A];
    x->gints[A] = a + sp[-1];
    sp[-1] = a;
  }
  NEXT(1);
L_CMPXCHG:
  b = *--sp;
  a = sp[-1];
  if (A >> 23) {
    sp[-1] = __atomic_compare_exchange_n(
        rt_shared_int(SPACE, A & 0x7fffff), &a, b, 0, __ATOMIC_SEQ_CST,
        __ATOMIC_SEQ_CST);
  } else {
    int ok = x->gints[A] == a;
    if (ok)
      x->gints[A] = b;
    sp[-1] = (uint64_t)ok;
  }
  NEXT(1);
L_LOAD: {
  uint32_t n = A & 0xff;
  uint64_t v = 0;
  a = sp[-1];
  if (read_mem(x, (int)(A >> 8), a, &v, n) < 0) {
    fmt(x->why, sizeof x->why, "cannot read %d bytes at 0x%x", "ii",
        (uint64_t)n, a);
    RAISE(VP_EXC_MEM);
  }
  sp[-1] = v; /* little-endian: the low n bytes, zero-extended */
  NEXT(1);
}
L_LOADSTR:
  a = *--sp;
  if (read_str(x, (int)A, a, scratch) < 0) {
    fmt(x->why, sizeof x->why, "cannot read a string at 0x%x", "i", a);
    RAISE(VP_EXC_MEM);
  }
  {
    char tmp[RT_STR];
    scopy(tmp, scratch);
    scopy(wref(x, sp[-1], scratch), tmp);
  }
  sp[-1] = 1;
  NEXT(1);
L_AGGR:
L_AGGRINC: {
  const vpi_aggr *g = &img->aggrs[A];
  int add = (w & 0xff) == OP_AGGR;
  uint64_t *v = sp - g->nint - g->nstr - add;
  const char *sk[4];
  for (uint32_t i = 0; i < g->nstr; i++)
    sk[i] = sref(x, v[g->nint + i]);
  if (add)
    rt_aggr_add(th, A, v, sk, (int64_t)sp[-1]);
  else
    rt_aggr_inc(th, A, v, sk);
  sp = v;
  *sp++ = 1;
  NEXT(1);
}
L_AGGRPRINT: {
  const char *f_ = NULL;
  if ((A >> 17) & 1)
    f_ = sref(x, *--sp);
  rt_aggr_print(th, A & 0xffff, f_, (A >> 16) & 1);
  *sp++ = 1;
  NEXT(1);
}
L_AGGRCLEAR:
  rt_aggr_clear(SPACE, A);
  *sp++ = 1;
  NEXT(1);
L_BAGINS:
  b = *--sp;
  a = sp[-1];
  if (rt_bag_insert(SPACE, A & 0xffff, a, b) == 0) {
    sp[-1] = 1;
  } else if ((A >> 16) & 1) {
    fmt(x->why, sizeof x->why, "bag '%s' is full", "s",
        bag_name(x, A & 0xffff));
    RAISE(VP_EXC_BAGFULL);
  } else {
    sp[-1] = 0;
  }
  NEXT(1);
L_BAGREM:
  a = sp[-1];
  if (rt_bag_remove(SPACE, A, a, &sp[-1]) < 0) {
    fmt(x->why, sizeof x->why, "bag '%s' has no key 0x%x", "si",
        bag_name(x, A), a);
    RAISE(VP_EXC_BAGEMPTY);
  }
  NEXT(1);
L_BAGNEXT: {
  uint32_t cur = (uint32_t)fp[pc[1] & 0xff];
  if (!rt_bag_next(SPACE, A, &cur, &a, &b)) {
    pc = base + (pc[1] >> 8);
    NEXT(0);
  }
  fp[pc[1] & 0xff] = cur;
  *sp++ = a;
  *sp++ = b;
  NEXT(2);
}
L_TCALL: {
  uint32_t k = pc[1] & 0xff, mask = (pc[1] >> 8) & 0xffff, out = pc[1] >> 24;
  uint64_t iargs[VPI_MAX_ARGS], iret = 0;
  const char *sargs[VPI_MAX_ARGS];
  uint64_t *v = sp - k;
  for (uint32_t i = 0; i < k; i++) {
    int s = (mask >> i) & 1;
    iargs[i] = s ? 0 : v[i];
    sargs[i] = s ? sref(x, v[i]) : NULL;
  }
  char *sret = vp_fn_returns_str((int)A) ? x->arena[sbase + pc[2]] : scratch;
  sret[0] = 0;
  const vp_target *t = fire->target;
  int rc = t && t->call ? t->call(t->self, (int)A, iargs, sargs, (int)k,
                                  &iret, sret)
                        : 0;
  if (rc < 0) {
    fmt(x->why, sizeof x->why, "%s failed", "s", fn_names[A]);
    RAISE(-rc > 0 && -rc < VP_EXC_COUNT ? -rc : VP_EXC_MEM);
  }
  if (out) {
    char tmp[RT_STR];
    scopy(tmp, sret);
    scopy(wref(x, v[out - 1], scratch), tmp);
  }
  sp = v;
  *sp++ = vp_fn_returns_str((int)A) ? VPX_REF(VPX_REF_SLOT, sbase + pc[2]) : iret;
  NEXT(3);
}
L_TRY:
  if (nh >= VPI_MAX_HANDLERS) {
    scopy(x->why, "try blocks nested too deep");
    RAISE(VP_EXC_DEPTH);
  }
  x->hs[nh++] = (vpx_handler){base + A, sp, depth, pc[1]};
  NEXT(2);
L_ENDTRY: {
  uint32_t floor = depth ? x->calls[depth - 1].hbase : 0;
  nh = nh - floor >= A ? nh - A : floor;
  NEXT(1);
}
L_JEXC:
  if ((pc[1] >> x->exc) & 1)
    NEXT(2);
  pc = base + A;
  NEXT(0);
L_RAISE:
  goto L_throw;

L_throw:
  while (nh > 0) {
    vpx_handler *h = &x->hs[--nh];
    if (!((h->mask >> x->exc) & 1))
      continue;
    if (h->depth != depth) {
      vpx_call *c = &x->calls[h->depth];
      f = c->f;
      fp = c->fp;
      sbase = c->sbase;
      depth = h->depth;
      base = img->code + f->start;
    }
    sp = h->sp;
    pc = h->pc;
    NEXT(0);
  }
L_uncaught:
  report(x);
  return x->exc;
#undef NEXT
#undef A
#undef SPACE
#undef RAISE
#undef BIN
}
