/*
 * read.c - the VP reader: comments, integers, strings, names and lists.
 * Recursive descent bounded by VPR_MAX_DEPTH so hostile input cannot blow
 * the C stack.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vp/read.h"
#include "vp/vp.h"

typedef struct vpr {
  const char *p, *end;
  const char *file;
  int line, col;
  char *err;
  size_t errcap;
  int failed;
} vpr;

static void fail(vpr *r, int line, int col, const char *msg) {
  if (!r->failed)
    snprintf(r->err, r->errcap, "%s:%d:%d: error: %s", r->file, line, col,
             msg);
  r->failed = 1;
}

static int peek(vpr *r) { return r->p < r->end ? (unsigned char)*r->p : -1; }

static void adv(vpr *r) {
  if (*r->p == '\n') {
    r->line++;
    r->col = 1;
  } else {
    r->col++;
  }
  r->p++;
}

static void skip_space(vpr *r) {
  for (int c; (c = peek(r)) >= 0;) {
    if (c == ';') {
      while (peek(r) >= 0 && peek(r) != '\n')
        adv(r);
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
               c == '\v') {
      adv(r);
    } else {
      break;
    }
  }
}

static vpr_node *node(int kind, int line, int col) {
  vpr_node *n = calloc(1, sizeof *n);
  if (!n)
    abort();
  n->kind = kind;
  n->line = line;
  n->col = col;
  return n;
}

void vpr_free(vpr_node *n) {
  if (!n)
    return;
  for (int i = 0; i < n->nkids; i++)
    vpr_free(n->kids[i]);
  free(n->kids);
  free(n->s);
  free(n);
}

static int is_delim(int c) {
  return c < 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         c == '\f' || c == '\v' || c == '(' || c == ')' || c == '"' ||
         c == ';';
}

/* 1 if s is an integer literal (*v set), 0 if not, -1 if out of range. */
static int parse_int(const char *s, uint64_t *v) {
  int neg = 0;
  if (*s == '+' || *s == '-')
    neg = *s++ == '-';
  if (!*s)
    return 0;
  uint64_t x = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    if (!s[2] || neg)
      return 0;
    for (s += 2; *s; s++) {
      int d = *s >= '0' && *s <= '9'   ? *s - '0'
              : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
              : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                       : -1;
      if (d < 0)
        return 0;
      if (x >> 60)
        return -1;
      x = x << 4 | (uint64_t)d;
    }
  } else {
    for (const char *t = s; *t; t++)
      if (*t < '0' || *t > '9')
        return 0;
    for (; *s; s++) {
      uint64_t d = (uint64_t)(*s - '0');
      if (x > (UINT64_MAX - d) / 10)
        return -1;
      x = x * 10 + d;
    }
  }
  *v = neg ? (uint64_t)0 - x : x;
  return 1;
}

static vpr_node *read_atom(vpr *r) {
  int line = r->line, col = r->col;
  const char *s = r->p;
  while (!is_delim(peek(r)))
    adv(r);
  size_t n = (size_t)(r->p - s);
  char buf[128];
  if (n >= sizeof buf || n >= VP_NAME_MAX) {
    fail(r, line, col, "name longer than 63 bytes");
    return NULL;
  }
  memcpy(buf, s, n);
  buf[n] = 0;
  uint64_t v;
  int k = parse_int(buf, &v);
  if (k < 0) {
    fail(r, line, col, "integer literal out of range");
    return NULL;
  }
  vpr_node *nd = node(k ? VPR_INT : VPR_NAME, line, col);
  if (k)
    nd->ival = v;
  else
    nd->s = strdup(buf);
  return nd;
}

static vpr_node *read_string(vpr *r) {
  int line = r->line, col = r->col;
  char buf[VP_STR_MAX];
  size_t n = 0;
  adv(r); /* the quote */
  for (;;) {
    int c = peek(r);
    if (c < 0) {
      fail(r, line, col, "unterminated string");
      return NULL;
    }
    if (c == '"') {
      adv(r);
      break;
    }
    if (c == '\\') {
      int el = r->line, ec = r->col;
      adv(r);
      c = peek(r);
      if (c < 0) {
        fail(r, el, ec, "bad escape at end of input");
        return NULL;
      }
      c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
    }
    adv(r);
    if (n + 1 >= VP_STR_MAX) {
      fail(r, line, col, "string longer than 255 bytes");
      return NULL;
    }
    buf[n++] = (char)c;
  }
  buf[n] = 0;
  vpr_node *nd = node(VPR_STR, line, col);
  nd->s = malloc(n + 1);
  if (!nd->s)
    abort();
  memcpy(nd->s, buf, n + 1);
  nd->ival = n;
  return nd;
}

static void push_kid(vpr_node *l, vpr_node *k) {
  if ((l->nkids & (l->nkids - 1)) == 0) {
    int cap = l->nkids ? l->nkids * 2 : 4;
    vpr_node **kids = realloc(l->kids, (size_t)cap * sizeof *kids);
    if (!kids)
      abort();
    l->kids = kids;
  }
  l->kids[l->nkids++] = k;
}

static vpr_node *read_form(vpr *r, int depth);

/* Items until ')' (or end of input at top level). */
static int read_items(vpr *r, vpr_node *l, int depth, int top) {
  for (;;) {
    skip_space(r);
    int c = peek(r);
    if (c < 0) {
      if (!top)
        fail(r, l->line, l->col, "unterminated list");
      return !top ? -1 : 0;
    }
    if (c == ')') {
      if (top) {
        fail(r, r->line, r->col, "unexpected ')'");
        return -1;
      }
      adv(r);
      return 0;
    }
    vpr_node *k = read_form(r, depth);
    if (!k)
      return -1;
    push_kid(l, k);
  }
}

static vpr_node *read_form(vpr *r, int depth) {
  int c = peek(r);
  if (c == '"')
    return read_string(r);
  if (c != '(')
    return read_atom(r);
  if (depth >= VPR_MAX_DEPTH) {
    fail(r, r->line, r->col, "lists nested deeper than 200");
    return NULL;
  }
  vpr_node *l = node(VPR_LIST, r->line, r->col);
  adv(r);
  if (read_items(r, l, depth + 1, 0) < 0) {
    vpr_free(l);
    return NULL;
  }
  return l;
}

vpr_node *vpr_read(const char *text, size_t len, const char *file, char *err,
                   size_t errcap) {
  vpr r = {text, text + len, file ? file : "<input>", 1, 1, err, errcap, 0};
  if (errcap)
    err[0] = 0;
  vpr_node *top = node(VPR_LIST, 1, 1);
  if (read_items(&r, top, 0, 1) < 0) {
    vpr_free(top);
    return NULL;
  }
  return top;
}
