/*
 * epp.c - the Emmett preprocessor.
 *
 * EPP works line by line.  Each source line is either a directive (`#` then
 * a known directive name), a comment line (`#` then white space and prose,
 * as in the 2008 Emmett samples), or code, which is copied to the output
 * with object-like macros expanded.  Comments in code become spaces so that
 * columns stay put and the lexer never sees them.  Where the output stops
 * following the input line for line (an #include, a skipped block, #line),
 * a marker line `#line N "FILE"` says where the next line comes from.
 *
 * Errors unwind with longjmp to epp_run; everything allocated hangs off the
 * epp state so that one cleanup frees it all.
 */
#include "emmett/epp.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EPP_MAX_INCLUDE_DEPTH 32
#define EPP_MAX_INCLUDES 10000        /* in all: stops include bombs */
#define EPP_MAX_EXPAND_DEPTH 256      /* macros expanding macros */
#define EPP_MAX_EXPR_DEPTH 256        /* nesting in #if expressions */
#define EPP_MAX_OUT ((size_t)16 << 20) /* bytes of output */
#define EPP_MAX_TOKS ((size_t)1 << 20) /* tokens in one #if */
#define EPP_MAX_FILE ((long long)16 << 20)
#define NBUCKET_MIN 64 /* the macro and name tables double from here */

typedef struct buf {
  char *p;
  size_t len, cap;
} buf;

typedef struct macro {
  struct macro *next;
  char *body;
  size_t blen, nlen;
  int busy; /* being expanded: not expanded again inside itself */
  char name[];
} macro;

typedef struct iname { /* interned file name */
  struct iname *next;
  size_t n;
  char s[];
} iname;

enum { C_TAKING, C_SEEKING, C_DONE, C_DEAD };

typedef struct cond { /* one open #if group */
  const char *file, *dir;
  int line, col;
  int state, seen_else;
} cond;

typedef struct src { /* a file being read */
  const char *name;  /* for messages and markers (#line may change it) */
  char *path;        /* as opened: includes are looked up beside it */
  char *text;        /* owned, NULL for the top-level text */
  const char *p;     /* start of the next line */
  int line;          /* number of the next line */
  int cond_base;     /* conds open when this file started */
  int in_comment, cm_line, cm_col;
} src;

typedef struct tok { /* a token of an #if or #line */
  char kind; /* 'n' number, 'N' __LINE__, 'i' ident, 's' string, 'c' char,
                'p' punctuator, 'e' end */
  int len;
  const char *s;
  int64_t val;
  int line, col;
} tok;

typedef struct dctx { /* the directive being run */
  src *s;
  const char *name; /* "if", "define", ... */
  int line, col;    /* of the '#' */
  int eline, ecol;  /* just after the directive name */
} dctx;

typedef struct epp {
  const em_opts *opts;
  char *err;
  size_t errcap;
  jmp_buf jb;
  macro **tab;       /* macros by name: nmac entries in ntab buckets */
  size_t ntab, nmac;
  iname **names;     /* interned names: nname entries in nnames buckets */
  size_t nnames, nname;
  buf out, tmp, inc; /* inc: an #include or #line file name */
  src srcs[EPP_MAX_INCLUDE_DEPTH + 1];
  int nsrc, nincludes;
  cond *conds;
  int ncond, capcond;
  const char *oname; /* where the next output line is taken to come from */
  int oline;
  int ohidden;       /* and whether it is text from an #include */
  int ecol;          /* column of the identifier being expanded */
  buf ln;            /* a directive's text after its name, comments blanked */
  int *lline, *lcol; /* and where each of its bytes came from */
  size_t lcap;
  tok *toks;
  size_t ntok, captok, ti;
  int edepth;
  const char *dname;
} epp;

/* ---- errors and memory ---- */

#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static _Noreturn void fail(epp *e, const char *file, int line, int col,
                           const char *fmt, ...) {
  if (e->err && e->errcap) {
    /* a #line can make the name long: keep room for the message */
    int fl = strlen(file) > 200 ? 200 : (int)strlen(file);
    int n = snprintf(e->err, e->errcap, "%.*s:%d:%d: error: ", fl, file, line,
                     col);
    if (n >= 0 && (size_t)n < e->errcap) {
      va_list ap;
      va_start(ap, fmt);
      vsnprintf(e->err + n, e->errcap - (size_t)n, fmt, ap);
      va_end(ap);
    }
  }
  longjmp(e->jb, 1);
}

static _Noreturn void fail_here(epp *e, const char *msg) {
  if (e->nsrc == 0)
    fail(e, "<command line>", 1, 1, "%s", msg);
  src *s = &e->srcs[e->nsrc - 1];
  fail(e, s->name, s->line, 1, "%s", msg);
}

static void *xrealloc(epp *e, void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    fail_here(e, "out of memory");
  return q;
}

static char *xstrndup(epp *e, const char *s, size_t n) {
  char *p = xrealloc(e, NULL, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

static void reserve(epp *e, buf *b, size_t n) {
  if (b->len + n < b->cap)
    return;
  if (b->len + n > EPP_MAX_OUT)
    fail_here(e, "preprocessed output too large (runaway macro or #include?)");
  size_t cap = b->cap ? b->cap : 256;
  while (cap <= b->len + n)
    cap *= 2;
  b->p = xrealloc(e, b->p, cap);
  b->cap = cap;
}

static void put(epp *e, buf *b, const char *s, size_t n) {
  reserve(e, b, n);
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

static void putc1(epp *e, buf *b, char c) { put(e, b, &c, 1); }

static void insert_at(epp *e, buf *b, size_t at, char c) {
  reserve(e, b, 1);
  memmove(b->p + at + 1, b->p + at, b->len - at);
  b->p[at] = c;
  b->p[++b->len] = 0;
}

/* A string literal for markers and __FILE__. */
static void put_quoted(epp *e, buf *b, const char *s) {
  putc1(e, b, '"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      putc1(e, b, '\\');
    putc1(e, b, *s == '\n' ? '?' : *s);
  }
  putc1(e, b, '"');
}

static size_t hash(const char *s, size_t n) {
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/* Both tables keep at most one entry per bucket on average: they double
 * when full, so 200,000 #defines cost no more per line than ten. */
#define GROW(e, tab, nb, type, len_of, name_of)                                \
  do {                                                                         \
    size_t nb2_ = (nb) ? (nb) * 2 : NBUCKET_MIN;                               \
    type **t2_ = calloc(nb2_, sizeof *t2_);                                    \
    if (!t2_)                                                                  \
      fail_here(e, "out of memory");                                           \
    for (size_t i_ = 0; i_ < (nb); i_++)                                       \
      while ((tab)[i_]) {                                                      \
        type *m_ = (tab)[i_];                                                  \
        (tab)[i_] = m_->next;                                                  \
        size_t h_ = hash(m_->name_of, m_->len_of) & (nb2_ - 1);                \
        m_->next = t2_[h_];                                                    \
        t2_[h_] = m_;                                                          \
      }                                                                        \
    free(tab);                                                                 \
    (tab) = t2_;                                                               \
    (nb) = nb2_;                                                               \
  } while (0)

static const char *intern(epp *e, const char *s, size_t n) {
  if (e->nname >= e->nnames)
    GROW(e, e->names, e->nnames, iname, n, s);
  iname **pp = &e->names[hash(s, n) & (e->nnames - 1)];
  for (iname *p = *pp; p; p = p->next)
    if (p->n == n && !memcmp(p->s, s, n))
      return p->s;
  iname *p = xrealloc(e, NULL, sizeof *p + n + 1);
  memcpy(p->s, s, n);
  p->s[n] = 0;
  p->n = n;
  p->next = *pp;
  *pp = p;
  e->nname++;
  return p->s;
}

/* ---- characters ---- */

static int is_blank(int c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_id0(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         c == '$';
}
static int is_id(int c) { return is_id0(c) || is_digit(c); }

/* Would a and b, written side by side, read as one token? */
static int pastes(int a, int b) {
  static const char ops[] = "+-*/%<>=!&|^.:#";
  if (is_id(a) && is_id(b))
    return 1;
  return a && b && strchr(ops, a) && strchr(ops, b);
}

static int word_is(const char *s, size_t n, const char *w) {
  return strlen(w) == n && !memcmp(s, w, n);
}

/* __FILE__, __LINE__ and `defined` cannot be (un)defined. */
static int is_special(const char *s, size_t n) {
  return word_is(s, n, "__FILE__") || word_is(s, n, "__LINE__") ||
         word_is(s, n, "defined");
}

/* ---- macros ---- */

static macro **slot(epp *e, const char *s, size_t n) {
  if (e->nmac >= e->ntab)
    GROW(e, e->tab, e->ntab, macro, nlen, name);
  macro **pp = &e->tab[hash(s, n) & (e->ntab - 1)];
  while (*pp && !((*pp)->nlen == n && !memcmp((*pp)->name, s, n)))
    pp = &(*pp)->next;
  return pp;
}

static macro *lookup(epp *e, const char *s, size_t n) { return *slot(e, s, n); }

static int is_defined(epp *e, const char *s, size_t n) {
  return lookup(e, s, n) != NULL || word_is(s, n, "__FILE__") ||
         word_is(s, n, "__LINE__");
}

static void define(epp *e, const char *s, size_t n, const char *body,
                   size_t blen) {
  macro **pp = slot(e, s, n);
  char *b = xstrndup(e, body, blen);
  for (size_t i = 0; i < blen; i++)
    if (b[i] == '\n')
      b[i] = ' '; /* a body never breaks the line structure */
  if (!*pp) {
    macro *m = malloc(sizeof *m + n + 1);
    if (!m) {
      free(b);
      fail_here(e, "out of memory");
    }
    memset(m, 0, sizeof *m);
    memcpy(m->name, s, n);
    m->name[n] = 0;
    m->nlen = n;
    *pp = m;
    e->nmac++;
  }
  free((*pp)->body);
  (*pp)->body = b;
  (*pp)->blen = blen;
}

static void undef(epp *e, const char *s, size_t n) {
  macro **pp = slot(e, s, n);
  macro *m = *pp;
  if (m) {
    *pp = m->next;
    free(m->body);
    free(m);
    e->nmac--;
  }
}

/* ---- output ---- */

/* Text of an #include: its messages quote none of it (the user named the
 * file, but may not be allowed to read it, and vprobe may run as root).
 * Only the script itself, -c code and -D are quoted. */
static int hidden(epp *e, const src *s) { return s != &e->srcs[0]; }

/* Start an output line that comes from name:line (of the current source),
 * with a marker first if the lexer would otherwise count it wrong or take
 * it for text of another kind; an #include's text has `1` after FILE. */
static void out_begin(epp *e, const char *name, int line) {
  int hid = e->nsrc > 1;
  if (e->oname != name || e->oline != line || e->ohidden != hid) {
    char n[32];
    snprintf(n, sizeof n, "#line %d ", line);
    put(e, &e->out, n, strlen(n));
    put_quoted(e, &e->out, name);
    if (hid)
      put(e, &e->out, " 1", 2);
    putc1(e, &e->out, '\n');
    e->oname = name;
    e->oline = line;
    e->ohidden = hid;
  }
}

/* End an output line that started at start.  Only markers may begin with
 * '#' in column 1 (a macro could make a line start so): shift such a line. */
static void out_end(epp *e, size_t start) {
  if (e->out.len > start && e->out.p[start] == '#')
    insert_at(e, &e->out, start, ' ');
  putc1(e, &e->out, '\n');
  e->oline++;
}

static void out_blank(epp *e, const char *name, int line) {
  out_begin(e, name, line);
  out_end(e, e->out.len);
}

/* ---- code lines ---- */

static const char *skip_literal(const char *p, const char *end) {
  char q = *p++;
  while (p < end && *p != q)
    p += (*p == '\\' && p + 1 < end) ? 2 : 1;
  return p < end ? p + 1 : p;
}

static void scan_code(epp *e, src *s, const char *ls, const char *p,
                      const char *end, int top, int emit, int depth);

/* Write identifier id, expanded.  Returns 1 if it was a macro. */
static int expand_ident(epp *e, src *s, const char *id, size_t n, int depth) {
  buf *o = &e->out;
  if (word_is(id, n, "__LINE__")) {
    char b[16];
    snprintf(b, sizeof b, "%d", s->line);
    put(e, o, b, strlen(b));
    return 1;
  }
  if (word_is(id, n, "__FILE__")) {
    put_quoted(e, o, s->name);
    return 1;
  }
  macro *m = lookup(e, id, n);
  if (!m || m->busy) {
    put(e, o, id, n);
    return 0;
  }
  if (depth >= EPP_MAX_EXPAND_DEPTH)
    fail(e, s->name, s->line, e->ecol,
         "macro expansion nested too deeply (limit %d)", EPP_MAX_EXPAND_DEPTH);
  size_t start = o->len;
  m->busy = 1;
  scan_code(e, s, NULL, m->body, m->body + m->blen, 0, 1, depth + 1);
  m->busy = 0;
  if (start > 0 && o->len > start && pastes(o->p[start - 1], o->p[start]))
    insert_at(e, o, start, ' ');
  return 1;
}

/* Scan code text [p, end): with emit, copy it to the output expanding
 * macros.  top: a source line starting at ls, where comments may open and
 * close (state in s->in_comment); otherwise the body of a macro. */
static void scan_code(epp *e, src *s, const char *ls, const char *p,
                      const char *end, int top, int emit, int depth) {
  buf *o = &e->out;
  while (p < end) {
    if (top && s->in_comment) {
      const char *q = p;
      while (q < end && !(q[0] == '*' && q + 1 < end && q[1] == '/'))
        q++;
      if (q < end) {
        q += 2;
        s->in_comment = 0;
      }
      if (emit) {
        reserve(e, o, (size_t)(q - p));
        memset(o->p + o->len, ' ', (size_t)(q - p));
        o->len += (size_t)(q - p);
        o->p[o->len] = 0;
      }
      p = q;
      continue;
    }
    char c = *p;
    if (top && c == '/' && p + 1 < end && p[1] == '*') {
      s->in_comment = 1;
      s->cm_line = s->line;
      s->cm_col = (int)(p - ls) + 1;
      if (emit)
        put(e, o, "  ", 2);
      p += 2;
      continue;
    }
    if (top && c == '/' && p + 1 < end && p[1] == '/')
      break;
    const char *q = p + 1;
    if (c == '"' || c == '\'') {
      q = skip_literal(p, end);
    } else if (is_digit(c) || (c == '.' && q < end && is_digit(*q))) {
      while (q < end && (is_id(*q) || *q == '.'))
        q++; /* a number: 0xff is not an identifier xff */
    } else if (is_id0(c)) {
      while (q < end && is_id(*q))
        q++;
      if (emit) {
        if (top)
          e->ecol = (int)(p - ls) + 1;
        if (expand_ident(e, s, p, (size_t)(q - p), depth) && q < end &&
            o->len > 0 && pastes(o->p[o->len - 1], *q))
          putc1(e, o, ' ');
      }
      p = q;
      continue;
    }
    if (emit)
      put(e, o, p, (size_t)(q - p));
    p = q;
  }
}

/* ---- directive lines ---- */

static void ln_push(epp *e, char c, int line, int col) {
  if (e->ln.len + 1 >= e->lcap) {
    size_t cap = e->lcap ? e->lcap * 2 : 128;
    e->lline = xrealloc(e, e->lline, cap * sizeof *e->lline);
    e->lcol = xrealloc(e, e->lcol, cap * sizeof *e->lcol);
    e->lcap = cap;
  }
  e->lline[e->ln.len] = line;
  e->lcol[e->ln.len] = col;
  putc1(e, &e->ln, c);
}

/* Read the rest of a directive from p (on the line starting at ls) into
 * e->ln: backslash-newline joins lines, comments become one space (a block
 * comment may run over lines).  prose: the text of #error/#warning, where an
 * apostrophe is just a character.  Returns the number of lines used. */
static int read_rest(epp *e, src *s, const char *p, const char *ls,
                     int prose) {
  int line = s->line, nl = 1;
  e->ln.len = 0;
  reserve(e, &e->ln, 1);
  e->ln.p[0] = 0;
  while (*p && *p != '\n') {
    if (p[0] == '\\' && (p[1] == '\n' || (p[1] == '\r' && p[2] == '\n'))) {
      p += p[1] == '\n' ? 2 : 3;
      ls = p;
      line++;
      nl++;
      continue;
    }
    if (p[0] == '/' && p[1] == '*') {
      int cl = line, cc = (int)(p - ls) + 1;
      ln_push(e, ' ', cl, cc);
      for (p += 2; !(p[0] == '*' && p[1] == '/'); p++) {
        if (!*p)
          fail(e, s->name, cl, cc, "unterminated comment");
        if (*p == '\n') {
          ls = p + 1;
          line++;
          nl++;
        }
      }
      p += 2;
      continue;
    }
    if (p[0] == '/' && p[1] == '/') {
      while (*p && *p != '\n')
        p++;
      break;
    }
    if (*p == '"' || (*p == '\'' && !prose)) {
      char q = *p;
      ln_push(e, *p, line, (int)(p - ls) + 1);
      for (p++; *p && *p != '\n' && *p != q; p++) {
        if (*p == '\\' && p[1] && p[1] != '\n') {
          ln_push(e, *p, line, (int)(p - ls) + 1);
          p++;
        }
        ln_push(e, *p, line, (int)(p - ls) + 1);
      }
      if (*p == q) {
        ln_push(e, *p, line, (int)(p - ls) + 1);
        p++;
      }
      continue;
    }
    ln_push(e, *p, line, (int)(p - ls) + 1);
    p++;
  }
  s->p = *p ? p + 1 : p;
  return nl;
}

static size_t skipb(epp *e, size_t i) {
  while (i < e->ln.len && is_blank(e->ln.p[i]))
    i++;
  return i;
}

/* Position of byte i of e->ln (or just past the end). */
static void pos_at(epp *e, dctx *d, size_t i, int *line, int *col) {
  if (i < e->ln.len) {
    *line = e->lline[i];
    *col = e->lcol[i];
  } else if (e->ln.len > 0) {
    *line = e->lline[e->ln.len - 1];
    *col = e->lcol[e->ln.len - 1] + 1;
  } else {
    *line = d->eline;
    *col = d->ecol;
  }
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static _Noreturn void fail_at(epp *e, dctx *d, size_t i, const char *fmt, ...) {
  int line, col;
  pos_at(e, d, i, &line, &col);
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fail(e, d->s->name, line, col, "%s", msg);
}

/* A macro name at i; returns its length, failing if there is none. */
static size_t macro_name(epp *e, dctx *d, size_t i) {
  size_t j = i;
  if (j < e->ln.len && is_id0(e->ln.p[j]))
    while (j < e->ln.len && is_id(e->ln.p[j]))
      j++;
  if (j == i)
    fail_at(e, d, i, "#%s expects a macro name", d->name);
  if (is_special(e->ln.p + i, j - i) && hidden(e, d->s))
    fail_at(e, d, i, "this name cannot be defined or undefined");
  if (is_special(e->ln.p + i, j - i))
    fail_at(e, d, i, "'%.*s' cannot be defined or undefined", (int)(j - i),
            e->ln.p + i);
  return j - i;
}

static void no_more(epp *e, dctx *d, size_t i) {
  i = skipb(e, i);
  if (i < e->ln.len)
    fail_at(e, d, i, "extra tokens after #%s", d->name);
}

static void do_define(epp *e, dctx *d) {
  size_t i = skipb(e, 0), n = macro_name(e, d, i), j = i + n;
  if (j < e->ln.len && e->ln.p[j] == '(')
    fail_at(e, d, j, "macros with arguments are not supported");
  size_t a = skipb(e, j), b = e->ln.len;
  while (b > a && is_blank(e->ln.p[b - 1]))
    b--;
  define(e, e->ln.p + i, n, e->ln.p + a, b - a);
}

static void do_undef(epp *e, dctx *d) {
  size_t i = skipb(e, 0), n = macro_name(e, d, i);
  no_more(e, d, i + n);
  undef(e, e->ln.p + i, n);
}

/* ---- tokens of #if and #line ---- */

static tok *push_tok(epp *e, char kind, const char *s, size_t n, int line,
                     int col) {
  if (e->ntok >= EPP_MAX_TOKS)
    fail(e, e->srcs[e->nsrc - 1].name, line, col,
         "#%s expression too large", e->dname);
  if (e->ntok == e->captok) {
    e->captok = e->captok ? e->captok * 2 : 64;
    e->toks = xrealloc(e, e->toks, e->captok * sizeof *e->toks);
  }
  tok *t = &e->toks[e->ntok++];
  *t = (tok){kind, (int)n, s, 0, line, col};
  return t;
}

/* Tokenize s[0..n), expanding macros, except the name after `defined`.
 * ll/cc give each byte's position; NULL (a macro body): all at line:col. */
static void lex_toks(epp *e, src *sr, const char *s, size_t n, const int *ll,
                     const int *cc, int line, int col, int depth) {
  static const char *two[] = {"&&", "||", "==", "!=", "<=", ">=", "<<", ">>"};
  int after_def = 0; /* 1: after `defined`, 2: after `defined (` */
  size_t i = 0;
  while (i < n) {
    int tl = ll ? ll[i] : line, tc = cc ? cc[i] : col;
    char c = s[i];
    size_t j = i + 1;
    if (is_blank(c)) {
      i++;
      continue;
    }
    if (is_id0(c)) {
      while (j < n && is_id(s[j]))
        j++;
      const char *id = s + i;
      size_t len = j - i;
      macro *m;
      if (after_def) {
        push_tok(e, 'i', id, len, tl, tc);
        after_def = 0;
      } else if (word_is(id, len, "defined")) {
        push_tok(e, 'i', id, len, tl, tc);
        after_def = 1;
      } else if (word_is(id, len, "__LINE__")) {
        push_tok(e, 'N', id, len, tl, tc)->val = tl;
      } else if (word_is(id, len, "__FILE__")) {
        push_tok(e, 's', id, len, tl, tc);
      } else if ((m = lookup(e, id, len)) && !m->busy) {
        if (depth >= EPP_MAX_EXPAND_DEPTH)
          fail(e, sr->name, tl, tc, "macro expansion nested too deeply (limit %d)",
               EPP_MAX_EXPAND_DEPTH);
        m->busy = 1;
        lex_toks(e, sr, m->body, m->blen, NULL, NULL, tl, tc, depth + 1);
        m->busy = 0;
      } else {
        push_tok(e, 'i', id, len, tl, tc);
      }
      i = j;
      continue;
    }
    char kind = 'p';
    if (is_digit(c) || (c == '.' && j < n && is_digit(s[j]))) {
      while (j < n && (is_id(s[j]) || s[j] == '.'))
        j++;
      kind = 'n';
    } else if (c == '"' || c == '\'') {
      j = (size_t)(skip_literal(s + i, s + n) - s);
      kind = c == '"' ? 's' : 'c';
    } else if (j < n) {
      for (size_t k = 0; k < sizeof two / sizeof *two; k++)
        if (c == two[k][0] && s[j] == two[k][1])
          j++;
    }
    after_def = (after_def == 1 && c == '(') ? 2 : 0;
    push_tok(e, kind, s + i, j - i, tl, tc);
    i = j;
  }
}

/* Tokenize e->ln from byte i, with an end token. */
static void lex_line(epp *e, dctx *d, size_t i) {
  int line, col;
  e->ntok = 0;
  e->ti = 0;
  e->dname = d->name;
  if (i < e->ln.len)
    lex_toks(e, d->s, e->ln.p + i, e->ln.len - i, e->lline + i, e->lcol + i,
             0, 0, 0);
  pos_at(e, d, e->ln.len, &line, &col);
  push_tok(e, 'e', "", 0, line, col);
}

/* ---- #if expressions: C integer constant expressions, 64-bit ---- */

/* fmt has one %s: the token, quoted, or "end of line". */
static _Noreturn void fail_tok(epp *e, tok *t, const char *fmt) {
  char desc[64], msg[256];
  if (t->kind == 'e')
    snprintf(desc, sizeof desc, "end of line");
  else if (hidden(e, &e->srcs[e->nsrc - 1]))
    snprintf(desc, sizeof desc, "a token");
  else
    snprintf(desc, sizeof desc, "'%.*s'", t->len > 40 ? 40 : t->len, t->s);
  snprintf(msg, sizeof msg, fmt, desc);
  fail(e, e->srcs[e->nsrc - 1].name, t->line, t->col, "%s in #%s", msg,
       e->dname);
}

static int is_op(tok *t, const char *op) {
  return t->kind == 'p' && word_is(t->s, (size_t)t->len, op);
}

static int64_t parse_number(epp *e, tok *t) {
  const char *s = t->s, *end = s + t->len;
  uint64_t v = 0;
  unsigned base = 10;
  if (s[0] == '0' && end - s > 1 && (s[1] == 'x' || s[1] == 'X'))
    base = 16, s += 2;
  else if (s[0] == '0' && end - s > 1 && (s[1] == 'b' || s[1] == 'B'))
    base = 2, s += 2;
  else if (s[0] == '0')
    base = 8;
  const char *d0 = s;
  for (; s < end; s++) {
    unsigned dv;
    if (is_digit(*s))
      dv = (unsigned)(*s - '0');
    else if (*s >= 'a' && *s <= 'f')
      dv = (unsigned)(*s - 'a' + 10);
    else if (*s >= 'A' && *s <= 'F')
      dv = (unsigned)(*s - 'A' + 10);
    else
      break;
    if (dv >= base)
      break;
    v = v * base + dv;
  }
  if (s == d0 && base != 8)
    fail_tok(e, t, "invalid number %s");
  while (s < end && (*s == 'u' || *s == 'U' || *s == 'l' || *s == 'L'))
    s++;
  if (s != end)
    fail_tok(e, t, "invalid number %s");
  return (int64_t)v;
}

static int64_t parse_char(epp *e, tok *t) {
  const char *s = t->s + 1, *end = t->s + t->len - 1;
  if (t->len < 3 || t->s[t->len - 1] != '\'')
    fail_tok(e, t, "invalid character constant %s");
  int64_t v;
  if (*s != '\\') {
    v = (unsigned char)*s++;
  } else if (++s < end && *s == 'x') {
    v = 0;
    int nd = 0;
    for (s++; s < end && nd < 2; s++, nd++) {
      int c = *s;
      int dv = is_digit(c) ? c - '0' : (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
      if (dv < 0)
        break;
      v = v * 16 + dv;
    }
    if (!nd)
      fail_tok(e, t, "invalid character constant %s");
  } else if (s < end && *s >= '0' && *s <= '7') {
    v = 0;
    for (int nd = 0; s < end && nd < 3 && *s >= '0' && *s <= '7'; s++, nd++)
      v = v * 8 + (*s - '0');
  } else {
    static const char from[] = "ntrabfv\\'\"?", to[] = "\n\t\r\a\b\f\v\\'\"?";
    const char *k = s < end ? strchr(from, *s) : NULL;
    if (!k || !*s)
      fail_tok(e, t, "invalid character constant %s");
    v = (unsigned char)to[k - from];
    s++;
  }
  if (s != end)
    fail_tok(e, t, "invalid character constant %s");
  return v;
}

static int64_t expr_cond(epp *e, int ev);

static void enter(epp *e) {
  if (++e->edepth > EPP_MAX_EXPR_DEPTH)
    fail_tok(e, &e->toks[e->ti], "expression nested too deeply at %s");
}

static int64_t expr_unary(epp *e, int ev) {
  tok *t = &e->toks[e->ti];
  int64_t v;
  enter(e);
  if (t->kind == 'p' && t->len == 1 && strchr("!~-+", t->s[0])) {
    e->ti++;
    uint64_t a = (uint64_t)expr_unary(e, ev);
    switch (t->s[0]) {
    case '!': v = !a; break;
    case '~': v = (int64_t)~a; break;
    case '-': v = (int64_t)(0 - a); break;
    default: v = (int64_t)a; break;
    }
  } else if (is_op(t, "(")) {
    e->ti++;
    v = expr_cond(e, ev);
    if (!is_op(&e->toks[e->ti], ")"))
      fail_tok(e, &e->toks[e->ti], "expected ')' before %s");
    e->ti++;
  } else if (t->kind == 'n') {
    v = parse_number(e, t);
    e->ti++;
  } else if (t->kind == 'N') {
    v = t->val;
    e->ti++;
  } else if (t->kind == 'c') {
    v = parse_char(e, t);
    e->ti++;
  } else if (t->kind == 'i' && word_is(t->s, (size_t)t->len, "defined")) {
    int paren = is_op(&e->toks[++e->ti], "(");
    e->ti += paren;
    tok *n = &e->toks[e->ti];
    if (n->kind != 'i')
      fail_tok(e, n, "'defined' expects a macro name, not %s");
    v = is_defined(e, n->s, (size_t)n->len);
    e->ti++;
    if (paren) {
      if (!is_op(&e->toks[e->ti], ")"))
        fail_tok(e, &e->toks[e->ti], "expected ')' before %s");
      e->ti++;
    }
  } else if (t->kind == 'i') {
    v = 0; /* an unknown identifier */
    e->ti++;
  } else if (t->kind == 's') {
    fail_tok(e, t, "string %s");
  } else {
    fail_tok(e, t, "expected a value before %s");
  }
  e->edepth--;
  return v;
}

static int prec(tok *t) {
  static const struct { const char *op; int prec; } ops[] = {
      {"||", 1}, {"&&", 2}, {"|", 3},  {"^", 4},  {"&", 5},  {"==", 6},
      {"!=", 6}, {"<", 7},  {"<=", 7}, {">", 7},  {">=", 7}, {"<<", 8},
      {">>", 8}, {"+", 9},  {"-", 9},  {"*", 10}, {"/", 10}, {"%", 10}};
  for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
    if (is_op(t, ops[i].op))
      return ops[i].prec;
  return 0;
}

static int64_t binop(epp *e, tok *t, int64_t a, int64_t b, int ev) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (t->s[0]) {
  case '|': return (int64_t)(ua | ub);
  case '^': return (int64_t)(ua ^ ub);
  case '&': return (int64_t)(ua & ub);
  case '=': return a == b;
  case '!': return a != b;
  case '+': return (int64_t)(ua + ub);
  case '-': return (int64_t)(ua - ub);
  case '*': return (int64_t)(ua * ub);
  case '/':
  case '%':
    if (b == 0) {
      if (ev)
        fail_tok(e, t, "division by zero at %s");
      return 0;
    }
    if (a == INT64_MIN && b == -1)
      return t->s[0] == '/' ? INT64_MIN : 0;
    return t->s[0] == '/' ? a / b : a % b;
  }
  if (t->len == 2 && (t->s[1] == '<' || t->s[1] == '>')) {
    if (b < 0 || b > 63) {
      if (ev)
        fail_tok(e, t, "shift count out of range at %s");
      return 0;
    }
    if (t->s[0] == '<')
      return (int64_t)(ua << b);
    return a < 0 ? ~(~a >> b) : a >> b;
  }
  if (t->s[0] == '<')
    return t->len == 1 ? a < b : a <= b;
  return t->len == 1 ? a > b : a >= b;
}

static int64_t expr_bin(epp *e, int minprec, int ev) {
  int64_t a = expr_unary(e, ev);
  for (;;) {
    tok *t = &e->toks[e->ti];
    int p = prec(t);
    if (!p || p < minprec)
      return a;
    e->ti++;
    if (is_op(t, "&&")) {
      int64_t b = expr_bin(e, p + 1, ev && a);
      a = a && b;
    } else if (is_op(t, "||")) {
      int64_t b = expr_bin(e, p + 1, ev && !a);
      a = a || b;
    } else {
      a = binop(e, t, a, expr_bin(e, p + 1, ev), ev);
    }
  }
}

static int64_t expr_cond(epp *e, int ev) {
  enter(e);
  int64_t c = expr_bin(e, 1, ev);
  if (is_op(&e->toks[e->ti], "?")) {
    e->ti++;
    int64_t a = expr_cond(e, ev && c);
    if (!is_op(&e->toks[e->ti], ":"))
      fail_tok(e, &e->toks[e->ti], "expected ':' before %s");
    e->ti++;
    int64_t b = expr_cond(e, ev && !c);
    c = c ? a : b;
  }
  e->edepth--;
  return c;
}

static int eval_if(epp *e, dctx *d) {
  lex_line(e, d, 0);
  if (e->toks[0].kind == 'e')
    fail(e, d->s->name, d->eline, d->ecol, "#%s with no expression", d->name);
  e->edepth = 0;
  int64_t v = expr_cond(e, 1);
  tok *t = &e->toks[e->ti];
  if (t->kind != 'e')
    fail_tok(e, t, "missing operator before %s");
  return v != 0;
}

/* ---- conditionals ---- */

static int is_active(epp *e) {
  return e->ncond == 0 || e->conds[e->ncond - 1].state == C_TAKING;
}

static void push_cond(epp *e, dctx *d, int state) {
  if (e->ncond == e->capcond) {
    e->capcond = e->capcond ? e->capcond * 2 : 16;
    e->conds = xrealloc(e, e->conds, (size_t)e->capcond * sizeof *e->conds);
  }
  e->conds[e->ncond++] = (cond){d->s->name, d->name, d->line, d->col, state, 0};
}

static cond *top_cond(epp *e, dctx *d) {
  if (e->ncond <= d->s->cond_base)
    fail(e, d->s->name, d->line, d->col, "#%s without #if", d->name);
  return &e->conds[e->ncond - 1];
}

static void do_ifdef(epp *e, dctx *d, int want) {
  size_t i = skipb(e, 0), n = macro_name(e, d, i);
  no_more(e, d, i + n);
  push_cond(e, d, is_defined(e, e->ln.p + i, n) == want ? C_TAKING : C_SEEKING);
}

static void do_elif(epp *e, dctx *d) {
  cond *c = top_cond(e, d);
  if (c->seen_else)
    fail(e, d->s->name, d->line, d->col, "#elif after #else");
  if (c->state == C_TAKING)
    c->state = C_DONE;
  else if (c->state == C_SEEKING && eval_if(e, d))
    c->state = C_TAKING;
}

/* Inside a skipped group only the nesting matters, as in C. */
static void do_else(epp *e, dctx *d) {
  cond *c = top_cond(e, d);
  if (c->state != C_DEAD)
    no_more(e, d, 0);
  if (c->seen_else)
    fail(e, d->s->name, d->line, d->col, "#else after #else");
  c->seen_else = 1;
  if (c->state == C_TAKING)
    c->state = C_DONE;
  else if (c->state == C_SEEKING)
    c->state = C_TAKING;
}

static void do_endif(epp *e, dctx *d) {
  if (top_cond(e, d)->state != C_DEAD)
    no_more(e, d, 0);
  e->ncond--;
}

/* ---- #include and #line ---- */

/* Read a regular file; NULL if there is none at path. */
static char *read_file(epp *e, dctx *d, const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
    return NULL;
  const char *shown = hidden(e, d->s) ? "(named in an included file)" : path;
  if ((long long)st.st_size > EPP_MAX_FILE)
    fail(e, d->s->name, d->line, d->col, "include file '%s' is too large", shown);
  FILE *f = fopen(path, "rb");
  if (!f)
    fail(e, d->s->name, d->line, d->col, "cannot read include file '%s': %s",
         shown, strerror(errno));
  size_t cap = (size_t)st.st_size + 1, n = 0;
  char *text = malloc(cap + 1);
  while (text) {
    n += fread(text + n, 1, cap - n, f);
    if (n < cap || (long long)cap > EPP_MAX_FILE)
      break;
    char *t = realloc(text, cap * 2 + 1);
    if (!t) {
      free(text);
      text = NULL;
    } else {
      text = t;
      cap *= 2;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (!text || bad) {
    free(text);
    fail(e, d->s->name, d->line, d->col, "cannot read include file '%s'", shown);
  }
  text[n] = 0;
  return text;
}

/* Try dir/name (just name if dlen is 0); on success push it as a source. */
static int try_include(epp *e, dctx *d, const char *dir, size_t dlen,
                       const char *nm, size_t nn) {
  e->tmp.len = 0;
  if (dlen) {
    put(e, &e->tmp, dir, dlen);
    putc1(e, &e->tmp, '/');
  }
  put(e, &e->tmp, nm, nn);
  char *text = read_file(e, d, e->tmp.p);
  if (!text)
    return 0;
  char *path = strdup(e->tmp.p);
  if (!path) {
    free(text);
    fail_here(e, "out of memory");
  }
  src *s = &e->srcs[e->nsrc++];
  memset(s, 0, sizeof *s);
  s->text = text;
  s->path = path;
  s->p = text;
  s->line = 1;
  s->cond_base = e->ncond;
  s->name = intern(e, path, strlen(path));
  return 1;
}

static void do_include(epp *e, dctx *d) {
  size_t i = skipb(e, 0);
  const char *t = e->ln.p + i;
  size_t n = e->ln.len - i;
  if (i < e->ln.len && t[0] != '"' && t[0] != '<') {
    /* #include MACRO: expand, then read the result as below */
    size_t start = e->out.len;
    scan_code(e, d->s, NULL, t, t + n, 0, 1, 0);
    e->tmp.len = 0;
    put(e, &e->tmp, e->out.p + start, e->out.len - start);
    e->out.len = start;
    e->out.p[start] = 0;
    t = e->tmp.p;
    n = e->tmp.len;
    while (n && is_blank(*t))
      t++, n--;
    while (n && is_blank(t[n - 1]))
      n--;
    if (!(n >= 2 && ((t[0] == '"' && t[n - 1] == '"') ||
                     (t[0] == '<' && t[n - 1] == '>'))))
      fail_at(e, d, i, "#include expects \"FILE\" or <FILE>");
  } else {
    if (i == e->ln.len)
      fail_at(e, d, i, "#include expects \"FILE\" or <FILE>");
    char close = t[0] == '"' ? '"' : '>';
    size_t j = 1;
    while (j < n && t[j] != close)
      j++;
    if (j == n)
      fail_at(e, d, i, "missing terminating %c in #include", close);
    no_more(e, d, i + j + 1);
    n = j + 1;
  }
  int line, col;
  pos_at(e, d, i, &line, &col);
  e->inc.len = 0;
  put(e, &e->inc, t + 1, n - 2);
  const char *nm = e->inc.p;
  size_t nn = strlen(nm);
  if (!nn)
    fail(e, d->s->name, line, col, "empty file name in #include");
  if (e->nsrc > EPP_MAX_INCLUDE_DEPTH)
    fail(e, d->s->name, d->line, d->col,
         "#include nested too deeply (limit %d)", EPP_MAX_INCLUDE_DEPTH);
  if (++e->nincludes > EPP_MAX_INCLUDES)
    fail(e, d->s->name, d->line, d->col, "too many #include (limit %d)",
         EPP_MAX_INCLUDES);
  /* beside the including file, then the -I directories */
  const char *path = d->s->path, *slash = strrchr(path, '/');
  int found;
  if (nm[0] == '/' || !slash)
    found = try_include(e, d, NULL, 0, nm, nn);
  else
    found = try_include(e, d, path,
                        slash == path ? 1 : (size_t)(slash - path), nm, nn);
  const em_opts *o = e->opts;
  for (int k = 0; !found && nm[0] != '/' && o && k < o->nincdirs; k++)
    if (o->incdirs[k] && o->incdirs[k][0])
      found = try_include(e, d, o->incdirs[k], strlen(o->incdirs[k]), nm, nn);
  if (!found && hidden(e, d->s))
    fail(e, d->s->name, line, col, "cannot find include file");
  if (!found)
    fail(e, d->s->name, line, col, "cannot find include file '%s'", nm);
}

static void do_line(epp *e, dctx *d) {
  lex_line(e, d, 0);
  tok *t = &e->toks[0];
  long long n = 0;
  if (t->kind == 'N') {
    n = t->val;
  } else {
    int ok = t->kind == 'n';
    for (int k = 0; ok && k < t->len; k++) {
      ok = is_digit(t->s[k]);
      n = n * 10 + (t->s[k] - '0');
      if (n > INT_MAX)
        fail(e, d->s->name, t->line, t->col, "#line number out of range");
    }
    if (!ok)
      fail(e, d->s->name, t->line, t->col,
           "#line expects a line number (digits)");
  }
  t++;
  const char *name = NULL;
  if (t->kind == 's' && t->s[0] == '"') {
    e->inc.len = 0;
    for (int k = 1; k < t->len - 1; k++) {
      if (t->s[k] == '\\' && k + 1 < t->len - 1)
        k++;
      putc1(e, &e->inc, t->s[k]);
    }
    if (t->len < 2 || t->s[t->len - 1] != '"')
      fail(e, d->s->name, t->line, t->col, "missing terminating \" in #line");
    name = intern(e, e->inc.p ? e->inc.p : "", e->inc.len);
    t++;
  }
  if (t->kind != 'e')
    fail(e, d->s->name, t->line, t->col, "extra tokens after #line");
  d->s->line = (int)n;
  if (name)
    d->s->name = name;
}

/* ---- lines ---- */

static const char *const directives[] = {
    "define", "undef", "include", "if",    "ifdef", "ifndef",
    "elif",   "else",  "endif",   "error", "warning", "line"};
enum { D_DEFINE, D_UNDEF, D_INCLUDE, D_IF, D_IFDEF, D_IFNDEF, D_ELIF, D_ELSE,
       D_ENDIF, D_ERROR, D_WARNING, D_LINE, D_COUNT };

static void message(epp *e, dctx *d, int warn) {
  size_t a = skipb(e, 0), b = e->ln.len;
  while (b > a && is_blank(e->ln.p[b - 1]))
    b--;
  const char *msg = b > a ? e->ln.p + a : d->name;
  int n = b > a ? (int)(b - a) : (int)strlen(d->name);
  if (hidden(e, d->s)) {
    msg = warn ? "#warning in an included file" : "#error in an included file";
    n = (int)strlen(msg);
  }
  if (!warn)
    fail(e, d->s->name, d->line, d->col, "%.*s", n, msg);
  FILE *f = e->opts && e->opts->warn ? e->opts->warn : stderr;
  fprintf(f, "%s:%d:%d: warning: %.*s\n", d->s->name, d->line, d->col, n, msg);
}

/* A line whose first non-blank character, at q, is '#'. */
static void hash_line(epp *e, src *s, const char *ls, const char *q,
                      int active) {
  const char *w = q + 1, *we;
  while (is_blank(*w))
    w++;
  for (we = w; is_id0(*w) && is_id(*we);)
    we++;
  int k = 0;
  while (k < D_COUNT && !word_is(w, (size_t)(we - w), directives[k]))
    k++;
  if (k == D_COUNT) {
    if (active && w == q + 1 && we > w && hidden(e, s))
      fail(e, s->name, s->line, (int)(q - ls) + 1, "unknown directive");
    if (active && w == q + 1 && we > w)
      fail(e, s->name, s->line, (int)(q - ls) + 1, "unknown directive #%.*s",
           (int)(we - w > 40 ? 40 : we - w), w);
    /* `# prose`: a comment line */
    if (active)
      out_blank(e, s->name, s->line);
    const char *end = strchrnul(q, '\n');
    s->p = *end ? end + 1 : end;
    s->line++;
    return;
  }
  dctx d = {s, directives[k], s->line, (int)(q - ls) + 1, s->line,
            (int)(we - ls) + 1};
  int nl = read_rest(e, s, we, ls, k == D_ERROR || k == D_WARNING);
  if (active && k != D_LINE) /* after #line a marker follows anyway */
    for (int i = 0; i < nl; i++)
      out_blank(e, s->name, s->line + i);
  s->line += nl;
  switch (k) {
  case D_IF:
  case D_IFDEF:
  case D_IFNDEF:
    if (!active)
      push_cond(e, &d, C_DEAD);
    else if (k == D_IF)
      push_cond(e, &d, eval_if(e, &d) ? C_TAKING : C_SEEKING);
    else
      do_ifdef(e, &d, k == D_IFDEF);
    return;
  case D_ELIF: do_elif(e, &d); return;
  case D_ELSE: do_else(e, &d); return;
  case D_ENDIF: do_endif(e, &d); return;
  }
  if (!active)
    return;
  switch (k) {
  case D_DEFINE: do_define(e, &d); break;
  case D_UNDEF: do_undef(e, &d); break;
  case D_INCLUDE: do_include(e, &d); break;
  case D_ERROR: message(e, &d, 0); break;
  case D_WARNING: message(e, &d, 1); break;
  case D_LINE: do_line(e, &d); break;
  }
}

static void one_line(epp *e) {
  src *s = &e->srcs[e->nsrc - 1];
  const char *ls = s->p, *end = strchrnul(ls, '\n');
  int active = is_active(e);
  if (!s->in_comment) {
    const char *q = ls;
    while (is_blank(*q))
      q++;
    if (*q == '#') {
      hash_line(e, s, ls, q, active);
      return;
    }
  }
  if (active) {
    out_begin(e, s->name, s->line);
    size_t start = e->out.len;
    scan_code(e, s, ls, ls, end, 1, 1, 0);
    out_end(e, start);
  } else {
    scan_code(e, s, ls, ls, end, 1, 0, 0);
  }
  s->p = *end ? end + 1 : end;
  s->line++;
}

static void end_source(epp *e) {
  src *s = &e->srcs[e->nsrc - 1];
  if (s->in_comment)
    fail(e, s->name, s->cm_line, s->cm_col, "unterminated comment");
  if (e->ncond > s->cond_base) {
    cond *c = &e->conds[e->ncond - 1];
    fail(e, c->file, c->line, c->col, "unterminated #%s", c->dir);
  }
  free(s->text);
  free(s->path);
  e->nsrc--;
}

/* -D NAME or -D NAME=VALUE */
static void command_line_define(epp *e, const char *def) {
  const char *eq = strchr(def, '=');
  size_t n = eq ? (size_t)(eq - def) : strlen(def);
  int ok = n > 0 && is_id0(def[0]) && !is_special(def, n);
  for (size_t i = 0; ok && i < n; i++)
    ok = is_id(def[i]);
  if (!ok)
    fail(e, "<command line>", 1, 1, "invalid macro name in -D '%.*s'",
         (int)(n > 64 ? 64 : n), def);
  const char *v = eq ? eq + 1 : "1";
  size_t a = 0, b = strlen(v);
  while (a < b && is_blank(v[a]))
    a++;
  while (b > a && is_blank(v[b - 1]))
    b--;
  define(e, def, n, v + a, b - a);
}

static void run(epp *e, const char *text, const char *name) {
  static const char *const pre[][2] = {
      {"__version__", "2026"}, {"__vprobe__", "1"}, {"__linux__", "1"}};
  for (size_t i = 0; i < sizeof pre / sizeof *pre; i++)
    define(e, pre[i][0], strlen(pre[i][0]), pre[i][1], strlen(pre[i][1]));
  for (int i = 0; e->opts && i < e->opts->ndefines; i++)
    if (e->opts->defines[i])
      command_line_define(e, e->opts->defines[i]);
  src *s = &e->srcs[0];
  e->nsrc = 1;
  s->path = xstrndup(e, name, strlen(name));
  s->name = intern(e, name, strlen(name));
  s->p = text ? text : "";
  s->line = 1;
  e->oname = s->name;
  e->oline = 1;
  while (e->nsrc > 0) {
    if (*e->srcs[e->nsrc - 1].p)
      one_line(e);
    else
      end_source(e);
  }
  reserve(e, &e->out, 1);
  e->out.p[e->out.len] = 0;
}

static void cleanup(epp *e) {
  for (int i = 0; i < e->nsrc; i++) {
    free(e->srcs[i].text);
    free(e->srcs[i].path);
  }
  for (size_t i = 0; i < e->ntab; i++)
    while (e->tab[i]) {
      macro *m = e->tab[i];
      e->tab[i] = m->next;
      free(m->body);
      free(m);
    }
  free(e->tab);
  for (size_t i = 0; i < e->nnames; i++)
    while (e->names[i]) {
      iname *n = e->names[i];
      e->names[i] = n->next;
      free(n);
    }
  free(e->names);
  free(e->out.p);
  free(e->tmp.p);
  free(e->inc.p);
  free(e->ln.p);
  free(e->lline);
  free(e->lcol);
  free(e->toks);
  free(e->conds);
  free(e);
}

char *epp_run(const char *text, const char *name, const em_opts *opts,
              char *err, size_t errcap) {
  epp *e = calloc(1, sizeof *e);
  if (!e) {
    if (err && errcap)
      snprintf(err, errcap, "%s:1:1: error: out of memory", name ? name : "");
    return NULL;
  }
  e->opts = opts;
  e->err = err;
  e->errcap = errcap;
  if (err && errcap)
    err[0] = 0;
  if (setjmp(e->jb)) {
    cleanup(e);
    return NULL;
  }
  run(e, text, name && *name ? name : "<input>");
  char *out = e->out.p;
  e->out.p = NULL;
  cleanup(e);
  return out;
}
