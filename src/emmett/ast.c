/* ast.c - arena, maps, text buffers and errors of one compile. */
#include "emmett/ast.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ast_block {
  ast_block *next;
  size_t used, cap;
  max_align_t data[];
};

struct ast_mapent {
  ast_mapent *next;
  const char *key;
  void *val;
};

void ast_init(ast_ctx *c, char *err, size_t errcap) {
  memset(c, 0, sizeof *c);
  c->err = err;
  c->errcap = errcap;
  if (errcap) err[0] = 0;
}

void ast_free(ast_ctx *c) {
  while (c->arena) {
    ast_block *n = c->arena->next;
    free(c->arena);
    c->arena = n;
  }
  free(c->out.p);
  c->out.p = NULL;
}

static _Noreturn void oom(ast_ctx *c) {
  if (c->errcap) snprintf(c->err, c->errcap, "emmett: out of memory");
  longjmp(c->jb, 1);
}

void *ast_alloc(ast_ctx *c, size_t n) {
  n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  ast_block *b = c->arena;
  if (!b || b->cap - b->used < n) {
    size_t cap = n > 65536 ? n : 65536;
    b = malloc(sizeof *b + cap);
    if (!b) oom(c);
    b->used = 0;
    b->cap = cap;
    b->next = c->arena;
    c->arena = b;
  }
  void *p = (char *)b->data + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

char *ast_strndup(ast_ctx *c, const char *s, size_t n) {
  char *p = ast_alloc(c, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *ast_strdup(ast_ctx *c, const char *s) {
  return ast_strndup(c, s, strlen(s));
}

char *ast_fmt(ast_ctx *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = ast_alloc(c, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

void ast_error(ast_ctx *c, ast_pos pos, const char *fmt, ...) {
  if (c->errcap) {
    int n = snprintf(c->err, c->errcap, "%s:%d:%d: error: ",
                     pos.file ? pos.file : "<input>", pos.line, pos.col);
    if (n >= 0 && (size_t)n < c->errcap) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + n, c->errcap - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  longjmp(c->jb, 1);
}

void ast_buf_put(ast_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) abort(); /* the buffer cannot longjmp: it has no context */
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void ast_buf_puts(ast_buf *b, const char *s) { ast_buf_put(b, s, strlen(s)); }

void ast_buf_printf(ast_buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) {
    ast_buf_put(b, tmp, (size_t)n);
    return;
  }
  char *p = malloc((size_t)n + 1);
  if (!p) abort();
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  ast_buf_put(b, p, (size_t)n);
  free(p);
}

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h % AST_MAP_BUCKETS;
}

ast_map *ast_map_new(ast_ctx *c) { return ast_alloc(c, sizeof(ast_map)); }

void *ast_map_get(const ast_map *m, const char *key) {
  for (ast_mapent *e = m->b[hash(key)]; e; e = e->next)
    if (!strcmp(e->key, key)) return e->val;
  return NULL;
}

void ast_map_put(ast_ctx *c, ast_map *m, const char *key, void *val) {
  unsigned h = hash(key);
  for (ast_mapent *e = m->b[h]; e; e = e->next)
    if (!strcmp(e->key, key)) {
      e->val = val;
      return;
    }
  ast_mapent *e = ast_alloc(c, sizeof *e);
  e->key = key;
  e->val = val;
  e->next = m->b[h];
  m->b[h] = e;
}

ast_node *ast_new(ast_ctx *c, int kind, ast_pos pos) {
  ast_node *n = ast_alloc(c, sizeof *n);
  n->kind = kind;
  n->pos = pos;
  return n;
}
