/*
 * aggr.c - aggregates: per-thread open-addressing tables, generations for
 * wait-free clearing, and the merge the printer runs.
 *
 * Only the owning thread writes its table.  A bucket is live when its gen
 * equals the aggregate's current generation: clearing bumps the
 * aggregate's generation, and an inserter that sees its table on an older
 * one resets the table in O(1) (used and arena back to zero; old buckets are
 * dead by their gen).  A new bucket's keys are written before its gen is
 * published (release), so a printer that sees the gen sees the keys.
 */
#include "rt/rtint.h"

#include <string.h>

#define KEYMAX (RT_STR - 1)

static uint32_t hash_keys(const rt_aggr_desc *a, const uint64_t *ik,
                          const char *const *sk) {
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (uint32_t i = 0; i < a->nint; i++)
    h = (h ^ ik[i]) * 0xff51afd7ed558ccdull;
  for (uint32_t i = 0; i < a->nstr; i++) {
    /* Eight bytes per step: keys like stacks run to hundreds of bytes,
     * and a multiply chain per byte cost more than the rest of the hit. */
    const char *s = sk && sk[i] ? sk[i] : "";
    size_t n = strnlen(s, KEYMAX), k = 0;
    uint64_t w;
    for (; k + 8 <= n; k += 8) {
      memcpy(&w, s + k, 8);
      h = (h ^ w) * 0xff51afd7ed558ccdull;
      h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s + k, n - k);
    h = (h ^ w ^ (uint64_t)n << 56) * 0xc4ceb9fe1a85ec53ull;
  }
  h ^= h >> 29;
  return (uint32_t)(h >> 32);
}

static rt_bucket *bucket_at(unsigned char *base, const rt_aggr_desc *a,
                            uint32_t i) {
  return (rt_bucket *)(base + (size_t)i * a->bucket_size);
}

/* An arena offset out of range (a space another process scribbled on)
 * compares unequal rather than read outside the arena. */
static int keys_equal(const rt_aggr_desc *a, rt_bucket *b, const char *arena,
                      uint32_t cap, const uint64_t *ik,
                      const char *const *sk) {
  const uint64_t *bk = rt_bkeys(b);
  for (uint32_t i = 0; i < a->nint; i++)
    if (bk[i] != ik[i])
      return 0;
  const uint32_t *so = rt_bsoffs(b, a);
  for (uint32_t i = 0; i < a->nstr; i++)
    if (so[i] >= cap ||
        strncmp(arena + so[i], sk && sk[i] ? sk[i] : "", KEYMAX))
      return 0;
  return 1;
}

/* Copy the string keys into arena (used bytes so far *used, size cap);
 * 0 when they do not fit. */
static int store_strs(const rt_aggr_desc *a, rt_bucket *b, char *arena,
                      uint32_t *used, uint32_t cap, const char *const *sk) {
  uint32_t *so = rt_bsoffs(b, a), u = *used;
  for (uint32_t i = 0; i < a->nstr; i++) {
    const char *s = sk && sk[i] ? sk[i] : "";
    size_t n = strnlen(s, KEYMAX);
    if (u > cap || n + 1 > cap - u) /* u too, should *used be scribbled */
      return 0;
    memcpy(arena + u, s, n);
    arena[u + n] = 0;
    so[i] = u;
    u += (uint32_t)n + 1;
  }
  *used = u;
  return 1;
}

static void bucket_add(rt_bucket *b, int64_t v) {
  int64_t c = LD(&b->count);
  ST(&b->count, c + 1);
  ST(&b->sum, (int64_t)((uint64_t)LD(&b->sum) + (uint64_t)v));
  if (c == 0 || v < LD(&b->min))
    ST(&b->min, v);
  if (c == 0 || v > LD(&b->max))
    ST(&b->max, v);
  ST(&b->latest, v);
}

/* Claim empty bucket b for the keys; 0 if the table or arena is full. */
static int bucket_claim(const rt_aggr_desc *a, rt_table *t, rt_bucket *b,
                        char *arena, uint32_t h, uint32_t gen,
                        const uint64_t *ik, const char *const *sk,
                        uint32_t limit) {
  if (t->used >= limit)
    return 0;
  uint32_t used = t->arena_used;
  if (!store_strs(a, b, arena, &used, a->arena_size, sk))
    return 0;
  t->arena_used = used;
  b->hash = h;
  for (uint32_t i = 0; i < a->nint; i++)
    rt_bkeys(b)[i] = ik[i];
  ST(&b->count, 0);
  ST(&b->sum, 0);
  ST(&b->min, 0);
  ST(&b->max, 0);
  ST(&b->latest, 0);
  STR_(&b->gen, gen);
  STR_(&t->used, t->used + 1);
  return 1;
}

int rt_aggr_add(rt_thread *th, uint32_t id, const uint64_t *ikeys,
                const char *const *skeys, int64_t value) {
  static const uint64_t zeros[4];
  rt_space *sp = rt_space_of(th);
  if (id >= sp->naggrs)
    return -1;
  if (!ikeys)
    ikeys = zeros;
  rt_aggr_desc *a = &rt_aggrs(sp)[id];
  rt_table *t = rt_table_of(th, a);
  uint32_t gen = LDA(&a->gen), nb = sp->aggr_buckets;
  if (t->gen != gen) { /* cleared since we last inserted */
    ST(&t->used, 0);
    t->arena_used = 0;
    STR_(&t->gen, gen);
  }
  unsigned char *buckets = (unsigned char *)(t + 1);
  char *arena = (char *)buckets + (size_t)nb * a->bucket_size;
  uint32_t limit = nb - nb / 8 ? nb - nb / 8 : 1;
  if (!(a->nint | a->nstr)) {
    /* A keyless aggregate (`calls++`) has one bucket: always the first,
     * so the hot path hashes, divides and compares nothing.  Its stored
     * hash is the empty key's, which is all the merge looks at. */
    rt_bucket *b = (rt_bucket *)buckets;
    if (b->gen == gen ||
        bucket_claim(a, t, b, arena, hash_keys(a, ikeys, skeys), gen, ikeys,
                     skeys, limit)) {
      bucket_add(b, value);
      return 0;
    }
    __atomic_fetch_add(&a->lost, 1, __ATOMIC_RELAXED);
    return -1;
  }
  uint32_t h = hash_keys(a, ikeys, skeys), i = h % nb;
  for (uint32_t k = 0; k < nb; k++, i = i + 1 == nb ? 0 : i + 1) {
    rt_bucket *b = bucket_at(buckets, a, i);
    if (b->gen != gen) {
      if (!bucket_claim(a, t, b, arena, h, gen, ikeys, skeys, limit))
        break;
      bucket_add(b, value);
      return 0;
    }
    if (b->hash == h && keys_equal(a, b, arena, a->arena_size, ikeys, skeys)) {
      bucket_add(b, value);
      return 0;
    }
  }
  __atomic_fetch_add(&a->lost, 1, __ATOMIC_RELAXED);
  return -1;
}

int rt_aggr_inc(rt_thread *th, uint32_t id, const uint64_t *ikeys,
                const char *const *skeys) {
  return rt_aggr_add(th, id, ikeys, skeys, 1);
}

void rt_aggr_clear(rt_space *sp, uint32_t id) {
  if (id >= sp->naggrs)
    return;
  rt_aggr_desc *a = &rt_aggrs(sp)[id];
  /* generation 0 marks never-used tables; skip it on wrap-around */
  if (__atomic_add_fetch(&a->gen, 1, __ATOMIC_ACQ_REL) == 0)
    __atomic_add_fetch(&a->gen, 1, __ATOMIC_ACQ_REL);
}

/* ---- merging, for the printer (which holds the aggregate's busy flag) ---- */

typedef struct snap { /* one bucket read out of a thread's table */
  uint32_t hash;
  int64_t count, sum, min, max, latest;
  uint64_t ik[4];
  char sk[4][RT_STR];
} snap;

static void merge_one(const rt_aggr_desc *a, rt_merge *m, uint32_t cap,
                      uint32_t arena_cap, uint32_t *arena_used,
                      uint32_t serial, const snap *s) {
  const char *sk[4] = {s->sk[0], s->sk[1], s->sk[2], s->sk[3]};
  uint32_t i = s->hash % cap;
  for (uint32_t k = 0; k < cap; k++, i = i + 1 == cap ? 0 : i + 1) {
    rt_bucket *e = bucket_at(m->entries, a, i);
    if (e->gen == serial && e->hash == s->hash &&
        keys_equal(a, e, m->arena, arena_cap, s->ik, sk)) {
      e->min = s->min < e->min ? s->min : e->min;
      e->max = s->max > e->max ? s->max : e->max;
      e->count += s->count;
      e->sum = (int64_t)((uint64_t)e->sum + (uint64_t)s->sum);
      e->latest = s->latest;
      return;
    }
    if (e->gen != serial) {
      if (!store_strs(a, e, m->arena, arena_used, arena_cap, sk))
        break;
      e->gen = serial;
      e->hash = s->hash;
      for (uint32_t k = 0; k < a->nint; k++)
        rt_bkeys(e)[k] = s->ik[k];
      e->count = s->count;
      e->sum = s->sum;
      e->min = s->min;
      e->max = s->max;
      e->latest = s->latest;
      m->idx[m->n++] = i;
      return;
    }
  }
  m->hidden++;
}

/* Read bucket b of a live table into s; 0 if it is not live. */
static int read_bucket(const rt_aggr_desc *a, rt_bucket *b, const char *arena,
                       uint32_t gen, snap *s) {
  if (LDA(&b->gen) != gen)
    return 0;
  s->hash = b->hash;
  s->count = LD(&b->count);
  s->sum = LD(&b->sum);
  s->min = LD(&b->min);
  s->max = LD(&b->max);
  s->latest = LD(&b->latest);
  memcpy(s->ik, rt_bkeys(b), 8u * a->nint);
  const uint32_t *so = rt_bsoffs(b, a);
  for (uint32_t i = 0; i < a->nstr; i++) {
    uint32_t o = so[i] < a->arena_size ? so[i] : 0;
    size_t n = strnlen(arena + o, a->arena_size - o);
    n = n > KEYMAX ? KEYMAX : n;
    memcpy(s->sk[i], arena + o, n);
    s->sk[i][n] = 0;
  }
  return s->count > 0;
}

void rt_aggr_merge(rt_space *sp, uint32_t id, rt_merge *m) {
  rt_aggr_desc *a = &rt_aggrs(sp)[id];
  uint32_t nb = sp->aggr_buckets, cap = 2 * nb, used = 0;
  char *base = rt_base(sp) + a->merge_off;
  m->entries = (unsigned char *)base;
  m->arena = base + RT_ALIGN((uint64_t)cap * a->bucket_size);
  uint32_t arena_cap = cap * a->nstr * RT_STRAVG;
  m->idx = (uint32_t *)(m->arena + RT_ALIGN(arena_cap));
  m->text = (char *)m->idx + RT_ALIGN(cap * 4ull);
  m->n = m->hidden = 0;
  m->total_sum = m->total_count = 0;
  uint32_t serial = ++a->serial;
  if (serial == 0) /* entries start zeroed: 0 must never be a live serial */
    serial = ++a->serial;
  uint32_t gen = LDA(&a->gen);
  uint64_t *slots = rt_slots(sp);
  snap s;
  for (uint32_t t = 0; t < sp->max_threads; t++) {
    rt_thread *th = rt_block(sp, t);
    if (!LDA(&slots[t]) || !LDA(&th->ready))
      continue;
    rt_table *tb = rt_table_of(th, a);
    unsigned char *buckets = (unsigned char *)(tb + 1);
    const char *arena = (char *)buckets + (size_t)nb * a->bucket_size;
    if (LDA(&tb->gen) != gen)
      continue; /* stale: cleared since this thread last inserted */
    for (uint32_t i = 0; i < nb; i++) {
      if (!read_bucket(a, bucket_at(buckets, a, i), arena, gen, &s))
        continue;
      __atomic_thread_fence(__ATOMIC_ACQUIRE);
      if (LD(&tb->gen) != gen)
        break; /* reset under us: what we copied may be torn */
      m->total_sum = (int64_t)((uint64_t)m->total_sum + (uint64_t)s.sum);
      m->total_count += s.count;
      merge_one(a, m, cap, arena_cap, &used, serial, &s);
    }
  }
}
