/*
 * tramp_sys.c - system calls without libc (see tramp_sys.h).
 *
 * Global state: the two vDSO entry points, found once and never changed
 * after (a NULL one means "use the system call").
 */
#include "vmx/tramp_sys.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>

typedef int (*vdso_clock_fn)(clockid_t, struct timespec *);
typedef long (*vdso_cpu_fn)(unsigned *, unsigned *, void *);
static vdso_clock_fn vdso_clock;
static vdso_cpu_fn vdso_cpu;

long tsys_call(long nr, long a, long b, long c, long d, long e, long f) {
  long ret;
  register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

static int same(const char *a, const char *b) {
  while (*a && *a == *b)
    a++, b++;
  return *a == *b;
}

/* The vDSO's base, from /proc/self/auxv (no getauxval: keep libc out). */
static uint64_t vdso_base(void) {
  int fd = tsys_open("/proc/self/auxv", O_RDONLY);
  if (fd < 0)
    return 0;
  uint64_t kv[2], base = 0;
  while (tsys_read(fd, kv, sizeof kv) == (long)sizeof kv && kv[0] != AT_NULL)
    if (kv[0] == AT_SYSINFO_EHDR)
      base = kv[1];
  tsys_close(fd);
  return base;
}

/* A symbol of the vDSO image: it is mapped whole, section headers too. */
static void *vdso_sym(uint64_t base, const char *name) {
  const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
  if (eh->e_ident[EI_MAG0] != ELFMAG0 || eh->e_ident[EI_MAG1] != ELFMAG1 ||
      eh->e_ident[EI_CLASS] != ELFCLASS64 || !eh->e_shoff)
    return NULL;
  uint64_t bias = base;
  const Elf64_Phdr *ph = (const Elf64_Phdr *)(base + eh->e_phoff);
  for (int i = 0; i < eh->e_phnum; i++)
    if (ph[i].p_type == PT_LOAD) {
      bias = base + ph[i].p_offset - ph[i].p_vaddr;
      break;
    }
  const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; i++) {
    if (sh[i].sh_type != SHT_DYNSYM || !sh[i].sh_entsize || sh[i].sh_link >= eh->e_shnum)
      continue;
    const Elf64_Sym *sym = (const Elf64_Sym *)(base + sh[i].sh_offset);
    const char *str = (const char *)(base + sh[sh[i].sh_link].sh_offset);
    for (uint64_t k = 0; k < sh[i].sh_size / sh[i].sh_entsize; k++)
      if (sym[k].st_value && sym[k].st_shndx != SHN_UNDEF && same(str + sym[k].st_name, name))
        return (void *)(bias + sym[k].st_value);
  }
  return NULL;
}

void tsys_init(void) {
  if (__atomic_load_n(&vdso_clock, __ATOMIC_ACQUIRE))
    return;
  uint64_t base = vdso_base();
  if (!base)
    return;
  void *cpu = vdso_sym(base, "__vdso_getcpu"), *clk = vdso_sym(base, "__vdso_clock_gettime");
  __atomic_store_n(&vdso_cpu, (vdso_cpu_fn)cpu, __ATOMIC_RELEASE);
  __atomic_store_n(&vdso_clock, (vdso_clock_fn)clk, __ATOMIC_RELEASE);
}

int tsys_clock_gettime(clockid_t clk, struct timespec *ts) {
  vdso_clock_fn f = __atomic_load_n(&vdso_clock, __ATOMIC_ACQUIRE);
  return f ? f(clk, ts) : (int)tsys2(SYS_clock_gettime, clk, ts);
}

int tsys_getcpu(void) {
  unsigned cpu = 0;
  vdso_cpu_fn f = __atomic_load_n(&vdso_cpu, __ATOMIC_ACQUIRE);
  long r = f ? f(&cpu, NULL, NULL) : tsys3(SYS_getcpu, &cpu, 0, 0);
  return r < 0 ? (int)r : (int)cpu;
}

pid_t tsys_gettid(void) { return (pid_t)tsys0(SYS_gettid); }
pid_t tsys_getpid(void) { return (pid_t)tsys0(SYS_getpid); }
int tsys_tgkill(pid_t pid, pid_t tid, int sig) { return (int)tsys3(SYS_tgkill, pid, tid, sig); }
int tsys_mprotect(uint64_t addr, size_t len, int prot) {
  return (int)tsys3(SYS_mprotect, addr, len, prot);
}

void tsys_nanosleep(uint64_t ns) {
  struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
  tsys2(SYS_nanosleep, &ts, 0);
}

int tsys_open(const char *path, int flags) {
  return (int)tsys3(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC);
}
long tsys_read(int fd, void *buf, size_t n) { return tsys3(SYS_read, fd, buf, n); }
long tsys_write(int fd, const void *buf, size_t n) { return tsys3(SYS_write, fd, buf, n); }
int tsys_close(int fd) { return (int)tsys1(SYS_close, fd); }

void *tsys_mmap(size_t len, int prot) {
  long p = tsys_call(SYS_mmap, 0, (long)len, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
  return p < 0 && p > -4096 ? NULL : (void *)p;
}

/* The kernel's struct sigaction: handler, flags, restorer, mask. */
struct ksigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

void tsys_sig_default(int sig) {
  struct ksigaction ka = {SIG_DFL, 0, 0, 0};
  tsys_call(SYS_rt_sigaction, sig, (long)&ka, 0, 8, 0, 0);
}

void tsys_die(int sig) {
  tsys_sig_default(sig);
  uint64_t m = 1ull << (sig - 1);
  tsys_call(SYS_rt_sigprocmask, SIG_UNBLOCK, (long)&m, 0, 8, 0, 0);
  tsys_tgkill(tsys_getpid(), tsys_gettid(), sig);
  for (;;) /* not reached: the signal is fatal */
    tsys1(SYS_exit_group, 128 + sig);
}

long long tsys_strtoll(const char *s, const char **end, int base) {
  while (*s == ' ' || *s == '\t')
    s++;
  int neg = *s == '-';
  s += neg || *s == '+';
  if (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
    s += 2;
  unsigned long long v = 0;
  const char *start = s;
  for (;; s++) {
    int d = *s >= '0' && *s <= '9'   ? *s - '0'
            : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
            : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                     : 99;
    if (d >= base)
      break;
    v = v * (unsigned)base + (unsigned)d;
  }
  if (end)
    *end = s == start ? NULL : s;
  return neg ? -(long long)v : (long long)v;
}
