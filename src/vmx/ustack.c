/*
 * ustack.c - stack walks (frame pointers, and the CFI table the controller
 * built) and their symbolization (ustack.h).
 * Runs inside a probe: no allocation, no locks, every read guarded.
 */
#include "vmx/ustack.h"

#include <string.h>

#include "vmx/tramp.h"

#define FRAME_MAX (1u << 20) /* a frame larger than 1 MiB ends the walk */

int ustack_walk(uint64_t rip, uint64_t rsp, uint64_t rbp, int at_entry, int guarded,
                uint64_t *pcs, int max) {
  int n = 0;
  if (max <= 0)
    return 0;
  pcs[n++] = rip;
  if (at_entry && n < max) {
    uint64_t ret;
    if (tramp_read(&ret, rsp, 8, guarded) || !ret)
      return n;
    pcs[n++] = ret;
  }
  uint64_t fp = rbp, lo = rsp;
  while (n < max) {
    uint64_t fr[2]; /* saved rbp, return address */
    if (fp < lo || fp & 7 || fp - lo > FRAME_MAX * 64u)
      break;
    if (tramp_read(fr, fp, sizeof fr, guarded) || !fr[1])
      break;
    pcs[n++] = fr[1];
    if (fr[0] <= fp || fr[0] - fp > FRAME_MAX)
      break;
    lo = fp + 16;
    fp = fr[0];
  }
  return n;
}

const vmx_unwind *ustack_unwind_at(const vmx_unwind *uw, uint32_t n, uint64_t pc) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) { /* first entry starting above pc */
    uint32_t mid = lo + (hi - lo) / 2;
    if (uw[mid].start <= pc)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo && pc - uw[lo - 1].start < uw[lo - 1].len)
    return &uw[lo - 1];
  return NULL;
}

/* One frame: the caller's pc, rsp and rbp from this one's.  exact: pc is
 * where the thread is (the first frame), not a return address, which is
 * looked up at pc-1 (the call: a noreturn call may end its function).
 * 0, or -1 when the walk ends here. */
static int step(const vmx_unwind *uw, uint32_t n, int exact, int at_entry, int guarded,
                uint64_t *pc, uint64_t *sp, uint64_t *fp) {
  const vmx_unwind *u = ustack_unwind_at(uw, n, exact ? *pc : *pc - 1);
  uint64_t ra, cfa;
  if (u) {
    cfa = (u->cfa_reg == VMX_UW_RBP ? *fp : *sp) + (uint64_t)(int64_t)u->cfa_off;
    /* the caller's frame is above ours, and not absurdly far */
    if (cfa <= *sp || cfa - *sp > FRAME_MAX * 64u || cfa & 7)
      return -1;
    if (tramp_read(&ra, cfa - 8, 8, guarded))
      return -1;
    if (u->rbp_saved && tramp_read(fp, cfa + (uint64_t)(int64_t)u->rbp_off, 8, guarded))
      return -1;
  } else if (exact && at_entry) { /* nothing pushed yet */
    if (tramp_read(&ra, *sp, 8, guarded))
      return -1;
    cfa = *sp + 8;
  } else { /* frame pointers: [rbp] the caller's rbp, [rbp+8] the return */
    uint64_t fr[2];
    if (*fp < *sp || *fp & 7 || *fp - *sp > FRAME_MAX * 64u)
      return -1;
    if (tramp_read(fr, *fp, sizeof fr, guarded))
      return -1;
    ra = fr[1];
    cfa = *fp + 16;
    *fp = fr[0];
  }
  if (!ra)
    return -1;
  *pc = ra, *sp = cfa;
  return 0;
}

int ustack_walk_cfi(const vmx_unwind *uw, uint32_t n, uint64_t rip, uint64_t rsp,
                    uint64_t rbp, int at_entry, int guarded, uint64_t *pcs, int max) {
  if (!n)
    return ustack_walk(rip, rsp, rbp, at_entry, guarded, pcs, max);
  int k = 0;
  uint64_t pc = rip, sp = rsp, fp = rbp;
  if (max <= 0)
    return 0;
  pcs[k++] = rip;
  while (k < max && step(uw, n, k == 1, at_entry, guarded, &pc, &sp, &fp) == 0)
    pcs[k++] = pc;
  return k;
}

const vmx_sym *ustack_sym(const vmx_sym *syms, uint32_t nsyms, uint64_t addr) {
  uint32_t lo = 0, hi = nsyms;
  while (lo < hi) { /* first symbol above addr */
    uint32_t mid = lo + (hi - lo) / 2;
    if (syms[mid].addr <= addr)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (!lo)
    return NULL;
  const vmx_sym *s = &syms[lo - 1];
  /* Size 0 (assembly symbols): accept within 64 KiB. */
  if (addr < s->addr + (s->size ? s->size : 65536))
    return s;
  return NULL;
}

/* Append s (at most max bytes) to b at *len; 0, or -1 when it does not fit. */
static int put(char *b, size_t cap, size_t *len, const char *s, size_t max) {
  size_t l = strnlen(s, max);
  if (*len + l + 1 > cap)
    return -1;
  memcpy(b + *len, s, l);
  *len += l;
  b[*len] = 0;
  return 0;
}

static void hex(char *out, uint64_t v) { /* "0x..." */
  char t[17];
  int n = 0;
  do
    t[n++] = "0123456789abcdef"[v & 15];
  while (v >>= 4);
  out[0] = '0', out[1] = 'x';
  for (int i = 0; i < n; i++)
    out[2 + i] = t[n - 1 - i];
  out[2 + n] = 0;
}

/* snprintf is avoided: this runs inside probes, possibly in a signal
 * handler. */
size_t ustack_format(const uint64_t *pcs, int n, const vmx_sym *syms, uint32_t nsyms,
                     const char *strs, uint64_t strs_len, char *out, size_t cap) {
  size_t len = 0;
  if (!cap)
    return 0;
  out[0] = 0;
  for (int i = 0; i < n; i++) {
    const vmx_sym *s = ustack_sym(syms, nsyms, i ? pcs[i] - 1 : pcs[i]);
    char num[20];
    size_t mark = len;
    int bad = i && put(out, cap, &len, " <- ", 4);
    if (s && s->name_off < strs_len) {
      hex(num, pcs[i] - s->addr);
      bad = bad || put(out, cap, &len, strs + s->name_off, strs_len - s->name_off) ||
            put(out, cap, &len, "+", 1) || put(out, cap, &len, num, sizeof num);
    } else {
      hex(num, pcs[i]);
      bad = bad || put(out, cap, &len, num, sizeof num);
    }
    if (bad) { /* keep whole frames only */
      len = mark;
      out[len] = 0;
      break;
    }
  }
  return len;
}
