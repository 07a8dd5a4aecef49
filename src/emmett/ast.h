/*
 * ast.h - the Emmett syntax tree, and the compile context every stage
 * shares: one arena that owns every node, type, symbol and string of a
 * compile (freed in one go), and the error exit.  The first error formats
 * "FILE:LINE:COL: error: ..." and unwinds to em_compile_* with longjmp; the
 * arena makes that leak-free.
 */
#ifndef EM_AST_H
#define EM_AST_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ast_block ast_block;
typedef struct ast_mapent ast_mapent;
typedef struct ty_type ty_type;

typedef struct ast_pos {
  const char *file;
  int line, col;
} ast_pos;

/* Growable text buffer (malloc'd; owned by the context until taken). */
typedef struct ast_buf {
  char *p;
  size_t len, cap;
} ast_buf;

/* String-keyed map living in the arena.  The bucket array doubles when
 * the map holds as many entries as buckets, so a get or put costs O(1) on
 * average however many names a script has. */
typedef struct ast_map {
  ast_mapent **b;
  size_t nb, n;
} ast_map;

#define AST_MAX_DEPTH 200 /* expression/statement nesting the parser allows */

typedef struct ast_ctx {
  ast_block *arena;
  jmp_buf jb;
  char *err;
  size_t errcap;
  ast_buf out; /* the VP text being generated */
  ast_map *hidden; /* file names of #included text (lexer), or NULL */
} ast_ctx;

void ast_init(ast_ctx *c, char *err, size_t errcap);
void ast_free(ast_ctx *c);
void *ast_alloc(ast_ctx *c, size_t n); /* zeroed */
char *ast_strndup(ast_ctx *c, const char *s, size_t n);
char *ast_strdup(ast_ctx *c, const char *s);
char *ast_fmt(ast_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Text from an #include is never quoted in a message (the user named the
 * file but may not be allowed to read it, and vprobe may run as root): at
 * such a position ast_error prints only fmt's own words, each conversion
 * shown as <hidden>.  Text from the script itself or -c is quoted. */
_Noreturn void ast_error(ast_ctx *c, ast_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int ast_hidden(const ast_ctx *c, ast_pos pos);
/* msg as it is: the caller made sure it quotes nothing from an #include. */
_Noreturn void ast_error_msg(ast_ctx *c, ast_pos pos, const char *msg);

void ast_buf_put(ast_buf *b, const char *s, size_t n);
void ast_buf_puts(ast_buf *b, const char *s);
void ast_buf_printf(ast_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

ast_map *ast_map_new(ast_ctx *c);
void *ast_map_get(const ast_map *m, const char *key);
void ast_map_put(ast_ctx *c, ast_map *m, const char *key, void *val);

enum ast_kind {
  /* expressions */
  N_NUM, N_STR, N_IDENT, N_BINARY, N_UNARY, N_PREINC, N_PREDEC, N_POSTINC,
  N_POSTDEC, N_ASSIGN, N_PUT, N_COND, N_COMMA, N_CALL, N_INDEX, N_MEMBER,
  N_CAST, N_SIZEOF,
  /* statements */
  N_EXPR, N_BLOCK, N_DECL, N_IF, N_WHILE, N_DO, N_FOR, N_BREAK, N_CONTINUE,
  N_RETURN, N_FOREACH, N_TRY, N_CATCH, N_EMPTY,
  /* top level */
  N_GLOBAL, N_FUNC, N_PROBE
};

/* Binary operator codes beyond single characters. */
enum ast_op {
  OP_SHL = 256, OP_SHR, OP_LE, OP_GE, OP_EQ, OP_NE, OP_LAND, OP_LOR
};

enum ast_storage { ST_NONE, ST_PERVM, ST_PERVMK, ST_PERHOST };

typedef struct ast_node ast_node;
struct ast_node {
  int kind;
  int op;       /* operator; for N_ASSIGN 0 or the compound operator;
                   N_MEMBER: 1 for '->' */
  ast_pos pos;
  ast_node *a, *b, *c, *d; /* children, per kind */
  ast_node *next;          /* sibling in a list */
  const char *name;        /* identifiers, declared names, probe names */
  uint64_t ival;           /* N_NUM */
  const char *str;         /* N_STR bytes (NUL-terminated, no NUL inside) */
  ty_type *dty;            /* declared type: decls, casts, sizeof, funcs */
  ty_type *ty;             /* type computed by the checker */
  int model;               /* memory model in force (VP_MEM_*) */
  int storage;             /* ST_* for globals */
  void *sym;               /* resolved by the checker */
  int flag;                /* kind-specific */
  int depth;               /* expression tree depth (parser) */
};

ast_node *ast_new(ast_ctx *c, int kind, ast_pos pos);

#endif
