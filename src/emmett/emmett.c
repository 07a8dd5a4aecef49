/* emmett.c - the compiler driver: preprocess, parse, check, generate. */
#include "emmett/emmett.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emmett/ast.h"
#include "emmett/check.h"
#include "emmett/epp.h"
#include "emmett/gen.h"
#include "emmett/parse.h"

/* Runs the stages; the first error longjmps back here. */
static int run(ast_ctx *c, const char *text, const char *name) {
  if (setjmp(c->jb)) return -1;
  ast_node *items = parse_program(c, text, strlen(text), name);
  chk_prog *p = chk_program(c, items);
  gen_program(c, p, &c->out);
  return 0;
}

/* Preloads and the script are one program, in order. */
static char *join_preloads(const char *script, const char *name, const em_opts *opts) {
  ast_buf b = {0};
  for (int i = 0; i < opts->npreloads; i++)
    ast_buf_printf(&b, "#include \"%s\"\n", opts->preloads[i]);
  ast_buf_printf(&b, "#line 1 \"%s\"\n", name);
  ast_buf_puts(&b, script);
  return b.p;
}

char *em_compile_text(const char *text, const char *name, const em_opts *opts, char *err,
                      size_t errcap) {
  if (!name) name = "<input>";
  if (errcap) err[0] = 0;
  char *src = NULL;
  if (opts && opts->npreloads) {
    src = join_preloads(text, name, opts);
    text = src;
  }
  em_opts none = {0};
  char *pp = epp_run(text, name, opts ? opts : &none, err, errcap);
  free(src);
  if (!pp) {
    if (errcap && !err[0]) snprintf(err, errcap, "%s: error: preprocessing failed", name);
    return NULL;
  }
  ast_ctx c;
  ast_init(&c, err, errcap);
  char *out = NULL;
  if (run(&c, pp, name) == 0) {
    out = c.out.p ? c.out.p : calloc(1, 1);
    c.out.p = NULL;
  }
  ast_free(&c);
  free(pp);
  return out;
}

char *em_compile_file(const char *path, const em_opts *opts, char *err, size_t errcap) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errcap, "emmett: %s: %s", path, strerror(errno));
    return NULL;
  }
  ast_buf b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) ast_buf_put(&b, chunk, n);
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(b.p);
    snprintf(err, errcap, "emmett: %s: read error", path);
    return NULL;
  }
  if (b.p && memchr(b.p, 0, b.len)) {
    free(b.p);
    snprintf(err, errcap, "emmett: %s: file contains a NUL byte", path);
    return NULL;
  }
  char *out = em_compile_text(b.p ? b.p : "", path, opts, err, errcap);
  free(b.p);
  return out;
}
