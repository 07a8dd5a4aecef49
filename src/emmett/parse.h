/*
 * parse.h - the Emmett parser: preprocessed text to a list of top-level
 * nodes (N_GLOBAL, N_FUNC, N_PROBE).  Types are resolved here (typedefs,
 * struct layouts, enum constants), as C parsing needs them; every node also
 * records the memory model (`memmodel`) in force where it was written.
 */
#ifndef EM_PARSE_H
#define EM_PARSE_H

#include "emmett/ast.h"

ast_node *parse_program(ast_ctx *c, const char *src, size_t len,
                        const char *file);

#endif
