/* type.c - constructors and queries of Emmett types. */
#include "emmett/type.h"

#include <string.h>

ty_type ty_void = {.kind = TY_VOID, .size = 1};
ty_type ty_string = {.kind = TY_STRING, .size = 256};
ty_type ty_int = {.kind = TY_INT, .size = 8, .is_signed = 1};
ty_type ty_uint64 = {.kind = TY_INT, .size = 8};
static ty_type ints[2][4] = {
    {{.kind = TY_INT, .size = 1}, {.kind = TY_INT, .size = 2},
     {.kind = TY_INT, .size = 4}, {.kind = TY_INT, .size = 8}},
    {{.kind = TY_INT, .size = 1, .is_signed = 1},
     {.kind = TY_INT, .size = 2, .is_signed = 1},
     {.kind = TY_INT, .size = 4, .is_signed = 1},
     {.kind = TY_INT, .size = 8, .is_signed = 1}},
};

ty_type *ty_intn(int bytes, int is_signed) {
  int i = bytes == 1 ? 0 : bytes == 2 ? 1 : bytes == 4 ? 2 : 3;
  if (i == 3) return is_signed ? &ty_int : &ty_uint64;
  return &ints[is_signed != 0][i];
}

ty_type *ty_ptr(ast_ctx *c, ty_type *base) {
  ty_type *t = ast_alloc(c, sizeof *t);
  t->kind = TY_PTR;
  t->size = 8;
  t->base = base;
  return t;
}

ty_type *ty_array(ast_ctx *c, ty_type *base, uint64_t len) {
  ty_type *t = ast_alloc(c, sizeof *t);
  t->kind = TY_ARRAY;
  t->base = base;
  t->len = len;
  t->size = base->size * len; /* sizes are bounded by the parser */
  t->align = ty_align(base);
  return t;
}

ty_type *ty_struct(ast_ctx *c, const char *tag, int is_union) {
  ty_type *t = ast_alloc(c, sizeof *t);
  t->kind = TY_STRUCT;
  t->tag = tag;
  t->is_union = is_union;
  return t;
}

ty_type *ty_aggr(ast_ctx *c, int nint, int nstr) {
  ty_type *t = ast_alloc(c, sizeof *t);
  t->kind = TY_AGGR;
  t->nint = nint;
  t->nstr = nstr;
  return t;
}

ty_type *ty_bag(ast_ctx *c, uint64_t size) {
  ty_type *t = ast_alloc(c, sizeof *t);
  t->kind = TY_BAG;
  t->len = size;
  return t;
}

uint64_t ty_align(const ty_type *t) {
  switch (t->kind) {
  case TY_INT: case TY_PTR: return t->size;
  case TY_ARRAY: case TY_STRUCT: return t->align ? t->align : 1;
  default: return 1;
  }
}

int ty_isint(const ty_type *t) { return t->kind == TY_INT || t->kind == TY_PTR; }

ty_field *ty_field_find(const ty_type *st, const char *name) {
  for (ty_field *f = st->fields; f; f = f->next)
    if (f->name && !strcmp(f->name, name)) return f;
  return NULL;
}

static const char *name_at(ast_ctx *c, const ty_type *t, int depth) {
  if (depth > 16) return "...";
  switch (t->kind) {
  case TY_VOID: return "void";
  case TY_STRING: return "string";
  case TY_INT:
    if (t->size == 8) return t->is_signed ? "int" : "uint64";
    return ast_fmt(c, "%sint%d", t->is_signed ? "" : "u", (int)t->size * 8);
  case TY_PTR: return ast_fmt(c, "%s *", name_at(c, t->base, depth + 1));
  case TY_ARRAY: return ast_fmt(c, "%s[%llu]", name_at(c, t->base, depth + 1),
                                (unsigned long long)t->len);
  case TY_STRUCT:
    return ast_fmt(c, "%s %s", t->is_union ? "union" : "struct",
                   t->tag ? t->tag : "<anonymous>");
  case TY_AGGR: return "aggr";
  case TY_BAG: return "bag";
  }
  return "?";
}

const char *ty_name(ast_ctx *c, const ty_type *t) { return name_at(c, t, 0); }
