/*
 * verify.h - check a VP tree against docs/vp.md (names, types, arity,
 * limits, domains, destructive built-ins, the version directive) and lower
 * it to program image bytes (image.h).
 */
#ifndef VP_VERIFY_H
#define VP_VERIFY_H

#include "vp/read.h"
#include "vp/vp.h"

/* Lower the top-level forms of tree.  Returns malloc'd image bytes (*len
 * set), or NULL with diag->error set; a warning may be set either way. */
unsigned char *vpv_lower(const vpr_node *tree, const char *file,
                         const vp_limits *lim, vp_diag *diag, size_t *len);

#endif
