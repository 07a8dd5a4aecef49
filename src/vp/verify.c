/*
 * verify.c - the VP verifier and code generator.
 *
 * One walk over each function both checks and emits bytecode.  Types of
 * untyped parameters and of function results are inferred by running the
 * walk over every function until nothing changes (a parameter becomes a
 * string when it is used where a string is needed); the walks after the
 * first go callees first, so a type crosses a chain of calls in one pass.
 * An error ends the walk of its function (longjmp); only the last walk
 * reports one, the first it finds.  The name tables, the string pool and
 * the call graph (recursion, domains through calls) are callgraph.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vp/callgraph.h"
#include "vp/image.h"
#include "vp/verify.h"

#define MAX_SCOPE 256
#define MAX_LOOPS 32
#define MAX_JUMPS 64

enum { G_INT, G_STR, G_SHARED, G_AGGR, G_BAG };

typedef struct gsym {
  const char *name;
  int kind, index;
  const vpr_node *def;
} gsym;

typedef struct use { /* a built-in a function uses, for domain checks */
  const char *name;
  int domains;
  const vpr_node *at;
} use;

typedef struct fn {
  const char *name;
  const vpr_node *def; /* the defun or vprobe form */
  int body;            /* index of the first body expression in def */
  int is_probe, domain;
  int nparams;
  char ptype[VPI_MAX_ARGS];
  int ptyped[VPI_MAX_ARGS];
  char ret;
  uint32_t *code;
  int ncode, cap;
  int nlocals, nslots, maxstack, cost, recursive;
  use *uses;
  int nuses;
} fn;

typedef struct local {
  const char *name;
  char type;
  int slot;   /* int: local index; string: arena slot, or local if param */
  int param;  /* string parameter: the local holds a reference */
  int pi;     /* parameter index, or -1 */
} local;

typedef struct loop {
  int depth, ntry;
  int brk[MAX_JUMPS], nbrk;
  int cont[MAX_JUMPS], ncont;
} loop;

typedef struct cx {
  const char *file;
  const vp_limits *lim;
  vp_diag *diag;
  jmp_buf fail, walk;
  int final, changed;
  gsym *g;
  int ng;
  vpg_names gtab; /* global names -> index in g */
  fn *f;
  int nf;
  vpg_names ftab; /* defun names -> index in f */
  vpg_graph calls; /* node i: function i */
  int nints, nstrs, nshared, naggrs, nbags;
  vpg_pool pool;  /* the image's strings */
  /* the function being walked */
  fn *cur;
  local sc[MAX_SCOPE];
  int nsc;
  loop lp[MAX_LOOPS];
  int nlp;
  int depth, nloc, nslot, ntry, uses_tsc;
  unsigned char *out;
  size_t outlen;
} cx;

static void err(cx *c, const vpr_node *at, const char *fmt, ...) {
  if (!c->final) /* a typing walk: give up on this function for now */
    longjmp(c->walk, 1);
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(c->diag->error, sizeof c->diag->error, "%s:%d:%d: error: %s",
           c->file, at ? at->line : 1, at ? at->col : 1, msg);
  longjmp(c->fail, 1);
}

static void hard(cx *c, const vpr_node *at, const char *fmt, const char *a) {
  err(c, at, fmt, a);
}

static void *grow(void *p, int n, int *cap, size_t sz) {
  if (n < *cap)
    return p;
  *cap = *cap ? *cap * 2 : 16;
  p = realloc(p, (size_t)*cap * sz);
  if (!p)
    abort();
  return p;
}

/* Names for the name tables (callgraph.h), which keep indexes only. */
static const char *gkey(const void *c, int i) {
  return ((const cx *)c)->g[i].name;
}
static const char *fkey(const void *c, int i) {
  return ((const cx *)c)->f[i].name;
}

/* ---- emission ---- */

static void word(cx *c, uint32_t w) {
  fn *f = c->cur;
  f->code = grow(f->code, f->ncode, &f->cap, sizeof *f->code);
  f->code[f->ncode++] = w;
}

static void push(cx *c, int delta) {
  c->depth += delta;
  if (c->depth > c->cur->maxstack)
    c->cur->maxstack = c->depth;
}

static int emit(cx *c, int op, uint32_t a, int delta, int cost) {
  int pos = c->cur->ncode;
  if (a >= 1u << 24)
    hard(c, NULL, "%s: program too large", "operand");
  word(c, VPI_W(op, a));
  push(c, delta);
  c->cur->cost += cost;
  return pos;
}

static int here(cx *c) { return c->cur->ncode; }

static void patch(cx *c, int pos, int target) {
  uint32_t *w = &c->cur->code[pos];
  *w = (*w & 0xff) | (uint32_t)target << 8;
}

static void push_int(cx *c, uint64_t v) {
  int64_t s = (int64_t)v;
  if (s >= -(1 << 23) && s < (1 << 23)) {
    emit(c, OP_PUSHI, (uint32_t)s & 0xffffff, 1, 0);
  } else {
    emit(c, OP_PUSHK, 0, 1, 0);
    word(c, (uint32_t)v);
    word(c, (uint32_t)(v >> 32));
  }
}

static void push_str(cx *c, const char *s) {
  emit(c, OP_PUSHS, vpg_intern(&c->pool, s), 1, 0);
}

static int new_slot(cx *c) {
  int s = c->nslot++;
  if (c->nslot > c->cur->nslots)
    c->cur->nslots = c->nslot;
  if (c->nslot > VPI_MAX_SLOTS)
    err(c, c->cur->def, "function '%s' needs more than %d string temporaries",
        c->cur->name, VPI_MAX_SLOTS);
  return s;
}

static int new_local(cx *c) {
  int l = c->nloc++;
  if (c->nloc > c->cur->nlocals)
    c->cur->nlocals = c->nloc;
  if (c->nloc > 64)
    err(c, c->cur->def, "function '%s' has more than 64 locals", c->cur->name);
  return l;
}

static void add_use(cx *c, const char *name, int domains, const vpr_node *at) {
  fn *f = c->cur;
  for (int i = 0; i < f->nuses; i++)
    if (f->uses[i].name == name)
      return;
  int cap = f->nuses ? f->nuses : 0;
  if ((f->nuses & (f->nuses - 1)) == 0) {
    cap = f->nuses ? f->nuses * 2 : 4;
    f->uses = realloc(f->uses, (size_t)cap * sizeof *f->uses);
    if (!f->uses)
      abort();
  }
  f->uses[f->nuses++] = (use){name, domains, at};
}

/* ---- names ---- */

static int is_name(const vpr_node *n) { return n && n->kind == VPR_NAME; }

static int reserved(const char *s) {
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

static const gsym *gfind(cx *c, const char *name) {
  int i = vpg_names_find(&c->gtab, name, gkey, c);
  return i >= 0 ? &c->g[i] : NULL;
}

static fn *ffind(cx *c, const char *name) {
  int i = vpg_names_find(&c->ftab, name, fkey, c);
  return i >= 0 ? &c->f[i] : NULL;
}

static local *lfind(cx *c, const char *name) {
  for (int i = c->nsc - 1; i >= 0; i--)
    if (!strcmp(c->sc[i].name, name))
      return &c->sc[i];
  return NULL;
}

static void check_new_name(cx *c, const vpr_node *n, const char *what) {
  if (!is_name(n))
    err(c, n, "%s needs a name", what);
  if (reserved(n->s))
    err(c, n, "name '%s' is reserved for built-ins", n->s);
}

/* ---- expressions ---- */

static char expr(cx *c, const vpr_node *n, char want);

static void need(cx *c, const vpr_node *n, char want) {
  char t = expr(c, n, want);
  if (t != want)
    err(c, n, want == 'i' ? "expected an integer, got a string"
                          : "expected a string, got an integer");
}

static void nargs(cx *c, const vpr_node *n, int lo, int hi) {
  int k = n->nkids - 1;
  if (k < lo || k > hi) {
    if (lo == hi)
      err(c, n, "'%s' takes %d argument%s, got %d", n->kids[0]->s, lo,
          lo == 1 ? "" : "s", k);
    err(c, n, "'%s' takes %d to %d arguments, got %d", n->kids[0]->s, lo, hi,
        k);
  }
}

/* Drop the value of a statement and free its string temporaries. */
static void stmt(cx *c, const vpr_node *n) {
  int slots = c->nslot;
  expr(c, n, 0);
  emit(c, OP_POP, 0, -1, 0);
  c->nslot = slots;
}

/* Expressions kids[from..]: all but the last dropped; 0 if none. */
static char body(cx *c, const vpr_node *n, int from) {
  if (from >= n->nkids) {
    push_int(c, 0);
    return 'i';
  }
  for (int i = from; i < n->nkids - 1; i++)
    stmt(c, n->kids[i]);
  return expr(c, n->kids[n->nkids - 1], 0);
}

/* A variable read; the type, after inference of untyped parameters. */
static char var(cx *c, const vpr_node *n, char want) {
  local *l = lfind(c, n->s);
  if (l) {
    if (l->pi >= 0 && l->type == 'i' && want == 's' &&
        !c->cur->ptyped[l->pi]) {
      l->type = c->cur->ptype[l->pi] = 's';
      l->param = 1;
      c->changed = 1;
    }
    if (l->type == 'i' || l->param)
      emit(c, OP_GETL, (uint32_t)l->slot, 1, 0);
    else
      emit(c, OP_LSTR, (uint32_t)l->slot, 1, 0);
    return l->type;
  }
  const gsym *g = gfind(c, n->s);
  if (g) {
    switch (g->kind) {
    case G_INT: emit(c, OP_GETG, (uint32_t)g->index, 1, 0); return 'i';
    case G_SHARED: emit(c, OP_GETSH, (uint32_t)g->index, 1, 0); return 'i';
    case G_STR: emit(c, OP_GSTR, (uint32_t)g->index, 1, 0); return 's';
    default: err(c, n, "'%s' is not a variable", n->s);
    }
  }
  const vp_var *v = vp_var_find(n->s);
  if (v) {
    add_use(c, v->name, v->domains, n);
    if (v->type == 's') {
      emit(c, OP_PROBENAME, 0, 1, 0);
      return 's';
    }
    if (v->reg < 0)
      emit(c, OP_ARG, (uint32_t)(v->name[3] - '0'), 1, 0);
    else
      emit(c, OP_REG, (uint32_t)v->reg, 1, 0);
    if (v->reg == VP_REG_TSC_HZ)
      c->uses_tsc = 1;
    return 'i';
  }
  err(c, n, "unknown variable '%s'", n->s);
  push_int(c, 0);
  return 'i';
}

/* Push a writable reference to string variable n. */
static void str_dest(cx *c, const vpr_node *n) {
  if (!is_name(n))
    err(c, n, "expected a string variable");
  local *l = lfind(c, n->s);
  if (l && l->pi >= 0 && l->type == 'i' && !c->cur->ptyped[l->pi]) {
    l->type = c->cur->ptype[l->pi] = 's';
    l->param = 1;
    c->changed = 1;
  }
  const gsym *g = l ? NULL : gfind(c, n->s);
  if (l && l->type == 's') {
    emit(c, l->param ? OP_GETL : OP_LSTR, (uint32_t)l->slot, 1, 0);
  } else if (g && g->kind == G_STR) {
    emit(c, OP_GSTR, (uint32_t)g->index, 1, 0);
  } else {
    if (l || (g && (g->kind == G_INT || g->kind == G_SHARED)))
      err(c, n, "setstr on integer variable '%s'", n->s);
    if (vp_var_find(n->s))
      err(c, n, "cannot assign to built-in '%s'", n->s);
    if (g)
      err(c, n, "'%s' is not a variable", n->s);
    err(c, n, "unknown variable '%s'", n->s);
    emit(c, OP_PUSHS, vpg_intern(&c->pool, ""), 1, 0);
  }
}

/* Store the top of stack into integer variable n (value stays). */
static void int_store(cx *c, const vpr_node *n) {
  if (!is_name(n))
    err(c, n, "expected an integer variable");
  local *l = lfind(c, n->s);
  const gsym *g = l ? NULL : gfind(c, n->s);
  if (l && l->type == 'i') {
    emit(c, OP_SETL, (uint32_t)l->slot, 0, 0);
  } else if (g && g->kind == G_INT) {
    emit(c, OP_SETG, (uint32_t)g->index, 0, 0);
  } else if (g && g->kind == G_SHARED) {
    emit(c, OP_SETSH, (uint32_t)g->index, 0, 0);
  } else {
    if (l || (g && g->kind == G_STR))
      err(c, n, "setint on string variable '%s'", n->s);
    if (vp_var_find(n->s))
      err(c, n, "cannot assign to built-in '%s'", n->s);
    if (g)
      err(c, n, "'%s' is not a variable", n->s);
    err(c, n, "unknown variable '%s'", n->s);
  }
}

static const gsym *gkind(cx *c, const vpr_node *n, int kind, const char *what) {
  const gsym *g = is_name(n) ? gfind(c, n->s) : NULL;
  if (!g || g->kind != kind) {
    err(c, n, "'%s' is not %s", is_name(n) ? n->s : "?", what);
    return NULL;
  }
  return g;
}

static int lit_int(cx *c, const vpr_node *n, const char *what) {
  if (!n || n->kind != VPR_INT)
    err(c, n, "%s must be an integer literal", what);
  return n && n->kind == VPR_INT ? (int)n->ival : 0;
}

typedef struct opdef {
  const char *sym, *name;
  int op, arity;
} opdef;

static const opdef ops[] = {
  {"+", "add", OP_ADD, 2},     {"-", "sub", OP_SUB, 2},
  {"*", "mul", OP_MUL, 2},     {"/", "div", OP_DIV, 2},
  {"%", "mod", OP_MOD, 2},     {"<<", "lshift", OP_SHL, 2},
  {">>", "rshift", OP_SHR, 2}, {"^", "xor", OP_XOR, 2},
  {"|", "bitor", OP_OR, 2},    {"&", "bitand", OP_AND, 2},
  {"~", "bitnot", OP_BNOT, 1}, {"!", "not", OP_NOT, 1},
  {"&&", "and", -1, 2},        {"||", "or", -2, 2},
  {">", "gt", OP_GT, 2},       {"<", "lt", OP_LT, 2},
  {">=", "ge", OP_GE, 2},      {"<=", "le", OP_LE, 2},
  {"==", "eq", OP_EQ, 2},      {"!=", "ne", OP_NE, 2},
  {"s>", NULL, OP_SGT, 2},     {"s<", NULL, OP_SLT, 2},
  {"s>=", NULL, OP_SGE, 2},    {"s<=", NULL, OP_SLE, 2},
  {"s/", NULL, OP_SDIV, 2},    {"s%", NULL, OP_SMOD, 2},
  {"s>>", NULL, OP_SAR, 2},    {"neg", NULL, OP_NEG, 1},
};

static const opdef *op_find(const char *s) {
  for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
    if (!strcmp(ops[i].sym, s) || (ops[i].name && !strcmp(ops[i].name, s)))
      return &ops[i];
  return NULL;
}

static char operator(cx *c, const vpr_node *n, const opdef *o) {
  const char *name = n->kids[0]->s;
  if (o->op == OP_SUB && n->nkids == 2) { /* (- x) */
    need(c, n->kids[1], 'i');
    emit(c, OP_NEG, 0, 0, 1);
    return 'i';
  }
  nargs(c, n, o->arity, o->arity);
  if (o->op < 0) { /* && || short-circuit */
    int d = c->depth;
    need(c, n->kids[1], 'i');
    int j = emit(c, o->op == -1 ? OP_JZ : OP_JNZ, 0, -1, 1);
    need(c, n->kids[2], 'i');
    emit(c, OP_BOOL, 0, 0, 0);
    int e = emit(c, OP_JMP, 0, 0, 0);
    patch(c, j, here(c));
    c->depth = d;
    push_int(c, o->op == -1 ? 0 : 1);
    patch(c, e, here(c));
    return 'i';
  }
  if (o->op == OP_EQ || o->op == OP_NE) {
    char t = expr(c, n->kids[1], 0);
    need(c, n->kids[2], t);
    int op = t == 's' ? (o->op == OP_EQ ? OP_STREQ : OP_STRNE) : o->op;
    emit(c, op, 0, -1, 1);
    return 'i';
  }
  (void)name;
  for (int i = 1; i < n->nkids; i++)
    need(c, n->kids[i], 'i');
  emit(c, o->op, 0, o->arity == 2 ? -1 : 0, 1);
  return 'i';
}

/* A call of a built-in whose first argument is a string variable it
 * writes (getgueststr, sprintf, loadstr, gueststack...). */
static int writes_str(cx *c, const vpr_node *n) {
  if (n->kind != VPR_LIST || n->nkids < 2 || !is_name(n->kids[0]) ||
      !is_name(n->kids[1]) || ffind(c, n->kids[0]->s))
    return 0;
  const vp_builtin *b = vp_builtin_find(n->kids[0]->s);
  return b && b->args[0] == 'S';
}

static char cond(cx *c, const vpr_node *n) {
  int d = c->depth, ends[256], nends = 0;
  char t = 0;
  for (int i = 1; i < n->nkids; i++) {
    const vpr_node *cl = n->kids[i];
    if (cl->kind != VPR_LIST || cl->nkids < 1)
      err(c, cl, "cond clause must be a list (CONDITION EXPR ...)");
    if (cl->kind != VPR_LIST || cl->nkids < 1)
      continue;
    need(c, cl->kids[0], 'i');
    int j = emit(c, OP_JZ, 0, -1, 1);
    char ct = cl->nkids > 1 ? body(c, cl, 1) : (push_int(c, 1), 'i');
    if (!t)
      t = ct;
    if (ct != t) { /* mixed clause types: the first clause's type wins */
      const vpr_node *last = cl->kids[cl->nkids - 1];
      emit(c, OP_POP, 0, -1, 0);
      if (t == 's' && writes_str(c, last))
        str_dest(c, last->kids[1]); /* (getgueststr VAR ...) yields VAR */
      else if (t == 's')
        push_str(c, "");
      else
        push_int(c, 0);
    }
    if (nends < 256)
      ends[nends++] = emit(c, OP_JMP, 0, 0, 0);
    patch(c, j, here(c));
    c->depth = d;
  }
  if (t == 's')
    push_str(c, "");
  else
    push_int(c, 0);
  for (int i = 0; i < nends; i++)
    patch(c, ends[i], here(c));
  return t ? t : 'i';
}

static char ternary(cx *c, const vpr_node *n) {
  nargs(c, n, 3, 3);
  int d = c->depth;
  need(c, n->kids[1], 'i');
  int j = emit(c, OP_JZ, 0, -1, 1);
  char t = expr(c, n->kids[2], 0);
  int e = emit(c, OP_JMP, 0, 0, 0);
  patch(c, j, here(c));
  c->depth = d;
  char u = expr(c, n->kids[3], t);
  if (u != t)
    err(c, n, "the arms of '?' differ in type");
  patch(c, e, here(c));
  return t;
}

/* Loops.  kind: 0 while, 1 for, 2 dowhile. */
static char loop_form(cx *c, const vpr_node *n, int kind) {
  nargs(c, n, kind == 1 ? 2 : 1, 10000);
  if (c->nlp >= MAX_LOOPS)
    err(c, n, "loops nested deeper than %d", MAX_LOOPS);
  loop *L = &c->lp[c->nlp++];
  L->depth = c->depth;
  L->ntry = c->ntry;
  L->nbrk = L->ncont = 0;
  int head = here(c), cost0 = c->cur->cost, jz = -1;
  int first = kind == 1 ? 3 : 2;
  if (kind != 2) {
    need(c, n->kids[1], 'i');
    jz = emit(c, OP_JZ, 0, -1, 1);
  }
  for (int i = first; i < n->nkids; i++)
    stmt(c, n->kids[i]);
  for (int i = 0; i < L->ncont; i++)
    patch(c, L->cont[i], here(c));
  if (kind == 1)
    stmt(c, n->kids[2]);
  if (kind == 2) {
    need(c, n->kids[1], 'i');
    jz = emit(c, OP_JZ, 0, -1, 1);
  }
  int back = emit(c, OP_LOOP, (uint32_t)head, 0, 1);
  word(c, (uint32_t)(c->cur->cost - cost0));
  (void)back;
  patch(c, jz, here(c));
  for (int i = 0; i < L->nbrk; i++)
    patch(c, L->brk[i], here(c));
  c->nlp--;
  push_int(c, 0);
  return 'i';
}

static char jump_out(cx *c, const vpr_node *n, int is_break) {
  nargs(c, n, 0, 0);
  if (!c->nlp) {
    err(c, n, "%s outside a loop", is_break ? "break" : "continue");
    push_int(c, 0);
    return 'i';
  }
  loop *L = &c->lp[c->nlp - 1];
  int d = c->depth;
  if (d > L->depth)
    emit(c, OP_DROP, (uint32_t)(d - L->depth), 0, 0);
  if (c->ntry > L->ntry)
    emit(c, OP_ENDTRY, (uint32_t)(c->ntry - L->ntry), 0, 0);
  int *list = is_break ? L->brk : L->cont;
  int *cnt = is_break ? &L->nbrk : &L->ncont;
  if (*cnt >= MAX_JUMPS)
    err(c, n, "more than %d break/continue in one loop", MAX_JUMPS);
  if (*cnt < MAX_JUMPS)
    list[(*cnt)++] = emit(c, OP_JMP, 0, 0, 0);
  c->depth = d; /* dead code follows; pretend a value */
  push(c, 1);
  return 'i';
}

static char foreach_form(cx *c, const vpr_node *n) {
  nargs(c, n, 3, 10000);
  const gsym *b = gkind(c, n->kids[1], G_BAG, "a bag");
  if (c->nlp >= MAX_LOOPS)
    err(c, n, "loops nested deeper than %d", MAX_LOOPS);
  int cur = new_local(c);
  push_int(c, 0);
  emit(c, OP_SETL, (uint32_t)cur, 0, 0);
  emit(c, OP_POP, 0, -1, 0);
  loop *L = &c->lp[c->nlp++];
  L->depth = c->depth;
  L->ntry = c->ntry;
  L->nbrk = L->ncont = 0;
  int head = here(c), cost0 = c->cur->cost;
  int nx = emit(c, OP_BAGNEXT, b ? (uint32_t)b->index : 0, 2, 10);
  word(c, (uint32_t)cur);
  int_store(c, n->kids[3]);
  emit(c, OP_POP, 0, -1, 0);
  int_store(c, n->kids[2]);
  emit(c, OP_POP, 0, -1, 0);
  for (int i = 4; i < n->nkids; i++)
    stmt(c, n->kids[i]);
  for (int i = 0; i < L->ncont; i++)
    patch(c, L->cont[i], here(c));
  emit(c, OP_LOOP, (uint32_t)head, 0, 1);
  word(c, (uint32_t)(c->cur->cost - cost0));
  c->cur->code[nx + 1] |= (uint32_t)here(c) << 8;
  for (int i = 0; i < L->nbrk; i++)
    patch(c, L->brk[i], here(c));
  c->nlp--;
  push_int(c, 0);
  return 'i';
}

static int exc_mask(cx *c, const vpr_node *names) {
  if (names->kind != VPR_LIST)
    err(c, names, "catch needs a list of exception names");
  if (names->kind != VPR_LIST || names->nkids == 0)
    return 0x7e;
  int m = 0;
  for (int i = 0; i < names->nkids; i++) {
    const vpr_node *x = names->kids[i];
    int e = 0;
    for (int k = 1; k < VP_EXC_COUNT && is_name(x); k++)
      if (!strcmp(x->s, vp_exc_name(k)))
        e = k;
    if (is_name(x) && (!strcmp(x->s, "VmkMemAccessError") ||
                       !strcmp(x->s, "GuestMemAccessError") ||
                       !strcmp(x->s, "VmxMemAccessError")))
      e = VP_EXC_MEM;
    if (!e)
      err(c, x, "unknown exception '%s'", is_name(x) ? x->s : "?");
    m |= 1 << e;
  }
  return m;
}

static char try_form(cx *c, const vpr_node *n) {
  nargs(c, n, 1, 10000);
  int d = c->depth, mask = 0, ends[64], nends = 0;
  for (int i = 2; i < n->nkids; i++) {
    const vpr_node *cl = n->kids[i];
    if (cl->kind != VPR_LIST || cl->nkids < 2 || !is_name(cl->kids[0]) ||
        strcmp(cl->kids[0]->s, "catch"))
      hard(c, cl, "%s", "try clause must be (catch (NAME ...) EXPR ...)");
    mask |= exc_mask(c, cl->kids[1]);
  }
  if (n->nkids - 2 > 60)
    err(c, n, "too many catch clauses");
  int t = emit(c, OP_TRY, 0, 0, 1);
  word(c, (uint32_t)mask);
  c->ntry++;
  stmt(c, n->kids[1]);
  c->ntry--;
  emit(c, OP_ENDTRY, 1, 0, 0);
  ends[nends++] = emit(c, OP_JMP, 0, 0, 0);
  patch(c, t, here(c));
  for (int i = 2; i < n->nkids && nends < 64; i++) {
    const vpr_node *cl = n->kids[i];
    int j = emit(c, OP_JEXC, 0, 0, 0);
    word(c, (uint32_t)exc_mask(c, cl->kids[1]));
    for (int k = 2; k < cl->nkids; k++)
      stmt(c, cl->kids[k]);
    ends[nends++] = emit(c, OP_JMP, 0, 0, 0);
    patch(c, j, here(c));
  }
  emit(c, OP_RAISE, 0, 0, 0);
  c->depth = d;
  for (int i = 0; i < nends; i++)
    patch(c, ends[i], here(c));
  push_int(c, 0);
  return 'i';
}

static char let_form(cx *c, const vpr_node *n) {
  nargs(c, n, 1, 10000);
  const vpr_node *vs = n->kids[1];
  if (vs->kind != VPR_LIST)
    hard(c, vs, "%s", "let needs a list of ((int X [INIT]) ...)");
  int nsc = c->nsc, nloc = c->nloc, nslot = c->nslot;
  for (int i = 0; i < vs->nkids; i++) {
    const vpr_node *v = vs->kids[i];
    if (v->kind != VPR_LIST || v->nkids < 2 || v->nkids > 3 ||
        !is_name(v->kids[0]) ||
        (strcmp(v->kids[0]->s, "int") && strcmp(v->kids[0]->s, "string")))
      hard(c, v, "%s", "let variable must be (int X [INIT]) or (string X [INIT])");
    check_new_name(c, v->kids[1], "a local");
    char t = v->kids[0]->s[0] == 'i' ? 'i' : 's';
    if (c->nsc >= MAX_SCOPE)
      hard(c, v, "%s", "too many locals");
    local l = {v->kids[1]->s, t, 0, 0, -1};
    if (t == 'i') {
      l.slot = new_local(c);
      if (v->nkids == 3)
        need(c, v->kids[2], 'i');
      else
        push_int(c, 0);
      emit(c, OP_SETL, (uint32_t)l.slot, 0, 0);
    } else {
      l.slot = new_slot(c);
      nslot = c->nslot; /* keep it past statement temporaries */
      emit(c, OP_LSTR, (uint32_t)l.slot, 1, 0);
      if (v->nkids == 3)
        need(c, v->kids[2], 's');
      else
        push_str(c, "");
      emit(c, OP_SETSTR, 0, -1, 0);
    }
    emit(c, OP_POP, 0, -1, 0);
    c->sc[c->nsc++] = l;
  }
  char t = body(c, n, 2);
  c->nsc = nsc;
  c->nloc = nloc;
  (void)nslot;
  return t;
}

static char call_user(cx *c, const vpr_node *n, fn *f) {
  if (n->nkids - 1 != f->nparams)
    err(c, n, "'%s' takes %d argument%s, got %d", f->name, f->nparams,
        f->nparams == 1 ? "" : "s", n->nkids - 1);
  for (int i = 0; i < f->nparams && i + 1 < n->nkids; i++) {
    const vpr_node *a = n->kids[i + 1];
    if (f->ptype[i] == 's') {
      local *l = is_name(a) ? lfind(c, a->s) : NULL;
      const gsym *g = is_name(a) && !l ? gfind(c, a->s) : NULL;
      if ((l && l->type == 's') || (g && g->kind == G_STR)) {
        str_dest(c, a); /* by reference */
      } else {
        int s = new_slot(c);
        emit(c, OP_LSTR, (uint32_t)s, 1, 0);
        need(c, a, 's');
        emit(c, OP_SETSTR, 0, -1, 0);
      }
    } else {
      need(c, a, 'i');
    }
  }
  int slot = f->ret == 's' ? new_slot(c) : 0;
  emit(c, OP_CALL, (uint32_t)(f - c->f), 1 - f->nparams, 10);
  word(c, (uint32_t)slot);
  vpg_call(&c->calls, (int)(c->cur - c->f), (int)(f - c->f));
  return f->ret ? f->ret : 'i';
}

/* printf / sprintf arguments from kids[from]; returns the string mask. */
static uint32_t fmt_args(cx *c, const vpr_node *n, int from) {
  uint32_t mask = 0;
  if (n->nkids - from > VPI_MAX_ARGS - 1)
    err(c, n, "'%s' takes at most %d arguments", n->kids[0]->s,
        VPI_MAX_ARGS - 1);
  need(c, n->kids[from], 's');
  mask |= 1;
  for (int i = from + 1; i < n->nkids && i - from < VPI_MAX_ARGS; i++)
    if (expr(c, n->kids[i], 0) == 's')
      mask |= 1u << (i - from);
  return mask;
}

static int model_kw(cx *c, const vpr_node *k) {
  static const char *const m[] = {":guest", ":guestphys", ":vmx", ":vmk"};
  for (int i = 0; i < 4; i++)
    if (is_name(k) && !strcmp(k->s, m[i]))
      return i + 1;
  err(c, k, "unknown memory model '%s'", is_name(k) ? k->s : "?");
  return 0;
}

/* Built-ins the interpreter does. */
static char call_local(cx *c, const vpr_node *n, const char *s) {
  if (!strcmp(s, "printf")) {
    nargs(c, n, 1, 10000);
    uint32_t m = fmt_args(c, n, 1);
    int k = n->nkids - 1;
    emit(c, OP_PRINTF, (uint32_t)k, 1 - k, 50);
    word(c, m);
  } else if (!strcmp(s, "sprintf")) {
    nargs(c, n, 2, 10000);
    str_dest(c, n->kids[1]);
    uint32_t m = fmt_args(c, n, 2);
    int k = n->nkids - 2;
    emit(c, OP_SPRINTF, (uint32_t)k, -k, 50);
    word(c, m);
  } else if (!strcmp(s, "logint") || !strcmp(s, "cycles2ms")) {
    nargs(c, n, 1, 1);
    need(c, n->kids[1], 'i');
    emit(c, s[0] == 'l' ? OP_LOGINT : OP_CYC2MS, 0, 0, 10);
    if (s[0] == 'c')
      c->uses_tsc = 1;
  } else if (!strcmp(s, "logstr")) {
    nargs(c, n, 1, 1);
    need(c, n->kids[1], 's');
    emit(c, OP_LOGSTR, 0, 0, 10);
  } else if (!strcmp(s, "strcmp")) {
    nargs(c, n, 2, 2);
    need(c, n->kids[1], 's');
    need(c, n->kids[2], 's');
    emit(c, OP_STRCMP, 0, -1, 10);
  } else if (!strcmp(s, "getsystemtime")) {
    nargs(c, n, 1, 1);
    emit(c, OP_SYSTIME, 0, 1, 10);
    int_store(c, n->kids[1]);
    emit(c, OP_POP, 0, -1, 0);
    push_int(c, 1);
  } else if (!strcmp(s, "writeint")) {
    nargs(c, n, 2, 2);
    need(c, n->kids[1], 'i');
    need(c, n->kids[2], 'i');
    emit(c, OP_WRITEINT, 0, -1, 10);
  } else if (!strcmp(s, "fetchadd") || !strcmp(s, "cmpxchg")) {
    int cx_ = s[0] == 'c';
    nargs(c, n, 2 + cx_, 2 + cx_);
    const vpr_node *v = n->kids[1];
    const gsym *g = is_name(v) ? gfind(c, v->s) : NULL;
    if (!g || (g->kind != G_INT && g->kind != G_SHARED) ||
        lfind(c, v->s))
      err(c, v, "'%s' needs an integer global", s);
    for (int i = 2; i < n->nkids; i++)
      need(c, n->kids[i], 'i');
    uint32_t a = g ? (uint32_t)g->index | (g->kind == G_SHARED ? 1u << 23 : 0)
                   : 0;
    emit(c, cx_ ? OP_CMPXCHG : OP_FETCHADD, a, cx_ ? -1 : 0, 10);
  } else if (!strcmp(s, "load")) {
    nargs(c, n, 2, 3);
    int b = lit_int(c, n->kids[1], "load's size");
    if (b != 1 && b != 2 && b != 4 && b != 8)
      err(c, n->kids[1], "load size must be 1, 2, 4 or 8");
    int m = n->nkids == 4 ? model_kw(c, n->kids[3]) : 0;
    need(c, n->kids[2], 'i');
    emit(c, OP_LOAD, (uint32_t)(b | m << 8), 0, 10);
  } else if (!strcmp(s, "loadstr")) {
    nargs(c, n, 2, 3);
    int m = n->nkids == 4 ? model_kw(c, n->kids[3]) : 0;
    str_dest(c, n->kids[1]);
    need(c, n->kids[2], 'i');
    emit(c, OP_LOADSTR, (uint32_t)m, -1, 10);
  } else {
    return 0;
  }
  return 'i';
}

static char call_target(cx *c, const vpr_node *n, const vp_builtin *b) {
  const char *sig = b->args;
  int req = 0, opt = 0, seen_bar = 0;
  for (const char *p = sig; *p; p++) {
    if (*p == '|')
      seen_bar = 1;
    else
      *(seen_bar ? &opt : &req) += 1;
  }
  nargs(c, n, req, req + opt);
  uint32_t mask = 0, out = 0;
  int k = 0;
  for (const char *p = sig; *p && k + 1 < n->nkids; p++) {
    if (*p == '|')
      continue;
    const vpr_node *a = n->kids[k + 1];
    if (*p == 'S') {
      str_dest(c, a);
      mask |= 1u << k;
      out = (uint32_t)k + 1;
    } else if (*p == 's') {
      need(c, a, 's');
      mask |= 1u << k;
    } else if (*p == 'x') {
      if (expr(c, a, 0) == 's')
        mask |= 1u << k;
    } else {
      need(c, a, 'i');
    }
    k++;
  }
  int slot = b->ret == 's' ? new_slot(c) : 0;
  emit(c, OP_TCALL, (uint32_t)b->fn, 1 - k, 10);
  word(c, (uint32_t)k | mask << 8 | out << 24);
  word(c, (uint32_t)slot);
  return b->ret;
}

static char aggr_form(cx *c, const vpr_node *n, int inc) {
  nargs(c, n, 3 + !inc, 3 + !inc);
  const gsym *g = gkind(c, n->kids[1], G_AGGR, "an aggregate");
  const vpr_node *ik = n->kids[2], *sk = n->kids[3];
  if (ik->kind != VPR_LIST || sk->kind != VPR_LIST)
    hard(c, n, "%s", "aggregate keys must be lists: (aggr A (IKEY ...) (SKEY ...) V)");
  const vpi_aggr *shape = NULL;
  (void)shape;
  const vpr_node *def = g ? g->def : NULL;
  int ni = def ? (int)def->kids[2]->ival : ik->nkids;
  int ns = def ? (int)def->kids[3]->ival : sk->nkids;
  if (ik->nkids != ni)
    err(c, ik, "aggregate '%s' takes %d integer key%s, got %d",
        n->kids[1]->s, ni, ni == 1 ? "" : "s", ik->nkids);
  if (sk->nkids != ns)
    err(c, sk, "aggregate '%s' takes %d string key%s, got %d",
        n->kids[1]->s, ns, ns == 1 ? "" : "s", sk->nkids);
  for (int i = 0; i < ik->nkids; i++)
    need(c, ik->kids[i], 'i');
  for (int i = 0; i < sk->nkids; i++)
    need(c, sk->kids[i], 's');
  if (!inc)
    need(c, n->kids[4], 'i');
  int pops = ik->nkids + sk->nkids + !inc;
  emit(c, inc ? OP_AGGRINC : OP_AGGR, g ? (uint32_t)g->index : 0, 1 - pops,
       10);
  return 'i';
}

static char aggr_misc(cx *c, const vpr_node *n, const char *s) {
  if (!strcmp(s, "clearaggr")) {
    nargs(c, n, 1, 1);
    const gsym *g = gkind(c, n->kids[1], G_AGGR, "an aggregate");
    emit(c, OP_AGGRCLEAR, g ? (uint32_t)g->index : 0, 1, 10);
    return 'i';
  }
  nargs(c, n, 1, 3);
  const gsym *g = gkind(c, n->kids[1], G_AGGR, "an aggregate");
  int fmt = 0, countonly = 0, i = 2;
  if (s[0] == 'p' && i < n->nkids && n->kids[i]->kind == VPR_STR) {
    push_str(c, n->kids[i]->s);
    fmt = 1;
    i++;
  }
  if (i < n->nkids)
    countonly = lit_int(c, n->kids[i++], "COUNTONLY") != 0;
  if (i < n->nkids)
    err(c, n->kids[i], "unexpected argument to '%s'", s);
  emit(c, OP_AGGRPRINT,
       (g ? (uint32_t)g->index : 0) | (uint32_t)countonly << 16 |
           (uint32_t)fmt << 17,
       1 - fmt, 10);
  return 'i';
}

static char bag_form(cx *c, const vpr_node *n, const char *s) {
  int rem = !strcmp(s, "bagremove");
  nargs(c, n, 3 - rem, 3 - rem);
  const gsym *g = gkind(c, n->kids[1], G_BAG, "a bag");
  for (int i = 2; i < n->nkids; i++)
    need(c, n->kids[i], 'i');
  uint32_t id = g ? (uint32_t)g->index : 0;
  if (rem)
    emit(c, OP_BAGREM, id, 0, 10);
  else
    emit(c, OP_BAGINS, id | (s[3] == 'p' ? 1u << 16 : 0), -1, 10);
  return 'i';
}

static char list(cx *c, const vpr_node *n, char want) {
  if (n->nkids == 0)
    hard(c, n, "%s", "empty expression ()");
  const vpr_node *h = n->kids[0];
  if (!is_name(h))
    hard(c, h, "%s", "expected an operator or function name");
  const char *s = h->s;
  if (!strcmp(s, "do")) {
    nargs(c, n, 1, 100000);
    return body(c, n, 1);
  }
  if (!strcmp(s, "cond"))
    return cond(c, n);
  if (!strcmp(s, "?"))
    return ternary(c, n);
  if (!strcmp(s, "setint")) {
    nargs(c, n, 2, 2);
    need(c, n->kids[2], 'i');
    int_store(c, n->kids[1]);
    return 'i';
  }
  if (!strcmp(s, "setstr")) {
    nargs(c, n, 2, 2);
    str_dest(c, n->kids[1]);
    need(c, n->kids[2], 's');
    emit(c, OP_SETSTR, 0, -1, 0);
    return 's';
  }
  if (!strcmp(s, "sext") || !strcmp(s, "zext")) {
    nargs(c, n, 2, 2);
    int b = lit_int(c, n->kids[1], "the bit count");
    if (b != 8 && b != 16 && b != 32)
      err(c, n->kids[1], "%s takes 8, 16 or 32 bits", s);
    need(c, n->kids[2], 'i');
    emit(c, s[0] == 's' ? OP_SEXT : OP_ZEXT, (uint32_t)b, 0, 1);
    return 'i';
  }
  if (!strcmp(s, "while"))
    return loop_form(c, n, 0);
  if (!strcmp(s, "for"))
    return loop_form(c, n, 1);
  if (!strcmp(s, "dowhile"))
    return loop_form(c, n, 2);
  if (!strcmp(s, "break") || !strcmp(s, "continue"))
    return jump_out(c, n, s[0] == 'b');
  if (!strcmp(s, "foreach"))
    return foreach_form(c, n);
  if (!strcmp(s, "try"))
    return try_form(c, n);
  if (!strcmp(s, "let"))
    return let_form(c, n);
  if (!strcmp(s, "return")) {
    nargs(c, n, 0, 1);
    char r = c->cur->ret ? c->cur->ret : 'i';
    char t = n->nkids == 2 ? expr(c, n->kids[1], r) : 0;
    if (!t) {
      if (r == 's')
        push_str(c, "");
      else
        push_int(c, 0);
      t = r;
    }
    emit(c, OP_RET, 0, -1, 0);
    push(c, 1);
    return t;
  }
  if (!strcmp(s, "aggr") || !strcmp(s, "aggrinc"))
    return aggr_form(c, n, s[4] == 'i');
  if (!strcmp(s, "logaggr") || !strcmp(s, "printa") ||
      !strcmp(s, "clearaggr"))
    return aggr_misc(c, n, s);
  if (!strcmp(s, "baginsert") || !strcmp(s, "bagput") ||
      !strcmp(s, "bagremove"))
    return bag_form(c, n, s);
  const opdef *o = op_find(s);
  if (o)
    return operator(c, n, o);
  fn *f = ffind(c, s);
  if (f)
    return call_user(c, n, f);
  const vp_builtin *b = vp_builtin_find(s);
  if (b) {
    if (b->destructive && !c->lim->destructive)
      err(c, h, "destructive built-in '%s' needs --destructive", s);
    add_use(c, b->name, b->domains, h);
    return b->fn < 0 ? call_local(c, n, s) : call_target(c, n, b);
  }
  (void)want;
  err(c, h, "unknown function '%s'", s);
  push_int(c, 0);
  return 'i';
}

static char expr(cx *c, const vpr_node *n, char want) {
  switch (n->kind) {
  case VPR_INT:
    push_int(c, n->ival);
    return 'i';
  case VPR_STR:
    push_str(c, n->s);
    return 's';
  case VPR_NAME:
    return var(c, n, want);
  default:
    return list(c, n, want);
  }
}

/* ---- top level ---- */

static void walk_fn(cx *c, fn *f) {
  if (!c->final && setjmp(c->walk))
    return;
  c->cur = f;
  vpg_walk(&c->calls, (int)(f - c->f));
  f->ncode = 0;
  f->nlocals = f->nparams;
  f->nslots = f->maxstack = f->cost = 0;
  f->nuses = 0;
  c->nsc = c->nlp = c->depth = c->nslot = c->ntry = 0;
  c->nloc = f->nparams;
  if (!f->is_probe) {
    const vpr_node *ps = f->def->kids[2];
    for (int i = 0; i < f->nparams; i++) {
      const vpr_node *p = ps->kids[i];
      const char *name = is_name(p) ? p->s : p->kids[1]->s;
      c->sc[c->nsc++] = (local){name, f->ptype[i], i, f->ptype[i] == 's', i};
    }
  }
  char t = body(c, f->def, f->body);
  if (!f->is_probe && f->ret != t) {
    f->ret = t;
    c->changed = 1;
  }
  emit(c, OP_RET, 0, -1, 0);
}

static void add_global(cx *c, const vpr_node *form, int kind, int index) {
  const vpr_node *nm = form->kids[1];
  check_new_name(c, nm, form->kids[0]->s);
  if (gfind(c, nm->s) || ffind(c, nm->s))
    err(c, nm, "redefinition of '%s'", nm->s);
  c->g = realloc(c->g, (size_t)(c->ng + 1) * sizeof *c->g);
  if (!c->g)
    abort();
  c->g[c->ng] = (gsym){nm->s, kind, index, form};
  vpg_names_add(&c->gtab, nm->s, c->ng, gkey, c);
  c->ng++;
}

static void version(cx *c, const vpr_node *f) {
  if (f->nkids != 2 || f->kids[1]->kind != VPR_STR)
    err(c, f, "version needs a string \"MAJOR.MINOR\"");
  unsigned maj, min;
  char extra;
  if (sscanf(f->kids[1]->s, "%u.%u%c", &maj, &min, &extra) != 2)
    err(c, f->kids[1], "bad version \"%s\" (want \"MAJOR.MINOR\")",
        f->kids[1]->s);
  char *w = c->diag->warning;
  size_t cap = sizeof c->diag->warning;
  if (maj > VP_VERSION_MAJOR)
    err(c, f, "script needs VP version %u.%u; this engine runs %d.%d", maj,
        min, VP_VERSION_MAJOR, VP_VERSION_MINOR);
  if (w[0])
    return;
  if (maj < VP_VERSION_MAJOR)
    snprintf(w, cap,
             "%s:%d:%d: warning: script is for VP version %u.%u, this engine "
             "runs %d.%d; running anyway",
             c->file, f->line, f->col, maj, min, VP_VERSION_MAJOR,
             VP_VERSION_MINOR);
  else if (min > VP_VERSION_MINOR)
    snprintf(w, cap,
             "%s:%d:%d: warning: script is for VP version %u.%u and may use "
             "features this engine (%d.%d) lacks; running anyway",
             c->file, f->line, f->col, maj, min, VP_VERSION_MAJOR,
             VP_VERSION_MINOR);
}

static fn *add_fn(cx *c) {
  c->f = realloc(c->f, (size_t)(c->nf + 1) * sizeof *c->f);
  if (!c->f)
    abort();
  fn *f = &c->f[c->nf++];
  memset(f, 0, sizeof *f);
  vpg_add(&c->calls); /* node c->nf - 1 */
  return f;
}

/* Collect definitions; bodies are walked later. */
static void declare(cx *c, const vpr_node *f, int *nprobes) {
  if (f->kind != VPR_LIST || f->nkids == 0 || !is_name(f->kids[0]))
    err(c, f, "expected a top-level form (definteger, defun, vprobe ...)");
  const char *s = f->kids[0]->s;
  if (!strcmp(s, "version")) {
    version(c, f);
  } else if (!strcmp(s, "definteger")) {
    if (f->nkids < 2 || f->nkids > 4)
      err(c, f, "usage: (definteger NAME [INIT] [:pervm|:pervmk|:perhost])");
    int shared = 0;
    for (int i = 2; i < f->nkids; i++) {
      const vpr_node *k = f->kids[i];
      if (k->kind == VPR_INT && i == 2)
        continue;
      if (is_name(k) && (!strcmp(k->s, ":pervm") || !strcmp(k->s, ":pervmk") ||
                         !strcmp(k->s, ":perhost")))
        shared = 1;
      else
        err(c, k, "definteger: unexpected '%s'",
            is_name(k) ? k->s : k->kind == VPR_STR ? k->s : "list");
    }
    add_global(c, f, shared ? G_SHARED : G_INT,
               shared ? c->nshared++ : c->nints++);
  } else if (!strcmp(s, "defstring")) {
    if (f->nkids < 2 || f->nkids > 3 ||
        (f->nkids == 3 && f->kids[2]->kind != VPR_STR))
      err(c, f, "usage: (defstring NAME [\"INIT\"])");
    add_global(c, f, G_STR, c->nstrs++);
  } else if (!strcmp(s, "defaggr")) {
    if (f->nkids != 4 || f->kids[2]->kind != VPR_INT ||
        f->kids[3]->kind != VPR_INT || f->kids[2]->ival > 4 ||
        f->kids[3]->ival > 4)
      err(c, f, "usage: (defaggr NAME NINT NSTR), keys 0..4 each");
    add_global(c, f, G_AGGR, c->naggrs++);
  } else if (!strcmp(s, "defbag")) {
    if (f->nkids != 3 || f->kids[2]->kind != VPR_INT ||
        f->kids[2]->ival == 0 || f->kids[2]->ival > 1u << 20)
      err(c, f, "usage: (defbag NAME SIZE), SIZE 1..1048576");
    add_global(c, f, G_BAG, c->nbags++);
  } else if (!strcmp(s, "defun")) {
    if (f->nkids < 3 || f->kids[2]->kind != VPR_LIST)
      err(c, f, "usage: (defun NAME (PARAM ...) EXPR ...)");
    check_new_name(c, f->kids[1], "defun");
    if (gfind(c, f->kids[1]->s) || ffind(c, f->kids[1]->s))
      err(c, f->kids[1], "redefinition of '%s'", f->kids[1]->s);
    const vpr_node *ps = f->kids[2];
    if (ps->nkids > VPI_MAX_ARGS)
      err(c, ps, "a function takes at most %d parameters", VPI_MAX_ARGS);
    fn *fn_ = add_fn(c);
    fn_->name = f->kids[1]->s;
    vpg_names_add(&c->ftab, fn_->name, c->nf - 1, fkey, c);
    fn_->def = f;
    fn_->body = 3;
    fn_->nparams = ps->nkids;
    fn_->ret = 'i';
    for (int i = 0; i < ps->nkids; i++) {
      const vpr_node *p = ps->kids[i];
      fn_->ptype[i] = 'i';
      if (p->kind == VPR_LIST && p->nkids == 2 && is_name(p->kids[0]) &&
          (!strcmp(p->kids[0]->s, "int") || !strcmp(p->kids[0]->s, "string"))) {
        fn_->ptyped[i] = 1;
        fn_->ptype[i] = p->kids[0]->s[0] == 's' ? 's' : 'i';
        p = p->kids[1];
      }
      check_new_name(c, p, "a parameter");
      for (int j = 0; j < i; j++) {
        const vpr_node *q = ps->kids[j];
        q = q->kind == VPR_LIST ? q->kids[1] : q;
        if (!strcmp(q->s, p->s))
          err(c, p, "redefinition of parameter '%s'", p->s);
      }
    }
  } else if (!strcmp(s, "vprobe")) {
    if (f->nkids < 2 || !is_name(f->kids[1]))
      err(c, f, "usage: (vprobe PROBE EXPR ...)");
    int dom = vp_probe_domain(f->kids[1]->s);
    if (!dom)
      err(c, f->kids[1], "unknown probe '%s'", f->kids[1]->s);
    if (++*nprobes > c->lim->max_probes)
      err(c, f, "more than %d probes (--max-probes)", c->lim->max_probes);
    fn *p = add_fn(c);
    p->name = f->kids[1]->s;
    p->def = f;
    p->body = 2;
    p->is_probe = 1;
    p->domain = dom;
    p->ret = 'i';
  } else {
    err(c, f->kids[0], "unknown top-level form '%s'", s);
  }
}

/* ---- the call graph ---- */

/* out[i]: function i itself uses a built-in missing in every domain of
 * dom. */
static char *uses_outside(cx *c, int dom) {
  char *out = calloc((size_t)c->nf + 1, 1);
  if (!out)
    abort();
  for (int i = 0; i < c->nf; i++)
    for (int u = 0; u < c->f[i].nuses && !out[i]; u++)
      out[i] = !(c->f[i].uses[u].domains & dom);
  return out;
}

/* The error for probe, which reaches a built-in outside its domain: the
 * first such use depth-first (the probe's own, then its callees' in the
 * order called). */
static void domain_error(cx *c, const fn *probe) {
  char *self = uses_outside(c, probe->domain);
  int k = vpg_first_reached(&c->calls, (int)(probe - c->f), self);
  free(self);
  const fn *f = &c->f[k];
  for (int i = 0; i < f->nuses; i++) {
    if (f->uses[i].domains & probe->domain)
      continue;
    char via[VP_NAME_MAX + 16] = "";
    if (f != probe)
      snprintf(via, sizeof via, " (called through '%s')", f->name);
    err(c, f->uses[i].at, "'%s' is not available in probe '%s'%s",
        f->uses[i].name, probe->name, via);
  }
}

/* Each probe reaches only built-ins of its domain.  The reachability is
 * computed once per distinct domain mask; the walk that names the culprit
 * runs only for a probe that has one. */
static void check_all_domains(cx *c) {
  char *bad[VP_DOM_ALL + 1] = {0};
  int culprit = -1;
  for (int i = 0; i < c->nf && culprit < 0; i++) {
    int d = c->f[i].domain & VP_DOM_ALL;
    if (!c->f[i].is_probe)
      continue;
    if (!bad[d]) {
      bad[d] = uses_outside(c, d);
      vpg_spread_to_callers(&c->calls, bad[d]);
    }
    if (bad[d][i])
      culprit = i;
  }
  for (int k = 0; k <= VP_DOM_ALL; k++)
    free(bad[k]);
  if (culprit >= 0)
    domain_error(c, &c->f[culprit]); /* fails */
}

/* ---- image writing ---- */

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

static unsigned char *serialize(cx *c, const vpr_node *top, size_t *len) {
  vpi_header h = {0};
  h.magic = VPI_MAGIC;
  h.version = VPI_VERSION;
  h.flags = c->uses_tsc ? VPI_FLAG_TSC_HZ : 0;
  h.budget = c->lim->budget;
  h.max_depth = (uint32_t)c->lim->max_depth;
  h.nints = (uint32_t)c->nints;
  h.nstrs = (uint32_t)c->nstrs;
  h.nshared = (uint32_t)c->nshared;
  h.naggrs = (uint32_t)c->naggrs;
  h.nbags = (uint32_t)c->nbags;
  h.ndefs = (uint32_t)c->ng;
  h.nfuncs = (uint32_t)c->nf;
  int np = 0;
  for (int i = 0; i < c->nf; i++)
    np += c->f[i].is_probe;
  h.nprobes = (uint32_t)np;
  /* Intern every name and initial value before sizing the pool (never
   * empty: it ends with a NUL). */
  vpg_intern(&c->pool, "");
  uint32_t *gname = calloc((size_t)c->ng + 1, sizeof *gname);
  uint32_t *ginit = calloc((size_t)c->ng + 1, sizeof *ginit);
  uint32_t *fname = calloc((size_t)c->nf + 1, sizeof *fname);
  if (!gname || !ginit || !fname)
    abort();
  for (int i = 0; i < c->ng; i++) {
    gname[i] = vpg_intern(&c->pool, c->g[i].name);
    if (c->g[i].kind == G_STR)
      ginit[i] = vpg_intern(&c->pool, c->g[i].def->nkids == 3
                                          ? c->g[i].def->kids[2]->s : "");
  }
  for (int i = 0; i < c->nf; i++)
    fname[i] = vpg_intern(&c->pool, c->f[i].name);
  uint32_t ncode = 0;
  for (int i = 0; i < c->nf; i++)
    ncode += (uint32_t)c->f[i].ncode;
  h.pool_len = (uint32_t)c->pool.len;
  h.ncode = ncode;
  size_t off = align8(sizeof h);
#define SECTION(field, bytes)                                                  \
  h.field = (uint32_t)off;                                                     \
  off = align8(off + (bytes));
  SECTION(off_int, 8 * (size_t)h.nints);
  SECTION(off_str, 4 * (size_t)h.nstrs);
  SECTION(off_shared, 8 * (size_t)h.nshared);
  SECTION(off_aggr, sizeof(vpi_aggr) * h.naggrs);
  SECTION(off_bag, 4 * (size_t)h.nbags);
  SECTION(off_def, sizeof(vpi_def) * h.ndefs);
  SECTION(off_func, sizeof(vpi_func) * h.nfuncs);
  SECTION(off_probe, sizeof(vpi_probe) * h.nprobes);
  SECTION(off_pool, h.pool_len);
  SECTION(off_code, 4 * (size_t)ncode);
#undef SECTION
  h.total_len = (uint32_t)off;
  (void)top;
  unsigned char *b = calloc(1, off);
  if (!b)
    abort();
  memcpy(b, &h, sizeof h);
  uint64_t *ints = (uint64_t *)(b + h.off_int);
  uint32_t *strs = (uint32_t *)(b + h.off_str);
  uint64_t *sh = (uint64_t *)(b + h.off_shared);
  vpi_aggr *ag = (vpi_aggr *)(b + h.off_aggr);
  uint32_t *bags = (uint32_t *)(b + h.off_bag);
  vpi_def *defs = (vpi_def *)(b + h.off_def);
  for (int i = 0; i < c->ng; i++) {
    const gsym *g = &c->g[i];
    const vpr_node *d = g->def;
    uint64_t init = d->nkids >= 3 && d->kids[2]->kind == VPR_INT
                        ? d->kids[2]->ival : 0;
    static const int kinds[] = {VPI_DEF_INT, VPI_DEF_STR, VPI_DEF_SHARED,
                                VPI_DEF_AGGR, VPI_DEF_BAG};
    defs[i] = (vpi_def){(uint32_t)kinds[g->kind], gname[i],
                        (uint32_t)g->index, 0};
    switch (g->kind) {
    case G_INT: ints[g->index] = init; break;
    case G_SHARED: sh[g->index] = init; break;
    case G_STR: strs[g->index] = ginit[i]; break;
    case G_AGGR:
      ag[g->index] = (vpi_aggr){gname[i], (uint8_t)d->kids[2]->ival,
                                (uint8_t)d->kids[3]->ival, {0, 0}};
      break;
    case G_BAG: bags[g->index] = (uint32_t)init; break;
    }
  }
  vpi_func *fs = (vpi_func *)(b + h.off_func);
  vpi_probe *ps = (vpi_probe *)(b + h.off_probe);
  uint32_t *code = (uint32_t *)(b + h.off_code);
  uint32_t at = 0;
  int pi = 0;
  for (int i = 0; i < c->nf; i++) {
    fn *f = &c->f[i];
    memcpy(code + at, f->code, (size_t)f->ncode * 4);
    fs[i] = (vpi_func){fname[i], at, at + (uint32_t)f->ncode,
                       (uint32_t)f->nparams, (uint32_t)f->nlocals,
                       (uint32_t)f->nslots, (uint32_t)f->maxstack,
                       (uint32_t)f->cost, f->ret == 's', (uint32_t)f->recursive};
    at += (uint32_t)f->ncode;
    if (f->is_probe)
      ps[pi++] = (vpi_probe){fname[i], (uint32_t)i, (uint32_t)f->domain, 0};
  }
  memcpy(b + h.off_pool, c->pool.text, c->pool.len);
  free(gname);
  free(ginit);
  free(fname);
  *len = off;
  return b;
}

/* Everything that can fail; errors longjmp out of it. */
static void lower(cx *c, const vpr_node *top) {
  int nprobes = 0;
  if (c->lim->budget > VPI_MAX_BUDGET || c->lim->max_depth < 1 ||
      c->lim->max_depth > VPI_MAX_DEPTH)
    err(c, NULL, "limits out of range (budget at most %u, call depth 1..%d)",
        VPI_MAX_BUDGET, VPI_MAX_DEPTH);
  for (int i = 0; i < top->nkids; i++)
    declare(c, top->kids[i], &nprobes);
  /* Infer types until stable, then the final, error-reporting walk. */
  c->final = 0;
  for (int pass = 0; pass < 2 * c->nf + 4; pass++) {
    c->changed = 0;
    int *order = pass ? vpg_post_order(&c->calls) : NULL; /* the calls are known now */
    for (int i = 0; i < c->nf; i++)
      walk_fn(c, &c->f[order ? order[i] : i]);
    free(order);
    if (!c->changed)
      break;
  }
  c->final = 1;
  vpg_pool_clear(&c->pool);
  c->uses_tsc = 0;
  for (int i = 0; i < c->nf; i++)
    walk_fn(c, &c->f[i]);
  char *rec = vpg_recursive(&c->calls);
  for (int i = 0; i < c->nf; i++)
    c->f[i].recursive = rec[i];
  free(rec);
  check_all_domains(c);
  size_t len;
  unsigned char *b = serialize(c, top, &len);
  if (len > c->lim->max_code) {
    free(b);
    err(c, NULL, "program image of %zu bytes exceeds the limit of %zu "
        "(--max-code)", len, c->lim->max_code);
  }
  c->out = b;
  c->outlen = len;
}

unsigned char *vpv_lower(const vpr_node *top, const char *file,
                         const vp_limits *lim, vp_diag *diag, size_t *len) {
  cx *c = calloc(1, sizeof *c);
  if (!c)
    abort();
  c->file = file ? file : "<input>";
  c->lim = lim;
  c->diag = diag;
  c->final = 1;
  if (!setjmp(c->fail))
    lower(c, top);
  unsigned char *out = c->out;
  *len = c->outlen;
  for (int i = 0; i < c->nf; i++) {
    free(c->f[i].code);
    free(c->f[i].uses);
  }
  vpg_free(&c->calls);
  free(c->f);
  free(c->g);
  vpg_pool_free(&c->pool);
  vpg_names_free(&c->gtab);
  vpg_names_free(&c->ftab);
  free(c);
  return out;
}
