/* forker N: calls work N times, forks; the child calls work N times and
 * exits 0 if its copy of work's first byte is what it was before probing
 * (passed as argv[2], in hex; "-" skips the check); the parent calls work N
 * more times, waits, and exits with the child's status. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) long work(long i, long k) {
  __asm__ volatile("");
  return i + k;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000, sum = 0;
  for (long i = 0; i < n; i++)
    sum += work(i, 1);
  pid_t pid = fork();
  if (pid == 0) {
    for (long i = 0; i < n; i++)
      sum += work(i, 1);
    unsigned first = *(volatile unsigned char *)(void *)work;
    printf("child first byte %02x\n", first);
    if (argc > 2 && argv[2][0] != '-' && first != strtoul(argv[2], NULL, 16))
      return 1;
    return 0;
  }
  for (long i = 0; i < n; i++)
    sum += work(i, 1);
  int st = 0;
  waitpid(pid, &st, 0);
  printf("parent sum %ld\n", sum);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}
