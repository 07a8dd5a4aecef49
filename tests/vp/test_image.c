/* test_image.c - program images: the bytes round-trip, and corrupted or
 * truncated bytes are rejected or, if they still form a valid image, run
 * without reading out of bounds (run this one under ASan: make san). */
#include "vptest.h"
#include "vp/image.h"

static const char *prog =
  "(definteger n 7)(definteger sh 0 :perhost)(defstring s \"init\")"
  "(defaggr a 1 1)(defbag b 4)"
  "(defun f (x (string t)) (setstr t \"f\") (cond ((> x 2) (+ x (f (- x 1) t)))"
  " (1 x)))"
  "(defun g () (sprintf s \"%d-%s\" n PROBENAME) s)"
  "(vprobe VMXLoad (let ((int i 0) (string u \"z\")) (while (< i 5)"
  " (setint i (+ i 1)) (aggr a (i) (u) i) (try (/ 1 (- i 3)) (catch ()"
  " (printf \"c\"))))) (printf \"%d %s %s\\n\" (f 4 s) (g) s)"
  " (fetchadd sh 2) (baginsert b 1 2) (foreach b n n (logint n)))"
  "(vprobe VMX1Hz (logaggr a) (try (load 8 0) (catch () 0)) (load 4 8))";

static void round_trip(void **state) {
  (void)state;
  vt *t = vt_ok(prog);
  size_t len;
  const void *bytes = vp_image_bytes(t->img, &len);
  vp_image *copy = vp_image_from_bytes(bytes, len);
  assert_non_null(copy);
  size_t len2;
  const void *bytes2 = vp_image_bytes(copy, &len2);
  assert_int_equal(len, len2);
  assert_memory_equal(bytes, bytes2, len);
  assert_int_equal(vp_image_nprobes(copy), 2);
  assert_string_equal(vp_image_probe(copy, 1), "VMX1Hz");
  assert_int_equal(vp_image_ndefs(copy), 5);
  char buf[128];
  assert_string_equal(vp_image_def(copy, 0, buf, sizeof buf),
                      "(definteger n 7)");
  assert_string_equal(vp_image_def(copy, 2, buf, sizeof buf),
                      "(defstring s \"init\")");
  /* The copy runs like the original. */
  vp_image *orig = t->img;
  t->img = copy;
  assert_int_equal(vt_fire(t, "VMXLoad"), VP_EXC_NONE);
  assert_string_equal(t->out, "c9 7-VMXLoad 7-VMXLoad\n1");
  t->img = orig;
  vp_image_free(copy);
  vt_free(t);
}

static int no_read(void *self, int model, uint64_t addr, void *buf,
                   size_t n) {
  (void)self, (void)model, (void)addr, (void)buf, (void)n;
  return -1;
}

static void corrupted(void **state) {
  (void)state;
  vt *t = vt_ok(prog);
  size_t len;
  const unsigned char *bytes = vp_image_bytes(t->img, &len);
  unsigned char *buf = malloc(len);
  /* Every truncation is rejected. */
  for (size_t n = 0; n < len; n++)
    assert_null(vp_image_from_bytes(bytes, n));
  /* Random byte flips: rejected, or safe to run. */
  srand(12345);
  int accepted = 0, rejected = 0;
  vp_target tg = {NULL, NULL, no_read, NULL};
  for (int round = 0; round < 3000; round++) {
    memcpy(buf, bytes, len);
    int flips = 1 + rand() % 3;
    for (int k = 0; k < flips; k++)
      buf[(size_t)rand() % len] ^= (unsigned char)(1 + rand() % 255);
    vp_image *img = vp_image_from_bytes(buf, len);
    if (!img) {
      rejected++;
      continue;
    }
    accepted++;
    vt *u = calloc(1, sizeof *u);
    u->img = img;
    vt_space(u);
    for (int p = 0; p < vp_image_nprobes(img); p++) {
      vp_fire f;
      memset(&f, 0, sizeof f);
      f.probe = p;
      f.target = &tg;
      vp_run(u->th, img, &f);
    }
    vt_drain(u);
    vt_free(u);
  }
  print_message("corruption: %d rejected, %d accepted and ran\n", rejected,
                accepted);
  assert_true(rejected > 1000);
  /* Targeted: every code word in turn made a jump far away. */
  const vpi_header *hdr = (const vpi_header *)bytes;
  uint32_t off_code = hdr->off_code, ncode = hdr->ncode;
  int bad_jumps = 0;
  for (uint32_t i = 0; i < ncode; i++) {
    memcpy(buf, bytes, len);
    uint32_t w;
    memcpy(&w, buf + off_code + 4 * i, 4);
    if ((w & 0xff) != OP_JMP) /* or an operand word that looks like one */
      continue;
    w = (w & 0xff) | 0xfff000u << 8;
    memcpy(buf + off_code + 4 * i, &w, 4);
    assert_null(vp_image_from_bytes(buf, len));
    bad_jumps++;
  }
  assert_true(bad_jumps > 0);
  free(buf);
  vt_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(round_trip),
                                     cmocka_unit_test(corrupted)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
