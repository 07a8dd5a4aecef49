/*
 * image.c - program images: load and check bytes, and the accessors of
 * vp.h.  (Compiling text into an image is compile.c: the agent loads
 * images but never compiles, and links only this side.)
 *
 * vpi_load trusts nothing: every section lies inside the bytes, every
 * index names something that exists, every jump lands on an instruction of
 * the same function with the same operand stack depth on every path, and
 * no path under- or overflows the operand stack the function declares.
 * What the interpreter still checks at run time: call depth, value stack
 * and string arena space (recursion), handler count, string references.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <x86intrin.h>

#include "vp/image.h"

uint64_t vpi_tsc_hz(void) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  uint64_t t0 = __rdtsc();
  for (;;) {
    clock_gettime(CLOCK_MONOTONIC, &b);
    int64_t ns = (b.tv_sec - a.tv_sec) * 1000000000ll + (b.tv_nsec - a.tv_nsec);
    if (ns >= 5000000) {
      uint64_t t1 = __rdtsc();
      return (uint64_t)((double)(t1 - t0) * 1e9 / (double)ns);
    }
  }
}

/* ---- checking ---- */

typedef struct chk {
  const vp_image *img;
  const vpi_func *f;
  const uint32_t *code; /* the function's words */
  uint32_t n;
  char *err;
  size_t cap;
} chk;

static int bad(chk *k, uint32_t pc, const char *what) {
  snprintf(k->err, k->cap, "function %u, word %u: %s",
           (unsigned)(k->f - k->img->funcs), (unsigned)pc, what);
  return -1;
}

/* Stack effect and operand checks of the instruction at pc.  *jump gets a
 * target (or -1); *tdepth_delta the depth change on the jump edge relative
 * to the depth before the instruction; *flow 0 falls through, 1 never
 * falls through. */
static int effect(chk *k, uint32_t pc, int *pops, int *pushes, int64_t *jump,
                  int *jdelta, int *flow) {
  const vpi_header *h = k->img->h;
  const vpi_func *f = k->f;
  uint32_t w = k->code[pc], a = VPI_A(w), w2 = 0;
  int op = (int)(w & 0xff);
  if (pc + (uint32_t)vpi_op_len(op) > k->n)
    return bad(k, pc, "instruction runs past the end");
  if (vpi_op_len(op) > 1)
    w2 = k->code[pc + 1];
  *pops = 0;
  *pushes = 0;
  *jump = -1;
  *jdelta = 0;
  *flow = 0;
#define NEED(cond)                                                             \
  do {                                                                         \
    if (!(cond))                                                               \
      return bad(k, pc, "bad operand");                                        \
  } while (0)
  switch (op) {
  case OP_PUSHI: case OP_PUSHK: case OP_PROBENAME: *pushes = 1; break;
  case OP_PUSHS: NEED(a < h->pool_len); *pushes = 1; break;
  case OP_GETG: NEED(a < h->nints); *pushes = 1; break;
  case OP_SETG: NEED(a < h->nints); *pops = *pushes = 1; break;
  case OP_GETSH: NEED(a < h->nshared); *pushes = 1; break;
  case OP_SETSH: NEED(a < h->nshared); *pops = *pushes = 1; break;
  case OP_GETL: NEED(a < f->nlocals); *pushes = 1; break;
  case OP_SETL: NEED(a < f->nlocals); *pops = *pushes = 1; break;
  case OP_GSTR: NEED(a < h->nstrs); *pushes = 1; break;
  case OP_LSTR: NEED(a < f->nslots); *pushes = 1; break;
  case OP_REG: NEED(a < VP_REG_COUNT); *pushes = 1; break;
  case OP_ARG: NEED(a < VP_NARGS); *pushes = 1; break;
  case OP_POP: *pops = 1; break;
  case OP_DROP: *pops = (int)a; break;
  case OP_JMP: *jump = a; *flow = 1; break;
  case OP_LOOP: NEED(w2 >= 1); *jump = a; *flow = 1; break;
  case OP_JZ: case OP_JNZ: *pops = 1; *jump = a; *jdelta = -1; break;
  case OP_BOOL: case OP_NOT: case OP_BNOT: case OP_NEG:
  case OP_LOGINT: case OP_LOGSTR: case OP_CYC2MS:
    *pops = *pushes = 1; break;
  case OP_SEXT: case OP_ZEXT:
    NEED(a == 8 || a == 16 || a == 32); *pops = *pushes = 1; break;
  case OP_SETSTR: case OP_STRCMP: case OP_WRITEINT: *pops = 2; *pushes = 1;
    break;
  case OP_CALL: {
    NEED(a < h->nfuncs);
    const vpi_func *g = &k->img->funcs[a];
    NEED(!g->ret_str || w2 < f->nslots);
    *pops = (int)g->nparams;
    *pushes = 1;
    break;
  }
  case OP_RET: *pops = 1; *flow = 1; break;
  case OP_RAISE: *flow = 1; break;
  case OP_PRINTF: NEED(a >= 1 && a < VPI_MAX_ARGS); *pops = (int)a;
    *pushes = 1; break;
  case OP_SPRINTF: NEED(a >= 1 && a < VPI_MAX_ARGS); *pops = (int)a + 1;
    *pushes = 1; break;
  case OP_SYSTIME: *pushes = 1; break;
  case OP_FETCHADD: case OP_CMPXCHG:
    NEED((a >> 23) ? (a & 0x7fffff) < h->nshared : a < h->nints);
    *pops = op == OP_FETCHADD ? 1 : 2; *pushes = 1; break;
  case OP_LOAD: {
    uint32_t b = a & 0xff;
    NEED((b == 1 || b == 2 || b == 4 || b == 8) && (a >> 8) <= VP_MEM_VMK);
    *pops = *pushes = 1;
    break;
  }
  case OP_LOADSTR: NEED(a <= VP_MEM_VMK); *pops = 2; *pushes = 1; break;
  case OP_AGGR: case OP_AGGRINC: {
    NEED(a < h->naggrs);
    const vpi_aggr *g = &k->img->aggrs[a];
    *pops = g->nint + g->nstr + (op == OP_AGGR);
    *pushes = 1;
    break;
  }
  case OP_AGGRPRINT: NEED((a & 0xffff) < h->naggrs);
    *pops = (a >> 17) & 1; *pushes = 1; break;
  case OP_AGGRCLEAR: NEED(a < h->naggrs); *pushes = 1; break;
  case OP_BAGINS: NEED((a & 0xffff) < h->nbags); *pops = 2; *pushes = 1;
    break;
  case OP_BAGREM: NEED(a < h->nbags); *pops = *pushes = 1; break;
  case OP_BAGNEXT:
    NEED(a < h->nbags && (w2 & 0xff) < f->nlocals);
    *pushes = 2; *jump = w2 >> 8; *jdelta = 0; break;
  case OP_TCALL: {
    uint32_t nargs = w2 & 0xff, out = w2 >> 24;
    NEED(a < VP_FN_COUNT && nargs <= VPI_MAX_ARGS && out <= nargs);
    NEED(!vp_fn_returns_str((int)a) || k->code[pc + 2] < f->nslots);
    *pops = (int)nargs;
    *pushes = 1;
    break;
  }
  case OP_TRY: case OP_JEXC: *jump = a; break;
  case OP_ENDTRY: break;
  default:
    if (op >= OP_ADD && op <= OP_STRNE) {
      *pops = 2;
      *pushes = 1;
      break;
    }
    return bad(k, pc, "unknown opcode");
  }
#undef NEED
  return 0;
}

static int check_func(chk *k) {
  const vpi_func *f = k->f;
  uint32_t n = k->n;
  int16_t *depth = malloc((size_t)n * sizeof *depth);
  uint8_t *start = calloc(n, 1);
  uint32_t *work = malloc((size_t)n * sizeof *work);
  int rc = -1;
  if (!depth || !start || !work)
    goto out;
  for (uint32_t pc = 0; pc < n; pc += (uint32_t)vpi_op_len(k->code[pc] & 0xff)) {
    start[pc] = 1;
    depth[pc] = -1;
  }
  uint32_t nw = 0;
  depth[0] = 0;
  work[nw++] = 0;
  while (nw) {
    uint32_t pc = work[--nw];
    for (;;) { /* follow the fall-through path */
      int pops, pushes, jd, flow;
      int64_t jump;
      if (effect(k, pc, &pops, &pushes, &jump, &jd, &flow) < 0)
        goto out;
      int d = depth[pc];
      if (d < pops) {
        bad(k, pc, "operand stack underflow");
        goto out;
      }
      int nd = d - pops + pushes;
      if (nd > (int)f->maxstack) {
        bad(k, pc, "operand stack overflow");
        goto out;
      }
      if (jump >= 0) {
        int td = d + jd;
        if ((uint64_t)jump >= n || !start[jump]) {
          bad(k, pc, "jump outside the function");
          goto out;
        }
        /* Only LOOP goes backwards, and it charges the budget: no other
         * path can make a fire run forever. */
        int back = (k->code[pc] & 0xff) == OP_LOOP;
        if (back ? (uint32_t)jump > pc : (uint32_t)jump <= pc) {
          bad(k, pc, "jump in the wrong direction");
          goto out;
        }
        if (depth[jump] < 0) {
          depth[jump] = (int16_t)td;
          work[nw++] = (uint32_t)jump;
        } else if (depth[jump] != td) {
          bad(k, pc, "stack depth differs at a jump target");
          goto out;
        }
      }
      if (flow)
        break;
      uint32_t next = pc + (uint32_t)vpi_op_len(k->code[pc] & 0xff);
      if (next >= n) {
        bad(k, pc, "code falls off the end of the function");
        goto out;
      }
      if (depth[next] >= 0) {
        if (depth[next] != nd) {
          bad(k, next, "stack depth differs where paths meet");
          goto out;
        }
        break;
      }
      depth[next] = (int16_t)nd;
      pc = next;
    }
  }
  rc = 0;
out:
  free(depth);
  free(start);
  free(work);
  return rc;
}

static int section(const vpi_header *h, uint32_t off, uint64_t count,
                   size_t size, size_t len) {
  return off % 8 == 0 && off >= sizeof *h && count < (1u << 24) &&
         (uint64_t)off + count * size <= len;
}

void vp_image_free(vp_image *img) {
  if (!img)
    return;
  free(img->bytes);
  free(img->entry);
  free(img->str_init_ptrs);
  free(img->aggr_names);
  free(img->shapes);
  free(img);
}

#define FAIL(msg)                                                              \
  do {                                                                         \
    snprintf(err, cap, "%s", msg);                                             \
    goto bad;                                                                  \
  } while (0)

vp_image *vpi_load(unsigned char *bytes, size_t len, char *err, size_t cap) {
  vp_image *img = calloc(1, sizeof *img);
  if (!img)
    abort();
  img->bytes = bytes;
  img->len = len;
  const vpi_header *h = (const vpi_header *)bytes;
  img->h = h;
  if (len < sizeof *h || ((uintptr_t)bytes & 7))
    FAIL("too short");
  if (h->magic != VPI_MAGIC || h->version != VPI_VERSION)
    FAIL("not a VP image (magic or version)");
  if (h->total_len != len)
    FAIL("length mismatch");
  if (!section(h, h->off_int, h->nints, 8, len) ||
      !section(h, h->off_str, h->nstrs, 4, len) ||
      !section(h, h->off_shared, h->nshared, 8, len) ||
      !section(h, h->off_aggr, h->naggrs, sizeof(vpi_aggr), len) ||
      !section(h, h->off_bag, h->nbags, 4, len) ||
      !section(h, h->off_def, h->ndefs, sizeof(vpi_def), len) ||
      !section(h, h->off_func, h->nfuncs, sizeof(vpi_func), len) ||
      !section(h, h->off_probe, h->nprobes, sizeof(vpi_probe), len) ||
      !section(h, h->off_pool, h->pool_len, 1, len) ||
      !section(h, h->off_code, h->ncode, 4, len))
    FAIL("section out of bounds");
  if (h->max_depth < 1 || h->max_depth > VPI_MAX_DEPTH)
    FAIL("bad call depth limit");
  if (h->budget > VPI_MAX_BUDGET)
    FAIL("budget too large");
  img->int_init = (const uint64_t *)(bytes + h->off_int);
  img->str_init = (const uint32_t *)(bytes + h->off_str);
  img->shared_init = (const uint64_t *)(bytes + h->off_shared);
  img->aggrs = (const vpi_aggr *)(bytes + h->off_aggr);
  img->bag_sizes = (const uint32_t *)(bytes + h->off_bag);
  img->defs = (const vpi_def *)(bytes + h->off_def);
  img->funcs = (const vpi_func *)(bytes + h->off_func);
  img->probes = (const vpi_probe *)(bytes + h->off_probe);
  img->pool = (const char *)(bytes + h->off_pool);
  img->code = (const uint32_t *)(bytes + h->off_code);
  if (h->pool_len == 0 || img->pool[h->pool_len - 1] != 0)
    FAIL("string pool not terminated");
  for (uint32_t i = 0; i < h->nstrs; i++)
    if (img->str_init[i] >= h->pool_len)
      FAIL("string initial value out of bounds");
  for (uint32_t i = 0; i < h->naggrs; i++)
    if (img->aggrs[i].name >= h->pool_len || img->aggrs[i].nint > 4 ||
        img->aggrs[i].nstr > 4)
      FAIL("bad aggregate");
  for (uint32_t i = 0; i < h->nbags; i++)
    if (img->bag_sizes[i] == 0 || img->bag_sizes[i] > (1u << 20))
      FAIL("bad bag size");
  for (uint32_t i = 0; i < h->ndefs; i++) {
    const vpi_def *d = &img->defs[i];
    uint32_t lim[] = {h->nints, h->nstrs, h->nshared, h->naggrs, h->nbags};
    if (d->kind > VPI_DEF_BAG || d->name >= h->pool_len ||
        d->index >= lim[d->kind])
      FAIL("bad definition");
  }
  for (uint32_t i = 0; i < h->nfuncs; i++) {
    const vpi_func *f = &img->funcs[i];
    if (f->name >= h->pool_len || f->start >= f->end || f->end > h->ncode ||
        f->nparams > VPI_MAX_ARGS || f->nparams > f->nlocals ||
        f->nlocals > 64 || f->nslots > VPI_MAX_SLOTS || f->maxstack > 256)
      FAIL("bad function");
  }
  for (uint32_t i = 0; i < h->nprobes; i++) {
    const vpi_probe *p = &img->probes[i];
    if (p->name >= h->pool_len || p->func >= h->nfuncs ||
        img->funcs[p->func].nparams != 0)
      FAIL("bad probe");
  }
  for (uint32_t i = 0; i < h->nfuncs; i++) {
    const vpi_func *f = &img->funcs[i];
    chk k = {img, f, img->code + f->start, f->end - f->start, err, cap};
    if (check_func(&k) < 0)
      goto bad;
  }
  /* What rt_layout needs as pointers. */
  img->entry = calloc(h->nprobes + 1, sizeof *img->entry);
  if (!img->entry)
    abort();
  for (uint32_t i = 0; i < h->nprobes; i++)
    img->entry[i] = &img->funcs[img->probes[i].func];
  img->str_init_ptrs = calloc(h->nstrs + 1, sizeof(char *));
  img->aggr_names = calloc(h->naggrs + 1, sizeof(char *));
  img->shapes = calloc(h->naggrs + 1, sizeof(rt_aggr_shape));
  if (!img->str_init_ptrs || !img->aggr_names || !img->shapes)
    abort();
  for (uint32_t i = 0; i < h->nstrs; i++)
    img->str_init_ptrs[i] = img->pool + img->str_init[i];
  for (uint32_t i = 0; i < h->naggrs; i++) {
    img->aggr_names[i] = img->pool + img->aggrs[i].name;
    img->shapes[i] = (rt_aggr_shape){img->aggrs[i].nint, img->aggrs[i].nstr};
  }
  /* Calibrating takes a few ms: done here, at load, never in a probe. */
  if (h->flags & VPI_FLAG_TSC_HZ)
    img->tsc_hz = vpi_tsc_hz();
  return img;
bad:
  vp_image_free(img);
  return NULL;
}

const void *vp_image_bytes(const vp_image *img, size_t *len) {
  *len = img->len;
  return img->bytes;
}

vp_image *vp_image_from_bytes(const void *bytes, size_t len) {
  unsigned char *copy = malloc(len ? len : 1); /* malloc aligns to 16 */
  if (!copy)
    return NULL;
  memcpy(copy, bytes, len);
  char why[200];
  return vpi_load(copy, len, why, sizeof why);
}

int vp_image_nprobes(const vp_image *img) { return (int)img->h->nprobes; }

const char *vp_image_probe(const vp_image *img, int i) {
  if (i < 0 || (uint32_t)i >= img->h->nprobes)
    return NULL;
  return img->pool + img->probes[i].name;
}

int vp_image_ndefs(const vp_image *img) { return (int)img->h->ndefs; }

const char *vp_image_def(const vp_image *img, int i, char *buf, size_t cap) {
  if (i < 0 || (uint32_t)i >= img->h->ndefs)
    return NULL;
  const vpi_def *d = &img->defs[i];
  const char *name = img->pool + d->name;
  switch (d->kind) {
  case VPI_DEF_INT:
    snprintf(buf, cap, "(definteger %s %llu)", name,
             (unsigned long long)img->int_init[d->index]);
    break;
  case VPI_DEF_SHARED:
    snprintf(buf, cap, "(definteger %s %llu :perhost)", name,
             (unsigned long long)img->shared_init[d->index]);
    break;
  case VPI_DEF_STR:
    snprintf(buf, cap, "(defstring %s \"%s\")", name,
             img->pool + img->str_init[d->index]);
    break;
  case VPI_DEF_AGGR:
    snprintf(buf, cap, "(defaggr %s %d %d)", name, img->aggrs[d->index].nint,
             img->aggrs[d->index].nstr);
    break;
  default:
    snprintf(buf, cap, "(defbag %s %u)", name, img->bag_sizes[d->index]);
  }
  return buf;
}

void vp_image_layout(const vp_image *img, rt_layout *l) {
  const vpi_header *h = img->h;
  memset(l, 0, sizeof *l);
  l->nints = h->nints;
  l->nstrs = h->nstrs;
  l->int_init = img->int_init;
  l->str_init = img->str_init_ptrs;
  l->nshared = h->nshared;
  l->shared_init = img->shared_init;
  l->naggrs = h->naggrs;
  l->aggrs = img->shapes;
  l->aggr_names = img->aggr_names;
  l->nbags = h->nbags;
  l->bag_sizes = img->bag_sizes;
}
