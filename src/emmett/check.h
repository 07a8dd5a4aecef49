/*
 * check.h - name resolution, type checking and inference.  Annotates the
 * tree for gen: every expression gets its type (ty), every name its symbol
 * (sym), N_INDEX/N_CAST their flavour (flag, below).  Variables assigned
 * before any declaration become globals of the assigned value's type.
 * VP has no bag or aggregate values, so a function with bag/aggr
 * parameters is specialized: each distinct tuple of global containers it
 * is called with gets a checked copy (N_FUNC `f__bag1__aggr2`, spliced into
 * items after f) whose parameters alias those globals.
 */
#ifndef EM_CHECK_H
#define EM_CHECK_H

#include "emmett/ast.h"
#include "emmett/type.h"

enum chk_symkind { SYM_GLOBAL, SYM_LOCAL, SYM_FUNC, SYM_BUILTIN };

/* N_INDEX flavours */
enum { IX_MEM, IX_AGGR, IX_BAG };
/* N_CAST flavours */
enum { CAST_NONE, CAST_INT, CAST_LOADSTR };
/* N_CALL flavours */
enum { CALL_USER, CALL_BUILTIN, CALL_AGGR, CALL_ATOMIC };

typedef struct chk_sym chk_sym;
struct chk_sym {
  int kind;
  const char *name;    /* as written */
  const char *vpname;  /* as emitted (gen) */
  ty_type *ty;         /* variables; return type of functions */
  ast_node *decl;      /* N_GLOBAL, N_DECL, N_FUNC; NULL when inferred */
  int storage;         /* ST_* */
  int has_inc, has_put; /* aggregates: kinds of inserts in the program */
  chk_sym *alias;      /* a bag/aggr parameter: the global it stands for */
  int generic;         /* function with bag/aggr parameters: never emitted
                          itself, only its copies per argument tuple */
  chk_sym *next;       /* globals in definition order; scope chain */
  chk_sym *shadow;     /* a local: the one of the same name it hides */
  int blk;             /* a local: serial of the block declaring it */
  ast_node *lastcopy;  /* a generic function: its latest copy placed */
};

typedef struct chk_prog {
  ast_node *items;   /* N_GLOBAL, N_FUNC, N_PROBE in source order */
  chk_sym *globals;  /* declared and inferred globals, in order */
} chk_prog;

chk_prog *chk_program(ast_ctx *c, ast_node *items);

/* Value of an integer constant expression; 0 if n is not constant. */
int chk_const(const ast_node *n, uint64_t *val);

#endif
