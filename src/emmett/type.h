/*
 * type.h - Emmett types: integers of 1..8 bytes, strings, and the C types
 * that describe target memory (pointers, arrays, structs, unions), plus the
 * aggregate and bag containers.  Integer variables always hold their C
 * value in 64 bits (narrow types truncated and sign- or zero-extended on
 * store), so only the operators need to know signedness.
 */
#ifndef EM_TYPE_H
#define EM_TYPE_H

#include "emmett/ast.h"

enum ty_kind {
  TY_VOID, TY_INT, TY_STRING, TY_PTR, TY_ARRAY, TY_STRUCT, TY_AGGR, TY_BAG
};

typedef struct ty_field ty_field;
struct ty_field {
  const char *name;
  ty_type *ty;
  uint64_t off;
  ty_field *next;
};

struct ty_type {
  int kind;
  uint64_t size;  /* bytes in target memory */
  uint64_t align; /* TY_ARRAY, TY_STRUCT (kept, so nesting costs no recursion) */
  int is_signed;  /* TY_INT */
  int is_union;   /* TY_STRUCT */
  int complete;   /* TY_STRUCT: body seen */
  ty_type *base;  /* TY_PTR, TY_ARRAY */
  uint64_t len;   /* TY_ARRAY elements; TY_BAG capacity */
  int nint, nstr; /* TY_AGGR keys */
  ty_field *fields;
  const char *tag;
};

/* Shared constant types (never freed, never modified). */
extern ty_type ty_void, ty_string, ty_int, ty_uint64;

ty_type *ty_intn(int bytes, int is_signed); /* the constant integer types */
ty_type *ty_ptr(ast_ctx *c, ty_type *base);
ty_type *ty_array(ast_ctx *c, ty_type *base, uint64_t len);
ty_type *ty_struct(ast_ctx *c, const char *tag, int is_union);
ty_type *ty_aggr(ast_ctx *c, int nint, int nstr);
ty_type *ty_bag(ast_ctx *c, uint64_t size);

int ty_isint(const ty_type *t);    /* integer or pointer: a VP integer */
uint64_t ty_align(const ty_type *t);
ty_field *ty_field_find(const ty_type *st, const char *name);
const char *ty_name(ast_ctx *c, const ty_type *t); /* for messages */

#endif
