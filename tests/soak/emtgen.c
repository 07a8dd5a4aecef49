/*
 * emtgen - random well-typed Emmett scripts for the soak (tools/soak).
 *
 *   emtgen SEED [OFFSETS]
 *
 * writes one script to standard output; the same SEED (and OFFSETS file)
 * gives the same script.  OFFSETS lists probe offsets in the target, one
 * "FUNCTION 0xOFF" per line for an instruction boundary, "FUNCTION 0xOFF bad"
 * for one that is not (inside an instruction or past the end).  A script
 * that uses a bad one must be refused; its first line then says
 * "// expect: refused".
 *
 * The scripts follow docs/emmett.md and docs/vp.md: globals of every type
 * (per-thread, perhost, strings, aggregates, bags), functions (one
 * recursive), probes target-free and in the target (vt_soak's functions and
 * the libc functions it calls, with typed parameters), every statement form,
 * bounded and unbounded loops, exceptions raised and caught, printf with
 * every conversion.  Functions use only what every domain has, so they may
 * be called from any probe.
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_INT, T_STR, T_U32P, T_CHARP, T_VOIDP };
enum { C_FREE, C_ENTER, C_EXIT }; /* target-free probe or function; in the target */

typedef struct {
  char name[24];
  int type;
} gvar;

typedef struct {
  char name[16];
  int ni, ns;
} gaggr;

typedef struct {
  char name[16];
  int nparams;
  int isvoid;
} gfun;

typedef struct {
  char func[64];
  char off[24];
} goff;

#define MAXV 64

typedef struct {
  uint64_t rng;
  char *buf; /* the expression being built */
  size_t len, cap;
  gvar vars[MAXV]; /* in scope: globals, then parameters and locals */
  int nvars, nglobals;
  char shared[4][16];
  int nshared;
  gaggr aggrs[4];
  int naggrs;
  char bags[3][16];
  int nbags;
  gfun funs[6];
  int nfuns;
  goff good[512], bad[64];
  int ngood, nbad;
  int ctx, args_typed; /* the current body's domain; typed parameters declared */
  int infunc, funvoid, loop, nest, indent;
} gen;

/* ---- randomness (splitmix64) and output ---- */

static uint64_t rnd(gen *g) {
  uint64_t z = (g->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static int rn(gen *g, int n) { return (int)(rnd(g) % (uint64_t)n); }
static int chance(gen *g, int pct) { return rn(g, 100) < pct; }
#define PICK(g, arr) ((arr)[rn(g, (int)(sizeof(arr) / sizeof((arr)[0])))])

static void put(gen *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (g->len + (size_t)n + 1 > g->cap) {
    g->cap = (g->len + (size_t)n + 1) * 2;
    g->buf = realloc(g->buf, g->cap);
    if (!g->buf) exit(2);
  }
  va_start(ap, fmt);
  vsnprintf(g->buf + g->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  g->len += (size_t)n;
}

/* line: one statement at the current indentation */
static void line(gen *g, const char *fmt, ...) {
  va_list ap;
  printf("%*s", g->indent * 2, "");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

/* take the expression built so far */
static char *take(gen *g, size_t mark) {
  size_t n = g->len - mark;
  char *s = malloc(n + 1);
  if (!s) exit(2);
  memcpy(s, g->buf + mark, n);
  s[n] = 0;
  g->len = mark;
  return s;
}

static const char *var_of(gen *g, int type) {
  int idx[MAXV], n = 0;
  for (int i = 0; i < g->nvars; i++)
    if (g->vars[i].type == type) idx[n++] = i;
  return n ? g->vars[idx[rn(g, n)]].name : NULL;
}

static void add_var(gen *g, const char *name, int type) {
  if (g->nvars == MAXV) return;
  snprintf(g->vars[g->nvars].name, sizeof g->vars[0].name, "%s", name);
  g->vars[g->nvars++].type = type;
}

/* ---- expressions ---- */

static void iexpr(gen *g, int d);
static void sexpr(gen *g, int d);

static const char *const literals[] = {"0", "1", "2", "3", "7", "-1", "42", "255", "256",
                                       "0x7fffffffffffffff", "(-9223372036854775807 - 1)",
                                       "0xffffffff", "1000000", "-5", "64", "63"};

static void ileaf(gen *g) {
  const char *v;
  int k = rn(g, 10);
  if (k < 3 && (v = var_of(g, T_INT))) put(g, "%s", v);
  else if (k < 5) put(g, "%s", PICK(g, literals));
  else if (k == 5) put(g, "%d", rn(g, 1000));
  else if (k == 6) put(g, "%s", PICK(g, ((const char *[]){"TSC", "THREADID", "PCPUID", "TSC_HZ", "PTSC"})));
  else if (k == 7 && g->ctx == C_ENTER && !g->args_typed) put(g, "ARG%d", rn(g, 6));
  else if (k == 7 && g->ctx != C_FREE)
    put(g, "%s", PICK(g, ((const char *[]){"RAX", "RDI", "RSI", "RSP", "RBP", "RIP", "R12", "RFLAGS"})));
  else if (k == 8 && g->ctx != C_FREE) put(g, "curpid()");
  else put(g, "%d", rn(g, 20) - 5);
}

/* a read of the target's memory: valid (code, a pointer argument) or not */
static void memread(gen *g, int d) {
  const char *p;
  static const char *const ty[] = {"int", "uint8", "int16", "uint32", "int64", "char"};
  int k = rn(g, 6);
  if (k == 0) {
    put(g, "getvmx(sym2addr(\"%s\") + ", PICK(g, ((const char *[]){"soak_fib", "soak_mix", "soak_switch", "nosuch_sym", "malloc"})));
    iexpr(g, 0);
    put(g, " %% 64)");
  } else if (k == 1 && (p = var_of(g, T_U32P))) {
    put(g, "%s[", p);
    iexpr(g, d - 1);
    put(g, chance(g, 80) ? " & 31]" : "]");
  } else if (k == 2 && (p = var_of(g, T_CHARP))) {
    put(g, "*(%s *)(%s + %d)", PICK(g, ty), p, rn(g, 8));
  } else if (k == 3 && (p = var_of(g, T_VOIDP))) {
    put(g, "*(%s *)%s", PICK(g, ty), p);
  } else if (k == 4 && g->ctx == C_ENTER && !g->args_typed) {
    put(g, "*(%s *)ARG%d", PICK(g, ty), rn(g, 4));
  } else if (k == 5) {
    put(g, "*(%s *)(", PICK(g, ty));
    iexpr(g, d - 1);
    put(g, ")");
  } else {
    put(g, "getvmx(RSP + %d)", 8 * rn(g, 4));
  }
}

static void call_fun(gen *g, int d, int want_value) {
  int idx[8], n = 0;
  for (int i = 0; i < g->nfuns; i++)
    if (!want_value || !g->funs[i].isvoid) idx[n++] = i;
  if (!n) {
    put(g, "0");
    return;
  }
  gfun *f = &g->funs[idx[rn(g, n)]];
  put(g, "%s(", f->name);
  for (int i = 0; i < f->nparams; i++) {
    if (i) put(g, ", ");
    iexpr(g, d - 1);
  }
  put(g, ")");
}

static void iexpr(gen *g, int d) {
  static const char *const bin[] = {"+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^",
                                    "&&", "||", "<", ">", "<=", ">=", "==", "!="};
  if (d <= 0 || chance(g, 30)) {
    ileaf(g);
    return;
  }
  int k = rn(g, 20);
  if (k < 7) {
    put(g, "(");
    iexpr(g, d - 1);
    put(g, " %s ", PICK(g, bin));
    iexpr(g, d - 1);
    put(g, ")");
  } else if (k == 7) {
    put(g, "%s(", PICK(g, ((const char *[]){"-", "~", "!"})));
    iexpr(g, d - 1);
    put(g, ")");
  } else if (k == 8) {
    put(g, "(");
    iexpr(g, d - 1);
    put(g, " ? ");
    iexpr(g, d - 1);
    put(g, " : ");
    iexpr(g, d - 1);
    put(g, ")");
  } else if (k == 9 && g->nfuns) {
    call_fun(g, d, 1);
  } else if (k == 10) {
    put(g, "strcmp(");
    sexpr(g, d - 1);
    put(g, ", ");
    sexpr(g, d - 1);
    put(g, ")");
  } else if (k == 11) {
    put(g, "(");
    sexpr(g, d - 1);
    put(g, chance(g, 50) ? " == " : " != ");
    sexpr(g, d - 1);
    put(g, ")");
  } else if (k == 12) {
    put(g, "(%s)(", PICK(g, ((const char *[]){"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64", "char"})));
    iexpr(g, d - 1);
    put(g, ")");
  } else if (k == 13 && g->nshared) {
    const char *s = g->shared[rn(g, g->nshared)];
    if (chance(g, 60)) {
      put(g, "fetchadd(%s, ", s);
      iexpr(g, d - 1);
    } else {
      put(g, "cmpxchg(%s, ", s);
      iexpr(g, d - 1);
      put(g, ", ");
      iexpr(g, d - 1);
    }
    put(g, ")");
  } else if (k == 14) {
    put(g, "cycles2ms(");
    iexpr(g, d - 1);
    put(g, ")");
  } else if (k == 15 && g->nbags) {
    put(g, "%s[", g->bags[rn(g, g->nbags)]); /* removes; BagEmptyError if none */
    iexpr(g, 0);
    put(g, "]");
  } else if (k == 16) {
    put(g, "sizeof(%s)", PICK(g, ((const char *[]){"int", "uint8", "int16", "uint32", "char"})));
  } else if (k >= 17 && g->ctx != C_FREE) {
    memread(g, d);
  } else {
    put(g, "(");
    iexpr(g, d - 1);
    put(g, " %s ", PICK(g, ((const char *[]){"/", "%"}))); /* division, maybe by zero */
    iexpr(g, 0);
    put(g, ")");
  }
}

static void sexpr(gen *g, int d) {
  static const char *const lits[] = {"\"\"", "\"a\"", "\"soak\"", "\"x y z\"", "\"tab\\there\"",
                                     "\"quote\\\"d\"", "\"%d%s\""};
  const char *v;
  int k = rn(g, 6);
  (void)d;
  if (k < 2 && (v = var_of(g, T_STR))) put(g, "%s", v);
  else if (k == 2) put(g, "PROBENAME");
  else if (k == 3 && g->ctx != C_FREE) put(g, "curprocname()");
  else if (k == 4 && (v = var_of(g, T_CHARP))) put(g, "(string)%s", v);
  else put(g, "%s", PICK(g, lits));
}

static char *ie(gen *g, int d) {
  size_t m = g->len;
  iexpr(g, d);
  return take(g, m);
}
static char *se(gen *g) {
  size_t m = g->len;
  sexpr(g, 1);
  return take(g, m);
}

/* ---- printf and sprintf ---- */

/* a format and its arguments: every conversion, flag, width, precision */
static void format(gen *g, char **fmt, char **args) {
  size_t m = g->len, a;
  int n = 1 + rn(g, 6), nval = 0;
  char argbuf[2048] = "";
  size_t al = 0;
  put(g, "\"");
  for (int i = 0; i < n && nval < 13; i++) {
    static const char *const conv = "diuxXocsp%";
    char c = conv[rn(g, 10)];
    put(g, "%s", PICK(g, ((const char *[]){"", " ", "v=", "[", "\\t"})));
    put(g, "%%");
    if (c != '%') {
      if (chance(g, 30)) put(g, "%s", PICK(g, ((const char *[]){"-", "+", " ", "#", "0", "-0"})));
      if (chance(g, 10)) {
        put(g, "*");
        a = g->len;
        put(g, "%d", rn(g, 12));
        al += (size_t)snprintf(argbuf + al, sizeof argbuf - al, ", %s", g->buf + a);
        g->len = a;
        nval++;
      } else if (chance(g, 30)) {
        put(g, "%d", rn(g, 12));
      }
      if (chance(g, 20)) put(g, ".%d", rn(g, 6));
      if (c != 's' && c != 'c' && chance(g, 15)) put(g, "%s", PICK(g, ((const char *[]){"l", "ll", "h", "z"})));
    }
    put(g, "%c", c);
    if (c == '%') continue;
    char *e = c == 's' ? se(g) : ie(g, 1);
    if (c == 'c') {
      free(e);
      e = ie(g, 0);
    }
    al += (size_t)snprintf(argbuf + al, sizeof argbuf - al, ", %s", e);
    free(e);
    nval++;
  }
  put(g, "\\n\"");
  *fmt = take(g, m);
  *args = strdup(argbuf);
}

/* ---- statements ---- */

static void block(gen *g, int nstmt);

static void aggr_stmt(gen *g) {
  gaggr *a = &g->aggrs[rn(g, g->naggrs)];
  size_t m = g->len;
  int k = rn(g, 10);
  if (k < 6) {
    put(g, "%s[", a->name);
    for (int i = 0; i < a->ni + a->ns; i++) {
      if (i) put(g, ", ");
      if (i < a->ni) iexpr(g, 1);
      else sexpr(g, 0);
    }
    put(g, "]");
    if (k < 3) {
      put(g, "++");
    } else {
      put(g, " <- ");
      iexpr(g, 1);
    }
  } else if (k == 6) {
    put(g, "logaggr(%s%s)", a->name, chance(g, 30) ? ", 1" : "");
  } else if (k == 7) {
    put(g, "clearaggr(%s)", a->name);
  } else if (k == 8) {
    put(g, "printa(%s)", a->name);
  } else {
    put(g, "printa(%s, \"", a->name);
    for (int i = 0; i < a->ni; i++) put(g, "%s ", PICK(g, ((const char *[]){"%=d", "%=x", "%d", "%#x"})));
    for (int i = 0; i < a->ns; i++) put(g, "%s ", chance(g, 50) ? "%=s" : "%s");
    put(g, "%s\\n\")", PICK(g, ((const char *[]){"%count$=d", "%avg$=d %max$=d", "%min$d %sum$d", "%pct$d", "%latest$=d"})));
  }
  char *s = take(g, m);
  line(g, "%s;", s);
  free(s);
}

static void assign(gen *g) {
  const char *v = var_of(g, T_INT);
  char *e = ie(g, 3);
  if (!v) v = "soak_auto";
  int k = rn(g, 10);
  if (k < 5) line(g, "%s = %s;", v, e);
  else if (k < 8) line(g, "%s %s= %s;", v, PICK(g, ((const char *[]){"+", "-", "*", "/", "%", "<<", ">>", "&", "|", "^"})), e);
  else line(g, k == 8 ? "%s++;" : "%s--;", v);
  free(e);
}

static void target_stmt(gen *g) {
  const char *s = var_of(g, T_STR);
  if (!s) return;
  int k = rn(g, 3);
  if (k == 0) line(g, "vmxstack(%s%s);", s, chance(g, 50) ? "" : PICK(g, ((const char *[]){", 1", ", 3", ", 8", ", 64", ", 0"})));
  else if (k == 1 && var_of(g, T_CHARP)) line(g, "getvmxstr(%s, %s);", s, var_of(g, T_CHARP));
  else if (k == 1) line(g, "getvmxstr(%s, \"%s\");", s, PICK(g, ((const char *[]){"soak_fib", "mypid", "nosuch"})));
  else {
    char *e = ie(g, 1);
    line(g, "getvmxstr(%s, %s);", s, e);
    free(e);
  }
}

static void loop_stmt(gen *g) {
  char *c = ie(g, 2);
  int k = rn(g, 6), lv = g->loop < 3 ? g->loop : 2;
  g->loop++;
  if (k < 3) {
    line(g, "for (i%d = 0; i%d < %d; i%d++) {", lv, lv, rn(g, k == 0 ? 200 : 12), lv);
  } else if (k == 3) {
    line(g, "while (1) {"); /* unbounded: the budget ends it */
  } else if (k == 4) {
    line(g, "for (i%d = 0; ; i%d++) {", lv, lv);
  } else {
    line(g, "do {");
  }
  g->indent++;
  block(g, 1 + rn(g, 3));
  if (chance(g, 30)) line(g, "if (%s) { %s; }", c, chance(g, 50) ? "break" : "continue");
  g->indent--;
  if (k == 5) line(g, "} while (i%d++ < %d);", lv, rn(g, 10));
  else line(g, "}");
  g->loop--;
  free(c);
}

static void try_stmt(gen *g) {
  static const char *const exc[] = {"MemAccessError", "VmxMemAccessError", "BagFullError",
                                    "BagEmptyError", "DivisionByZeroError",
                                    "BudgetExceededError", "StackDepthError"};
  line(g, "try {");
  g->indent++;
  block(g, 1 + rn(g, 3));
  g->indent--;
  int n = 1 + rn(g, 2);
  for (int i = 0; i < n; i++) {
    if (chance(g, 30)) line(g, "} catch {");
    else line(g, "} catch (%s) {", PICK(g, exc));
    g->indent++;
    block(g, rn(g, 2));
    g->indent--;
  }
  line(g, "}");
}

static void stmt(gen *g) {
  int deep = g->nest >= 3;
  int k = rn(g, deep ? 12 : 20);
  char *e, *f, *a;
  const char *v;
  g->nest++;
  switch (k) {
  case 0: case 1: case 2: assign(g); break;
  case 3:
    if ((v = var_of(g, T_STR))) {
      e = se(g);
      line(g, "%s = %s;", v, e);
      free(e);
    }
    break;
  case 4:
    if (g->naggrs) aggr_stmt(g);
    break;
  case 5:
    format(g, &f, &a);
    if (chance(g, 40) && (v = var_of(g, T_STR))) line(g, "sprintf(%s, %s%s);", v, f, a);
    else line(g, "printf(%s%s);", f, a);
    free(f);
    free(a);
    break;
  case 6:
    if (g->nbags) {
      e = ie(g, 1);
      f = ie(g, 2);
      line(g, "%s[%s] <- %s;", g->bags[rn(g, g->nbags)], e, f);
      free(e);
      free(f);
    }
    break;
  case 7:
    if (g->ctx != C_FREE) target_stmt(g);
    else if ((v = var_of(g, T_INT))) line(g, "getsystemtime(%s);", v);
    break;
  case 8:
    e = ie(g, 2);
    k = rn(g, 4);
    if (k == 0) line(g, "logint(%s);", e);
    else if (k == 1) line(g, "writeint(%s, %d);", e, 1 + rn(g, 8));
    else if (k == 2 && g->nfuns) {
      free(e);
      size_t m = g->len;
      call_fun(g, 2, 0);
      e = take(g, m);
      line(g, "%s;", e);
    } else {
      free(e);
      e = se(g);
      line(g, "logstr(%s);", e);
    }
    free(e);
    break;
  case 9:
    e = ie(g, 2);
    if (g->infunc && !g->funvoid) {
      f = ie(g, 2);
      line(g, "if (%s) { return %s; }", e, f);
      free(f);
    } else {
      line(g, "if (%s) { return; }", e);
    }
    free(e);
    break;
  case 10: case 11: assign(g); break;
  case 12: case 13:
    e = ie(g, 2);
    line(g, "if (%s) {", e);
    g->indent++;
    block(g, 1 + rn(g, 3));
    g->indent--;
    if (chance(g, 50)) {
      line(g, "} else {");
      g->indent++;
      block(g, 1 + rn(g, 2));
      g->indent--;
    }
    line(g, "}");
    free(e);
    break;
  case 14: case 15: loop_stmt(g); break;
  case 16: case 17: try_stmt(g); break;
  default:
    if (g->nbags) {
      line(g, "foreach (k0, v0) in %s {", g->bags[rn(g, g->nbags)]);
      g->indent++;
      block(g, 1 + rn(g, 2));
      g->indent--;
      line(g, "}");
    }
  }
  g->nest--;
}

static void block(gen *g, int nstmt) {
  for (int i = 0; i < nstmt; i++) stmt(g);
}

/* the locals every body has: loop counters, foreach variables, some more */
static void locals(gen *g) {
  line(g, "int i0, i1, i2, k0, v0;");
  add_var(g, "k0", T_INT);
  add_var(g, "v0", T_INT);
  int n = rn(g, 3);
  for (int i = 0; i < n; i++) {
    static const char *const ty[] = {"int", "int8", "uint16", "int32", "uint64"};
    char name[16];
    snprintf(name, sizeof name, "l%d", i);
    line(g, "%s %s%s;", PICK(g, ty), name, chance(g, 50) ? " = 1" : "");
    add_var(g, name, T_INT);
  }
  if (chance(g, 70)) {
    line(g, "string ls;");
    add_var(g, "ls", T_STR);
  }
}

/* ---- top level ---- */

static void globals(gen *g) {
  static const char *const ity[] = {"int", "int8", "int16", "int32", "int64", "uint8",
                                    "uint16", "uint32", "uint64", "char"};
  int n = 2 + rn(g, 5);
  for (int i = 0; i < n; i++) {
    char name[16];
    snprintf(name, sizeof name, "g%d", i);
    if (chance(g, 50)) printf("%s %s;\n", PICK(g, ity), name);
    else printf("%s %s = %d;\n", PICK(g, ity), name, rn(g, 300) - 100);
    add_var(g, name, T_INT);
  }
  g->nshared = 1 + rn(g, 2);
  for (int i = 0; i < g->nshared; i++) {
    snprintf(g->shared[i], sizeof g->shared[i], "sh%d", i);
    printf("%s int %s;\n", PICK(g, ((const char *[]){"perhost", "pervm", "perhost"})), g->shared[i]);
    add_var(g, g->shared[i], T_INT);
  }
  n = 1 + rn(g, 2);
  for (int i = 0; i < n; i++) {
    char name[16];
    snprintf(name, sizeof name, "s%d", i);
    if (chance(g, 50)) printf("string %s;\n", name);
    else printf("string %s = \"init%d\";\n", name, i);
    add_var(g, name, T_STR);
  }
  g->naggrs = 1 + rn(g, 3);
  for (int i = 0; i < g->naggrs; i++) {
    gaggr *a = &g->aggrs[i];
    snprintf(a->name, sizeof a->name, "ag%d", i);
    a->ni = rn(g, 3);
    a->ns = rn(g, 3);
    if (a->ni + a->ns == 0) a->ni = 1; /* at least one key */
    if (a->ns == 0 && chance(g, 50)) printf("aggr %s[%d];\n", a->name, a->ni);
    else printf("aggr %s[%d][%d];\n", a->name, a->ni, a->ns);
  }
  g->nbags = rn(g, 3);
  for (int i = 0; i < g->nbags; i++) {
    snprintf(g->bags[i], sizeof g->bags[i], "bg%d", i);
    printf("bag %s[%d];\n", g->bags[i], PICK(g, ((const int[]){1, 4, 16, 256})));
  }
  g->nglobals = g->nvars;
}

static void begin_body(gen *g, int ctx) {
  g->nvars = g->nglobals;
  g->ctx = ctx;
  g->args_typed = 0;
  g->indent = 1;
  g->nest = g->loop = 0;
}

static void functions(gen *g) {
  /* recursive: depth from the argument, past 64 raises StackDepthError */
  printf("\nint rec(int n) {\n  if (n <= 0) { return 0; }\n  return 1 + rec(n - 1);\n}\n");
  snprintf(g->funs[0].name, sizeof g->funs[0].name, "rec");
  g->funs[0].nparams = 1;
  g->nfuns = 1;
  int n = rn(g, 4);
  for (int i = 0; i < n; i++) {
    gfun f = {.nparams = rn(g, 4), .isvoid = chance(g, 30)};
    snprintf(f.name, sizeof f.name, "fn%d", i);
    begin_body(g, C_FREE);
    g->infunc = 1;
    g->funvoid = f.isvoid;
    printf("\n%s %s(", f.isvoid ? "void" : "int", f.name);
    for (int p = 0; p < f.nparams; p++) {
      char name[16];
      snprintf(name, sizeof name, "p%d", p);
      printf("%sint %s", p ? ", " : "", name);
      add_var(g, name, T_INT);
    }
    printf(") {\n");
    locals(g);
    block(g, 1 + rn(g, 4));
    if (!f.isvoid) {
      char *e = ie(g, 2);
      line(g, "return %s;", e);
      free(e);
    }
    printf("}\n");
    g->infunc = 0;
    g->funs[g->nfuns++] = f; /* callable from later functions: no cycles */
  }
}

/* A function of the target or of libc, with its parameters as declared. */
typedef struct {
  const char *name, *params;
  int ptypes[3];
  const char *pnames[3];
} tfun;

static const tfun tfuns[] = {
    {"soak_fib", "uint64 n", {T_INT}, {"n"}},
    {"soak_switch", "int64 x", {T_INT}, {"x"}},
    {"soak_mix", "uint32 *v, int n", {T_U32P, T_INT}, {"v", "n"}},
    {"soak_strings", "uint32 tid, uint64 k", {T_INT, T_INT}, {"tid", "k"}},
    {"soak_io", "uint32 tid", {T_INT}, {"tid"}},
    {"soak_round", "uint32 tid, uint64 r, uint32 *v", {T_INT, T_INT, T_U32P}, {"tid", "r", "v"}},
    {"libc.malloc", "uint64 size", {T_INT}, {"size"}},
    {"libc.free", "void *ptr", {T_VOIDP}, {"ptr"}},
    {"libc.memcpy", "void *dst, char *src, uint64 n", {T_VOIDP, T_CHARP, T_INT}, {"dst", "src", "n"}},
    {"libc.strlen", "char *str", {T_CHARP}, {"str"}},
    {"libc.strcmp", "char *a, char *b", {T_CHARP, T_CHARP}, {"a", "b"}},
    {"libc.snprintf", "char *buf, uint64 n, char *fmt", {T_CHARP, T_INT, T_CHARP}, {"buf", "n", "fmt"}},
    {"libc.getpid", "", {0}, {NULL}},
    {"libc.write", "int fd, char *buf, uint64 n", {T_INT, T_CHARP, T_INT}, {"fd", "buf", "n"}},
};

static const char *const globs[] = {"soak_*", "soak_?ix", "libc.str*", "libc.mem*",
                                    "libc.*alloc", "libc.get*", "libc.free"};

static int seen(char names[][96], int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], s)) return 1;
  return 0;
}

static void probes(gen *g, int use_bad) {
  char names[12][96];
  int n = 1 + rn(g, 6), np = 0;
  for (int i = 0; i < n + use_bad; i++) {
    char name[96];
    const tfun *tf = NULL;
    int ctx = C_ENTER, k = rn(g, 20);
    if (i == n) { /* the invalid offset, last */
      goff *o = &g->bad[rn(g, g->nbad)];
      snprintf(name, sizeof name, "VMX:OFFSET:%s:%s", o->func, o->off);
    } else if (k < 2) {
      snprintf(name, sizeof name, "%s", PICK(g, ((const char *[]){"VMXLoad", "VMXUnload", "VMX1Hz", "VMX10Hz"})));
      ctx = C_FREE;
    } else if (k == 2) {
      snprintf(name, sizeof name, "USEC:%d", PICK(g, ((const int[]){200, 1000, 5000, 50000})));
      ctx = C_FREE;
    } else if (k == 3) {
      snprintf(name, sizeof name, "VMX:PROFILE:%dmsec", 1 + rn(g, 10));
    } else if (k < 11) {
      tf = &PICK(g, tfuns);
      snprintf(name, sizeof name, "VMX:ENTER:%s", tf->name);
    } else if (k < 15) {
      tf = &PICK(g, tfuns);
      snprintf(name, sizeof name, "VMX:EXIT:%s", tf->name);
      ctx = C_EXIT;
      tf = NULL;
    } else if (k < 18 && g->ngood) {
      goff *o = &g->good[rn(g, g->ngood)];
      snprintf(name, sizeof name, "VMX:OFFSET:%s:%s", o->func, o->off);
    } else {
      snprintf(name, sizeof name, "VMX:%s:%s", chance(g, 70) ? "ENTER" : "EXIT", PICK(g, globs));
      ctx = name[4] == 'E' && name[5] == 'X' ? C_EXIT : C_ENTER;
    }
    if (seen(names, np, name)) continue;
    snprintf(names[np++], sizeof names[0], "%s", name);
    begin_body(g, ctx);
    if (tf && chance(g, 60)) {
      printf("\n%s(%s) {\n", name, tf->params);
      g->args_typed = 1;
      for (int p = 0; p < 3 && tf->pnames[p]; p++) add_var(g, tf->pnames[p], tf->ptypes[p]);
    } else {
      printf("\n%s {\n", name);
    }
    locals(g);
    block(g, 1 + rn(g, 5));
    printf("}\n");
  }
}

static void read_offsets(gen *g, const char *path) {
  FILE *f = fopen(path, "r");
  char buf[256], fn[64], off[24], bad[8];
  if (!f) {
    fprintf(stderr, "emtgen: %s: cannot open\n", path);
    exit(1);
  }
  while (fgets(buf, sizeof buf, f)) {
    int n = sscanf(buf, "%63s %23s %7s", fn, off, bad);
    if (n < 2) continue;
    goff *o = n == 3 ? (g->nbad < 64 ? &g->bad[g->nbad++] : NULL)
                     : (g->ngood < 512 ? &g->good[g->ngood++] : NULL);
    if (o) {
      snprintf(o->func, sizeof o->func, "%s", fn);
      snprintf(o->off, sizeof o->off, "%s", off);
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  static gen g;
  if (argc < 2) {
    fprintf(stderr, "usage: emtgen SEED [OFFSETS]\n");
    return 1;
  }
  uint64_t seed = strtoull(argv[1], NULL, 0);
  g.rng = seed * 0x2545f4914f6cdd1dull + 1;
  if (argc > 2) read_offsets(&g, argv[2]);
  int use_bad = g.nbad && chance(&g, 4);
  if (use_bad) printf("// expect: refused\n");
  printf("// emtgen %" PRIu64 "\n", seed);
  globals(&g);
  functions(&g);
  probes(&g, use_bad);
  free(g.buf);
  return 0;
}
