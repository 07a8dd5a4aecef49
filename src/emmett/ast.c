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

int ast_hidden(const ast_ctx *c, ast_pos pos) {
  return c->hidden && pos.file && ast_map_get(c->hidden, pos.file);
}

/* fmt with every conversion replaced by <hidden>: no argument is read. */
static void redact(char *out, size_t cap, const char *fmt) {
  size_t n = 0;
  for (const char *f = fmt; *f && n + 1 < cap; f++) {
    if (*f != '%' || f[1] == '%') {
      out[n++] = *f;
      f += *f == '%';
      continue;
    }
    f++;
    while (*f && !strchr("sdicuxXpzl", *f)) f++; /* flags, width, precision */
    while (*f == 'l' || *f == 'z') f++;
    n += (size_t)snprintf(out + n, cap - n, "<hidden>");
    if (n >= cap) n = cap - 1;
    if (!*f) break;
  }
  out[n < cap ? n : cap - 1] = 0;
}

void ast_error(ast_ctx *c, ast_pos pos, const char *fmt, ...) {
  if (c->errcap) {
    int n = snprintf(c->err, c->errcap, "%s:%d:%d: error: ",
                     pos.file ? pos.file : "<input>", pos.line, pos.col);
    if (n >= 0 && (size_t)n < c->errcap && ast_hidden(c, pos)) {
      redact(c->err + n, c->errcap - (size_t)n, fmt);
    } else if (n >= 0 && (size_t)n < c->errcap) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(c->err + n, c->errcap - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  longjmp(c->jb, 1);
}

void ast_error_msg(ast_ctx *c, ast_pos pos, const char *msg) {
  if (c->errcap)
    snprintf(c->err, c->errcap, "%s:%d:%d: error: %s", pos.file ? pos.file : "<input>",
             pos.line, pos.col, msg);
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
  return h;
}

#define MAP_MIN_BUCKETS 16

ast_map *ast_map_new(ast_ctx *c) {
  ast_map *m = ast_alloc(c, sizeof(ast_map));
  m->nb = MAP_MIN_BUCKETS;
  m->b = ast_alloc(c, m->nb * sizeof *m->b);
  return m;
}

void *ast_map_get(const ast_map *m, const char *key) {
  for (ast_mapent *e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next)
    if (!strcmp(e->key, key)) return e->val;
  return NULL;
}

/* Twice the buckets; the old array stays in the arena (the sizes sum to
 * twice the last one, so the waste is linear). */
static void grow(ast_ctx *c, ast_map *m) {
  size_t nb = m->nb * 2;
  ast_mapent **b = ast_alloc(c, nb * sizeof *b);
  for (size_t i = 0; i < m->nb; i++)
    while (m->b[i]) {
      ast_mapent *e = m->b[i];
      m->b[i] = e->next;
      size_t h = hash(e->key) & (nb - 1);
      e->next = b[h];
      b[h] = e;
    }
  m->b = b;
  m->nb = nb;
}

void ast_map_put(ast_ctx *c, ast_map *m, const char *key, void *val) {
  size_t h = hash(key) & (m->nb - 1);
  for (ast_mapent *e = m->b[h]; e; e = e->next)
    if (!strcmp(e->key, key)) {
      e->val = val;
      return;
    }
  if (m->n >= m->nb) {
    grow(c, m);
    h = hash(key) & (m->nb - 1);
  }
  ast_mapent *e = ast_alloc(c, sizeof *e);
  e->key = key;
  e->val = val;
  e->next = m->b[h];
  m->b[h] = e;
  m->n++;
}

ast_node *ast_new(ast_ctx *c, int kind, ast_pos pos) {
  ast_node *n = ast_alloc(c, sizeof *n);
  n->kind = kind;
  n->pos = pos;
  return n;
}
