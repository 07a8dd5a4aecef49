/*
 * emmett.h - the Emmett compiler: Emmett source in, VP text out.  This header
 * is the whole interface of src/emmett/ to the rest of vprobe.
 *
 *   source --epp--> preprocessed text --lex/parse--> AST --check--> --gen--> VP
 */
#ifndef EMMETT_H
#define EMMETT_H

#include <stdio.h>

typedef struct em_opts {
  const char *const *defines; /* "NAME" or "NAME=VALUE" (-D) */
  int ndefines;
  const char *const *incdirs; /* -I */
  int nincdirs;
  const char *const *preloads; /* Emmett files compiled ahead of the script
                                  (for example the Linux guest preload) */
  int npreloads;
  FILE *warn;                  /* where #warning and warnings go; NULL: stderr */
} em_opts;

/* Compile Emmett to VP text.  On success returns malloc'd, NUL-terminated VP
 * text.  On error returns NULL and writes one line, "FILE:LINE:COL: error:
 * message", into err (the first problem found). */
char *em_compile_file(const char *path, const em_opts *opts, char *err,
                      size_t errcap);
char *em_compile_text(const char *text, const char *name, const em_opts *opts,
                      char *err, size_t errcap);

#endif
