/*
 * lex.h - the Emmett lexer.  Reads preprocessed text (lines `#line N "FILE"`
 * are position markers; `#line N "FILE" 1` marks text from an #include,
 * whose FILE the lexer adds to ast_ctx.hidden and whose characters its
 * messages never quote) one token at a time.  A malformed token comes back
 * as LEX_ERR with its message, so the parser reports it only when it gets
 * there (the first problem in source order wins).  Probe names are raw text,
 * not tokens: lex_rawname rescans from a token's start.
 */
#ifndef EM_LEX_H
#define EM_LEX_H

#include "emmett/ast.h"

enum lex_kind { LEX_ID, LEX_NUM, LEX_STR, LEX_PUNCT, LEX_EOF, LEX_ERR };

typedef struct lex_tok {
  int kind;
  const char *text; /* LEX_ID/LEX_PUNCT spelling; LEX_ERR message */
  const char *str;  /* LEX_STR decoded bytes (may hold NULs) */
  size_t slen;
  uint64_t num;     /* LEX_NUM value (also character literals) */
  int hex;          /* LEX_NUM written in hexadecimal */
  ast_pos pos;      /* first character */
  ast_pos end;      /* just past the last character */
  size_t off;       /* offset of the first character in the text */
} lex_tok;

typedef struct lex_state {
  ast_ctx *c;
  const char *src;
  size_t len, off;
  int line, col;
  const char *file;
  int hidden;       /* reading text from an #include */
} lex_state;

void lex_init(lex_state *lx, ast_ctx *c, const char *src, size_t len,
              const char *file);
void lex_next(lex_state *lx, lex_tok *t);
/* Rewind to t and read a probe name: the raw text up to white space, '{',
 * '(' or ';'.  The lexer continues after it. */
const char *lex_rawname(lex_state *lx, const lex_tok *t);

#endif
