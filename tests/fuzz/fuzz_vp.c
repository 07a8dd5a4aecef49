/*
 * fuzz_vp.c - libFuzzer harness for the VP reader and verifier: any input
 * must give an image or an error, and an image must survive the trip through
 * bytes (what crosses into a probed process) unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vp/vp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  vp_limits lim;
  vp_limits_default(&lim);
  lim.destructive = size > 0 && (data[0] & 1); /* let both verifier modes run */
  vp_diag diag;
  memset(&diag, 0, sizeof diag);
  vp_image *img = vp_compile((const char *)data, size, "fuzz.vp", &lim, &diag);
  if (!img) {
    if (!diag.error[0])
      abort(); /* a failure always says why */
    return 0;
  }
  size_t len = 0;
  const void *bytes = vp_image_bytes(img, &len);
  vp_image *back = vp_image_from_bytes(bytes, len);
  if (!back)
    abort(); /* an image we made must load */
  size_t len2 = 0;
  const void *bytes2 = vp_image_bytes(back, &len2);
  if (len2 != len || memcmp(bytes, bytes2, len))
    abort();
  int n = vp_image_nprobes(back);
  for (int i = 0; i < n; i++)
    if (!vp_image_probe(back, i))
      abort();
  vp_image_free(back);
  vp_image_free(img);
  return 0;
}
