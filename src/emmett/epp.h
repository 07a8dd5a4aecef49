/*
 * epp.h - the Emmett preprocessor (EPP): #define/#undef without arguments,
 * #include with -I, #if/#ifdef/#ifndef/#elif/#else/#endif over integer
 * expressions with `defined`, #error, #warning, #line, and the predefined
 * macros (__version__, __vprobe__, __linux__, __FILE__, __LINE__).
 *
 * Output is text whose lines carry their origin: wherever the next output
 * line does not follow from the previous one, EPP writes a marker line
 *     #line N "FILE"
 * and the lexer takes positions from it.  Lines without macros keep their
 * columns.
 */
#ifndef EPP_H
#define EPP_H

#include "emmett/emmett.h"

/* Preprocess text (named name for messages; includes are looked up first
 * beside it, then in opts->incdirs).  Returns malloc'd text, or NULL with one
 * "FILE:LINE:COL: error: ..." line in err. */
char *epp_run(const char *text, const char *name, const em_opts *opts,
              char *err, size_t errcap);

#endif
