/*
 * agent_libc.c - the agent's own copies of the few libc functions its probe
 * hit path, signal handlers and patch windows use (directly, through the
 * shared interpreter and runtime sources, or as calls the compiler emits).
 * All hidden: inside libvpagent.so every call binds here, and the program's
 * libc, which may be probed (an int3 in memcpy while a trap handler copies),
 * is never entered from those paths.
 *
 * Built with -fno-builtin (and without loop-to-call distribution), so these
 * loops do not turn back into calls to themselves.  No state.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <emmintrin.h>
#include <time.h>

#include "vmx/tramp_sys.h"

#define HIDDEN __attribute__((visibility("hidden")))
#define BIG 512 /* from here `rep movsb/stosb` wins over a word loop */

typedef uint64_t __attribute__((may_alias, aligned(1))) word; /* unaligned */
static const uint64_t ONES = 0x0101010101010101ull, HIGHS = 0x8080808080808080ull;
static int has_zero(uint64_t w) { return ((w - ONES) & ~w & HIGHS) != 0; }
typedef __m128i __attribute__((may_alias, aligned(1))) block; /* unaligned */

HIDDEN void *memcpy(void *d, const void *s, size_t n) {
  void *r = d;
  if (n >= BIG) {
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return r;
  }
  unsigned char *dp = d;
  const unsigned char *sp = s;
  for (; n >= 16; n -= 16, dp += 16, sp += 16)
    _mm_storeu_si128((__m128i *)dp, _mm_loadu_si128((const block *)sp));
  for (; n >= 8; n -= 8, dp += 8, sp += 8)
    *(word *)dp = *(const word *)sp;
  while (n--)
    *dp++ = *sp++;
  return r;
}

HIDDEN void *memmove(void *d, const void *s, size_t n) {
  if ((uintptr_t)d - (uintptr_t)s >= n) /* no overlap, or d below s */
    return memcpy(d, s, n);
  unsigned char *dp = d;
  const unsigned char *sp = s;
  while (n--)
    dp[n] = sp[n];
  return d;
}

HIDDEN void *memset(void *d, int c, size_t n) {
  void *r = d;
  if (n >= BIG) {
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
  }
  unsigned char *dp = d;
  uint64_t w = (unsigned char)c * ONES;
  for (; n >= 8; n -= 8, dp += 8)
    *(word *)dp = w;
  while (n--)
    *dp++ = (unsigned char)c;
  return r;
}

HIDDEN int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  for (; n >= 8 && *(const word *)p == *(const word *)q; n -= 8, p += 8, q += 8)
    ;
  for (; n; n--, p++, q++)
    if (*p != *q)
      return *p - *q;
  return 0;
}

/* clang turns memcmp(...) == 0 into bcmp. */
HIDDEN int bcmp(const void *a, const void *b, size_t n) { return memcmp(a, b, n); }

HIDDEN void *memchr(const void *s, int c, size_t n) {
  const unsigned char *p = s;
  for (; n; n--, p++)
    if (*p == (unsigned char)c)
      return (void *)p;
  return NULL;
}

/* 16 bytes at a time from an aligned address (SSE2, which every x86-64
 * has): an aligned block never crosses into a page the string does not
 * reach.  Bytes before s in the first block are masked off. */
HIDDEN size_t strnlen(const char *s, size_t max) {
  const char *p = (const char *)((uintptr_t)s & ~(uintptr_t)15);
  unsigned skip = (unsigned)(s - p);
  __m128i z = _mm_setzero_si128();
  unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const __m128i *)p), z));
  m &= ~0u << skip;
  for (;;) {
    if (m) {
      size_t n = (size_t)(p - s) + (size_t)__builtin_ctz(m);
      return n < max ? n : max;
    }
    p += 16;
    if ((size_t)(p - s) >= max)
      return max;
    m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_load_si128((const __m128i *)p), z));
  }
}

HIDDEN size_t strlen(const char *s) { return strnlen(s, SIZE_MAX); }

HIDDEN char *strchr(const char *s, int c) {
  for (;; s++) {
    if (*s == (char)c)
      return (char *)s;
    if (!*s)
      return NULL;
  }
}

/* Can 16 bytes be read at p and q without crossing into another page? */
static int block_ok(const char *p, const char *q) {
  return ((uintptr_t)p & 4095) <= 4080 && ((uintptr_t)q & 4095) <= 4080;
}

HIDDEN int strncmp(const char *a, const char *b, size_t n) {
  for (; n >= 16 && block_ok(a, b); n -= 16, a += 16, b += 16) {
    __m128i x = _mm_loadu_si128((const block *)a), y = _mm_loadu_si128((const block *)b);
    __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_setzero_si128()),
                               _mm_xor_si128(_mm_cmpeq_epi8(x, y), _mm_set1_epi8(-1)));
    if (_mm_movemask_epi8(bad))
      break;
  }
  for (; n >= 8 && block_ok(a, b); n -= 8, a += 8, b += 8) {
    uint64_t w = *(const word *)a;
    if (w != *(const word *)b || has_zero(w))
      break;
  }
  for (; n; n--, a++, b++)
    if (*a != *b || !*a)
      return (unsigned char)*a - (unsigned char)*b;
  return 0;
}

HIDDEN int strcmp(const char *a, const char *b) { return strncmp(a, b, SIZE_MAX); }

HIDDEN size_t strcspn(const char *s, const char *reject) {
  size_t n = 0;
  for (; s[n]; n++)
    for (const char *r = reject; *r; r++)
      if (s[n] == *r)
        return n;
  return n;
}

HIDDEN char *strncpy(char *d, const char *s, size_t n) {
  size_t i = 0;
  for (; i < n && s[i]; i++)
    d[i] = s[i];
  for (; i < n; i++)
    d[i] = 0;
  return d;
}

/* libc's contract (-1 and errno) is not kept: errno is libc's.  Callers in
 * the agent only test for 0 or use the value. */
HIDDEN int clock_gettime(clockid_t clk, struct timespec *ts) {
  return tsys_clock_gettime(clk, ts) < 0 ? -1 : 0;
}

HIDDEN int sched_getcpu(void) {
  int c = tsys_getcpu();
  return c < 0 ? -1 : c;
}

HIDDEN long syscall(long nr, ...) {
  va_list ap;
  va_start(ap, nr);
  long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
  long d = va_arg(ap, long), e = va_arg(ap, long), f = va_arg(ap, long);
  va_end(ap);
  long r = tsys_call(nr, a, b, c, d, e, f);
  return r < 0 && r > -4096 ? -1 : r;
}
