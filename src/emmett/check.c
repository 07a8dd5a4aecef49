/* check.c - names, types and inference over the Emmett tree. */
#include "emmett/check.h"

#include <string.h>

#include "vp/vp.h"

/* One copy of a function with bag/aggr parameters, for one argument tuple. */
typedef struct spec spec;
struct spec {
  ast_node *fn;      /* the copy (N_FUNC), checked after the program */
  ast_node *generic; /* the function it copies */
  spec *next;        /* in creation order */
};

typedef struct K {
  ast_ctx *c;
  ast_map *specs;         /* "f\nbag1\naggr2" -> spec */
  spec *sfirst, **stail;
  ast_map *gmap;          /* globals and functions */
  chk_sym *gfirst, **gtail;
  chk_sym *scope;         /* innermost local first */
  ast_map *lmap;          /* name -> its innermost local (chk_sym.shadow
                             chains the ones it hides) */
  int blk, nblk;          /* serial of the current block; blocks so far */
  ty_type *ret;           /* return type of the current function */
  int in_probe, loops;
  int domain;             /* VP_DOM_* of the current probe; 0 in functions */
  const char *probe;
} K;

static ty_type *expr(K *k, ast_node *n);
static void stmt(K *k, ast_node *n);

/* ---- helpers ---- */

static int is_mem(const ast_node *n) {
  return (n->kind == N_UNARY && n->op == '*') ||
         (n->kind == N_INDEX && n->flag == IX_MEM) || n->kind == N_MEMBER;
}

/* The integer type C arithmetic gives a value of type t (int is 64 bits). */
static ty_type *promote(const ty_type *t) {
  if (t->kind == TY_PTR || t->kind == TY_ARRAY) return &ty_uint64;
  if (t->kind == TY_INT && t->size == 8 && !t->is_signed) return &ty_uint64;
  return &ty_int;
}

static const char *what(K *k, const ty_type *t) {
  if (t->kind == TY_PTR || t->kind == TY_ARRAY) return "pointer";
  if (t->kind == TY_INT) return "int";
  return ty_name(k->c, t);
}

/* An expression used as a value: integers, pointers, strings, arrays
 * (their address).  Returns its type. */
static ty_type *value(K *k, ast_node *n) {
  ty_type *t = expr(k, n);
  if (t->kind == TY_VOID) ast_error(k->c, n->pos, "void value not ignored as it ought to be");
  if (t->kind == TY_STRUCT)
    ast_error(k->c, n->pos, "%s used as a value (use a pointer or a field)", ty_name(k->c, t));
  if (t->kind == TY_AGGR || t->kind == TY_BAG)
    ast_error(k->c, n->pos, "%s '%s' used as a value", ty_name(k->c, t), n->name ? n->name : "");
  return t;
}

static ty_type *intval(K *k, ast_node *n) {
  ty_type *t = value(k, n);
  if (t->kind == TY_STRING) ast_error(k->c, n->pos, "string used where an integer is required");
  return t;
}

static ty_type *strval(K *k, ast_node *n) {
  ty_type *t = value(k, n);
  if (t->kind != TY_STRING)
    ast_error(k->c, n->pos, "%s used where a string is required", what(k, t));
  return t;
}

static chk_sym *lookup(K *k, const char *name) {
  chk_sym *s = ast_map_get(k->lmap, name);
  if (s) return s->alias ? s->alias : s;
  return ast_map_get(k->gmap, name);
}

/* Locals live in a map (name -> innermost) so that a lookup costs the same
 * with a hundred thousand of them; leaving a block unbinds its own. */
static void push_local(K *k, chk_sym *s) {
  s->shadow = ast_map_get(k->lmap, s->name);
  s->blk = k->blk;
  ast_map_put(k->c, k->lmap, s->name, s);
  s->next = k->scope;
  k->scope = s;
}

static void pop_locals(K *k, chk_sym *to) {
  for (; k->scope != to; k->scope = k->scope->next)
    ast_map_put(k->c, k->lmap, k->scope->name, k->scope->shadow);
}

static chk_sym *add_global(K *k, const char *name, ty_type *t, ast_node *decl,
                           ast_pos pos) {
  if (ast_map_get(k->gmap, name)) ast_error(k->c, pos, "redefinition of '%s'", name);
  if (vp_var_find(name)) ast_error(k->c, pos, "'%s' is a built-in variable", name);
  chk_sym *s = ast_alloc(k->c, sizeof *s);
  s->kind = SYM_GLOBAL;
  s->name = name;
  s->ty = t;
  s->decl = decl;
  ast_map_put(k->c, k->gmap, name, s);
  *k->gtail = s;
  k->gtail = &s->next;
  return s;
}

static chk_sym *add_local(K *k, ast_node *d) {
  chk_sym *old = ast_map_get(k->lmap, d->name);
  if (old && old->blk == k->blk) ast_error(k->c, d->pos, "redefinition of '%s'", d->name);
  ty_type *t = d->dty;
  if (t->kind == TY_VOID) ast_error(k->c, d->pos, "variable '%s' declared void", d->name);
  if (t->kind == TY_STRUCT || t->kind == TY_ARRAY)
    ast_error(k->c, d->pos, "variable '%s' of type %s: only pointers can reach target memory",
              d->name, ty_name(k->c, t));
  chk_sym *s = ast_alloc(k->c, sizeof *s);
  s->kind = SYM_LOCAL;
  s->name = d->name;
  s->ty = t;
  s->decl = d;
  push_local(k, s);
  d->sym = s;
  return s;
}

/* Can a value of type from be stored in a variable of type to? */
static void assignable(K *k, ast_pos pos, const ty_type *to, const ty_type *from,
                       const char *name) {
  int ts = to->kind == TY_STRING, fs = from->kind == TY_STRING;
  if (ts == fs) return;
  if (name)
    ast_error(k->c, pos, "cannot assign %s to %s variable '%s'", what(k, from), what(k, to), name);
  ast_error(k->c, pos, "cannot convert %s to %s", what(k, from), what(k, to));
}

/* ---- constants ---- */

int chk_const(const ast_node *n, uint64_t *v) {
  uint64_t a, b, c;
  switch (n->kind) {
  case N_NUM: *v = n->ival; return 1;
  case N_SIZEOF:
    if (!n->dty) return 0;
    *v = n->dty->size;
    return 1;
  case N_CAST:
    if (!chk_const(n->a, &a) || !n->dty || n->dty->kind == TY_STRING) return 0;
    if (n->dty->kind == TY_INT && n->dty->size < 8) {
      int bits = (int)n->dty->size * 8;
      a &= ((uint64_t)1 << bits) - 1;
      if (n->dty->is_signed && (a >> (bits - 1))) a |= ~(((uint64_t)1 << bits) - 1);
    }
    *v = a;
    return 1;
  case N_UNARY:
    if (!chk_const(n->a, &a)) return 0;
    switch (n->op) {
    case '-': *v = 0 - a; return 1;
    case '~': *v = ~a; return 1;
    case '!': *v = !a; return 1;
    }
    return 0;
  case N_COND:
    if (!chk_const(n->a, &a) || !chk_const(n->b, &b) || !chk_const(n->c, &c)) return 0;
    *v = a ? b : c;
    return 1;
  case N_BINARY:
    if (!chk_const(n->a, &a) || !chk_const(n->b, &b)) return 0;
    switch (n->op) {
    case '+': *v = a + b; return 1;
    case '-': *v = a - b; return 1;
    case '*': *v = a * b; return 1;
    case '/': case '%': {
      if (!b) return 0;
      int64_t sa = (int64_t)a, sb = (int64_t)b;
      if (n->flag && !(sa == INT64_MIN && sb == -1))
        *v = (uint64_t)(n->op == '/' ? sa / sb : sa % sb);
      else
        *v = n->op == '/' ? a / b : a % b;
      return 1;
    }
    case '&': *v = a & b; return 1;
    case '|': *v = a | b; return 1;
    case '^': *v = a ^ b; return 1;
    case OP_SHL: *v = a << (b & 63); return 1;
    case OP_SHR:
      *v = n->flag && (int64_t)a < 0 ? ~(~a >> (b & 63)) : a >> (b & 63);
      return 1;
    case '<': *v = n->flag ? (int64_t)a < (int64_t)b : a < b; return 1;
    case '>': *v = n->flag ? (int64_t)a > (int64_t)b : a > b; return 1;
    case OP_LE: *v = n->flag ? (int64_t)a <= (int64_t)b : a <= b; return 1;
    case OP_GE: *v = n->flag ? (int64_t)a >= (int64_t)b : a >= b; return 1;
    case OP_EQ: *v = a == b; return 1;
    case OP_NE: *v = a != b; return 1;
    case OP_LAND: *v = a && b; return 1;
    case OP_LOR: *v = a || b; return 1;
    }
    return 0;
  }
  return 0;
}

/* ---- formats ---- */

/* printf-style format: each conversion consumes an argument of the right
 * kind; '*' widths consume integers. */
static void check_format(K *k, ast_node *fmt, ast_node *args, ast_pos callpos,
                         const char *fn) {
  if (!fmt || fmt->kind != N_STR)
    ast_error(k->c, fmt ? fmt->pos : callpos, "%s needs a format string literal", fn);
  expr(k, fmt);
  const char *s = fmt->str;
  ast_node *a = args;
  for (; *s; s++) {
    if (*s != '%') continue;
    s++;
    if (*s == '%') continue;
    while (*s && strchr("-+ #0", *s)) s++;
    for (int part = 0; part < 2; part++) {
      if (part == 1) {
        if (*s != '.') break;
        s++;
      }
      if (*s == '*') {
        if (!a) ast_error(k->c, fmt->pos, "too few arguments for format in %s", fn);
        intval(k, a);
        a = a->next;
        s++;
      } else {
        while (*s >= '0' && *s <= '9') s++;
      }
    }
    while (*s && strchr("hlLjzt", *s)) s++;
    if (!*s) ast_error(k->c, fmt->pos, "incomplete conversion at end of format in %s", fn);
    if (!strchr("diuxXocsp", *s))
      ast_error(k->c, fmt->pos, "unknown conversion '%%%c' in format of %s", *s, fn);
    if (!a) ast_error(k->c, fmt->pos, "too few arguments for format in %s", fn);
    ty_type *t = value(k, a);
    if (*s == 's' && t->kind != TY_STRING)
      ast_error(k->c, a->pos, "format '%%s' expects a string, but the argument is %s", what(k, t));
    if (*s != 's' && t->kind == TY_STRING)
      ast_error(k->c, a->pos, "format '%%%c' expects an integer, but the argument is a string", *s);
    a = a->next;
  }
  if (a) ast_error(k->c, a->pos, "too many arguments for format in %s", fn);
}

/* ---- calls ---- */

static int nargs(const ast_node *a) {
  int n = 0;
  for (; a; a = a->next) n++;
  return n;
}

static chk_sym *var_arg(K *k, ast_node *a, int want_string, const char *fn) {
  if (a->kind != N_IDENT)
    ast_error(k->c, a->pos, "argument of %s must be %s variable", fn, want_string ? "a string" : "an integer");
  expr(k, a);
  chk_sym *s = a->sym;
  if (!s || s->kind == SYM_BUILTIN || (s->ty->kind == TY_STRING) != want_string ||
      (!want_string && !ty_isint(s->ty)))
    ast_error(k->c, a->pos, "argument of %s must be %s variable", fn, want_string ? "a string" : "an integer");
  return s;
}

static chk_sym *aggr_arg(K *k, ast_node *a, const char *fn) {
  chk_sym *s = a && a->kind == N_IDENT ? lookup(k, a->name) : NULL;
  if (!s || s->kind != SYM_GLOBAL || s->ty->kind != TY_AGGR)
    ast_error(k->c, a ? a->pos : (ast_pos){0}, "argument of %s must be an aggregate", fn);
  a->sym = s;
  a->ty = s->ty;
  return s;
}

static ty_type *call_builtin(K *k, ast_node *n, const vp_builtin *b) {
  n->flag = CALL_BUILTIN;
  ast_node *a = n->a;
  int optional = 0;
  for (const char *p = b->args; *p; p++) {
    if (*p == '|') {
      optional = 1;
      continue;
    }
    if (!a) {
      if (optional) break;
      ast_error(k->c, n->pos, "too few arguments to '%s'", n->name);
    }
    char ch = *p;
    if (optional) ch = (char)(ch | 0x20); /* after '|', upper case = optional */
    switch (ch) {
    case 'i': intval(k, a); break;
    case 's': strval(k, a); break;
    case 'S': var_arg(k, a, 1, n->name); break;
    case 'I': var_arg(k, a, 0, n->name); break;
    case 'x': value(k, a); break;
    case 'f': check_format(k, a, a->next, n->pos, n->name); return b->ret == 's' ? &ty_string : &ty_int;
    default: value(k, a);
    }
    a = a->next;
  }
  if (a) ast_error(k->c, a->pos, "too many arguments to '%s'", n->name);
  return b->ret == 's' ? &ty_string : &ty_int;
}

static int is_container(const ty_type *t) { return t->kind == TY_AGGR || t->kind == TY_BAG; }

/* A fresh, unchecked copy of a statement or expression list. */
static ast_node *copy_tree(ast_ctx *c, const ast_node *n) {
  ast_node *head = NULL, **tail = &head;
  for (; n; n = n->next) {
    ast_node *m = ast_alloc(c, sizeof *m);
    *m = *n;
    m->a = copy_tree(c, n->a);
    m->b = copy_tree(c, n->b);
    m->c = copy_tree(c, n->c);
    m->d = copy_tree(c, n->d);
    m->next = NULL;
    *tail = m;
    tail = &m->next;
  }
  return head;
}

/* The global bag or aggregate an argument names (through the parameters of
 * the copy being checked). */
static chk_sym *container_arg(K *k, ast_node *a, ast_node *p, int i, const char *f) {
  const char *want = p->dty->kind == TY_BAG ? "bag" : "aggregate";
  chk_sym *s = a->kind == N_IDENT ? lookup(k, a->name) : NULL;
  if (!s || s->kind != SYM_GLOBAL || s->ty->kind != p->dty->kind) {
    const char *got;
    if (s && s->kind == SYM_FUNC) {
      got = ast_fmt(k->c, "function '%s'", a->name);
    } else if (a->kind == N_IDENT) {
      ty_type *t = s ? s->ty : expr(k, a); /* undeclared names fail here */
      got = ast_fmt(k->c, "%s '%s'", t->kind == TY_AGGR ? "aggregate" : what(k, t), a->name);
    } else {
      got = ast_fmt(k->c, "%s expression", what(k, value(k, a)));
    }
    ast_error(k->c, a->pos, "argument %d of '%s' must be a global %s (parameter '%s'), not %s", i,
              f, want, p->name, got);
  }
  a->sym = s;
  a->ty = s->ty;
  return s;
}

/* A call of a function with bag/aggr parameters calls the copy made for
 * its tuple of global containers; the same tuple reuses the same copy, so
 * recursion ends. */
static ty_type *call_generic(K *k, ast_node *n, chk_sym *fs) {
  ast_node *g = fs->decl;
  int na = nargs(n->a), np = nargs(g->a);
  if (na != np)
    ast_error(k->c, n->pos, "wrong number of arguments to '%s' (%d given, %d expected)", n->name,
              na, np);
  /* key and name are built in one pass each (no concatenation per
   * argument), in the arena: errors may unwind */
  ast_node *p = g->a, *a = n->a;
  size_t klen = strlen(n->name);
  for (int i = 1; p; p = p->next, a = a->next, i++) {
    if (!is_container(p->dty)) {
      assignable(k, a->pos, p->dty, value(k, a), NULL);
      continue;
    }
    a->sym = container_arg(k, a, p, i, n->name);
    klen += 2 + strlen(((chk_sym *)a->sym)->name);
  }
  char *key = ast_alloc(k->c, klen + 1), *name = ast_alloc(k->c, klen + 1);
  char *kp = stpcpy(key, n->name), *mp = stpcpy(name, n->name);
  for (p = g->a, a = n->a; p; p = p->next, a = a->next) {
    if (!is_container(p->dty)) continue;
    const char *sn = ((chk_sym *)a->sym)->name;
    kp = stpcpy(stpcpy(kp, "\n"), sn);
    mp = stpcpy(stpcpy(mp, "__"), sn);
  }
  spec *sp = ast_map_get(k->specs, key);
  if (!sp) {
    sp = ast_alloc(k->c, sizeof *sp);
    sp->generic = g;
    ast_node *fn = sp->fn = ast_alloc(k->c, sizeof *fn);
    *fn = *g;
    fn->next = NULL;
    fn->name = name;
    fn->a = copy_tree(k->c, g->a);
    fn->b = copy_tree(k->c, g->b);
    for (ast_node *cp = fn->a, *ca = n->a; cp; cp = cp->next, ca = ca->next)
      if (is_container(cp->dty)) cp->sym = ca->sym; /* params() makes it an alias */
    chk_sym *cs = ast_alloc(k->c, sizeof *cs);
    cs->kind = SYM_FUNC;
    cs->name = fn->name;
    cs->ty = fs->ty;
    cs->decl = fn;
    fn->sym = cs;
    ast_map_put(k->c, k->specs, key, sp);
    *k->stail = sp;
    k->stail = &sp->next;
  }
  n->sym = sp->fn->sym;
  n->flag = CALL_USER;
  return fs->ty;
}

static ty_type *call(K *k, ast_node *n) {
  const char *f = n->name;
  int na = nargs(n->a);
  chk_sym *s = ast_map_get(k->gmap, f);
  if (s && s->kind == SYM_FUNC && s->generic) return call_generic(k, n, s);
  if (s && s->kind == SYM_FUNC) {
    n->sym = s;
    n->flag = CALL_USER;
    ast_node *p = s->decl->a, *a = n->a;
    for (; p && a; p = p->next, a = a->next) {
      ty_type *t = value(k, a);
      assignable(k, a->pos, p->dty, t, NULL);
    }
    if (p || a)
      ast_error(k->c, n->pos, "wrong number of arguments to '%s' (%d given, %d expected)", f,
                na, nargs(s->decl->a));
    return s->ty;
  }
  if (s) ast_error(k->c, n->pos, "called object '%s' is not a function", f);
  if (!strcmp(f, "printf")) {
    n->flag = CALL_BUILTIN;
    check_format(k, n->a, n->a ? n->a->next : NULL, n->pos, f);
    return &ty_int;
  }
  if (!strcmp(f, "sprintf")) {
    n->flag = CALL_BUILTIN;
    if (!n->a) ast_error(k->c, n->pos, "too few arguments to 'sprintf'");
    var_arg(k, n->a, 1, f);
    check_format(k, n->a->next, n->a->next ? n->a->next->next : NULL, n->pos, f);
    return &ty_int;
  }
  if (!strcmp(f, "printa") || !strcmp(f, "logaggr") || !strcmp(f, "clearaggr")) {
    n->flag = CALL_AGGR;
    int max = f[0] == 'c' ? 1 : 2;
    if (na < 1 || na > max)
      ast_error(k->c, n->pos, "wrong number of arguments to '%s' (%d given)", f, na);
    aggr_arg(k, n->a, f);
    if (na == 2) {
      ast_node *x = n->a->next;
      if (f[0] == 'p') {
        if (x->kind != N_STR) ast_error(k->c, x->pos, "printa needs a format string literal");
        expr(k, x);
      } else {
        uint64_t v;
        if (!chk_const(x, &v) || v > 1)
          ast_error(k->c, x->pos, "second argument of logaggr must be 0 or 1");
        expr(k, x);
      }
    }
    return &ty_int;
  }
  if (!strcmp(f, "fetchadd") || !strcmp(f, "cmpxchg")) {
    n->flag = CALL_ATOMIC;
    int want = f[0] == 'f' ? 2 : 3;
    if (na != want)
      ast_error(k->c, n->pos, "wrong number of arguments to '%s' (%d given, %d expected)", f, na, want);
    chk_sym *v = var_arg(k, n->a, 0, f);
    if (v->kind != SYM_GLOBAL || v->storage == ST_NONE)
      ast_error(k->c, n->a->pos, "'%s' needs a pervm, pervmk or perhost integer", f);
    for (ast_node *a = n->a->next; a; a = a->next) intval(k, a);
    return &ty_int;
  }
  if (!strcmp(f, "writeint")) {
    n->flag = CALL_BUILTIN;
    if (na != 2)
      ast_error(k->c, n->pos, "wrong number of arguments to 'writeint' (%d given, 2 expected)", na);
    intval(k, n->a);
    uint64_t v;
    if (!chk_const(n->a->next, &v) || v < 1 || v > 8)
      ast_error(k->c, n->a->next->pos, "writeint size must be a constant from 1 to 8");
    intval(k, n->a->next);
    return &ty_int;
  }
  const vp_builtin *b = vp_builtin_find(f);
  if (!b) ast_error(k->c, n->pos, "unknown function '%s'", f);
  if (k->domain && !(b->domains & k->domain))
    ast_error(k->c, n->pos, "'%s' is not available in probe '%s'", f, k->probe);
  return call_builtin(k, n, b);
}

/* ---- expressions ---- */

static ty_type *ident(K *k, ast_node *n) {
  chk_sym *s = lookup(k, n->name);
  if (s) {
    if (s->kind == SYM_FUNC) ast_error(k->c, n->pos, "function '%s' used as a value", n->name);
    n->sym = s;
    return s->ty;
  }
  const vp_var *v = vp_var_find(n->name);
  if (v) {
    if (k->domain && !(v->domains & k->domain))
      ast_error(k->c, n->pos, "'%s' is not available in probe '%s'", n->name, k->probe);
    s = ast_alloc(k->c, sizeof *s);
    s->kind = SYM_BUILTIN;
    s->name = s->vpname = v->name;
    s->ty = v->type == 's' ? &ty_string : &ty_uint64;
    n->sym = s;
    return s->ty;
  }
  ast_error(k->c, n->pos, "use of undeclared variable '%s'", n->name);
}

static chk_sym *container(K *k, ast_node *base) {
  if (base->kind != N_IDENT) return NULL;
  chk_sym *s = lookup(k, base->name);
  if (s && s->kind == SYM_GLOBAL && (s->ty->kind == TY_AGGR || s->ty->kind == TY_BAG)) {
    base->sym = s;
    base->ty = s->ty;
    return s;
  }
  return NULL;
}

static ty_type *index_expr(K *k, ast_node *n) {
  chk_sym *s = container(k, n->a);
  if (s && s->ty->kind == TY_AGGR) {
    n->flag = IX_AGGR;
    int ni = 0, ns = 0;
    for (ast_node *key = n->b; key; key = key->next) {
      if (value(k, key)->kind == TY_STRING) ns++;
      else ni++;
    }
    if (ni != s->ty->nint || ns != s->ty->nstr) {
      const char *name = strcmp(s->name, n->a->name) /* a parameter names its global */
                             ? ast_fmt(k->c, "'%s' (here '%s')", n->a->name, s->name)
                             : ast_fmt(k->c, "'%s'", s->name);
      ast_error(k->c, n->pos,
                "aggregate %s takes %d integer and %d string keys, but %d integer and %d string "
                "keys were given", name, s->ty->nint, s->ty->nstr, ni, ns);
    }
    return &ty_void; /* only as the target of '<-' or '++' */
  }
  if (!n->b) ast_error(k->c, n->pos, "expected expression before ']'");
  if (s) {
    n->flag = IX_BAG;
    if (n->b->next) ast_error(k->c, n->b->next->pos, "bag '%s' takes one key", s->name);
    intval(k, n->b);
    return &ty_int;
  }
  n->flag = IX_MEM;
  ty_type *t = value(k, n->a);
  if (t->kind != TY_PTR && t->kind != TY_ARRAY)
    ast_error(k->c, n->pos, "subscripted value is not an array, pointer, aggregate or bag");
  if (n->b->next) ast_error(k->c, n->b->next->pos, "one index expected");
  intval(k, n->b);
  if (t->base->kind == TY_VOID) ast_error(k->c, n->pos, "subscript of a void pointer");
  if (t->base->kind == TY_STRUCT && !t->base->complete)
    ast_error(k->c, n->pos, "subscript of a pointer to incomplete %s", ty_name(k->c, t->base));
  return t->base;
}

static void lvalue_var(K *k, ast_node *n, const char *op) {
  if (n->kind == N_IDENT) {
    chk_sym *s = n->sym;
    if (s->kind == SYM_BUILTIN)
      ast_error(k->c, n->pos, "cannot assign to built-in variable '%s'", n->name);
    if (s->ty->kind != TY_INT && s->ty->kind != TY_PTR && s->ty->kind != TY_STRING)
      ast_error(k->c, n->pos, "cannot assign to %s '%s'", ty_name(k->c, s->ty), n->name);
    return;
  }
  if (is_mem(n))
    ast_error(k->c, n->pos, "target memory is read-only: cannot %s it", op);
  ast_error(k->c, n->pos, "expression is not assignable");
}

static ty_type *assign(K *k, ast_node *n) {
  ast_node *l = n->a;
  if (n->op == 0 && l->kind == N_IDENT && !lookup(k, l->name) && !vp_var_find(l->name)) {
    /* Inference: the first assignment declares a global. */
    ty_type *t = value(k, n->b);
    chk_sym *s = add_global(k, l->name, t->kind == TY_STRING ? &ty_string : &ty_int, NULL, l->pos);
    l->sym = s;
    l->ty = s->ty;
    return s->ty;
  }
  ty_type *lt = expr(k, l);
  if (l->kind == N_INDEX && l->flag != IX_MEM)
    ast_error(k->c, n->pos, "use '<-' to add to %s '%s'", l->flag == IX_AGGR ? "aggregate" : "bag",
              l->a->name);
  lvalue_var(k, l, "assign to");
  ty_type *rt = value(k, n->b);
  if (n->op == 0) {
    assignable(k, n->b->pos, lt, rt, l->name);
    return lt;
  }
  if (lt->kind == TY_STRING || rt->kind == TY_STRING)
    ast_error(k->c, n->pos, "invalid operands to compound assignment (%s and %s)", what(k, lt),
              what(k, rt));
  if (lt->kind == TY_PTR && n->op != '+' && n->op != '-')
    ast_error(k->c, n->pos, "invalid compound assignment to pointer '%s'", l->name);
  return lt;
}

/* `calls++` and `calls <- v` on an aggregate without keys mean calls[]. */
static ast_node *keyless(K *k, ast_node *l) {
  chk_sym *s = l->kind == N_IDENT ? container(k, l) : NULL;
  if (!s || s->ty->kind != TY_AGGR) return l;
  ast_node *ix = ast_new(k->c, N_INDEX, l->pos);
  ix->a = l;
  return ix;
}

static ty_type *put(K *k, ast_node *n) {
  ast_node *l = n->a = keyless(k, n->a);
  if (l->kind != N_INDEX) ast_error(k->c, n->pos, "'<-' needs an aggregate or bag element on its left");
  expr(k, l);
  if (l->flag == IX_MEM) ast_error(k->c, n->pos, "'<-' needs an aggregate or bag element on its left");
  intval(k, n->b);
  chk_sym *s = l->a->sym;
  if (l->flag == IX_AGGR) s->has_put = 1;
  return &ty_int;
}

static ty_type *incdec(K *k, ast_node *n) {
  ast_node *l = n->a = keyless(k, n->a);
  ty_type *t = expr(k, l);
  if (l->kind == N_INDEX && l->flag == IX_AGGR) {
    if (n->kind != N_POSTINC && n->kind != N_PREINC)
      ast_error(k->c, n->pos, "aggregates can only be incremented");
    ((chk_sym *)l->a->sym)->has_inc = 1;
    return &ty_void;
  }
  if (l->kind == N_INDEX && l->flag == IX_BAG)
    ast_error(k->c, n->pos, "bag elements cannot be incremented");
  lvalue_var(k, l, "increment");
  if (t->kind == TY_STRING)
    ast_error(k->c, l->pos, "cannot %s string '%s'",
              n->kind == N_PREINC || n->kind == N_POSTINC ? "increment" : "decrement", l->name);
  return t;
}

static int is_signed_op(const ty_type *a, const ty_type *b) {
  return promote(a)->is_signed && (!b || promote(b)->is_signed);
}

static ty_type *binary(K *k, ast_node *n) {
  ty_type *a = value(k, n->a), *b = value(k, n->b);
  int as = a->kind == TY_STRING, bs = b->kind == TY_STRING;
  int ap = a->kind == TY_PTR || a->kind == TY_ARRAY, bp = b->kind == TY_PTR || b->kind == TY_ARRAY;
  n->flag = is_signed_op(a, b);
  if (n->op == OP_EQ || n->op == OP_NE) {
    if (as != bs) ast_error(k->c, n->pos, "comparison between %s and %s", what(k, a), what(k, b));
    return &ty_int;
  }
  if (as || bs)
    ast_error(k->c, n->pos, "invalid operands to binary operator (%s and %s)", what(k, a), what(k, b));
  switch (n->op) {
  case '+':
    if (ap && bp) ast_error(k->c, n->pos, "cannot add two pointers");
    if (ap || bp) {
      ty_type *pt = ap ? a : b;
      return pt->kind == TY_ARRAY ? ty_ptr(k->c, pt->base) : pt;
    }
    return promote(a)->is_signed && promote(b)->is_signed ? &ty_int : &ty_uint64;
  case '-':
    if (ap && bp) return &ty_int;
    if (bp) ast_error(k->c, n->pos, "cannot subtract a pointer from an integer");
    if (ap) return a->kind == TY_ARRAY ? ty_ptr(k->c, a->base) : a;
    return promote(a)->is_signed && promote(b)->is_signed ? &ty_int : &ty_uint64;
  case '<': case '>': case OP_LE: case OP_GE: case OP_LAND: case OP_LOR:
    return &ty_int;
  case OP_SHL: case OP_SHR:
    n->flag = is_signed_op(a, NULL);
    return promote(a);
  default:
    return promote(a)->is_signed && promote(b)->is_signed ? &ty_int : &ty_uint64;
  }
}

static ty_type *unary(K *k, ast_node *n) {
  switch (n->op) {
  case '-': case '~': return promote(intval(k, n->a));
  case '!': intval(k, n->a); return &ty_int;
  case '*': {
    ty_type *t = value(k, n->a);
    if (t->kind != TY_PTR && t->kind != TY_ARRAY)
      ast_error(k->c, n->pos, "indirection requires a pointer operand (%s invalid)", what(k, t));
    if (t->base->kind == TY_VOID) ast_error(k->c, n->pos, "dereference of a void pointer");
    return t->base;
  }
  case '&': {
    ty_type *t = expr(k, n->a);
    if (!is_mem(n->a))
      ast_error(k->c, n->pos, "cannot take the address of %s",
                n->a->kind == N_IDENT ? "a variable (variables are not in target memory)"
                                      : "this expression");
    return ty_ptr(k->c, t);
  }
  }
  ast_error(k->c, n->pos, "bad unary operator");
}

static ty_type *member(K *k, ast_node *n) {
  ty_type *t = n->op ? value(k, n->a) : expr(k, n->a);
  ty_type *st = t;
  if (n->op) {
    if (t->kind != TY_PTR && t->kind != TY_ARRAY)
      ast_error(k->c, n->pos, "member reference type %s is not a pointer", what(k, t));
    st = t->base;
  } else if (!is_mem(n->a)) {
    ast_error(k->c, n->pos, "member reference base is not a struct in target memory");
  }
  if (st->kind != TY_STRUCT)
    ast_error(k->c, n->pos, "member reference base type %s is not a struct or union",
              ty_name(k->c, st));
  if (!st->complete) ast_error(k->c, n->pos, "%s is incomplete", ty_name(k->c, st));
  ty_field *f = ty_field_find(st, n->name);
  if (!f) ast_error(k->c, n->pos, "no field '%s' in %s", n->name, ty_name(k->c, st));
  n->sym = f;
  return f->ty;
}

static ty_type *cast(K *k, ast_node *n) {
  ty_type *to = n->dty, *from = value(k, n->a);
  if (to->kind == TY_STRING) {
    if (from->kind == TY_STRING) return to;
    if ((from->kind == TY_PTR || from->kind == TY_ARRAY) && from->base->kind == TY_INT &&
        from->base->size == 1) {
      n->flag = CAST_LOADSTR;
      return to;
    }
    ast_error(k->c, n->pos, "cannot convert %s to string (only char pointers and arrays)",
              ty_name(k->c, from));
  }
  if (to->kind == TY_VOID) return to;
  if (!ty_isint(to)) ast_error(k->c, n->pos, "cannot cast to %s", ty_name(k->c, to));
  if (from->kind == TY_STRING) ast_error(k->c, n->pos, "cannot convert string to %s", what(k, to));
  n->flag = CAST_INT;
  return to;
}

static ty_type *expr_inner(K *k, ast_node *n) {
  switch (n->kind) {
  case N_NUM: return n->ival > (uint64_t)INT64_MAX ? &ty_uint64 : &ty_int;
  case N_STR:
    if (strlen(n->str) > VP_STR_MAX - 1)
      ast_error(k->c, n->pos, "string literal longer than %d bytes", VP_STR_MAX - 1);
    return &ty_string;
  case N_IDENT: {
    ty_type *t = ident(k, n);
    return t;
  }
  case N_BINARY: return binary(k, n);
  case N_UNARY: return unary(k, n);
  case N_PREINC: case N_PREDEC: case N_POSTINC: case N_POSTDEC: return incdec(k, n);
  case N_ASSIGN: return assign(k, n);
  case N_PUT: return put(k, n);
  case N_COND: {
    intval(k, n->a);
    ty_type *a = value(k, n->b), *b = value(k, n->c);
    if ((a->kind == TY_STRING) != (b->kind == TY_STRING))
      ast_error(k->c, n->pos, "operands of '?:' have different types (%s and %s)", what(k, a),
                what(k, b));
    if (a->kind == TY_STRING) return a;
    if (a->kind == TY_PTR) return a;
    return promote(a)->is_signed && promote(b)->is_signed ? &ty_int : &ty_uint64;
  }
  case N_COMMA: expr(k, n->a); return expr(k, n->b);
  case N_CALL: return call(k, n);
  case N_INDEX: return index_expr(k, n);
  case N_MEMBER: return member(k, n);
  case N_CAST: return cast(k, n);
  case N_SIZEOF:
    if (!n->dty) {
      n->dty = expr(k, n->a);
      if (n->dty->kind == TY_AGGR || n->dty->kind == TY_BAG || n->dty->kind == TY_VOID)
        ast_error(k->c, n->pos, "invalid application of 'sizeof' to %s", ty_name(k->c, n->dty));
    }
    return &ty_uint64;
  }
  ast_error(k->c, n->pos, "expected expression");
}

static ty_type *expr(K *k, ast_node *n) {
  ty_type *t = expr_inner(k, n);
  n->ty = t;
  return t;
}

/* ---- statements ---- */

static void block(K *k, ast_node *n) {
  chk_sym *saved = k->scope;
  int savedblk = k->blk;
  k->blk = ++k->nblk;
  for (ast_node *s = n->a; s; s = s->next) stmt(k, s);
  pop_locals(k, saved);
  k->blk = savedblk;
}

static const char *const exceptions[] = {
    "MemAccessError", "VmkMemAccessError", "GuestMemAccessError", "VmxMemAccessError",
    "BagFullError", "BagEmptyError", "DivisionByZeroError", "BudgetExceededError",
    "StackDepthError", NULL};

static void loopvar(K *k, ast_node *id) {
  chk_sym *s = lookup(k, id->name);
  if (!s && !vp_var_find(id->name)) s = add_global(k, id->name, &ty_int, NULL, id->pos);
  expr(k, id);
  s = id->sym;
  if (s->kind == SYM_BUILTIN || !ty_isint(s->ty))
    ast_error(k->c, id->pos, "foreach variable '%s' must be an integer variable", id->name);
}

static void stmt(K *k, ast_node *n) {
  switch (n->kind) {
  case N_EXPR: expr(k, n->a); break;
  case N_BLOCK: block(k, n); break;
  case N_EMPTY: break;
  case N_DECL: {
    if (n->a) {
      ty_type *t = value(k, n->a);
      assignable(k, n->a->pos, n->dty, t, n->name);
    }
    add_local(k, n);
    break;
  }
  case N_IF:
    intval(k, n->a);
    stmt(k, n->b);
    if (n->c) stmt(k, n->c);
    break;
  case N_WHILE: case N_DO:
    intval(k, n->a);
    k->loops++;
    stmt(k, n->b);
    k->loops--;
    break;
  case N_FOR:
    if (n->a) expr(k, n->a);
    if (n->b) intval(k, n->b);
    if (n->c) expr(k, n->c);
    k->loops++;
    stmt(k, n->d);
    k->loops--;
    break;
  case N_BREAK: case N_CONTINUE:
    if (!k->loops)
      ast_error(k->c, n->pos, "'%s' statement not in a loop", n->kind == N_BREAK ? "break" : "continue");
    break;
  case N_RETURN:
    if (k->in_probe) {
      if (n->a) ast_error(k->c, n->a->pos, "a probe cannot return a value");
    } else if (k->ret->kind == TY_VOID) {
      if (n->a) ast_error(k->c, n->a->pos, "void function should not return a value");
    } else {
      if (!n->a) ast_error(k->c, n->pos, "non-void function should return a value");
      assignable(k, n->a->pos, k->ret, value(k, n->a), NULL);
    }
    break;
  case N_FOREACH: {
    chk_sym *b = container(k, n->c);
    if (!b || b->ty->kind != TY_BAG)
      ast_error(k->c, n->c->pos, "'%s' is not a bag", n->c->name);
    loopvar(k, n->a);
    loopvar(k, n->b);
    k->loops++;
    stmt(k, n->d);
    k->loops--;
    break;
  }
  case N_TRY:
    block(k, n->a);
    for (ast_node *c = n->b; c; c = c->next) {
      for (ast_node *e = c->a; e; e = e->next) {
        int ok = 0;
        for (int i = 0; exceptions[i]; i++) ok |= !strcmp(exceptions[i], e->name);
        if (!ok) ast_error(k->c, e->pos, "unknown exception '%s'", e->name);
      }
      block(k, c->b);
    }
    break;
  default:
    ast_error(k->c, n->pos, "unexpected statement");
  }
}

/* ---- top level ---- */

static void global(K *k, ast_node *g) {
  ty_type *t = g->dty;
  if (t->kind == TY_VOID) ast_error(k->c, g->pos, "variable '%s' declared void", g->name);
  if (t->kind == TY_STRUCT || t->kind == TY_ARRAY)
    ast_error(k->c, g->pos, "variable '%s' of type %s: only pointers can reach target memory",
              g->name, ty_name(k->c, t));
  if (g->a) {
    if (t->kind == TY_AGGR || t->kind == TY_BAG)
      ast_error(k->c, g->a->pos, "%s '%s' cannot have an initializer", ty_name(k->c, t), g->name);
    ty_type *it = value(k, g->a);
    assignable(k, g->a->pos, t, it, g->name);
    uint64_t v;
    if (t->kind == TY_STRING ? g->a->kind != N_STR : !chk_const(g->a, &v))
      ast_error(k->c, g->a->pos, "initializer of global '%s' is not a constant", g->name);
  }
  chk_sym *s = add_global(k, g->name, t, g, g->pos);
  s->storage = g->storage;
  g->sym = s;
}

static void params(K *k, ast_node *list, int probe) {
  const vp_var *arg = vp_var_find("ARG0");
  if (probe && list && k->domain && arg && !(arg->domains & k->domain))
    ast_error(k->c, list->pos, "probe '%s' has no arguments", k->probe);
  for (ast_node *d = list; d; d = d->next) {
    if (probe && d->dty->kind == TY_STRING)
      ast_error(k->c, d->pos, "probe parameter '%s' cannot be a string", d->name);
    if (is_container(d->dty)) { /* in a copy: names its global */
      chk_sym *g = d->sym, *s = ast_alloc(k->c, sizeof *s);
      *s = *g;
      s->name = d->name;
      s->alias = g;
      push_local(k, s);
      continue;
    }
    add_local(k, d);
  }
}

static void body(K *k, ast_node *params_list, ast_node *b, int probe, ty_type *ret) {
  k->scope = NULL;
  k->blk = ++k->nblk;
  k->in_probe = probe;
  k->ret = ret;
  k->loops = 0;
  params(k, params_list, probe);
  block(k, b);
  pop_locals(k, NULL);
}

/* Checks the copies (which may make more) and puts each after the
 * function it copies, so gen emits them in order. */
static void specialize(K *k) {
  k->domain = 0;
  for (spec *sp = k->sfirst; sp; sp = sp->next)
    body(k, sp->fn->a, sp->fn->b, 0, sp->fn->dty);
  for (spec *sp = k->sfirst; sp; sp = sp->next) {
    chk_sym *gs = sp->generic->sym;
    ast_node *after = gs->lastcopy ? gs->lastcopy : sp->generic;
    sp->fn->next = after->next;
    after->next = sp->fn;
    gs->lastcopy = sp->fn;
  }
}

chk_prog *chk_program(ast_ctx *c, ast_node *items) {
  K *k = ast_alloc(c, sizeof *k);
  k->c = c;
  k->gmap = ast_map_new(c);
  k->lmap = ast_map_new(c);
  k->gtail = &k->gfirst;
  k->specs = ast_map_new(c);
  k->stail = &k->sfirst;
  /* Functions first, so calls may come before definitions. */
  for (ast_node *n = items; n; n = n->next) {
    if (n->kind != N_FUNC) continue;
    if (ast_map_get(k->gmap, n->name)) ast_error(c, n->pos, "redefinition of '%s'", n->name);
    ty_type *r = n->dty;
    if (r->kind != TY_VOID && !ty_isint(r) && r->kind != TY_STRING)
      ast_error(c, n->pos, "function '%s' cannot return %s", n->name, ty_name(c, r));
    int np = 0, generic = 0;
    ast_map *pnames = NULL; /* made only for a function with containers */
    for (ast_node *p = n->a; p; p = p->next)
      if (is_container(p->dty) && !pnames) pnames = ast_map_new(c);
    for (ast_node *p = n->a; p; p = p->next) {
      np++;
      if (pnames && ast_map_get(pnames, p->name) && is_container(p->dty))
        ast_error(c, p->pos, "redefinition of '%s'", p->name);
      if (pnames) ast_map_put(c, pnames, p->name, p);
      if (is_container(p->dty)) {
        generic = 1;
      } else if (!ty_isint(p->dty) && p->dty->kind != TY_STRING)
        ast_error(c, p->pos, "parameter '%s' of type %s is not supported", p->name,
                  ty_name(c, p->dty));
    }
    chk_sym *s = ast_alloc(c, sizeof *s);
    s->kind = SYM_FUNC;
    s->name = n->name;
    s->ty = r;
    s->decl = n;
    s->generic = generic;
    n->sym = s;
    ast_map_put(c, k->gmap, n->name, s);
  }
  for (ast_node *n = items; n; n = n->next) {
    switch (n->kind) {
    case N_GLOBAL: global(k, n); break;
    case N_FUNC:
      if (((chk_sym *)n->sym)->generic) break; /* only its copies are checked */
      k->domain = 0;
      body(k, n->a, n->b, 0, n->dty);
      break;
    case N_PROBE:
      k->domain = vp_probe_domain(n->name);
      k->probe = n->name;
      body(k, n->a, n->b, 1, &ty_void);
      break;
    }
  }
  specialize(k);
  chk_prog *p = ast_alloc(c, sizeof *p);
  p->items = items;
  p->globals = k->gfirst;
  return p;
}
