/*
 * callgraph.c - name tables and the call graph of the VP verifier.
 *
 * Out of memory aborts, as in the rest of the verifier: these tables are
 * small next to the program text they index.
 */
#include <stdlib.h>
#include <string.h>

#include "vp/callgraph.h"

static void *xalloc(size_t n, size_t sz, int zero) {
  void *p = zero ? calloc(n + 1, sz) : malloc((n + 1) * sz);
  if (!p)
    abort();
  return p;
}

/* ---- name tables ---- */

static size_t hash_str(const char *s) {
  size_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* The position of name's entry, or of the empty slot where it would go. */
static size_t slot_of(const vpg_names *t, const char *name, vpg_key *key,
                      const void *ctx) {
  size_t m = t->cap - 1, h = hash_str(name) & m;
  while (t->slot[h] && strcmp(key(ctx, t->slot[h] - 1), name))
    h = (h + 1) & m;
  return h;
}

void vpg_names_add(vpg_names *t, const char *name, int i, vpg_key *key,
                   const void *ctx) {
  if (2 * (t->n + 1) > t->cap) { /* at most half full */
    vpg_names o = *t;
    t->cap = o.cap ? o.cap * 2 : 64;
    t->slot = calloc(t->cap, sizeof *t->slot);
    if (!t->slot)
      abort();
    for (size_t k = 0; k < o.cap; k++)
      if (o.slot[k])
        t->slot[slot_of(t, key(ctx, o.slot[k] - 1), key, ctx)] = o.slot[k];
    free(o.slot);
  }
  int *sl = &t->slot[slot_of(t, name, key, ctx)];
  if (!*sl)
    t->n++;
  *sl = i + 1;
}

int vpg_names_find(const vpg_names *t, const char *name, vpg_key *key,
                   const void *ctx) {
  return t->cap ? t->slot[slot_of(t, name, key, ctx)] - 1 : -1;
}

void vpg_names_free(vpg_names *t) {
  free(t->slot);
  *t = (vpg_names){0};
}

/* ---- string pool ---- */

static const char *pool_key(const void *p, int i) {
  return ((const vpg_pool *)p)->text + i;
}

uint32_t vpg_intern(vpg_pool *p, const char *s) {
  size_t n = strlen(s) + 1;
  int at = vpg_names_find(&p->tab, s, pool_key, p); /* share identical ones */
  if (at >= 0)
    return (uint32_t)at;
  while (p->len + n > p->cap) {
    p->cap = p->cap ? p->cap * 2 : 256;
    p->text = realloc(p->text, p->cap);
    if (!p->text)
      abort();
  }
  memcpy(p->text + p->len, s, n);
  p->len += n;
  vpg_names_add(&p->tab, s, (int)(p->len - n), pool_key, p);
  return (uint32_t)(p->len - n);
}

void vpg_pool_clear(vpg_pool *p) {
  p->len = 0;
  vpg_names_free(&p->tab);
}

void vpg_pool_free(vpg_pool *p) {
  free(p->text);
  vpg_names_free(&p->tab);
  *p = (vpg_pool){0};
}

/* ---- building the graph ---- */

int vpg_add(vpg_graph *g) {
  if (g->n == g->cap) {
    g->cap = g->cap ? g->cap * 2 : 16;
    g->v = realloc(g->v, (size_t)g->cap * sizeof *g->v);
    if (!g->v)
      abort();
  }
  g->v[g->n] = (vpg_node){0};
  return g->n++;
}

void vpg_walk(vpg_graph *g, int from) {
  vpg_node *f = &g->v[from];
  g->walk++;
  free(f->callees);
  f->callees = NULL;
  f->ncallees = 0;
}

void vpg_call(vpg_graph *g, int from, int to) {
  vpg_node *f = &g->v[from];
  if (g->v[to].walk == g->walk)
    return;
  g->v[to].walk = g->walk;
  int n = f->ncallees;
  if ((n & (n - 1)) == 0) { /* 0 or a power of two: full */
    f->callees = realloc(f->callees, (size_t)(n ? 2 * n : 4) * sizeof(int));
    if (!f->callees)
      abort();
  }
  f->callees[f->ncallees++] = to;
}

void vpg_free(vpg_graph *g) {
  for (int i = 0; i < g->n; i++)
    free(g->v[i].callees);
  free(g->v);
  *g = (vpg_graph){0};
}

/* ---- walks ---- */

int *vpg_post_order(const vpg_graph *g) {
  int n = g->n, *out = xalloc((size_t)n, sizeof(int), 0),
      *stk = xalloc((size_t)n, sizeof(int), 0),
      *next = xalloc((size_t)n, sizeof(int), 1);
  char *seen = xalloc((size_t)n, 1, 1);
  int no = 0;
  for (int r = 0; r < n; r++) {
    if (seen[r])
      continue;
    int sp = 0;
    stk[sp++] = r;
    seen[r] = 1;
    while (sp) {
      int v = stk[sp - 1];
      if (next[v] < g->v[v].ncallees) {
        int k = g->v[v].callees[next[v]++];
        if (!seen[k]) {
          seen[k] = 1;
          stk[sp++] = k;
        }
      } else {
        out[no++] = stk[--sp];
      }
    }
  }
  free(stk);
  free(next);
  free(seen);
  return out;
}

/* Tarjan's strongly connected components: a node is recursive if its
 * component has more than one node, or if it calls itself. */
char *vpg_recursive(const vpg_graph *g) {
  int n = g->n, *idx = xalloc((size_t)n, sizeof(int), 0),
      *low = xalloc((size_t)n, sizeof(int), 0),
      *next = xalloc((size_t)n, sizeof(int), 1),
      *stk = xalloc((size_t)n, sizeof(int), 0),
      *call = xalloc((size_t)n, sizeof(int), 0);
  char *on = xalloc((size_t)n, 1, 1), *rec = xalloc((size_t)n, 1, 1);
  for (int i = 0; i < n; i++)
    idx[i] = -1;
  int counter = 0, ns = 0;
  for (int r = 0; r < n; r++) {
    if (idx[r] >= 0)
      continue;
    int nc = 0;
    call[nc++] = r;
    idx[r] = low[r] = counter++;
    stk[ns++] = r;
    on[r] = 1;
    while (nc) {
      int v = call[nc - 1];
      const vpg_node *f = &g->v[v];
      if (next[v] < f->ncallees) {
        int w = f->callees[next[v]++];
        if (w == v)
          rec[v] = 1;
        if (idx[w] < 0) {
          idx[w] = low[w] = counter++;
          stk[ns++] = w;
          on[w] = 1;
          call[nc++] = w;
        } else if (on[w] && idx[w] < low[v]) {
          low[v] = idx[w];
        }
        continue;
      }
      nc--;
      if (nc && low[v] < low[call[nc - 1]])
        low[call[nc - 1]] = low[v];
      if (low[v] != idx[v])
        continue;
      int w, size = 0; /* v roots a component: pop it */
      do {
        w = stk[--ns];
        on[w] = 0;
        size++;
      } while (w != v);
      for (int k = ns + size - 1; size > 1 && k >= ns; k--)
        rec[stk[k]] = 1;
    }
  }
  free(idx);
  free(low);
  free(next);
  free(stk);
  free(call);
  free(on);
  return rec;
}

/* One pass over the reversed graph; each node enters the work list at
 * most once. */
void vpg_spread_to_callers(const vpg_graph *g, char *mark) {
  int n = g->n, ne = 0;
  for (int i = 0; i < n; i++)
    ne += g->v[i].ncallees;
  int *first = xalloc((size_t)n + 1, sizeof(int), 1),
      *callers = xalloc((size_t)ne, sizeof(int), 0),
      *work = xalloc((size_t)n, sizeof(int), 0);
  for (int i = 0; i < n; i++) /* callers of k: callers[first[k]..first[k+1]) */
    for (int j = 0; j < g->v[i].ncallees; j++)
      first[g->v[i].callees[j] + 2]++;
  for (int k = 0; k < n; k++)
    first[k + 2] += first[k + 1];
  for (int i = 0; i < n; i++)
    for (int j = 0; j < g->v[i].ncallees; j++)
      callers[first[g->v[i].callees[j] + 1]++] = i;
  int nw = 0;
  for (int i = 0; i < n; i++)
    if (mark[i])
      work[nw++] = i;
  while (nw) {
    int k = work[--nw];
    for (int j = first[k]; j < first[k + 1]; j++)
      if (!mark[callers[j]]) {
        mark[callers[j]] = 1;
        work[nw++] = callers[j];
      }
  }
  free(first);
  free(callers);
  free(work);
}

int vpg_first_reached(const vpg_graph *g, int from, const char *mark) {
  int n = g->n, *stk = xalloc((size_t)n, sizeof(int), 0),
      *next = xalloc((size_t)n, sizeof(int), 1), sp = 0, found = -1;
  char *seen = xalloc((size_t)n, 1, 1);
  seen[from] = 1;
  if (mark[from])
    found = from;
  else
    stk[sp++] = from;
  while (sp && found < 0) {
    int v = stk[sp - 1];
    if (next[v] == g->v[v].ncallees) {
      sp--;
      continue;
    }
    int w = g->v[v].callees[next[v]++];
    if (seen[w])
      continue;
    seen[w] = 1;
    if (mark[w])
      found = w;
    stk[sp++] = w;
  }
  free(stk);
  free(next);
  free(seen);
  return found;
}
