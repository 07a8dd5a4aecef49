/*
 * bag.c - bags: bounded key/value multisets shared by every thread.
 *
 * A slot is free (0), held (1) or full (2).  Insert claims a free slot with
 * a CAS, writes the pair, then publishes it full.  Remove CASes a full slot
 * with the key to held, so exactly one remover gets each pair, then frees
 * it.  Because the key is read before the CAS, the slot may have been
 * emptied and refilled with another key in between; the remover re-checks
 * the key once it holds the slot and puts a mismatch back.  Scans start at
 * the key's hash so inserters of different keys rarely meet.
 */
#include "rt/rtint.h"

enum { FREE, HELD, FULL };

static rt_bag_slot *bag_slots(rt_space *sp, uint32_t id, uint32_t *cap) {
  if (id >= sp->nbags)
    return NULL;
  rt_bag_desc *d = &rt_bags(sp)[id];
  *cap = d->cap;
  return (rt_bag_slot *)(rt_base(sp) + d->off);
}

static uint32_t start(uint64_t key, uint32_t cap) {
  return (uint32_t)(((key * 0x9e3779b97f4a7c15ull) >> 32) % cap);
}

/* Walks the slots from the key's hash and takes the first one in state
 * `want` by moving it to HELD; a FULL slot must hold the key, checked again
 * once held since it may have been refilled with another key meanwhile. */
static rt_bag_slot *bag_take(rt_space *sp, uint32_t id, uint64_t key,
                             uint64_t want) {
  uint32_t cap = 0;
  rt_bag_slot *s = bag_slots(sp, id, &cap);
  if (!s || !cap)
    return NULL;
  uint32_t i = start(key, cap);
  for (uint32_t k = 0; k < cap; k++, i = i + 1 == cap ? 0 : i + 1) {
    uint64_t st = want;
    if (LDA(&s[i].state) != want || (want == FULL && LD(&s[i].key) != key) ||
        !CAS(&s[i].state, &st, HELD))
      continue;
    if (want == FULL && LD(&s[i].key) != key) {
      STR_(&s[i].state, FULL);
      continue;
    }
    return &s[i];
  }
  return NULL;
}

int rt_bag_insert(rt_space *sp, uint32_t id, uint64_t key, uint64_t val) {
  rt_bag_slot *s = bag_take(sp, id, key, FREE);
  if (!s)
    return -1;
  ST(&s->key, key);
  ST(&s->val, val);
  STR_(&s->state, FULL);
  return 0;
}

int rt_bag_remove(rt_space *sp, uint32_t id, uint64_t key, uint64_t *val) {
  rt_bag_slot *s = bag_take(sp, id, key, FULL);
  if (!s)
    return -1;
  uint64_t v = LD(&s->val);
  STR_(&s->state, FREE);
  if (val)
    *val = v;
  return 0;
}

int rt_bag_next(rt_space *sp, uint32_t id, uint32_t *cursor, uint64_t *key,
                uint64_t *val) {
  uint32_t cap = 0;
  rt_bag_slot *s = bag_slots(sp, id, &cap);
  if (!s)
    return 0;
  for (uint32_t i = *cursor; i < cap; i++) {
    if (LDA(&s[i].state) != FULL)
      continue;
    uint64_t k = LD(&s[i].key), v = LD(&s[i].val);
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (LD(&s[i].state) != FULL)
      continue; /* removed while we read it */
    if (key)
      *key = k;
    if (val)
      *val = v;
    *cursor = i + 1;
    return 1;
  }
  *cursor = cap;
  return 0;
}
