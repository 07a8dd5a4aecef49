/*
 * compile.c - vp_compile: VP text to a checked image (read, verify and
 * lower, then load the bytes through the same checks as any image).  Kept
 * apart from image.c so the agent, which only loads images vprobe built,
 * links neither the reader nor the verifier.
 */
#include <stdio.h>

#include "vp/image.h"
#include "vp/read.h"
#include "vp/verify.h"

vp_image *vp_compile(const char *text, size_t len, const char *file,
                     const vp_limits *lim, vp_diag *diag) {
  vp_limits dl;
  if (!lim) {
    vp_limits_default(&dl);
    lim = &dl;
  }
  diag->error[0] = diag->warning[0] = 0;
  vpr_node *tree = vpr_read(text, len, file, diag->error, sizeof diag->error);
  if (!tree)
    return NULL;
  size_t n = 0;
  unsigned char *bytes = vpv_lower(tree, file, lim, diag, &n);
  vpr_free(tree);
  if (!bytes)
    return NULL;
  char why[200];
  vp_image *img = vpi_load(bytes, n, why, sizeof why);
  if (!img)
    snprintf(diag->error, sizeof diag->error,
             "%s:1:1: error: internal: bad image: %s", file ? file : "<input>",
             why);
  return img;
}
