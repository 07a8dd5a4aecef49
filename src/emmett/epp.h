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
 *
 * More precisely:
 *  - The first output line is line 1 of `name`; each later line is the line
 *    after the previous one unless a marker (starting in column 1) says
 *    otherwise.  FILE is written with `\"` and `\\` escaped; `#line N "FILE" 1`
 *    says the line is text of an #include, which no message quotes (the
 *    user named the file but may not be allowed to read it): EPP's errors
 *    there name file, line, column and what was wrong, never the text.  No other output
 *    line starts with '#' in column 1.  Markers appear after an #include
 *    (entering and leaving it), a skipped #if block and a #line.
 *  - Directive lines and comment lines (`#`, white space, prose: the 2008
 *    style) become empty lines.  `#word` for an unknown word is an error.
 *  - Comments in code become spaces (so the lexer never sees one); a `//`
 *    comment is dropped with the rest of its line.  Every output line ends
 *    with '\n'.
 *  - Includes are looked up beside the including file, then in each -I
 *    directory in order, for both "FILE" and <FILE>; nesting is limited to
 *    32.  Runaway expansion stops with an error (output over 16 MiB, macros
 *    nested 256 deep).
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
