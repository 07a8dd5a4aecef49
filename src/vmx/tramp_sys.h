/*
 * tramp_sys.h - system calls without libc, for the code that runs inside a
 * probed process where libc itself may be probed: the signal handlers, the
 * probe hit path and the patch windows (a libc function called there may be
 * a trap site, or carry an int3 half-way through a commit).  Raw `syscall`
 * instructions; the clock and the CPU number through the vDSO (found once by
 * tsys_init), with a raw system call when there is none.
 *
 * Results are the kernel's: >= 0, or -errno.  errno is never touched.
 */
#ifndef TRAMP_SYS_H
#define TRAMP_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

long tsys_call(long nr, long a, long b, long c, long d, long e, long f);
#define tsys0(nr) tsys_call(nr, 0, 0, 0, 0, 0, 0)
#define tsys1(nr, a) tsys_call(nr, (long)(a), 0, 0, 0, 0, 0)
#define tsys2(nr, a, b) tsys_call(nr, (long)(a), (long)(b), 0, 0, 0, 0)
#define tsys3(nr, a, b, c) tsys_call(nr, (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* Find the vDSO's clock_gettime and getcpu (from a normal context: it
 * reads the auxiliary vector).  Safe to call more than once. */
void tsys_init(void);
int tsys_clock_gettime(clockid_t clk, struct timespec *ts); /* 0 or -errno */
int tsys_getcpu(void);                                      /* CPU or -errno */
pid_t tsys_gettid(void);
pid_t tsys_getpid(void);
int tsys_tgkill(pid_t pid, pid_t tid, int sig);
int tsys_mprotect(uint64_t addr, size_t len, int prot);
void tsys_nanosleep(uint64_t ns);
int tsys_open(const char *path, int flags);
long tsys_read(int fd, void *buf, size_t n);
long tsys_write(int fd, const void *buf, size_t n);
int tsys_close(int fd);
void *tsys_mmap(size_t len, int prot); /* anonymous, private, no reserve; NULL on error */
/* Set a signal's action to SIG_DFL (no libc sigaction: it may be probed). */
void tsys_sig_default(int sig);
/* Kill this thread with sig, its action the default, however it is masked. */
__attribute__((noreturn)) void tsys_die(int sig);

/* Decimal and hexadecimal numbers for hand-rolled parsing: skip blanks,
 * read the number, *end after it (NULL: none read). */
long long tsys_strtoll(const char *s, const char **end, int base);

#endif
