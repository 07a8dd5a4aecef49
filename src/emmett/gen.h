/*
 * gen.h - VP text from a checked Emmett program: global definitions first,
 * then functions and probes in source order, one indented form each.
 * Names stay as written unless VP reserves them or a local would shadow a
 * global; then they get a `_N` suffix.
 */
#ifndef EM_GEN_H
#define EM_GEN_H

#include "emmett/ast.h"
#include "emmett/check.h"

void gen_program(ast_ctx *c, chk_prog *p, ast_buf *out);

#endif
