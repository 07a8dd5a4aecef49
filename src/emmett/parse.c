/* parse.c - recursive-descent parser for Emmett (C precedence). */
#include "emmett/parse.h"

#include <stdlib.h>
#include <string.h>

#include "emmett/lex.h"
#include "emmett/type.h"
#include "vp/probename.h"
#include "vp/vp.h"

#define MAX_STMT_DEPTH 1000
#define MAX_LOOKAHEAD 4
#define MAX_TYPE_SIZE ((uint64_t)1 << 40)

typedef struct P {
  ast_ctx *c;
  lex_state lx;
  lex_tok la[MAX_LOOKAHEAD];
  int nla;
  lex_tok prev;
  int depth, sdepth;
  int model;
  ast_map *typedefs, *tags, *enums;
} P;

/* ---- tokens ---- */

static lex_tok *peek(P *p, int k) {
  while (p->nla <= k) lex_next(&p->lx, &p->la[p->nla++]);
  return &p->la[k];
}

static lex_tok *cur(P *p) {
  lex_tok *t = peek(p, 0);
  if (t->kind == LEX_ERR) ast_error_msg(p->c, t->pos, t->text); /* lex.c hides */
  return t;
}

static void next(P *p) {
  cur(p);
  p->prev = p->la[0];
  memmove(p->la, p->la + 1, sizeof p->la[0] * (size_t)(p->nla - 1));
  p->nla--;
}

static int tis(const lex_tok *t, const char *s) {
  return (t->kind == LEX_PUNCT || t->kind == LEX_ID) && !strcmp(t->text, s);
}

static int is(P *p, const char *s) { return tis(cur(p), s); }

static int accept(P *p, const char *s) {
  if (!is(p, s)) return 0;
  next(p);
  return 1;
}

static const char *spell(P *p, const lex_tok *t) {
  switch (t->kind) {
  case LEX_EOF: return "end of file";
  case LEX_NUM: return "number";
  case LEX_STR: return "string";
  default:
    if (ast_hidden(p->c, t->pos)) return t->kind == LEX_ID ? "a name" : "punctuation";
    return ast_fmt(p->c, "'%s'", t->text);
  }
}

/* expect(p, ";", "expression"): "expected ';' after expression" just past
 * the previous token; with what NULL: "expected ')' before 'x'". */
static void expect(P *p, const char *s, const char *what) {
  if (accept(p, s)) return;
  /* s and what are the parser's own words: said even in an #include */
  if (what) ast_error_msg(p->c, p->prev.end, ast_fmt(p->c, "expected '%s' after %s", s, what));
  ast_error_msg(p->c, cur(p)->pos,
                ast_fmt(p->c, "expected '%s' before %s", s, spell(p, cur(p))));
}

static const char *ident(P *p, const char *what) {
  lex_tok *t = cur(p);
  if (t->kind != LEX_ID)
    ast_error_msg(p->c, t->pos, ast_fmt(p->c, "expected %s before %s", what, spell(p, t)));
  next(p);
  return p->prev.text;
}

static ast_node *mk(P *p, int kind, ast_pos pos) {
  ast_node *n = ast_new(p->c, kind, pos);
  n->model = p->model;
  return n;
}

/* ---- types ---- */

static const char *const keywords[] = {
    "if", "else", "while", "for", "do", "break", "continue", "return",
    "foreach", "in", "try", "catch", "sizeof", "typedef", "struct", "union",
    "enum", "memmodel", "pervm", "pervmk", "perhost", "aggr", "bag", NULL};

static ty_type *basic_type(const char *s) {
  static const struct { const char *n; int size, sign; } tab[] = {
      {"int", 8, 1},    {"int64", 8, 1},  {"int32", 4, 1}, {"int16", 2, 1},
      {"int8", 1, 1},   {"uint64", 8, 0}, {"uint32", 4, 0}, {"uint16", 2, 0},
      {"uint8", 1, 0},  {"char", 1, 1},   {"uint", 8, 0},   {NULL, 0, 0}};
  for (int i = 0; tab[i].n; i++)
    if (!strcmp(s, tab[i].n)) return ty_intn(tab[i].size, tab[i].sign);
  if (!strcmp(s, "void")) return &ty_void;
  if (!strcmp(s, "string")) return &ty_string;
  return NULL;
}

static int is_type_tok(P *p, const lex_tok *t) {
  if (t->kind != LEX_ID) return t->kind == LEX_PUNCT && !strcmp(t->text, "$");
  return basic_type(t->text) || !strcmp(t->text, "struct") ||
         !strcmp(t->text, "union") || !strcmp(t->text, "enum") ||
         ast_map_get(p->typedefs, t->text);
}

static int is_storage(const lex_tok *t) {
  return tis(t, "pervm") || tis(t, "pervmk") || tis(t, "perhost");
}

static ast_node *parse_assign(P *p);
static ast_node *parse_expr(P *p);
static ast_node *parse_cast(P *p);

/* An integer constant expression (array sizes, enum values, offsets). */
static uint64_t const_expr(P *p, const char *what) {
  ast_node *e = parse_cast(p);
  if (e->kind == N_UNARY && e->op == '-' && e->a->kind == N_NUM)
    return (uint64_t)0 - e->a->ival;
  if (e->kind != N_NUM)
    ast_error(p->c, e->pos, "%s must be an integer constant", what);
  return e->ival;
}

static ty_type *parse_base_type(P *p);

static ty_type *parse_declarator(P *p, ty_type *base, const char **name,
                                 ast_pos *pos, int need_name) {
  for (int n = 0; accept(p, "*"); n++) {
    if (n == 32) ast_error(p->c, p->prev.pos, "too many levels of pointers");
    base = ty_ptr(p->c, base);
  }
  *pos = cur(p)->pos;
  *name = NULL;
  if (cur(p)->kind == LEX_ID) {
    for (int i = 0; keywords[i]; i++)
      if (is(p, keywords[i]))
        ast_error(p->c, cur(p)->pos, "expected a name before '%s'", keywords[i]);
    if (is_type_tok(p, cur(p)) && !ast_map_get(p->typedefs, cur(p)->text))
      ast_error(p->c, cur(p)->pos, "expected a name before '%s'", cur(p)->text);
    *name = ident(p, "a name");
  } else if (need_name) {
    ast_error_msg(p->c, cur(p)->pos, ast_fmt(p->c, "expected a name before %s", spell(p, cur(p))));
  }
  /* Arrays: dimensions apply innermost last, as in C. */
  uint64_t dims[8];
  int nd = 0;
  while (is(p, "[")) {
    ast_pos lb = cur(p)->pos;
    next(p);
    if (nd == 8) ast_error(p->c, lb, "too many array dimensions");
    uint64_t n = const_expr(p, "array size");
    if (n == 0 || n > MAX_TYPE_SIZE) ast_error(p->c, lb, "bad array size");
    dims[nd++] = n;
    expect(p, "]", NULL);
  }
  while (nd-- > 0) {
    if (base->kind == TY_VOID || base->kind == TY_STRING ||
        (base->kind == TY_STRUCT && !base->complete))
      ast_error(p->c, *pos, "array of %s%s", base->kind == TY_STRUCT ? "incomplete " : "",
                ty_name(p->c, base));
    if (base->size * dims[nd] > MAX_TYPE_SIZE) ast_error(p->c, *pos, "type too large");
    base = ty_array(p->c, base, dims[nd]);
  }
  return base;
}

static void parse_struct_body(P *p, ty_type *st) {
  ast_pos open = cur(p)->pos;
  if (++p->sdepth > AST_MAX_DEPTH) ast_error(p->c, open, "struct nesting too deep");
  expect(p, "{", NULL);
  uint64_t off = 0, size = 0;
  ty_field **tail = &st->fields;
  while (!accept(p, "}")) {
    if (cur(p)->kind == LEX_EOF)
      ast_error(p->c, open, "expected '}' before end of file (unclosed '{' here)");
    int64_t at = -1;
    if (accept(p, "@")) at = (int64_t)const_expr(p, "field offset");
    ty_type *base;
    if (at >= 0 && cur(p)->kind == LEX_ID && !is_type_tok(p, cur(p)))
      base = &ty_int; /* `@0x54 name;`: a sparse field without a type */
    else
      base = parse_base_type(p);
    do {
      const char *name;
      ast_pos pos;
      ty_type *t = parse_declarator(p, base, &name, &pos, 0);
      if (accept(p, "@")) at = (int64_t)const_expr(p, "field offset");
      if (t->kind == TY_VOID || t->kind == TY_STRING || t->kind > TY_STRUCT ||
          (t->kind == TY_STRUCT && !t->complete))
        ast_error(p->c, pos, "field '%s' has unusable type %s",
                  name ? name : "", ty_name(p->c, t));
      if (name && ty_field_find(st, name))
        ast_error(p->c, pos, "duplicate field '%s'", name);
      uint64_t a = ty_align(t), fo;
      if (at >= 0) fo = (uint64_t)at;
      else if (st->is_union) fo = 0;
      else fo = (off + a - 1) / a * a;
      if (fo > MAX_TYPE_SIZE) ast_error(p->c, pos, "field offset too large");
      ty_field *f = ast_alloc(p->c, sizeof *f);
      f->name = name;
      f->ty = t;
      f->off = fo;
      *tail = f;
      tail = &f->next;
      off = fo + t->size;
      if (off > size) size = off;
      at = -1;
    } while (accept(p, ","));
    expect(p, ";", "field");
  }
  uint64_t a = 1;
  for (ty_field *f = st->fields; f; f = f->next)
    if (ty_align(f->ty) > a) a = ty_align(f->ty);
  st->align = a;
  st->size = (size + a - 1) / a * a;
  st->complete = 1;
  p->sdepth--;
}

static void parse_enum_body(P *p) {
  expect(p, "{", NULL);
  uint64_t v = 0;
  while (!accept(p, "}")) {
    ast_pos pos = cur(p)->pos;
    const char *name = ident(p, "an enumerator");
    if (accept(p, "=")) v = const_expr(p, "enumerator value");
    uint64_t *box = ast_alloc(p->c, sizeof *box);
    *box = v++;
    if (ast_map_get(p->enums, name)) ast_error(p->c, pos, "redefinition of '%s'", name);
    ast_map_put(p->c, p->enums, name, box);
    if (!accept(p, ",")) {
      expect(p, "}", NULL);
      break;
    }
  }
}

static ty_type *parse_base_type(P *p) {
  lex_tok *t = cur(p);
  if (tis(t, "$"))
    ast_error(p->c, t->pos, "external types ($module.type) are not supported");
  if (t->kind != LEX_ID) ast_error_msg(p->c, t->pos, ast_fmt(p->c, "expected a type before %s", spell(p, t)));
  ty_type *bt = basic_type(t->text);
  if (bt) {
    next(p);
    return bt;
  }
  ty_type *td = ast_map_get(p->typedefs, t->text);
  if (td) {
    next(p);
    return td;
  }
  int is_union = tis(t, "union");
  if (tis(t, "struct") || is_union) {
    next(p);
    if (is(p, "$"))
      ast_error(p->c, cur(p)->pos, "external types ($module.type) are not supported");
    const char *tag = cur(p)->kind == LEX_ID ? ident(p, "a tag") : NULL;
    ty_type *st = tag ? ast_map_get(p->tags, tag) : NULL;
    if (st && st->is_union != is_union)
      ast_error(p->c, p->prev.pos, "'%s' defined as the wrong kind of tag", tag);
    if (!st) {
      st = ty_struct(p->c, tag, is_union);
      if (tag) ast_map_put(p->c, p->tags, tag, st);
    }
    if (is(p, "{")) {
      if (st->complete) ast_error(p->c, p->prev.pos, "redefinition of '%s'", tag);
      parse_struct_body(p, st);
    } else if (!tag) {
      ast_error_msg(p->c, cur(p)->pos, ast_fmt(p->c, "expected '{' before %s", spell(p, cur(p))));
    }
    return st;
  }
  if (tis(t, "enum")) {
    next(p);
    if (cur(p)->kind == LEX_ID) next(p);
    if (is(p, "{")) parse_enum_body(p);
    return ty_intn(4, 1);
  }
  ast_error(p->c, t->pos, "unknown type name '%s'", t->text);
}

/* ---- expressions ---- */

static void enter(P *p, ast_pos pos) {
  if (++p->depth > AST_MAX_DEPTH) ast_error(p->c, pos, "expression nesting too deep");
}

#define MAX_TREE_DEPTH 2000

static int dep(const ast_node *n) { return n ? n->depth : 0; }

/* Records n's tree depth: long operator chains (`1+1+...`) are deep trees
 * without deep parser recursion, and later stages recurse over them. */
static ast_node *fix(P *p, ast_node *n) {
  int d = dep(n->a);
  if (dep(n->b) > d) d = dep(n->b);
  if (dep(n->c) > d) d = dep(n->c);
  n->depth = d + 1;
  if (n->depth > MAX_TREE_DEPTH) ast_error(p->c, n->pos, "expression too complex");
  return n;
}

static ast_node *parse_primary(P *p) {
  lex_tok *t = cur(p);
  ast_node *n;
  if (t->kind == LEX_NUM) {
    n = mk(p, N_NUM, t->pos);
    n->ival = t->num;
    n->flag = t->hex; /* gen keeps the spelling's base */
    next(p);
    return n;
  }
  if (t->kind == LEX_STR) {
    n = mk(p, N_STR, t->pos);
    /* Adjacent literals concatenate; a C string ends at its first NUL. */
    /* The buffer doubles (old ones stay in the arena): linear however many
     * pieces there are. */
    char *acc = NULL;
    size_t len = 0, cap = 0;
    int nul = 0;
    while (cur(p)->kind == LEX_STR) {
      size_t add = strnlen(cur(p)->str, cur(p)->slen);
      if (!nul) { /* nothing after a NUL counts */
        if (len + add + 1 > cap) {
          size_t nc = cap ? cap * 2 : 64;
          while (nc < len + add + 1) nc *= 2;
          char *j = ast_alloc(p->c, nc);
          if (len) memcpy(j, acc, len);
          acc = j;
          cap = nc;
        }
        memcpy(acc + len, cur(p)->str, add);
        len += add;
        acc[len] = 0;
      }
      if (add < cur(p)->slen) nul = 1;
      next(p);
    }
    n->str = acc ? acc : "";
    return n;
  }
  if (t->kind == LEX_ID) {
    for (int i = 0; keywords[i]; i++)
      if (tis(t, keywords[i]))
        ast_error(p->c, t->pos, "expected expression before '%s'", t->text);
    if (is_type_tok(p, t))
      ast_error(p->c, t->pos, "expected expression before '%s'", t->text);
    uint64_t *ev = ast_map_get(p->enums, t->text);
    if (ev) {
      n = mk(p, N_NUM, t->pos);
      n->ival = *ev;
    } else {
      n = mk(p, N_IDENT, t->pos);
      n->name = t->text;
    }
    next(p);
    return n;
  }
  if (tis(t, "(")) {
    enter(p, t->pos);
    next(p);
    n = parse_expr(p);
    expect(p, ")", NULL);
    p->depth--;
    return n;
  }
  ast_error_msg(p->c, t->pos, ast_fmt(p->c, "expected expression before %s", spell(p, t)));
}

static ast_node *parse_postfix(P *p) {
  ast_node *n = parse_primary(p);
  for (;;) {
    lex_tok *t = cur(p);
    ast_pos pos = t->pos;
    if (tis(t, "(")) {
      if (n->kind != N_IDENT) ast_error(p->c, pos, "called object is not a function");
      next(p);
      ast_node *call = mk(p, N_CALL, n->pos), **tail = &call->a;
      call->name = n->name;
      enter(p, pos);
      int d = 0;
      if (!is(p, ")")) {
        do {
          *tail = parse_assign(p);
          if (dep(*tail) > d) d = dep(*tail);
          tail = &(*tail)->next;
        } while (accept(p, ","));
      }
      expect(p, ")", NULL);
      p->depth--;
      call->depth = d + 1;
      n = call;
    } else if (tis(t, "[")) {
      next(p);
      ast_node *ix = mk(p, N_INDEX, n->pos), **tail = &ix->b;
      ix->a = n;
      enter(p, pos);
      int d = dep(n);
      if (!is(p, "]")) {
        do {
          *tail = parse_assign(p);
          if (dep(*tail) > d) d = dep(*tail);
          tail = &(*tail)->next;
        } while (accept(p, ","));
      }
      expect(p, "]", NULL);
      p->depth--;
      ix->depth = d + 1;
      n = ix;
    } else if (tis(t, ".") || tis(t, "->")) {
      next(p);
      ast_node *m = mk(p, N_MEMBER, pos);
      m->op = tis(&p->prev, "->");
      m->a = n;
      m->name = ident(p, "a field name");
      n = fix(p, m);
    } else if (tis(t, "++") || tis(t, "--")) {
      next(p);
      ast_node *m = mk(p, tis(&p->prev, "++") ? N_POSTINC : N_POSTDEC, pos);
      m->a = n;
      n = fix(p, m);
    } else {
      return n;
    }
  }
}

static ty_type *parse_typename(P *p) {
  ty_type *t = parse_base_type(p);
  const char *name;
  ast_pos pos;
  t = parse_declarator(p, t, &name, &pos, 0);
  if (name) ast_error(p->c, pos, "unexpected name '%s' in type", name);
  return t;
}

static ast_node *parse_unary(P *p) {
  lex_tok *t = cur(p);
  ast_pos pos = t->pos;
  ast_node *n = NULL;
  if (!tis(t, "-") && !tis(t, "+") && !tis(t, "!") && !tis(t, "~") && !tis(t, "*") &&
      !tis(t, "&") && !tis(t, "++") && !tis(t, "--") && !tis(t, "sizeof"))
    return parse_postfix(p);
  enter(p, pos);
  if (tis(t, "-") || tis(t, "+") || tis(t, "!") || tis(t, "~") || tis(t, "*") ||
      tis(t, "&")) {
    next(p);
    n = mk(p, N_UNARY, pos);
    n->op = p->prev.text[0];
    n->a = parse_cast(p);
    if (n->op == '+') n = n->a;
  } else if (tis(t, "++") || tis(t, "--")) {
    next(p);
    n = mk(p, tis(&p->prev, "++") ? N_PREINC : N_PREDEC, pos);
    n->a = parse_unary(p);
  } else if (tis(t, "sizeof")) {
    next(p);
    n = mk(p, N_SIZEOF, pos);
    if (is(p, "(") && is_type_tok(p, peek(p, 1))) {
      next(p);
      n->dty = parse_typename(p);
      expect(p, ")", NULL);
    } else {
      n->a = parse_unary(p);
    }
  }
  p->depth--;
  return n->kind == N_SIZEOF && n->dty ? n : fix(p, n);
}

static ast_node *parse_cast(P *p) {
  if (is(p, "(") && is_type_tok(p, peek(p, 1))) {
    ast_pos pos = cur(p)->pos;
    enter(p, pos);
    next(p);
    ast_node *n = mk(p, N_CAST, pos);
    n->dty = parse_typename(p);
    expect(p, ")", NULL);
    n->a = parse_cast(p);
    p->depth--;
    return fix(p, n);
  }
  return parse_unary(p);
}

/* Binary operators by precedence level, loosest first. */
static const char *const levels[][6] = {
    {"||"}, {"&&"}, {"|"}, {"^"}, {"&"}, {"==", "!="},
    {"<", ">", "<=", ">="}, {"<<", ">>"}, {"+", "-"}, {"*", "/", "%"}};
#define NLEVELS ((int)(sizeof levels / sizeof levels[0]))

static int opcode(const char *s) {
  static const struct { const char *s; int op; } tab[] = {
      {"<<", OP_SHL}, {">>", OP_SHR}, {"<=", OP_LE}, {">=", OP_GE},
      {"==", OP_EQ},  {"!=", OP_NE},  {"&&", OP_LAND}, {"||", OP_LOR},
      {"<<=", OP_SHL}, {">>=", OP_SHR}, {NULL, 0}};
  for (int i = 0; tab[i].s; i++)
    if (!strcmp(s, tab[i].s)) return tab[i].op;
  return s[0];
}

static ast_node *parse_binary(P *p, int level) {
  if (level == NLEVELS) return parse_cast(p);
  ast_node *n = parse_binary(p, level + 1);
  for (;;) {
    lex_tok *t = cur(p);
    int hit = 0;
    for (int i = 0; i < 6 && levels[level][i]; i++)
      if (t->kind == LEX_PUNCT && !strcmp(t->text, levels[level][i])) hit = 1;
    if (!hit) return n;
    ast_node *b = mk(p, N_BINARY, t->pos);
    b->op = opcode(t->text);
    next(p);
    b->a = n;
    b->b = parse_binary(p, level + 1);
    n = fix(p, b);
  }
}

static ast_node *parse_cond(P *p) {
  ast_node *n = parse_binary(p, 0);
  if (!is(p, "?")) return n;
  ast_pos pos = cur(p)->pos;
  enter(p, pos);
  next(p);
  ast_node *c = mk(p, N_COND, pos);
  c->a = n;
  c->b = parse_expr(p);
  expect(p, ":", NULL);
  c->c = parse_cond(p);
  p->depth--;
  return fix(p, c);
}

static ast_node *parse_assign(P *p) {
  ast_node *n = parse_cond(p);
  lex_tok *t = cur(p);
  static const char *const ops[] = {"=",  "+=", "-=", "*=", "/=",  "%=", "<<=",
                                    ">>=", "&=", "|=", "^=", "<-", NULL};
  for (int i = 0; ops[i]; i++) {
    if (!tis(t, ops[i])) continue;
    ast_node *a = mk(p, i == 11 ? N_PUT : N_ASSIGN, t->pos);
    a->op = i == 0 || i == 11 ? 0 : opcode(t->text);
    enter(p, t->pos);
    next(p);
    a->a = n;
    a->b = parse_assign(p);
    p->depth--;
    n = fix(p, a);
    break;
  }
  return n;
}

static ast_node *parse_expr(P *p) {
  ast_node *n = parse_assign(p);
  while (is(p, ",")) {
    ast_node *c = mk(p, N_COMMA, cur(p)->pos);
    next(p);
    c->a = n;
    c->b = parse_assign(p);
    n = fix(p, c);
  }
  return n;
}

/* ---- statements ---- */

static ast_node *parse_stmt(P *p);
static ast_node *parse_block(P *p);

static int model_of(P *p, const char *name, ast_pos pos) {
  static const struct { const char *n; int m; } tab[] = {
      {"guest64", VP_MEM_GUEST}, {"guest32", VP_MEM_GUEST}, {"guest", VP_MEM_GUEST},
      {"guestphys", VP_MEM_GUESTPHYS}, {"vmx", VP_MEM_VMX}, {"vmk", VP_MEM_VMK},
      {"vmk64", VP_MEM_VMK}, {"default", VP_MEM_DEFAULT}, {NULL, 0}};
  for (int i = 0; tab[i].n; i++)
    if (!strcmp(name, tab[i].n)) return tab[i].m;
  ast_error(p->c, pos, "unknown memory model '%s'", name);
}

/* Local declarations `T a = 1, *b;` appended at *tail. */
static ast_node **parse_local_decl(P *p, ast_node **tail) {
  lex_tok *t = cur(p);
  if (is_storage(t) || tis(t, "aggr") || tis(t, "bag"))
    ast_error(p->c, t->pos, "'%s' declarations must be global", t->text);
  if (tis(t, "typedef")) ast_error(p->c, t->pos, "typedef must be global");
  ty_type *base = parse_base_type(p);
  if (accept(p, ";")) return tail; /* `struct S {...};` */
  do {
    ast_node *d = mk(p, N_DECL, cur(p)->pos);
    d->dty = parse_declarator(p, base, &d->name, &d->pos, 1);
    if (accept(p, "=")) d->a = parse_assign(p);
    *tail = d;
    tail = &d->next;
  } while (accept(p, ","));
  expect(p, ";", "declaration");
  return tail;
}

static int starts_decl(P *p) {
  lex_tok *t = cur(p);
  if (is_storage(t) || tis(t, "aggr") || tis(t, "bag") || tis(t, "typedef")) return 1;
  return is_type_tok(p, t);
}

static ast_node *parse_block_body(P *p, ast_pos open) {
  ast_node *b = mk(p, N_BLOCK, open), **tail = &b->a;
  int model = p->model; /* a `memmodel X;` statement lasts to the block's end */
  while (!accept(p, "}")) {
    if (cur(p)->kind == LEX_EOF)
      ast_error(p->c, open, "expected '}' before end of file (unclosed '{' here)");
    if (starts_decl(p)) {
      tail = parse_local_decl(p, tail);
      continue;
    }
    *tail = parse_stmt(p);
    tail = &(*tail)->next;
  }
  p->model = model;
  return b;
}

static ast_node *parse_block(P *p) {
  ast_pos open = cur(p)->pos;
  expect(p, "{", NULL);
  return parse_block_body(p, open);
}

static ast_node *paren_expr(P *p, const char *what) {
  if (!is(p, "("))
    ast_error(p->c, cur(p)->pos, "expected '(' after '%s'", what);
  next(p);
  ast_node *e = parse_expr(p);
  expect(p, ")", NULL);
  return e;
}

static ast_node *parse_stmt_inner(P *p) {
  lex_tok *t = cur(p);
  ast_pos pos = t->pos;
  ast_node *n;
  if (tis(t, "{")) return parse_block(p);
  if (tis(t, ";")) {
    next(p);
    return mk(p, N_EMPTY, pos);
  }
  if (starts_decl(p))
    ast_error(p->c, pos, "a declaration is not allowed here");
  if (t->kind == LEX_ID) {
    const char *k = t->text;
    if (!strcmp(k, "if")) {
      next(p);
      n = mk(p, N_IF, pos);
      n->a = paren_expr(p, "if");
      n->b = parse_stmt(p);
      if (accept(p, "else")) n->c = parse_stmt(p);
      return n;
    }
    if (!strcmp(k, "while")) {
      next(p);
      n = mk(p, N_WHILE, pos);
      n->a = paren_expr(p, "while");
      n->b = parse_stmt(p);
      return n;
    }
    if (!strcmp(k, "do")) {
      next(p);
      n = mk(p, N_DO, pos);
      n->b = parse_stmt(p);
      if (!is(p, "while"))
        ast_error(p->c, cur(p)->pos, "expected 'while' in do/while loop");
      next(p);
      n->a = paren_expr(p, "while");
      expect(p, ";", "do/while statement");
      return n;
    }
    if (!strcmp(k, "for")) {
      next(p);
      n = mk(p, N_FOR, pos);
      expect(p, "(", NULL);
      ast_node *outer = NULL;
      if (starts_decl(p)) { /* C99 `for (int i = 0; ...)`: a scope around */
        outer = mk(p, N_BLOCK, pos);
        ast_node **tail = parse_local_decl(p, &outer->a);
        *tail = n;
      } else {
        if (!is(p, ";")) n->a = parse_expr(p);
        expect(p, ";", "for initializer");
      }
      if (!is(p, ";")) n->b = parse_expr(p);
      expect(p, ";", "for condition");
      if (!is(p, ")")) n->c = parse_expr(p);
      expect(p, ")", NULL);
      n->d = parse_stmt(p);
      return outer ? outer : n;
    }
    if (!strcmp(k, "break") || !strcmp(k, "continue")) {
      next(p);
      n = mk(p, k[0] == 'b' ? N_BREAK : N_CONTINUE, pos);
      expect(p, ";", k[0] == 'b' ? "'break'" : "'continue'");
      return n;
    }
    if (!strcmp(k, "return")) {
      next(p);
      n = mk(p, N_RETURN, pos);
      if (!is(p, ";")) n->a = parse_expr(p);
      expect(p, ";", n->a ? "return value" : "'return'");
      return n;
    }
    if (!strcmp(k, "foreach")) {
      next(p);
      n = mk(p, N_FOREACH, pos);
      expect(p, "(", NULL);
      n->a = mk(p, N_IDENT, cur(p)->pos);
      n->a->name = ident(p, "a key variable");
      expect(p, ",", NULL);
      n->b = mk(p, N_IDENT, cur(p)->pos);
      n->b->name = ident(p, "a value variable");
      expect(p, ")", NULL);
      if (!is(p, "in")) ast_error(p->c, cur(p)->pos, "expected 'in' after foreach variables");
      next(p);
      n->c = mk(p, N_IDENT, cur(p)->pos);
      n->c->name = ident(p, "a bag name");
      n->d = parse_stmt(p);
      return n;
    }
    if (!strcmp(k, "try")) {
      next(p);
      n = mk(p, N_TRY, pos);
      n->a = parse_block(p);
      ast_node **tail = &n->b;
      if (!is(p, "catch")) ast_error(p->c, cur(p)->pos, "expected 'catch' after try block");
      while (is(p, "catch")) {
        ast_node *c = mk(p, N_CATCH, cur(p)->pos);
        next(p);
        if (accept(p, "(")) {
          ast_node **nt = &c->a;
          do {
            ast_node *id = mk(p, N_IDENT, cur(p)->pos);
            id->name = ident(p, "an exception name");
            *nt = id;
            nt = &id->next;
          } while (accept(p, ","));
          expect(p, ")", NULL);
        }
        c->b = parse_block(p);
        *tail = c;
        tail = &c->next;
      }
      return n;
    }
    if (!strcmp(k, "memmodel")) {
      next(p);
      ast_pos mp = cur(p)->pos;
      int m = model_of(p, ident(p, "a memory model"), mp), saved = p->model;
      p->model = m;
      if (accept(p, ";")) return mk(p, N_EMPTY, pos);
      n = parse_block(p);
      p->model = saved;
      return n;
    }
    if (!strcmp(k, "else"))
      ast_error(p->c, pos, "'else' without a previous 'if'");
    if (!strcmp(k, "catch"))
      ast_error(p->c, pos, "'catch' without a previous 'try'");
  }
  n = mk(p, N_EXPR, pos);
  n->a = parse_expr(p);
  expect(p, ";", "expression");
  return n;
}

static ast_node *parse_stmt(P *p) {
  if (++p->sdepth > MAX_STMT_DEPTH)
    ast_error(p->c, cur(p)->pos, "statement nesting too deep");
  ast_node *n = parse_stmt_inner(p);
  p->sdepth--;
  return n;
}

/* ---- top level ---- */

static ast_node *parse_params(P *p, int probe) {
  ast_node *list = NULL, **tail = &list;
  expect(p, "(", NULL);
  if (is(p, "void") && tis(peek(p, 1), ")")) next(p);
  if (accept(p, ")")) return NULL;
  do {
    if (accept(p, "...")) {
      if (!probe) ast_error(p->c, p->prev.pos, "'...' is allowed only in probe parameters");
      break;
    }
    ast_node *d = mk(p, N_DECL, cur(p)->pos);
    if (!probe && (is(p, "bag") || is(p, "aggr"))) {
      /* The shape comes from each call's argument (check specializes). */
      int is_bag = is(p, "bag");
      next(p);
      d->dty = is_bag ? ty_bag(p->c, 0) : ty_aggr(p->c, 0, 0);
      d->pos = cur(p)->pos;
      d->name = ident(p, is_bag ? "a bag parameter name" : "an aggregate parameter name");
      *tail = d;
      tail = &d->next;
      continue;
    }
    if (is(p, "bag") || is(p, "aggr"))
      ast_error(p->c, cur(p)->pos, "probe parameters cannot be %ss", cur(p)->text);
    ty_type *base = parse_base_type(p);
    d->dty = parse_declarator(p, base, &d->name, &d->pos, probe);
    *tail = d;
    tail = &d->next;
  } while (accept(p, ","));
  expect(p, ")", NULL);
  return list;
}

/* The grammar's reason (probename.h: "NAME: why") as the parser's own
 * words, so that it is said even where the name itself is hidden (an
 * #include). */
static void bad_probe(P *p, ast_pos pos, const char *name, const char *why) {
  size_t nl = strlen(name);
  if (!strncmp(why, name, nl) && why[nl] == ':' && why[nl + 1] == ' ') why += nl + 2;
  if (!strcmp(why, "unknown probe")) {
    ast_error(p->c, pos, "unknown probe '%s'", name);
    return;
  }
  char fmt[200] = "probe '%s': ";
  size_t k = strlen(fmt);
  for (; *why && k + 2 < sizeof fmt; why++) {
    if (*why == '%') fmt[k++] = '%';
    fmt[k++] = *why;
  }
  fmt[k] = 0;
  ast_error(p->c, pos, fmt, name);
}

static ast_node *parse_probe(P *p) {
  lex_tok start = *cur(p);
  ast_node *n = mk(p, N_PROBE, start.pos);
  p->nla = 0; /* the raw name replaces the tokens read ahead */
  n->name = lex_rawname(&p->lx, &start);
  vpn_name pn;
  char why[160];
  if (vpn_parse(n->name, &pn, why, sizeof why) != 0)
    bad_probe(p, start.pos, n->name, why);
  if (is(p, "(")) n->a = parse_params(p, 1);
  if (is(p, "{")) {
    n->b = parse_block(p);
  } else {
    if (cur(p)->kind == LEX_EOF)
      ast_error(p->c, cur(p)->pos, "expected '{' after probe name '%s'", n->name);
    n->b = mk(p, N_BLOCK, cur(p)->pos);
    n->b->a = parse_stmt(p);
  }
  return n;
}

static void parse_typedef(P *p) {
  next(p);
  ty_type *base = parse_base_type(p);
  do {
    const char *name;
    ast_pos pos;
    ty_type *t = parse_declarator(p, base, &name, &pos, 1);
    ty_type *old = ast_map_get(p->typedefs, name);
    if (old && old != t) ast_error(p->c, pos, "redefinition of typedef '%s'", name);
    ast_map_put(p->c, p->typedefs, name, t);
  } while (accept(p, ","));
  expect(p, ";", "typedef");
}

/* aggr a[1][1]; aggr b[2]; bag x[100], y; */
static ast_node **parse_container(P *p, ast_node **tail, int storage) {
  int is_aggr = is(p, "aggr");
  next(p);
  do {
    ast_node *g = mk(p, N_GLOBAL, cur(p)->pos);
    g->name = ident(p, is_aggr ? "an aggregate name" : "a bag name");
    g->storage = storage;
    uint64_t d[2] = {0, 0};
    int nd = 0;
    while (is(p, "[")) {
      ast_pos lb = cur(p)->pos;
      next(p);
      if (nd == (is_aggr ? 2 : 1)) ast_error(p->c, lb, "too many dimensions");
      d[nd++] = const_expr(p, is_aggr ? "key count" : "bag size");
      expect(p, "]", NULL);
    }
    if (is_aggr) {
      if (nd == 0)
        ast_error(p->c, cur(p)->pos, "expected '[' after aggregate name '%s'", g->name);
      if (d[0] > 4 || d[1] > 4)
        ast_error(p->c, g->pos, "aggregate '%s' has more than 4 keys of one kind", g->name);
      g->dty = ty_aggr(p->c, (int)d[0], (int)d[1]);
    } else {
      if (nd && (d[0] == 0 || d[0] > 1000000))
        ast_error(p->c, g->pos, "bad size for bag '%s'", g->name);
      g->dty = ty_bag(p->c, nd ? d[0] : 1024);
    }
    *tail = g;
    tail = &g->next;
  } while (accept(p, ","));
  expect(p, ";", "declaration");
  return tail;
}

static ast_node **parse_toplevel(P *p, ast_node **tail);

static ast_node **parse_global(P *p, ast_node **tail) {
  int storage = ST_NONE;
  ast_pos spos = cur(p)->pos;
  if (accept(p, "pervm")) storage = ST_PERVM;
  else if (accept(p, "pervmk")) storage = ST_PERVMK;
  else if (accept(p, "perhost")) storage = ST_PERHOST;
  if (is(p, "aggr") || is(p, "bag")) {
    if (storage != ST_NONE && is(p, "bag"))
      ast_error(p->c, spos, "storage classes apply only to integers");
    return parse_container(p, tail, storage);
  }
  ty_type *base = parse_base_type(p);
  if (accept(p, ";")) return tail;
  const char *name;
  ast_pos pos;
  ty_type *t = parse_declarator(p, base, &name, &pos, 1);
  if (is(p, "(")) {
    if (storage) ast_error(p->c, spos, "storage class on a function");
    ast_node *f = mk(p, N_FUNC, pos);
    f->name = name;
    f->dty = t;
    f->a = parse_params(p, 0);
    if (accept(p, ";")) return tail; /* a prototype: definitions may come later anyway */
    for (ast_node *d = f->a; d; d = d->next)
      if (!d->name) ast_error(p->c, d->pos, "parameter without a name");
    f->b = parse_block(p);
    *tail = f;
    return &f->next;
  }
  for (;;) {
    ast_node *g = mk(p, N_GLOBAL, pos);
    g->name = name;
    g->dty = t;
    g->storage = storage;
    if (storage && !ty_isint(t))
      ast_error(p->c, spos, "storage classes apply only to integers");
    if (accept(p, "=")) g->a = parse_assign(p);
    *tail = g;
    tail = &g->next;
    if (!accept(p, ",")) break;
    t = parse_declarator(p, base, &name, &pos, 1);
  }
  expect(p, ";", "declaration");
  return tail;
}

static ast_node **parse_toplevel(P *p, ast_node **tail) {
  lex_tok *t = cur(p);
  if (tis(t, ";")) {
    next(p);
    return tail;
  }
  if (tis(t, "typedef")) {
    parse_typedef(p);
    return tail;
  }
  if (tis(t, "memmodel")) {
    next(p);
    ast_pos mp = cur(p)->pos;
    int m = model_of(p, ident(p, "a memory model"), mp);
    if (accept(p, ";")) {
      p->model = m;
      return tail;
    }
    ast_pos open = cur(p)->pos;
    expect(p, "{", NULL);
    int saved = p->model;
    p->model = m;
    while (!accept(p, "}")) {
      if (cur(p)->kind == LEX_EOF)
        ast_error(p->c, open, "expected '}' before end of file (unclosed '{' here)");
      tail = parse_toplevel(p, tail);
    }
    p->model = saved;
    return tail;
  }
  if (starts_decl(p)) return parse_global(p, tail);
  if (t->kind != LEX_ID)
    ast_error_msg(p->c, t->pos, ast_fmt(p->c, "expected a declaration or a probe before %s", spell(p, t)));
  for (int i = 0; keywords[i]; i++)
    if (tis(t, keywords[i]))
      ast_error(p->c, t->pos, "'%s' outside of a probe or function", t->text);
  *tail = parse_probe(p);
  return &(*tail)->next;
}

ast_node *parse_program(ast_ctx *c, const char *src, size_t len,
                        const char *file) {
  P *p = ast_alloc(c, sizeof *p);
  p->c = c;
  p->typedefs = ast_map_new(c);
  p->tags = ast_map_new(c);
  p->enums = ast_map_new(c);
  lex_init(&p->lx, c, src, len, file);
  ast_node *list = NULL, **tail = &list;
  while (cur(p)->kind != LEX_EOF) tail = parse_toplevel(p, tail);
  return list;
}
