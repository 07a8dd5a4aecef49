/*
 * view.c - the controller's trusted copy of a space it shares with a
 * process it does not trust, the drain against that copy, and the full
 * check run before this process uses such a space itself.
 *
 * A probed process can write every byte of the space.  What it writes into
 * its own records and counters is its business (it can always lie about its
 * own output); what it must never do is steer vprobe's reads and writes.  So
 * every offset, size and count comes from the copy taken at layout time, and
 * every value read from the space is checked before it is used as one.
 */
#include "rt/rtint.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

rt_view *rt_view_new(rt_space *sp, size_t size) {
  if (!sp || size < sizeof *sp || sp->magic != RT_MAGIC || sp->size > size)
    return NULL;
  rt_view *v = calloc(1, sizeof *v);
  if (!v)
    return NULL;
  v->sp = sp;
  v->size = size;
  v->lay = *sp;
  v->aggrs = malloc(sizeof *v->aggrs * (v->lay.naggrs + 1));
  v->bags = malloc(sizeof *v->bags * (v->lay.nbags + 1));
  v->d.ds = calloc(v->lay.max_threads, sizeof *v->d.ds);
  if (!v->aggrs || !v->bags || !v->d.ds) {
    rt_view_free(v);
    return NULL;
  }
  memcpy(v->aggrs, rt_aggrs(sp), sizeof *v->aggrs * v->lay.naggrs);
  memcpy(v->bags, rt_bags(sp), sizeof *v->bags * v->lay.nbags);
  v->d.lay = &v->lay;
  v->d.base = rt_base(sp);
  v->d.drain_prev = sp->drain_prev;
  v->d.dropped_reported = sp->dropped_reported;
  v->d.drops_at = sp->drops_at;
  v->d.last_all = 1;
  return v;
}

void rt_view_free(rt_view *v) {
  if (!v)
    return;
  free(v->aggrs);
  free(v->bags);
  free(v->d.ds);
  free(v);
}

rt_space *rt_view_space(rt_view *v) { return v->sp; }

const char *rt_view_error(const rt_view *v) {
  return v->d.err[0] ? v->d.err : NULL;
}

static int check_layout(rt_view *v);

/* The header and descriptors are compared on every drain too: the drain
 * does not read them, but the agent does, and a space it can no longer
 * trust is one whose run should end. */
size_t rt_view_drain(rt_view *v, uint64_t upto, rt_sink sink, void *ctx) {
  int zero = 0;
  if (v->d.err[0] || !CAS(&v->draining, &zero, 1))
    return 0;
  size_t n = check_layout(v) ? 0 : rt_drain_core(&v->d, upto, sink, ctx);
  STR_(&v->draining, 0);
  return n;
}

/* ---- the checks ---- */

static int fail(rt_view *v, const char *fmt, rt_arg a, rt_arg b) {
  rt_arg args[2] = {a, b};
  rt_format(v->d.err, sizeof v->d.err, fmt, args, 2);
  return -1;
}
#define NUM(x) ((rt_arg){0, (uint64_t)(x), NULL})
#define STRA(x) ((rt_arg){1, 0, (x)})

#define FIELD(f) {#f, offsetof(rt_space, f), sizeof(((rt_space *)0)->f)}
static const struct {
  const char *name;
  size_t off, len;
} layout_fields[] = {
    FIELD(magic),        FIELD(size),         FIELD(nints),
    FIELD(nstrs),        FIELD(nshared),      FIELD(naggrs),
    FIELD(nbags),        FIELD(max_threads),  FIELD(ring_bytes),
    FIELD(aggr_buckets), FIELD(block_size),   FIELD(off_int_init),
    FIELD(off_str_init), FIELD(off_shared),   FIELD(off_aggrs),
    FIELD(off_bags),     FIELD(off_slots),    FIELD(off_blocks),
    FIELD(block_ints),   FIELD(block_strs),   FIELD(block_ring),
};

static int check_header(rt_view *v) {
  const char *sh = rt_base(v->sp), *mine = (const char *)&v->lay;
  for (size_t i = 0; i < sizeof layout_fields / sizeof layout_fields[0]; i++)
    if (memcmp(sh + layout_fields[i].off, mine + layout_fields[i].off,
               layout_fields[i].len))
      return fail(v, "space header: %s changed", STRA(layout_fields[i].name),
                  NUM(0));
  return 0;
}

/* The descriptors' layout parts must be as laid out. */
static int check_descs(rt_view *v) {
  char *base = rt_base(v->sp);
  rt_aggr_desc *a = (rt_aggr_desc *)(base + v->lay.off_aggrs);
  for (uint32_t k = 0; k < v->lay.naggrs; k++) {
    const rt_aggr_desc *m = &v->aggrs[k];
    if (memcmp(a[k].name, m->name, sizeof m->name) || a[k].nint != m->nint ||
        a[k].nstr != m->nstr || a[k].bucket_size != m->bucket_size ||
        a[k].arena_size != m->arena_size || a[k].table_off != m->table_off ||
        a[k].merge_off != m->merge_off)
      return fail(v, "aggregate %u: descriptor changed", NUM(k), NUM(0));
  }
  rt_bag_desc *b = (rt_bag_desc *)(base + v->lay.off_bags);
  for (uint32_t k = 0; k < v->lay.nbags; k++)
    if (b[k].cap != v->bags[k].cap || b[k].off != v->bags[k].off)
      return fail(v, "bag %u: descriptor changed", NUM(k), NUM(0));
  return 0;
}

static int strings_ok(const char *s, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (!memchr(s + (size_t)i * RT_STR, 0, RT_STR))
      return 0;
  return 1;
}

/* A live table: counters within its sizes, every live bucket's string
 * keys inside the arena and terminated there. */
static int check_table(rt_view *v, uint32_t t, uint32_t k, char *blk) {
  const rt_aggr_desc *a = &v->aggrs[k];
  rt_table *tb = (rt_table *)(blk + a->table_off);
  uint32_t nb = v->lay.aggr_buckets;
  uint32_t gen = rt_aggrs(v->sp)[k].gen;
  if (tb->used > nb || tb->arena_used > a->arena_size)
    return fail(v, "thread %u: aggregate %u table counters", NUM(t), NUM(k));
  if (tb->gen != gen)
    return 0; /* reset before its next use */
  unsigned char *bk = (unsigned char *)(tb + 1);
  const char *arena = (const char *)bk + (size_t)nb * a->bucket_size;
  for (uint32_t i = 0; i < nb; i++) {
    rt_bucket *b = (rt_bucket *)(bk + (size_t)i * a->bucket_size);
    if (b->gen != gen)
      continue;
    const uint32_t *so = rt_bsoffs(b, a);
    for (uint32_t s = 0; s < a->nstr; s++)
      if (so[s] >= a->arena_size ||
          !memchr(arena + so[s], 0, a->arena_size - so[s]))
        return fail(v, "thread %u: aggregate %u string key", NUM(t), NUM(k));
  }
  return 0;
}

static int check_blocks(rt_view *v) {
  const rt_space *L = &v->lay;
  char *base = rt_base(v->sp);
  const uint64_t *slots = (const uint64_t *)(base + L->off_slots);
  for (uint32_t t = 0; t < L->max_threads; t++) {
    uint64_t off = L->off_blocks + (uint64_t)t * L->block_size;
    rt_thread *th = (rt_thread *)(base + off);
    if (!slots[t])
      continue; /* never read as a block */
    if (!th->ready) /* this process would take it as set up if its tid */
      return fail(v, "thread %u: block claimed but never set up", NUM(t),
                  NUM(0));
    if (th->self_off != off)
      return fail(v, "thread %u: block offset %u", NUM(t), NUM(th->self_off));
    if (th->head - v->d.ds[t].tail > L->ring_bytes)
      return fail(v, "thread %u ring: head %u out of range", NUM(t),
                  NUM(th->head));
    if (!strings_ok((char *)th + L->block_strs, L->nstrs))
      return fail(v, "thread %u: string global not terminated", NUM(t), NUM(0));
    for (uint32_t k = 0; k < L->naggrs; k++)
      if (check_table(v, t, k, (char *)th) != 0)
        return -1;
  }
  return 0;
}

static int check_layout(rt_view *v) {
  return check_header(v) || check_descs(v) ? -1 : 0;
}

/* What a printer that died may hold: the busy flags, the merge areas. */
static void reset_printers(rt_view *v) {
  rt_aggr_desc *a = rt_aggrs(v->sp);
  for (uint32_t k = 0; k < v->lay.naggrs; k++) {
    a[k].busy = 0;
    memset(rt_base(v->sp) + v->aggrs[k].merge_off, 0,
           2ull * v->lay.aggr_buckets * v->aggrs[k].bucket_size);
  }
}

int rt_view_check(rt_view *v) {
  if (v->d.err[0] || check_layout(v) != 0)
    return -1;
  if (!strings_ok(rt_base(v->sp) + v->lay.off_str_init, v->lay.nstrs))
    return fail(v, "initial strings not terminated", NUM(0), NUM(0));
  if (check_blocks(v) != 0)
    return -1;
  reset_printers(v);
  return 0;
}
