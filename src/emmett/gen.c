/* gen.c - checked Emmett tree to readable VP text (docs/vp.md). */
#include "emmett/gen.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "vp/vp.h"

typedef struct G {
  ast_ctx *c;
  ast_buf *o;
  ast_map *gnames; /* VP names taken program-wide */
  ast_map *lnames; /* VP names taken in the current body */
  ast_map *gnext;  /* base -> every base_N below N is in gnames */
  ast_map *lnext;  /* base -> every base_N below N is taken (this body) */
  const char **temps; /* string temporaries of the current body */
  int ntemps, nexttemp;
} G;

static void gen_expr(G *g, ast_node *n);
static void gen_stmt(G *g, ast_node *n, int ind);

/* ---- names ---- */

static const char *const vpwords[] = {
    "do", "cond", "setint", "setstr", "let", "while", "for", "dowhile", "break",
    "continue", "foreach", "return", "try", "catch", "fetchadd", "cmpxchg", "writeint",
    "load", "loadstr", "aggr", "aggrinc", "logaggr", "printa", "clearaggr", "baginsert",
    "bagput", "bagremove", "sext", "zext", "neg", "and", "or", "not", "add", "sub", "mul",
    "div", "mod", "lshift", "rshift", "xor", "bitor", "bitand", "bitnot", "gt", "lt", "ge",
    "le", "eq", "ne", "version", "definteger", "defstring", "defaggr", "defbag", "defun",
    "vprobe", "int", "string", "printf", "sprintf", NULL};

/* Names of upper-case letters, digits and '_' belong to VP's built-ins. */
static int upper_name(const char *s) {
  while (*s && (isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) s++;
  return !*s;
}

static int reserved(const char *s) {
  for (int i = 0; vpwords[i]; i++)
    if (!strcmp(s, vpwords[i])) return 1;
  return vp_builtin_find(s) || vp_var_find(s) || upper_name(s);
}

static int taken(G *g, const char *s) {
  return reserved(s) || ast_map_get(g->gnames, s) || (g->lnames && ast_map_get(g->lnames, s));
}

/* The Emmett name if VP can use it, else a close one that is free: at most
 * 40 bytes of it, `v_` in front when those are all capitals (VP's own
 * names), `_N` behind while taken.  The `v_` keeps the loop finite: an
 * all-capitals base would make every `_N` reserved too. */
static const char *vpname(G *g, const char *name, int global) {
  const char *s = strlen(name) < VP_NAME_MAX && !taken(g, name) ? name : NULL;
  if (!s) {
    char cut[41], base[48];
    snprintf(cut, sizeof cut, "%s", name);
    snprintf(base, sizeof base, "%s%s", upper_name(cut) ? "v_" : "", cut);
    if (!taken(g, base)) s = ast_strdup(g->c, base);
    /* Suffixes below the remembered ones are known taken (names are never
     * freed): each N is tried once per body, not once per name. */
    uintptr_t gn = (uintptr_t)ast_map_get(g->gnext, base), i = gn ? gn : 1;
    ast_map *lm = global ? NULL : g->lnext;
    uintptr_t ln = lm ? (uintptr_t)ast_map_get(lm, base) : 0;
    if (ln > i) i = ln;
    for (; !s; i++) {
      const char *t = ast_fmt(g->c, "%s_%d", base, (int)i);
      if (!taken(g, t)) s = t;
      else if (i == (gn ? gn : 1) && ast_map_get(g->gnames, t)) gn = i + 1;
    }
    const char *key = ast_strdup(g->c, base);
    if (gn) ast_map_put(g->c, g->gnext, key, (void *)gn);
    if (global) ast_map_put(g->c, g->gnext, key, (void *)i);
    else ast_map_put(g->c, lm, key, (void *)i);
  }
  ast_map_put(g->c, global ? g->gnames : g->lnames, s, (void *)s);
  return s;
}

static const char *symname(ast_node *n) { return ((chk_sym *)n->sym)->vpname; }

/* ---- output helpers ---- */

static void put(G *g, const char *s) { ast_buf_puts(g->o, s); }

static void nl(G *g, int ind) {
  put(g, "\n");
  for (int i = 0; i < ind; i++) put(g, " ");
}

static void num(G *g, uint64_t v) {
  if ((int64_t)v >= -1000000000) ast_buf_printf(g->o, "%lld", (long long)(int64_t)v);
  else ast_buf_printf(g->o, "0x%llx", (unsigned long long)v);
}

static void str(G *g, const char *s) {
  put(g, "\"");
  for (; *s; s++) {
    switch (*s) {
    case '\n': put(g, "\\n"); break;
    case '\t': put(g, "\\t"); break;
    case '\\': put(g, "\\\\"); break;
    case '"': put(g, "\\\""); break;
    default: ast_buf_put(g->o, s, 1);
    }
  }
  put(g, "\"");
}

/* Narrow integer types hold their C value: wrap a store in an extension. */
static int conv_open(G *g, const ty_type *t) {
  if (!t || t->kind != TY_INT || t->size >= 8) return 0;
  ast_buf_printf(g->o, "(%s %d ", t->is_signed ? "sext" : "zext", (int)t->size * 8);
  return 1;
}

static void conv_close(G *g, int open) {
  if (open) put(g, ")");
}

static void gen_conv(G *g, const ty_type *t, ast_node *e) {
  int o = conv_open(g, t);
  gen_expr(g, e);
  conv_close(g, o);
}

static const char *opsym(int op, int sign) {
  switch (op) {
  case '+': return "+";
  case '-': return "-";
  case '*': return "*";
  case '/': return sign ? "s/" : "/";
  case '%': return sign ? "s%" : "%";
  case '&': return "&";
  case '|': return "|";
  case '^': return "^";
  case OP_SHL: return "<<";
  case OP_SHR: return sign ? "s>>" : ">>";
  case '<': return sign ? "s<" : "<";
  case '>': return sign ? "s>" : ">";
  case OP_LE: return sign ? "s<=" : "<=";
  case OP_GE: return sign ? "s>=" : ">=";
  case OP_EQ: return "==";
  case OP_NE: return "!=";
  case OP_LAND: return "&&";
  case OP_LOR: return "||";
  }
  return "?";
}

static int is_container(const ty_type *t) { return t->kind == TY_AGGR || t->kind == TY_BAG; }

static int isptr(const ty_type *t) { return t && (t->kind == TY_PTR || t->kind == TY_ARRAY); }

/* Signedness of `a OP b` after C promotion (int is 64 bits). */
static int promote_signed(const ty_type *a, const ty_type *b) {
  int sa = a->kind == TY_INT && (a->size < 8 || a->is_signed);
  int sb = !b || (b->kind == TY_INT && (b->size < 8 || b->is_signed));
  return sa && sb;
}

/* idx * size, folded where it can be. */
static void scaled(G *g, ast_node *idx, uint64_t size) {
  uint64_t v;
  if (chk_const(idx, &v)) {
    num(g, v * size);
  } else if (size == 1) {
    gen_expr(g, idx);
  } else {
    put(g, "(* ");
    gen_expr(g, idx);
    ast_buf_printf(g->o, " %llu)", (unsigned long long)size);
  }
}

static const char *model(int m) {
  switch (m) {
  case VP_MEM_GUEST: return " :guest";
  case VP_MEM_GUESTPHYS: return " :guestphys";
  case VP_MEM_VMX: return " :vmx";
  case VP_MEM_VMK: return " :vmk";
  }
  return "";
}

/* ---- target memory ---- */

static int is_memnode(const ast_node *n) {
  return (n->kind == N_UNARY && n->op == '*') || (n->kind == N_INDEX && n->flag == IX_MEM) ||
         n->kind == N_MEMBER;
}

/* An array in target memory is its address: its offsets fold into ours. */
static int folds(const ast_node *base) {
  return base->ty->kind == TY_ARRAY && is_memnode(base);
}

/* The constant part of n's address (field offsets, constant indexes). */
static uint64_t addr_const(const ast_node *n) {
  uint64_t v;
  if (n->kind == N_MEMBER)
    return ((ty_field *)n->sym)->off + (n->op ? 0 : addr_const(n->a));
  if (n->kind == N_INDEX) {
    uint64_t off = folds(n->a) ? addr_const(n->a) : 0;
    if (chk_const(n->b, &v)) off += v * n->ty->size;
    return off;
  }
  return 0;
}

/* The rest of n's address. */
static void addr_var(G *g, ast_node *n) {
  uint64_t v;
  if (n->kind == N_UNARY) {
    gen_expr(g, n->a);
  } else if (n->kind == N_MEMBER) {
    if (n->op) gen_expr(g, n->a);
    else addr_var(g, n->a);
  } else {
    int var_index = !chk_const(n->b, &v);
    if (var_index) put(g, "(+ ");
    if (folds(n->a)) addr_var(g, n->a);
    else gen_expr(g, n->a);
    if (var_index) {
      put(g, " ");
      scaled(g, n->b, n->ty->size);
      put(g, ")");
    }
  }
}

static void gen_addr(G *g, ast_node *n) {
  uint64_t off = addr_const(n);
  if (off) put(g, "(+ ");
  addr_var(g, n);
  if (off) {
    put(g, " ");
    num(g, off);
    put(g, ")");
  }
}

static void gen_load(G *g, ast_node *n) {
  const ty_type *t = n->ty;
  if (t->kind == TY_ARRAY || t->kind == TY_STRUCT) {
    gen_addr(g, n); /* arrays decay to their address */
    return;
  }
  int sx = t->kind == TY_INT && t->is_signed && t->size < 8;
  if (sx) ast_buf_printf(g->o, "(sext %d ", (int)t->size * 8);
  ast_buf_printf(g->o, "(load %d ", (int)t->size);
  gen_addr(g, n);
  put(g, model(n->model));
  put(g, ")");
  if (sx) put(g, ")");
}

/* ---- expressions ---- */

static void keys(G *g, ast_node *list) {
  for (int want = 0; want < 2; want++) {
    put(g, " (");
    int first = 1;
    for (ast_node *k = list; k; k = k->next) {
      if ((k->ty->kind == TY_STRING) != want) continue;
      if (!first) put(g, " ");
      first = 0;
      gen_expr(g, k);
    }
    put(g, ")");
  }
}

/* (setint x (conv (OP x STEP))) for ++, --, op= */
static void update(G *g, ast_node *var, int op, ast_node *rhs, uint64_t step) {
  const ty_type *t = var->ty;
  put(g, "(setint ");
  put(g, symname(var));
  put(g, " ");
  int o = conv_open(g, t);
  /* a shift's signedness is its left operand's alone */
  const ty_type *rt = rhs && op != OP_SHR ? rhs->ty : NULL;
  ast_buf_printf(g->o, "(%s %s ", opsym(op, promote_signed(t, rt)), symname(var));
  if (!rhs) num(g, step);
  else if (isptr(t) && (op == '+' || op == '-')) scaled(g, rhs, t->base->size);
  else gen_expr(g, rhs);
  put(g, ")");
  conv_close(g, o);
  put(g, ")");
}

static void gen_incdec(G *g, ast_node *n, int want_value) {
  ast_node *v = n->a;
  if (v->kind == N_INDEX) { /* aggregate a[k]++ */
    put(g, "(aggrinc ");
    put(g, symname(v->a));
    keys(g, v->b);
    put(g, ")");
    return;
  }
  int inc = n->kind == N_PREINC || n->kind == N_POSTINC;
  uint64_t step = isptr(v->ty) ? v->ty->base->size : 1;
  int post = want_value && (n->kind == N_POSTINC || n->kind == N_POSTDEC);
  int o = 0;
  if (post) {
    o = conv_open(g, v->ty);
    put(g, inc ? "(- " : "(+ ");
  }
  update(g, v, inc ? '+' : '-', NULL, step);
  if (post) {
    put(g, " ");
    num(g, step);
    put(g, ")");
    conv_close(g, o);
  }
}

static void gen_call(G *g, ast_node *n) {
  if (n->flag == CALL_USER) {
    chk_sym *s = n->sym;
    put(g, "(");
    put(g, s->vpname);
    ast_node *p = s->decl->a;
    for (ast_node *a = n->a; a; a = a->next, p = p->next) {
      if (is_container(p->dty)) continue; /* the copy names its global */
      put(g, " ");
      gen_conv(g, p->dty, a);
    }
    put(g, ")");
    return;
  }
  put(g, "(");
  put(g, n->name);
  for (ast_node *a = n->a; a; a = a->next) {
    put(g, " ");
    gen_expr(g, a);
  }
  if (n->flag == CALL_AGGR && n->name[0] != 'c') {
    chk_sym *s = n->a->sym;
    int explicit_count = n->name[0] == 'l' && n->a->next;
    if (!explicit_count && s->has_inc && !s->has_put) put(g, " 1");
  }
  put(g, ")");
}

static void gen_binary(G *g, ast_node *n) {
  ast_node *a = n->a, *b = n->b;
  if ((n->op == '+' || n->op == '-') && (isptr(a->ty) || isptr(b->ty))) {
    if (n->op == '-' && isptr(a->ty) && isptr(b->ty)) {
      uint64_t sz = a->ty->base->size;
      if (sz > 1) put(g, "(s/ ");
      put(g, "(- ");
      gen_expr(g, a);
      put(g, " ");
      gen_expr(g, b);
      put(g, ")");
      if (sz > 1) ast_buf_printf(g->o, " %llu)", (unsigned long long)sz);
      return;
    }
    if (isptr(b->ty)) { /* int + ptr */
      ast_node *t = a;
      a = b;
      b = t;
    }
    ast_buf_printf(g->o, "(%s ", n->op == '+' ? "+" : "-");
    gen_expr(g, a);
    put(g, " ");
    scaled(g, b, a->ty->base->size);
    put(g, ")");
    return;
  }
  ast_buf_printf(g->o, "(%s ", opsym(n->op, n->flag));
  gen_expr(g, a);
  put(g, " ");
  gen_expr(g, b);
  put(g, ")");
}

static void gen_expr(G *g, ast_node *n) {
  switch (n->kind) {
  case N_NUM:
    if (n->flag && n->ival > 9) ast_buf_printf(g->o, "0x%llx", (unsigned long long)n->ival);
    else num(g, n->ival);
    return;
  case N_STR: str(g, n->str); return;
  case N_IDENT: put(g, symname(n)); return;
  case N_BINARY: gen_binary(g, n); return;
  case N_UNARY:
    switch (n->op) {
    case '-':
      if (n->a->kind == N_NUM && n->a->ival <= (uint64_t)INT64_MAX) {
        num(g, 0 - n->a->ival);
        return;
      }
      put(g, "(neg ");
      break;
    case '~': put(g, "(~ "); break;
    case '!': put(g, "(! "); break;
    case '*': gen_load(g, n); return;
    case '&': gen_addr(g, n->a); return;
    }
    gen_expr(g, n->a);
    put(g, ")");
    return;
  case N_PREINC: case N_PREDEC: case N_POSTINC: case N_POSTDEC: gen_incdec(g, n, 1); return;
  case N_ASSIGN:
    if (n->op) {
      update(g, n->a, n->op, n->b, 0);
      return;
    }
    ast_buf_printf(g->o, "(%s %s ", n->a->ty->kind == TY_STRING ? "setstr" : "setint",
                   symname(n->a));
    gen_conv(g, n->a->ty, n->b);
    put(g, ")");
    return;
  case N_PUT: {
    ast_node *ix = n->a;
    if (ix->flag == IX_AGGR) {
      put(g, "(aggr ");
      put(g, symname(ix->a));
      keys(g, ix->b);
    } else {
      put(g, "(bagput ");
      put(g, symname(ix->a));
      put(g, " ");
      gen_expr(g, ix->b);
    }
    put(g, " ");
    gen_expr(g, n->b);
    put(g, ")");
    return;
  }
  case N_COND:
    put(g, "(? ");
    gen_expr(g, n->a);
    put(g, " ");
    gen_expr(g, n->b);
    put(g, " ");
    gen_expr(g, n->c);
    put(g, ")");
    return;
  case N_COMMA:
    put(g, "(do ");
    gen_expr(g, n->a);
    put(g, " ");
    gen_expr(g, n->b);
    put(g, ")");
    return;
  case N_CALL: gen_call(g, n); return;
  case N_INDEX:
    if (n->flag == IX_MEM) {
      gen_load(g, n);
    } else if (n->flag == IX_BAG) {
      put(g, "(bagremove ");
      put(g, symname(n->a));
      put(g, " ");
      gen_expr(g, n->b);
      put(g, ")");
    } else {
      put(g, "0");
    }
    return;
  case N_MEMBER: gen_load(g, n); return;
  case N_CAST:
    if (n->flag == CAST_LOADSTR) {
      if (g->nexttemp >= g->ntemps) ast_error(g->c, n->pos, "internal error: string temporaries");
      const char *t = g->temps[g->nexttemp++];
      ast_buf_printf(g->o, "(do (loadstr %s ", t);
      gen_expr(g, n->a);
      put(g, model(n->model));
      ast_buf_printf(g->o, ") %s)", t);
    } else if (n->flag == CAST_INT) {
      gen_conv(g, n->dty, n->a);
    } else {
      gen_expr(g, n->a);
    }
    return;
  case N_SIZEOF: num(g, n->dty->size); return;
  }
  put(g, "0");
}

/* ---- statements ---- */

static void gen_expr_stmt(G *g, ast_node *e, int ind) {
  if (e->kind == N_COMMA) {
    gen_expr_stmt(g, e->a, ind);
    gen_expr_stmt(g, e->b, ind);
    return;
  }
  nl(g, ind);
  if (e->kind >= N_PREINC && e->kind <= N_POSTDEC) gen_incdec(g, e, 0);
  else gen_expr(g, e);
}

static int has_decls(const ast_node *b) {
  for (const ast_node *s = b->a; s; s = s->next)
    if (s->kind == N_DECL) return 1;
  return 0;
}

/* A statement list where VP takes several expressions; "0" if empty. */
static void gen_body(G *g, ast_node *n, int ind) {
  size_t before = g->o->len;
  if (n->kind == N_BLOCK && !has_decls(n)) {
    for (ast_node *s = n->a; s; s = s->next) gen_stmt(g, s, ind);
  } else {
    gen_stmt(g, n, ind);
  }
  if (g->o->len == before) {
    nl(g, ind);
    put(g, "0");
  }
}

/* Exactly one expression on a new line. */
static void gen_single(G *g, ast_node *n, int ind) {
  if (n->kind == N_BLOCK && has_decls(n)) {
    gen_stmt(g, n, ind);
    return;
  }
  nl(g, ind);
  put(g, "(do");
  gen_body(g, n, ind + 2);
  put(g, ")");
}

static void decl_item(G *g, ast_node *d, int with_init) {
  chk_sym *s = d->sym;
  s->vpname = vpname(g, d->name, 0);
  ast_buf_printf(g->o, "(%s %s", s->ty->kind == TY_STRING ? "string" : "int", s->vpname);
  if (with_init && d->a) {
    put(g, " ");
    gen_conv(g, s->ty, d->a);
  }
  put(g, ")");
}

static void gen_block(G *g, ast_node *n, int ind) {
  if (!has_decls(n)) {
    for (ast_node *s = n->a; s; s = s->next) gen_stmt(g, s, ind);
    return;
  }
  nl(g, ind);
  put(g, "(let (");
  int first = 1;
  for (ast_node *s = n->a; s; s = s->next) {
    if (s->kind != N_DECL) continue;
    if (!first) put(g, " ");
    first = 0;
    decl_item(g, s, 0);
  }
  put(g, ")");
  size_t before = g->o->len;
  for (ast_node *s = n->a; s; s = s->next) gen_stmt(g, s, ind + 2);
  if (g->o->len == before) put(g, " 0");
  put(g, ")");
}

static void gen_if(G *g, ast_node *n, int ind) {
  nl(g, ind);
  put(g, "(cond");
  for (;;) {
    nl(g, ind + 2);
    put(g, "(");
    gen_expr(g, n->a);
    gen_body(g, n->b, ind + 4);
    put(g, ")");
    if (!n->c) break;
    if (n->c->kind != N_IF) {
      nl(g, ind + 2);
      put(g, "(1");
      gen_body(g, n->c, ind + 4);
      put(g, ")");
      break;
    }
    n = n->c;
  }
  put(g, ")");
}

static void gen_stmt(G *g, ast_node *n, int ind) {
  switch (n->kind) {
  case N_EMPTY: return;
  case N_EXPR: gen_expr_stmt(g, n->a, ind); return;
  case N_BLOCK: gen_block(g, n, ind); return;
  case N_DECL: {
    if (!n->a) return;
    chk_sym *s = n->sym;
    nl(g, ind);
    ast_buf_printf(g->o, "(%s %s ", s->ty->kind == TY_STRING ? "setstr" : "setint", s->vpname);
    gen_conv(g, s->ty, n->a);
    put(g, ")");
    return;
  }
  case N_IF: gen_if(g, n, ind); return;
  case N_WHILE: case N_DO:
    nl(g, ind);
    put(g, n->kind == N_WHILE ? "(while " : "(dowhile ");
    gen_expr(g, n->a);
    gen_body(g, n->b, ind + 2);
    put(g, ")");
    return;
  case N_FOR:
    if (n->a) gen_expr_stmt(g, n->a, ind);
    nl(g, ind);
    put(g, "(for ");
    if (n->b) gen_expr(g, n->b);
    else put(g, "1");
    put(g, " ");
    if (!n->c) put(g, "0");
    else if (n->c->kind >= N_PREINC && n->c->kind <= N_POSTDEC) gen_incdec(g, n->c, 0);
    else gen_expr(g, n->c);
    gen_body(g, n->d, ind + 2);
    put(g, ")");
    return;
  case N_BREAK: nl(g, ind); put(g, "(break)"); return;
  case N_CONTINUE: nl(g, ind); put(g, "(continue)"); return;
  case N_RETURN:
    nl(g, ind);
    if (!n->a) {
      put(g, "(return)");
      return;
    }
    put(g, "(return ");
    gen_conv(g, n->dty, n->a);
    put(g, ")");
    return;
  case N_FOREACH:
    nl(g, ind);
    ast_buf_printf(g->o, "(foreach %s %s %s", symname(n->c), symname(n->a), symname(n->b));
    gen_body(g, n->d, ind + 2);
    put(g, ")");
    return;
  case N_TRY:
    nl(g, ind);
    put(g, "(try");
    gen_single(g, n->a, ind + 2);
    for (ast_node *c = n->b; c; c = c->next) {
      nl(g, ind + 2);
      put(g, "(catch (");
      for (ast_node *e = c->a; e; e = e->next) {
        put(g, e->name);
        if (e->next) put(g, " ");
      }
      put(g, ")");
      gen_body(g, c->b, ind + 4);
      put(g, ")");
    }
    put(g, ")");
    return;
  }
}

/* ---- top level ---- */

/* String temporaries a body needs for (string) casts of target memory. */
static int count_loadstr(const ast_node *n) {
  int k = 0;
  for (; n; n = n->next) {
    k += n->kind == N_CAST && n->flag == CAST_LOADSTR;
    k += count_loadstr(n->a) + count_loadstr(n->b) + count_loadstr(n->c) + count_loadstr(n->d);
  }
  return k;
}

/* Sets return types on N_RETURN (dty) so gen_stmt can convert. */
static void mark_returns(ast_node *n, ty_type *ret) {
  for (; n; n = n->next) {
    if (n->kind == N_RETURN) n->dty = ret;
    if (n->kind >= N_EXPR) {
      mark_returns(n->a, ret);
      mark_returns(n->b, ret);
      mark_returns(n->c, ret);
      mark_returns(n->d, ret);
    }
  }
}

static void gen_fn_body(G *g, ast_node *params, ast_node *body, int probe) {
  int nt = count_loadstr(body);
  g->temps = ast_alloc(g->c, sizeof(char *) * (size_t)(nt + 1));
  g->ntemps = nt;
  g->nexttemp = 0;
  int ind = 2;
  if (nt || (probe && params)) {
    nl(g, 2);
    put(g, "(let (");
    int first = 1, i = 0;
    for (ast_node *d = probe ? params : NULL; d; d = d->next, i++) {
      if (!first) put(g, " ");
      first = 0;
      chk_sym *s = d->sym;
      s->vpname = vpname(g, d->name, 0);
      ast_buf_printf(g->o, "(int %s ", s->vpname);
      int o = conv_open(g, s->ty);
      ast_buf_printf(g->o, "ARG%d", i);
      conv_close(g, o);
      put(g, ")");
    }
    for (int t = 0; t < nt; t++) {
      g->temps[t] = vpname(g, "_str", 0);
      if (!first) put(g, " ");
      first = 0;
      ast_buf_printf(g->o, "(string %s)", g->temps[t]);
    }
    put(g, ")");
    ind = 4;
  }
  gen_body(g, body, ind);
  if (ind == 4) put(g, ")");
}

static void gen_global(G *g, chk_sym *s) {
  const ty_type *t = s->ty;
  ast_node *d = s->decl;
  switch (t->kind) {
  case TY_AGGR: ast_buf_printf(g->o, "(defaggr %s %d %d)\n", s->vpname, t->nint, t->nstr); return;
  case TY_BAG: ast_buf_printf(g->o, "(defbag %s %llu)\n", s->vpname, (unsigned long long)t->len); return;
  case TY_STRING:
    ast_buf_printf(g->o, "(defstring %s", s->vpname);
    if (d && d->a) {
      put(g, " ");
      str(g, d->a->str);
    }
    put(g, ")\n");
    return;
  default:
    ast_buf_printf(g->o, "(definteger %s", s->vpname);
    uint64_t v;
    if (d && d->a && chk_const(d->a, &v)) {
      if (t->kind == TY_INT && t->size < 8) {
        int bits = (int)t->size * 8;
        v &= ((uint64_t)1 << bits) - 1;
        if (t->is_signed && (v >> (bits - 1))) v |= ~(((uint64_t)1 << bits) - 1);
      }
      put(g, " ");
      num(g, v);
    }
    static const char *const st[] = {"", " :pervm", " :pervmk", " :perhost"};
    put(g, st[s->storage]);
    put(g, ")\n");
  }
}

void gen_program(ast_ctx *c, chk_prog *p, ast_buf *out) {
  G *g = ast_alloc(c, sizeof *g);
  g->c = c;
  g->o = out;
  g->gnames = ast_map_new(c);
  g->gnext = ast_map_new(c);
  for (chk_sym *s = p->globals; s; s = s->next) s->vpname = vpname(g, s->name, 1);
  for (ast_node *n = p->items; n; n = n->next)
    if (n->kind == N_FUNC) ((chk_sym *)n->sym)->vpname = vpname(g, n->name, 1);
  for (chk_sym *s = p->globals; s; s = s->next) gen_global(g, s);
  for (ast_node *n = p->items; n; n = n->next) {
    if (n->kind == N_GLOBAL) continue;
    if (n->kind == N_FUNC && ((chk_sym *)n->sym)->generic) continue; /* its copies follow */
    g->lnames = ast_map_new(c);
    g->lnext = ast_map_new(c);
    if (out->len) put(g, "\n");
    if (n->kind == N_FUNC) {
      mark_returns(n->b, n->dty);
      ast_buf_printf(out, "(defun %s (", symname(n));
      int first = 1;
      for (ast_node *d = n->a; d; d = d->next) {
        if (is_container(d->dty)) continue;
        if (!first) put(g, " ");
        first = 0;
        decl_item(g, d, 0);
      }
      put(g, ")");
      gen_fn_body(g, NULL, n->b, 0);
    } else {
      put(g, "(vprobe ");
      put(g, n->name);
      gen_fn_body(g, n->a, n->b, 1);
    }
    put(g, ")\n");
    g->lnames = NULL;
    g->lnext = NULL;
  }
}
