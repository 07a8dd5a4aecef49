/* rtt.h - helpers shared by the runtime's tests: a space on the heap and a
 * drain into a text buffer. */
#ifndef RTT_H
#define RTT_H

#include "rt/rt.h"

#include <stdlib.h>
#include <string.h>

typedef struct rtt_text {
  char out[1 << 16], err[4096];
  size_t nout, nerr, nrec;
} rtt_text;

static inline void rtt_sink(void *ctx, int stream, const void *data, size_t n) {
  rtt_text *t = ctx;
  char *b = stream == RT_ERR ? t->err : t->out;
  size_t *len = stream == RT_ERR ? &t->nerr : &t->nout;
  size_t cap = stream == RT_ERR ? sizeof t->err : sizeof t->out;
  if (*len + n < cap) {
    memcpy(b + *len, data, n);
    *len += n;
    b[*len] = 0;
  }
  t->nrec++;
}

static inline rt_space *rtt_space(const rt_layout *l, void **mem) {
  size_t n = rt_space_size(l);
  *mem = malloc(n);
  return *mem ? rt_space_init(*mem, n, l) : NULL;
}

#endif
