/*
 * test_agent_libc - the agent's own string and memory functions
 * (src/vmx/agent_libc.c, built in under other names) against libc's, at
 * every alignment and length near a page end (where a word-at-a-time read
 * could fault), plus its clock, CPU number and syscall.
 */
#define memcpy a_memcpy
#define memmove a_memmove
#define memset a_memset
#define memcmp a_memcmp
#define bcmp a_bcmp
#define memchr a_memchr
#define strlen a_strlen
#define strnlen a_strnlen
#define strchr a_strchr
#define strcmp a_strcmp
#define strncmp a_strncmp
#define strcspn a_strcspn
#define strncpy a_strncpy
#define clock_gettime a_clock_gettime
#define sched_getcpu a_sched_getcpu
#define syscall a_syscall
#include "vmx/agent_libc.c"
#undef memcpy
#undef memmove
#undef memset
#undef memcmp
#undef bcmp
#undef memchr
#undef strlen
#undef strnlen
#undef strchr
#undef strcmp
#undef strncmp
#undef strcspn
#undef strncpy
#undef clock_gettime
#undef sched_getcpu
#undef syscall

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fails;
#define CHECK(c, ...)                                                                        \
  do {                                                                                       \
    if (!(c)) {                                                                              \
      if (fails++ < 10)                                                                      \
        printf("FAIL %s:%d: ", __FILE__, __LINE__), printf(__VA_ARGS__), printf("\n");       \
    }                                                                                        \
  } while (0)

static int sign(int x) { return (x > 0) - (x < 0); }

int main(void) {
  /* two pages, the second inaccessible: strings end right at the edge */
  char *pg = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  char *pg2 = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (pg == MAP_FAILED || pg2 == MAP_FAILED || mprotect(pg + 4096, 4096, PROT_NONE) ||
      mprotect(pg2 + 4096, 4096, PROT_NONE))
    return 77;
  for (int len = 0; len < 80; len++)
    for (int end = 0; end < 20; end++) {
      char *s = pg + 4096 - end - len - 1, *t = pg2 + 4096 - (len + end) % 23 - len - 1;
      for (int i = 0; i < len; i++)
        s[i] = t[i] = (char)('a' + (i * 7 + len) % 26);
      s[len] = t[len] = 0;
      CHECK(a_strlen(s) == (size_t)len, "strlen %d", len);
      for (size_t max = 0; max < (size_t)len + 3; max += 5)
        CHECK(a_strnlen(s, max) == strnlen(s, max), "strnlen %d %zu", len, max);
      CHECK(a_strcmp(s, t) == 0 && a_strncmp(s, t, (size_t)len + 9) == 0, "strcmp eq %d", len);
      for (int k = 0; k < len; k += 3) {
        char o = t[k];
        t[k] = (char)(o + 1);
        CHECK(sign(a_strcmp(s, t)) == sign(strcmp(s, t)), "strcmp %d %d", len, k);
        CHECK(sign(a_strncmp(s, t, (size_t)k)) == 0, "strncmp prefix %d %d", len, k);
        CHECK(sign(a_strncmp(s, t, (size_t)k + 1)) == sign(strncmp(s, t, (size_t)k + 1)),
              "strncmp %d %d", len, k);
        CHECK(sign(a_memcmp(s, t, (size_t)len)) == sign(memcmp(s, t, (size_t)len)),
              "memcmp %d %d", len, k);
        CHECK(!a_bcmp(s, t, (size_t)len) == !memcmp(s, t, (size_t)len), "bcmp %d %d", len, k);
        t[k] = o;
      }
      if (len) {
        CHECK(a_strchr(s, s[len / 2]) == strchr(s, s[len / 2]), "strchr %d", len);
        CHECK(a_memchr(s, s[len - 1], (size_t)len) == memchr(s, s[len - 1], (size_t)len),
              "memchr %d", len);
        CHECK(a_strcspn(s, "xyz") == strcspn(s, "xyz"), "strcspn %d", len);
      }
      CHECK(a_strchr(s, 0) == s + len, "strchr nul %d", len);
    }
  char a[300], b[300], c[300];
  for (int n = 0; n < 260; n += 7)
    for (int off = 0; off < 9; off++) {
      for (int i = 0; i < 300; i++)
        a[i] = (char)i, b[i] = c[i] = (char)~i;
      a_memcpy(b + off, a + 1, (size_t)n);
      memcpy(c + off, a + 1, (size_t)n);
      CHECK(!memcmp(b, c, 300), "memcpy %d %d", n, off);
      a_memset(b + off, 'q', (size_t)n);
      memset(c + off, 'q', (size_t)n);
      CHECK(!memcmp(b, c, 300), "memset %d %d", n, off);
      memcpy(b, a, 300), memcpy(c, a, 300);
      a_memmove(b + off, b + 3, (size_t)n);
      memmove(c + off, c + 3, (size_t)n);
      CHECK(!memcmp(b, c, 300), "memmove up %d %d", n, off);
      a_memmove(b + 3, b + off, (size_t)n);
      memmove(c + 3, c + off, (size_t)n);
      CHECK(!memcmp(b, c, 300), "memmove down %d %d", n, off);
      a_strncpy(b, "hello", (size_t)n % 12);
      strncpy(c, "hello", (size_t)n % 12);
      CHECK(!memcmp(b, c, 300), "strncpy %d", n);
    }
  char big[2000], big2[2000];
  memset(big2, 1, sizeof big2);
  a_memset(big, 1, sizeof big);
  CHECK(!memcmp(big, big2, sizeof big), "memset big");
  tsys_init();
  struct timespec x, y;
  timespec_get(&x, TIME_UTC); /* libc's clock_gettime is renamed above */
  CHECK(a_clock_gettime(CLOCK_REALTIME, &y) == 0, "clock");
  long long d = (long long)(y.tv_sec - x.tv_sec) * 1000000000 + (y.tv_nsec - x.tv_nsec);
  CHECK(d >= 0 && d < 1000000000, "clock %lld ns apart", d);
  CHECK(a_sched_getcpu() >= 0 && a_sched_getcpu() < 4096, "getcpu");
  CHECK(a_syscall(SYS_gettid) == gettid(), "syscall gettid");
  CHECK(a_syscall(SYS_close, -1) == -1, "syscall error");
  printf(fails ? "%d failed\n" : "ok\n", fails);
  return fails != 0;
}
