/* QMP client and QEMU trace events.
 *
 * First against a fake QMP server on a socket pair of our own (greeting,
 * events interleaved with answers, noise bytes, escapes), then against the
 * test VM (tools/vm, one boot with the disk workload): query-status, an HMP
 * command, and qtrace turning Disk_IOStart/Disk_IOFinish/In/Out on and
 * seeing them fire with plausible arguments.  Without the VM image (no
 * network for the kernel package) the VM part is skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/qmp.h"
#include "guest/qtrace.h"

/* ---- JSON helpers ---- */

static void test_json(void **state) {
  (void)state;
  char s[64];
  int64_t v;
  const char *j = "{\"a\": 1, \"b\" : {\"c\": \"x\\\"y\\u00e9\\n\", \"d\": [1, {\"e\": 2}]},"
                  " \"t\": true, \"n\": -42}";
  assert_int_equal(qmp_json_str(j, "b.c", s, sizeof s), 0);
  assert_string_equal(s, "x\"y\xc3\xa9\n");
  assert_int_equal(qmp_json_int(j, "a", &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(qmp_json_int(j, "n", &v), 0);
  assert_int_equal(v, -42);
  assert_int_equal(qmp_json_int(j, "t", &v), 0);
  assert_int_equal(v, 1);
  assert_int_equal(qmp_json_str(j, "b.e", s, sizeof s), -1); /* not at that level */
  assert_int_equal(qmp_json_str(j, "zz", s, sizeof s), -1);
  assert_int_equal(qmp_json_str(j, "a", s, sizeof s), -1); /* not a string */
  /* truncation keeps a terminated prefix */
  assert_int_equal(qmp_json_str("{\"k\":\"abcdef\"}", "k", s, 4), 0);
  assert_string_equal(s, "abc");
  /* malformed input is refused, never overrun */
  const char *bad[] = {"", "{", "{\"k\"", "{\"k\":", "{\"k\":\"abc", "[1,2]", "{\"k\" 1}",
                       "{\"k\":\"\\u12\"}", "\x01\x02\xff", "{\"k\":\"a\\"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    qmp_json_str(bad[i], "k", s, sizeof s);
    qmp_json_int(bad[i], "k", &v);
  }
  /* random bytes and random cuts of a good message */
  unsigned seed = 12345;
  char rnd[200];
  for (int i = 0; i < 20000; i++) {
    size_t n = (seed = seed * 1103515245 + 12345) >> 16 & 127;
    for (size_t k = 0; k < n; k++) {
      seed = seed * 1103515245 + 12345;
      rnd[k] = "{}[]\":,\\u0a1 x\xff"[(seed >> 16) % 15];
    }
    rnd[n] = 0;
    qmp_json_str(rnd, "k", s, sizeof s);
    qmp_json_int(rnd, "k.k", &v);
    snprintf(rnd, sizeof rnd, "%.*s", (int)(i % (int)strlen(j)), j);
    qmp_json_str(rnd, "b.c", s, sizeof s);
  }
  char q[64] = "";
  qmp_json_quote(q, sizeof q, "a\"b\\c\n");
  assert_string_equal(q, "\"a\\\"b\\\\c\\u000a\"");
}

/* ---- a fake QMP server ---- */

struct fake {
  char path[108];
  int lfd;
};

static void send_str(int fd, const char *s) {
  size_t n = strlen(s);
  while (n) {
    ssize_t w = write(fd, s, n);
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/* Reads one line (a command) from the client. */
static int read_cmd(int fd, char *buf, size_t cap) {
  size_t n = 0;
  char c;
  while (n + 1 < cap && read(fd, &c, 1) == 1) {
    if (c == '\n') break;
    buf[n++] = c;
  }
  buf[n] = 0;
  return (int)n;
}

static void *fake_server(void *arg) {
  struct fake *f = arg;
  int fd = accept(f->lfd, NULL, NULL);
  if (fd < 0) return NULL;
  char cmd[4096];
  /* noise before the greeting, greeting split across writes */
  send_str(fd, "\xff\x00garbage ");
  send_str(fd, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, ");
  usleep(20000);
  send_str(fd, "\"major\": 7}}, \"capabilities\": []}}\r\n");
  read_cmd(fd, cmd, sizeof cmd);
  send_str(fd, strstr(cmd, "qmp_capabilities") ? "{\"return\": {}}\r\n" : "{\"error\":{}}\r\n");
  /* query-status: two events arrive before the answer */
  read_cmd(fd, cmd, sizeof cmd);
  send_str(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\"}\r\n"
               "{\"event\": \"RESET\", \"data\": {\"guest\": true, \"reason\": \"guest-reset\"}}\r\n"
               "{\"return\": {\"status\": \"paused\", \"running\": false}}\r\n");
  /* human-monitor-command: echo the command line back, with escapes */
  read_cmd(fd, cmd, sizeof cmd);
  char line[64] = "";
  qmp_json_str(cmd, "arguments.command-line", line, sizeof line);
  char said[128], out[512] = "{\"return\": ";
  snprintf(said, sizeof said, "you said \"%s\"\r\n", line);
  qmp_json_quote(out, sizeof out, said);
  out[strlen(out) - 1] = 0; /* reopen the string: add an escape of our own */
  strcat(out, "RIP=\\u0030\\r\\n\"}\r\n");
  send_str(fd, out);
  /* an unknown command gets an error */
  read_cmd(fd, cmd, sizeof cmd);
  send_str(fd, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"no such command\"}}\r\n");
  /* then an event on its own, and the end */
  usleep(50000);
  send_str(fd, "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": \"guest-shutdown\"}}");
  usleep(50000);
  close(fd);
  return NULL;
}

static void test_fake_server(void **state) {
  (void)state;
  struct fake f = {0};
  snprintf(f.path, sizeof f.path, "/tmp/vprobe-test-qmp.%d", (int)getpid());
  unlink(f.path);
  f.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  strcpy(sa.sun_path, f.path);
  assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(f.lfd, 1), 0);
  pthread_t th;
  pthread_create(&th, NULL, fake_server, &f);

  char err[256], reply[512], name[64];
  qmp *q = qmp_open(f.path, err, sizeof err);
  assert_non_null(q);
  assert_true(qmp_fd(q) >= 0);
  assert_int_equal(qmp_cmd(q, "{\"execute\":\"query-status\"}", reply, sizeof reply), 0);
  char status[32];
  assert_int_equal(qmp_json_str(reply, "status", status, sizeof status), 0);
  assert_string_equal(status, "paused");
  assert_int_equal(qmp_hmp(q, "info \"regs\"", reply, sizeof reply), 0);
  assert_string_equal(reply, "you said \"info \"regs\"\"\r\nRIP=0\r\n");
  assert_int_equal(qmp_cmd(q, "{\"execute\":\"nope\"}", reply, sizeof reply), 1);
  assert_non_null(strstr(qmp_error(q), "no such command"));
  /* the queued events come out in order, then the one sent alone */
  assert_int_equal(qmp_next_event(q, name, sizeof name, 0), 1);
  assert_string_equal(name, "STOP");
  assert_int_equal(qmp_next_event(q, name, sizeof name, 0), 1);
  assert_string_equal(name, "RESET");
  char reason[32];
  assert_int_equal(qmp_json_str(qmp_event_json(q), "data.reason", reason, sizeof reason), 0);
  assert_string_equal(reason, "guest-reset");
  assert_int_equal(qmp_next_event(q, name, sizeof name, 2000), 1);
  assert_string_equal(name, "SHUTDOWN");
  assert_int_equal(qmp_next_event(q, name, sizeof name, 2000), -1); /* closed */
  assert_int_equal(qmp_cmd(q, "{\"execute\":\"query-status\"}", reply, sizeof reply), -1);
  qmp_close(q);
  pthread_join(th, NULL);
  close(f.lfd);
  unlink(f.path);
  assert_null(qmp_open(f.path, err, sizeof err));
  assert_non_null(strstr(err, f.path));
}

static void test_known(void **state) {
  (void)state;
  assert_int_equal(qtrace_known("In"), 1);
  assert_int_equal(qtrace_known("VMM:Out"), 1);
  assert_int_equal(qtrace_known("Disk_IOStart"), 1);
  assert_int_equal(qtrace_known("Guest_TripleFault"), 1);
  assert_int_equal(qtrace_known("VMM:TRACE:virtio_blk_req_complete"), 1);
  assert_int_equal(qtrace_known("VMM:TRACE:bad name"), 0);
  assert_int_equal(qtrace_known("TRACE:x"), 0);
  assert_int_equal(qtrace_known("HV_Exit"), 2);
  assert_int_equal(qtrace_known("Guest_IRQ"), 0);
}

/* ---- the test VM ---- */

static char top[512], vmdir[600];

static int run(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_vm(void **state) {
  (void)state;
  char path[700], err[256], reply[8192];
  snprintf(path, sizeof path, "%s/qmp.sock", vmdir);
  qmp *q = qmp_open(path, err, sizeof err);
  assert_non_null(q);
  assert_int_equal(qmp_cmd(q, "{\"execute\":\"query-status\"}", reply, sizeof reply), 0);
  char status[32];
  assert_int_equal(qmp_json_str(reply, "status", status, sizeof status), 0);
  assert_string_equal(status, "running");
  assert_int_equal(qmp_hmp(q, "info registers", reply, sizeof reply), 0);
  assert_non_null(strstr(reply, "RIP="));
  assert_non_null(strstr(reply, "CR3="));
  assert_int_equal(qmp_cmd(q, "{\"execute\":\"no-such-command\"}", reply, sizeof reply), 1);

  const char *probes[] = {"Disk_IOStart", "VMM:Disk_IOFinish", "In", "Out",
                          "VMM:TRACE:virtio_blk_handle_write", "Guest_TripleFault"};
  assert_null(qtrace_start(q, (const char *[]){"HV_Exit"}, 1, err, sizeof err));
  assert_non_null(strstr(err, "KVM"));
  assert_null(qtrace_start(q, (const char *[]){"Bogus"}, 1, err, sizeof err));
  qtrace *t = qtrace_start(q, probes, 6, err, sizeof err);
  if (!t) fail_msg("qtrace_start: %s", err);
  int nstart = 0, nfinish = 0, nin = 0, nout = 0, nraw = 0, matched = 0, reads = 0, writes = 0;
  int serial_out = 0;
  uint64_t ids[64];
  int nids = 0;
  qtrace_event ev;
  for (int i = 0; i < 200000 && (nstart < 20 || nfinish < 20 || !serial_out || !nin || !nraw); i++) {
    int r = qtrace_next(t, &ev, 8000);
    if (r <= 0) break;
    if (strcmp(ev.probe, "Disk_IOStart") == 0) {
      nstart++;
      assert_int_equal(ev.nargs, 8);
      assert_int_equal(ev.args[0], QTRACE_ADAPTER_VIRTIO);
      assert_true(ev.args[3] <= 1);
      ev.args[3] ? reads++ : writes++;
      assert_true(ev.args[4] != 0);
      assert_true(ev.args[5] + ev.args[6] <= 8192); /* the 4 MiB disk */
      assert_true(ev.args[6] > 0 && ev.args[6] <= 8192);
      if (nids < 64) ids[nids++] = ev.args[4];
    } else if (strcmp(ev.probe, "VMM:Disk_IOFinish") == 0) {
      nfinish++;
      assert_int_equal(ev.nargs, 9);
      assert_int_equal(ev.args[8], 0); /* virtio status: ok */
      for (int k = 0; k < nids; k++)
        if (ids[k] == ev.args[4]) { matched++; break; }
    } else if (strcmp(ev.probe, "In") == 0) {
      nin++;
      assert_true(ev.args[0] <= 0xffff);
      assert_true(ev.args[1] == 1 || ev.args[1] == 2 || ev.args[1] == 4);
    } else if (strcmp(ev.probe, "Out") == 0) {
      nout++;
      assert_true(ev.args[0] <= 0xffff);
      if (ev.args[0] == 0x3f8) serial_out++; /* the console: "wl round N" */
    } else if (strcmp(ev.probe, "VMM:TRACE:virtio_blk_handle_write") == 0) {
      nraw++;
      assert_true(ev.nargs >= 4); /* vdev, req, sector, nsectors */
    } else {
      fail_msg("unexpected probe %s", ev.probe);
    }
  }
  printf("# Disk_IOStart %d (%d reads, %d writes), Disk_IOFinish %d (%d matched), In %d, "
         "Out %d (%d on 0x3f8), raw %d, dropped %llu\n",
         nstart, reads, writes, nfinish, matched, nin, nout, serial_out, nraw,
         (unsigned long long)qtrace_dropped(t));
  assert_true(nstart >= 20);
  assert_true(reads > 0 && writes > 0);
  assert_true(nfinish >= 20);
  assert_true(matched > 0);
  assert_true(nin > 0);
  assert_true(serial_out > 0);
  assert_true(nraw > 0);
  qtrace_stop(t);
  /* logging is off again and the monitor still answers */
  assert_int_equal(qmp_cmd(q, "{\"execute\":\"query-status\"}", reply, sizeof reply), 0);
  qmp_close(q);
}

/* The guest reboots by triple fault when its workload ends (--reset, and
 * reboot=t on its command line). */
static void test_triple(void **state) {
  (void)state;
  char path[700], err[256];
  snprintf(path, sizeof path, "%s/qmp.sock", vmdir);
  qmp *q = qmp_open(path, err, sizeof err);
  assert_non_null(q);
  qtrace *t = qtrace_start(q, (const char *[]){"Guest_TripleFault"}, 1, err, sizeof err);
  if (!t) fail_msg("qtrace_start: %s", err);
  qtrace_event ev;
  assert_int_equal(qtrace_next(t, &ev, 60000), 1);
  assert_string_equal(ev.probe, "Guest_TripleFault");
  assert_int_equal(ev.nargs, 0);
  qtrace_stop(t);
  qmp_close(q);
}

int main(void) {
  const char *t = getenv("VPROBE_TOP");
  snprintf(top, sizeof top, "%s", t ? t : ".");
  const struct CMUnitTest unit[] = {
      cmocka_unit_test(test_json),
      cmocka_unit_test(test_fake_server),
      cmocka_unit_test(test_known),
  };
  int failed = cmocka_run_group_tests(unit, NULL, NULL);
  if (failed) return 1;

  snprintf(vmdir, sizeof vmdir, "/tmp/vprobe-test-qmp-vm.%d", (int)getpid());
  /* The disk workload, then a reboot by triple fault (--reset). */
  int rc = run("%s/tools/vm start %s --workload disk --secs 10 --reset > %s.start 2>&1", top,
               vmdir, vmdir);
  if (rc == 77) {
    printf("skipped: the test VM cannot be built (kernel package unavailable)\n");
    return 77;
  }
  if (rc != 0) {
    run("cat %s.start; tail -5 %s/console.log", vmdir, vmdir);
    printf("tools/vm start failed\n");
    return 1;
  }
  const struct CMUnitTest vm[] = {cmocka_unit_test(test_vm), cmocka_unit_test(test_triple)};
  failed = cmocka_run_group_tests(vm, NULL, NULL);

  run("%s/tools/vm stop %s; rm -rf %s %s.start", top, vmdir, vmdir, vmdir);
  return failed ? 1 : 0;
}
