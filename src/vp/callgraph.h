/*
 * callgraph.h - the verifier's linear-time structures: name tables (a
 * name to an index in O(1), however many globals or functions there are),
 * the string pool they make O(1) too, and the call graph of a program's
 * functions and probes (callees-first order, recursion, what reaches
 * what).
 *
 * Neither owns the named things: a table keeps indexes into its caller's
 * array and asks a vpg_key for their names; a graph's nodes are numbered
 * like the caller's functions.  Graph walks keep their own stacks, so a
 * chain of a million calls does not overflow the C stack, and each takes
 * time linear in the size of the graph.
 */
#ifndef VP_CALLGRAPH_H
#define VP_CALLGRAPH_H

#include <stddef.h>
#include <stdint.h>

/* ---- name tables ---- */

/* The name of entry i of ctx, the caller's array. */
typedef const char *vpg_key(const void *ctx, int i);

/* Open addressing, index + 1 in each slot, 0 empty.  All zero: empty. */
typedef struct vpg_names {
  int *slot;
  size_t cap, n;
} vpg_names;

/* Map name to i (replacing an entry of that name). */
void vpg_names_add(vpg_names *t, const char *name, int i, vpg_key *key,
                   const void *ctx);
/* The index of name, or -1. */
int vpg_names_find(const vpg_names *t, const char *name, vpg_key *key,
                   const void *ctx);
/* Free the slots; the table is empty again. */
void vpg_names_free(vpg_names *t);

/* A string pool: NUL-terminated strings back to back, each stored once.
 * All zero: empty. */
typedef struct vpg_pool {
  char *text;
  size_t len, cap;
  vpg_names tab; /* offsets in text, by content */
} vpg_pool;

/* The offset of s in p->text, appending it if it is not there yet. */
uint32_t vpg_intern(vpg_pool *p, const char *s);
/* Empty the pool (its buffer is kept). */
void vpg_pool_clear(vpg_pool *p);
void vpg_pool_free(vpg_pool *p);

/* ---- the call graph ---- */

typedef struct vpg_node {
  int *callees, ncallees; /* each once, in the order first called */
  unsigned walk;          /* the walk that last recorded a call of this one */
} vpg_node;

/* All zero: no nodes. */
typedef struct vpg_graph {
  vpg_node *v;
  int n, cap;
  unsigned walk; /* the current walk (vpg_walk) */
} vpg_graph;

/* A new node without calls; returns its number (the previous count). */
int vpg_add(vpg_graph *g);
/* Start a new walk of node from: forget its calls, to be recorded again. */
void vpg_walk(vpg_graph *g, int from);
/* from calls to; recorded once per walk, in O(1). */
void vpg_call(vpg_graph *g, int from, int to);
void vpg_free(vpg_graph *g);

/* The nodes in post-order (callees before callers, from each node in
 * number order); malloc'd, g->n entries. */
int *vpg_post_order(const vpg_graph *g);
/* rec[i] = 1 if node i is on a cycle of calls; malloc'd, g->n entries. */
char *vpg_recursive(const vpg_graph *g);
/* Set mark[i] for every node that calls, directly or not, a marked one. */
void vpg_spread_to_callers(const vpg_graph *g, char *mark);
/* The first marked node reached depth-first from node from (itself first,
 * then callees in order), or -1. */
int vpg_first_reached(const vpg_graph *g, int from, const char *mark);

#endif
