/*
 * read.h - VP text to a tree of lists and atoms, every node carrying the
 * line and column where it starts.  Only syntax is checked here; meaning is
 * the verifier's (verify.h).
 */
#ifndef VP_READ_H
#define VP_READ_H

#include <stddef.h>
#include <stdint.h>

#define VPR_MAX_DEPTH 200

enum vpr_kind { VPR_LIST, VPR_INT, VPR_STR, VPR_NAME };

typedef struct vpr_node {
  int kind;
  int line, col;
  uint64_t ival;          /* VPR_INT */
  char *s;                /* VPR_STR, VPR_NAME: NUL-terminated */
  struct vpr_node **kids; /* VPR_LIST */
  int nkids;
} vpr_node;

/* Read all of text as a list of top-level forms (a VPR_LIST at 1:1).  NULL
 * on error with err = "FILE:LINE:COL: error: message". */
vpr_node *vpr_read(const char *text, size_t len, const char *file, char *err,
                   size_t errcap);
void vpr_free(vpr_node *n);

#endif
