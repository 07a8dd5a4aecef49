/*
 * space.c - laying out a space, attaching to one, claiming thread blocks.
 *
 * rt_space_init writes only the header areas; the big per-thread areas are
 * initialized when a block is claimed, so a large space costs only the pages
 * its threads actually touch.
 */
#include "rt/rtint.h"

#include <string.h>

#define DEF_THREADS 256
#define DEF_RING (256u << 10)
#define DEF_BUCKETS 4096

static uint32_t pow2_at_least(uint32_t v, uint32_t min) {
  uint32_t p = min;
  while (p < v && p < (1u << 30))
    p <<= 1;
  return p;
}

static uint32_t bucket_size(const rt_aggr_shape *s) {
  uint32_t n = sizeof(rt_bucket) + 8u * s->nint + 4u * s->nstr;
  return (n + 7) & ~7u;
}

static uint64_t table_bytes(uint32_t buckets, const rt_aggr_shape *s) {
  return RT_ALIGN(sizeof(rt_table) + (uint64_t)buckets * bucket_size(s) +
                  (uint64_t)buckets * s->nstr * RT_STRAVG);
}

static uint64_t merge_bytes(uint32_t buckets, const rt_aggr_shape *s) {
  uint64_t m = 2ull * buckets;
  return RT_ALIGN(m * bucket_size(s)) +
         RT_ALIGN(m * s->nstr * RT_STRAVG) + RT_ALIGN(m * 4) + RT_LINE;
}

/* Fill the header's numbers and offsets; returns the total size. */
static uint64_t plan_layout(const rt_layout *l, rt_space *h) {
  memset(h, 0, sizeof *h);
  h->magic = RT_MAGIC;
  h->nints = l->nints;
  h->nstrs = l->nstrs;
  h->nshared = l->nshared;
  h->naggrs = l->naggrs;
  h->nbags = l->nbags;
  h->max_threads = l->max_threads ? l->max_threads : DEF_THREADS;
  h->ring_bytes = pow2_at_least(l->ring_bytes ? l->ring_bytes : DEF_RING, 4096);
  h->aggr_buckets = l->aggr_buckets ? l->aggr_buckets : DEF_BUCKETS;
  uint64_t o = RT_ALIGN(sizeof(rt_space));
  h->off_int_init = o, o = RT_ALIGN(o + 8ull * h->nints);
  h->off_str_init = o, o = RT_ALIGN(o + (uint64_t)RT_STR * h->nstrs);
  h->off_shared = o, o = RT_ALIGN(o + 8ull * h->nshared);
  h->off_aggrs = o, o = RT_ALIGN(o + sizeof(rt_aggr_desc) * h->naggrs);
  h->off_bags = o, o = RT_ALIGN(o + sizeof(rt_bag_desc) * h->nbags);
  h->off_slots = o, o = RT_ALIGN(o + 8ull * h->max_threads);
  h->off_blocks = o;
  uint64_t b = RT_ALIGN(sizeof(rt_thread));
  h->block_ints = b, b = RT_ALIGN(b + 8ull * h->nints);
  h->block_strs = b, b = RT_ALIGN(b + (uint64_t)RT_STR * h->nstrs);
  h->block_ring = b, b = RT_ALIGN(b + h->ring_bytes);
  for (uint32_t i = 0; i < h->naggrs; i++)
    b += table_bytes(h->aggr_buckets, &l->aggrs[i]);
  h->block_size = b;
  o += b * h->max_threads;
  for (uint32_t i = 0; i < h->naggrs; i++)
    o += merge_bytes(h->aggr_buckets, &l->aggrs[i]);
  for (uint32_t i = 0; i < h->nbags; i++)
    o += RT_ALIGN(sizeof(rt_bag_slot) * (uint64_t)l->bag_sizes[i]);
  h->size = o;
  return o;
}

static int layout_ok(const rt_layout *l) {
  if ((l->naggrs && !l->aggrs) || (l->nbags && !l->bag_sizes))
    return 0;
  for (uint32_t i = 0; i < l->naggrs; i++)
    if (l->aggrs[i].nint > 4 || l->aggrs[i].nstr > 4)
      return 0;
  return 1;
}

size_t rt_space_size(const rt_layout *layout) {
  rt_space h;
  if (!layout || !layout_ok(layout))
    return 0;
  return plan_layout(layout, &h);
}

static void init_aggrs(rt_space *sp, const rt_layout *l) {
  rt_aggr_desc *a = rt_aggrs(sp);
  uint64_t t = sp->block_ring + RT_ALIGN(sp->ring_bytes);
  uint64_t m = sp->off_blocks + sp->block_size * sp->max_threads;
  for (uint32_t i = 0; i < sp->naggrs; i++) {
    const rt_aggr_shape *s = &l->aggrs[i];
    memset(&a[i], 0, sizeof a[i]);
    const char *name = l->aggr_names && l->aggr_names[i] ? l->aggr_names[i] : "";
    strncpy(a[i].name, name, sizeof a[i].name - 1);
    a[i].nint = s->nint;
    a[i].nstr = s->nstr;
    a[i].gen = 1;
    a[i].bucket_size = bucket_size(s);
    a[i].arena_size = sp->aggr_buckets * s->nstr * RT_STRAVG;
    a[i].table_off = t;
    a[i].merge_off = m;
    t += table_bytes(sp->aggr_buckets, s);
    /* merge entries are valid when stamped with the print serial: zero them
     * once so stale bytes never look stamped */
    memset(rt_base(sp) + m, 0, 2ull * sp->aggr_buckets * a[i].bucket_size);
    m += merge_bytes(sp->aggr_buckets, s);
  }
  rt_bag_desc *b = rt_bags(sp);
  for (uint32_t i = 0; i < sp->nbags; i++) {
    b[i].cap = l->bag_sizes[i];
    b[i].off = m;
    memset(rt_base(sp) + m, 0, sizeof(rt_bag_slot) * (uint64_t)b[i].cap);
    m += RT_ALIGN(sizeof(rt_bag_slot) * (uint64_t)b[i].cap);
  }
}

rt_space *rt_space_init(void *mem, size_t size, const rt_layout *l) {
  rt_space h;
  if (!mem || !l || !layout_ok(l) || plan_layout(l, &h) > size)
    return NULL;
  rt_space *sp = mem;
  memset(mem, 0, h.off_blocks); /* headers only; blocks are set on claim */
  *sp = h;
  uint64_t *ii = (uint64_t *)(rt_base(sp) + sp->off_int_init);
  for (uint32_t i = 0; i < sp->nints; i++)
    ii[i] = l->int_init ? l->int_init[i] : 0;
  char(*si)[RT_STR] = (char(*)[RT_STR])(rt_base(sp) + sp->off_str_init);
  for (uint32_t i = 0; i < sp->nstrs; i++)
    if (l->str_init && l->str_init[i])
      strncpy(si[i], l->str_init[i], RT_STR - 1);
  uint64_t *sh = (uint64_t *)(rt_base(sp) + sp->off_shared);
  for (uint32_t i = 0; i < sp->nshared; i++)
    sh[i] = l->shared_init ? l->shared_init[i] : 0;
  init_aggrs(sp, l);
  __atomic_thread_fence(__ATOMIC_RELEASE);
  return sp;
}

rt_space *rt_space_attach(void *mem, size_t size) {
  rt_space *sp = mem;
  if (!mem || size < sizeof *sp || LDA(&sp->magic) != RT_MAGIC ||
      sp->size > size)
    return NULL;
  /* the bytes come from another process: check what a drain relies on */
  uint32_t r = sp->ring_bytes;
  if (r < 4096 || (r & (r - 1)) || !sp->max_threads ||
      sp->block_ring + r > sp->block_size ||
      sp->off_blocks + sp->block_size * sp->max_threads > sp->size)
    return NULL;
  return sp;
}

/* First claim of a block: zero what must read as empty, copy the initial
 * values of the per-thread globals. */
static void block_init(rt_space *sp, rt_thread *th, uint32_t i, uint32_t tid) {
  memset(th, 0, sizeof *th);
  th->self_off = sp->off_blocks + i * sp->block_size;
  th->tid = tid;
  memcpy(rt_thread_ints(th), rt_base(sp) + sp->off_int_init, 8ull * sp->nints);
  memcpy(rt_thread_strs(th), rt_base(sp) + sp->off_str_init,
         (size_t)RT_STR * sp->nstrs);
  rt_aggr_desc *a = rt_aggrs(sp);
  for (uint32_t k = 0; k < sp->naggrs; k++) {
    rt_table *t = rt_table_of(th, &a[k]);
    memset(t, 0, sizeof *t + (size_t)sp->aggr_buckets * a[k].bucket_size);
  }
  STR_(&th->ready, 1);
}

rt_thread *rt_thread_get(rt_space *sp, uint32_t tid) {
  uint64_t *slots = rt_slots(sp), want = (uint64_t)tid + 1;
  uint32_t n = sp->max_threads;
  uint32_t i = (uint32_t)((tid * 0x9e3779b97f4a7c15ull) >> 32) % n;
  for (uint32_t k = 0; k < n; k++, i = i + 1 == n ? 0 : i + 1) {
    uint64_t s = LDA(&slots[i]);
    if (s == want)
      return rt_block(sp, i);
    if (s == 0) {
      uint64_t zero = 0;
      if (CAS(&slots[i], &zero, want)) {
        rt_thread *th = rt_block(sp, i);
        block_init(sp, th, i, tid);
        return th;
      }
      if (zero == want) /* cannot happen: only this thread claims tid */
        return rt_block(sp, i);
    }
  }
  __atomic_fetch_add(&sp->dropped, 1, __ATOMIC_RELAXED);
  return NULL;
}

rt_space *rt_thread_space(rt_thread *th) { return rt_space_of(th); }

uint64_t *rt_thread_ints(rt_thread *th) {
  return (uint64_t *)((char *)th + rt_space_of(th)->block_ints);
}

char (*rt_thread_strs(rt_thread *th))[RT_STR] {
  return (char(*)[RT_STR])((char *)th + rt_space_of(th)->block_strs);
}

uint64_t *rt_shared_int(rt_space *sp, uint32_t i) {
  return (uint64_t *)(rt_base(sp) + sp->off_shared) + i;
}
