/* lex.c - tokens of preprocessed Emmett text. */
#include "emmett/lex.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lex_init(lex_state *lx, ast_ctx *c, const char *src, size_t len,
              const char *file) {
  memset(lx, 0, sizeof *lx);
  lx->c = c;
  lx->src = src;
  lx->len = len;
  lx->line = 1;
  lx->col = 1;
  lx->file = file;
}

static int peekc(const lex_state *lx, size_t k) {
  return lx->off + k < lx->len ? (unsigned char)lx->src[lx->off + k] : -1;
}

static void adv(lex_state *lx) {
  if (lx->off >= lx->len) return;
  if (lx->src[lx->off] == '\n') {
    lx->line++;
    lx->col = 1;
  } else {
    lx->col++;
  }
  lx->off++;
}

static ast_pos here(const lex_state *lx) {
  ast_pos p = {lx->file, lx->line, lx->col};
  return p;
}

/* `#line N "FILE"` at the start of a line: the next line is line N of FILE.
 * Returns 0 if this is not a marker. */
static int marker(lex_state *lx) {
  const char *s = lx->src + lx->off, *e = lx->src + lx->len;
  if (e - s < 6 || memcmp(s, "#line", 5) || (s[5] != ' ' && s[5] != '\t'))
    return 0;
  const char *p = s + 5;
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  long n = 0;
  if (p >= e || !isdigit((unsigned char)*p)) return 0;
  while (p < e && isdigit((unsigned char)*p) && n < 100000000) n = n * 10 + (*p++ - '0');
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  const char *file = lx->file;
  if (p < e && *p == '"') {
    const char *q = ++p;
    while (q < e && *q != '"' && *q != '\n') q++;
    if (q >= e || *q != '"') return 0;
    file = ast_strndup(lx->c, p, (size_t)(q - p));
    p = q + 1;
  }
  while (p < e && (*p == ' ' || *p == '\t')) p++;
  lx->hidden = p < e && *p == '1';
  if (lx->hidden) {
    if (!lx->c->hidden) lx->c->hidden = ast_map_new(lx->c);
    ast_map_put(lx->c, lx->c->hidden, file, (void *)file);
  }
  while (p < e && *p != '\n') p++;
  if (p < e) p++;
  lx->off = (size_t)(p - lx->src);
  lx->line = (int)n;
  lx->col = 1;
  lx->file = file;
  return 1;
}

/* Skips white space, comments and markers; 0, or -1 on an unterminated
 * comment (t is then the error). */
static int skip(lex_state *lx, lex_tok *t) {
  for (;;) {
    int ch = peekc(lx, 0);
    if (ch == '#' && lx->col == 1 && marker(lx)) continue;
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' ||
        ch == '\v') {
      adv(lx);
    } else if (ch == '/' && peekc(lx, 1) == '/') {
      while (peekc(lx, 0) != -1 && peekc(lx, 0) != '\n') adv(lx);
    } else if (ch == '/' && peekc(lx, 1) == '*') {
      ast_pos p = here(lx);
      adv(lx);
      adv(lx);
      while (!(peekc(lx, 0) == '*' && peekc(lx, 1) == '/')) {
        if (peekc(lx, 0) == -1) {
          t->kind = LEX_ERR;
          t->pos = p;
          t->text = "unterminated comment";
          return -1;
        }
        adv(lx);
      }
      adv(lx);
      adv(lx);
    } else {
      return 0;
    }
  }
}

static const char *puncts[] = {
    "<<=", ">>=", "...", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=",
    "&&",  "||",  "+=",  "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<-", NULL};

static void lexnum(lex_state *lx, lex_tok *t) {
  size_t s = lx->off;
  while (isalnum(peekc(lx, 0)) || peekc(lx, 0) == '_') adv(lx);
  const char *p = lx->src + s, *e = lx->src + lx->off;
  int base = 10;
  if (e - p > 1 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
    base = 16;
    p += 2;
  } else if (p[0] == '0') {
    base = 8;
  }
  uint64_t v = 0;
  int nd = 0;
  for (; p < e; p++, nd++) {
    int ch = (unsigned char)*p, d;
    if (isdigit(ch)) d = ch - '0';
    else if (isxdigit(ch) && base == 16) d = tolower(ch) - 'a' + 10;
    else break;
    if (d >= base) break;
    if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
      t->kind = LEX_ERR;
      t->text = "integer literal is too large";
      return;
    }
    v = v * (uint64_t)base + (uint64_t)d;
  }
  while (p < e && strchr("uUlL", *p)) p++;
  if (p < e || (base == 16 && nd == 0)) {
    t->kind = LEX_ERR;
    t->text = lx->hidden ? "invalid integer literal"
                         : ast_fmt(lx->c, "invalid integer literal '%.*s'",
                                   (int)(lx->off - s > 64 ? 64 : lx->off - s), lx->src + s);
    return;
  }
  t->kind = LEX_NUM;
  t->num = v;
  t->hex = base == 16;
}

/* One character of a string or character literal; -1 and t set on error. */
static int lexchar(lex_state *lx, lex_tok *t, int quote) {
  int ch = peekc(lx, 0);
  if (ch == -1 || ch == '\n') {
    t->kind = LEX_ERR;
    t->text = ast_fmt(lx->c, "missing terminating %c character", quote);
    return -1;
  }
  adv(lx);
  if (ch != '\\') return ch;
  ch = peekc(lx, 0);
  ast_pos p = here(lx);
  adv(lx);
  switch (ch) {
  case 'n': return '\n';
  case 't': return '\t';
  case 'r': return '\r';
  case 'a': return '\a';
  case 'b': return '\b';
  case 'f': return '\f';
  case 'v': return '\v';
  case '\\': case '"': case '\'': case '?': return ch;
  case 'x': {
    int v = 0, n = 0;
    while (n < 2 && isxdigit(peekc(lx, 0))) {
      int d = peekc(lx, 0);
      v = v * 16 + (isdigit(d) ? d - '0' : tolower(d) - 'a' + 10);
      adv(lx);
      n++;
    }
    if (n) return v;
    break;
  }
  default:
    if (ch >= '0' && ch <= '7') {
      int v = ch - '0', n = 1;
      while (n < 3 && peekc(lx, 0) >= '0' && peekc(lx, 0) <= '7') {
        v = v * 8 + peekc(lx, 0) - '0';
        adv(lx);
        n++;
      }
      return v & 0xff;
    }
  }
  t->kind = LEX_ERR;
  t->pos = p;
  t->text = ch == -1 || ch == '\n' ? "missing terminating character"
            : lx->hidden            ? "unknown escape sequence"
                                    : ast_fmt(lx->c, "unknown escape sequence '\\%c'", ch);
  return -1;
}

static void lexstr(lex_state *lx, lex_tok *t) {
  adv(lx);
  ast_buf b = {0};
  for (;;) {
    if (peekc(lx, 0) == '"') {
      adv(lx);
      break;
    }
    int ch = lexchar(lx, t, '"');
    if (ch < 0) {
      free(b.p);
      return;
    }
    char c8 = (char)ch;
    ast_buf_put(&b, &c8, 1);
  }
  t->kind = LEX_STR;
  t->slen = b.len;
  t->str = ast_strndup(lx->c, b.p ? b.p : "", b.len);
  free(b.p);
}

static void lexcharlit(lex_state *lx, lex_tok *t) {
  adv(lx);
  if (peekc(lx, 0) == '\'') {
    t->kind = LEX_ERR;
    t->text = "empty character constant";
    return;
  }
  int ch = lexchar(lx, t, '\'');
  if (ch < 0) return;
  if (peekc(lx, 0) != '\'') {
    t->kind = LEX_ERR;
    t->text = "missing terminating ' character";
    return;
  }
  adv(lx);
  t->kind = LEX_NUM;
  t->num = (uint64_t)(int64_t)(signed char)ch;
}

void lex_next(lex_state *lx, lex_tok *t) {
  memset(t, 0, sizeof *t);
  if (skip(lx, t) < 0) return;
  t->pos = here(lx);
  t->off = lx->off;
  int ch = peekc(lx, 0);
  if (ch == -1) {
    t->kind = LEX_EOF;
    t->text = "end of file";
  } else if (isalpha(ch) || ch == '_') {
    size_t s = lx->off;
    while (isalnum(peekc(lx, 0)) || peekc(lx, 0) == '_') adv(lx);
    t->kind = LEX_ID;
    t->text = ast_strndup(lx->c, lx->src + s, lx->off - s);
  } else if (isdigit(ch)) {
    lexnum(lx, t);
  } else if (ch == '"') {
    lexstr(lx, t);
  } else if (ch == '\'') {
    lexcharlit(lx, t);
  } else if (strchr("+-*/%<>=!&|^~?:;,.()[]{}@$", ch)) {
    int n = 1;
    for (int i = 0; puncts[i]; i++) {
      size_t l = strlen(puncts[i]);
      if (lx->len - lx->off >= l && !memcmp(lx->src + lx->off, puncts[i], l)) {
        n = (int)l;
        break;
      }
    }
    t->kind = LEX_PUNCT;
    t->text = ast_strndup(lx->c, lx->src + lx->off, (size_t)n);
    while (n--) adv(lx);
  } else {
    t->kind = LEX_ERR;
    t->text = lx->hidden  ? "stray character in program"
              : isprint(ch) ? ast_fmt(lx->c, "stray '%c' in program", ch)
                            : ast_fmt(lx->c, "stray '\\x%02x' in program", ch);
    adv(lx);
  }
  t->end = here(lx);
}

const char *lex_rawname(lex_state *lx, const lex_tok *t) {
  lx->off = t->off;
  lx->line = t->pos.line;
  lx->col = t->pos.col;
  lx->file = t->pos.file;
  size_t s = lx->off;
  for (;;) {
    int ch = peekc(lx, 0);
    if (ch == -1 || isspace(ch) || ch == '{' || ch == '(' || ch == ';') break;
    if (ch == '/' && (peekc(lx, 1) == '/' || peekc(lx, 1) == '*')) break;
    adv(lx);
  }
  return ast_strndup(lx->c, lx->src + s, lx->off - s);
}
