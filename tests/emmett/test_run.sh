#!/usr/bin/env bash
# End-to-end behaviour of compiled Emmett: target-free probes run by
# `vprobe -c`, outputs checked feature by feature.
. "$VPROBE_TOP/tests/lib.sh"
need_built "$VPROBE"

# run NAME EXPECTED CODE: the standard output of `vprobe -c CODE`
run() {
  local out
  out=$(timeout 20 "$VPROBE" -c "$3" 2>"$TMP/err")
  local rc=$?
  if [ $rc != 0 ]; then
    fail "$1 (exit $rc): $(head -c 400 "$TMP/err")"
    return
  fi
  check "$1" "$2" "$out"
}

run arith '42' 'VMXLoad { printf("%d\n", 6*7); }'
run precedence '7 1 14 2 1' 'VMXLoad { printf("%d %d %d %d %d\n", 1 + 2 * 3, 1 < 2 == 1, 2 << 2 | 6, 10 % 4, 1 ? 1 : 0); }'
run signed '-3 -1 1 0 -4' 'VMXLoad { int n = -1; uint64 u = -1; printf("%d %d %d %d %d\n", -7 / 2, -7 % 2, u > 5, n > 5, -8 >> 1); }'
run narrow '-128 255 44 -1' 'VMXLoad { int8 t = 127; t++; uint8 u = 0; u--; uint8 w = 300; int16 h = 0xffff; printf("%d %d %d %d\n", t, u, w, h); }'
run casts '255 -1 65535' 'VMXLoad { x = 0x1ff; printf("%d %d %d\n", (uint8)x, (int8)x, (uint16)-1); }'
run compound '5 3 6 2 0 0 0 1 0 3' 'VMXLoad { x = 5; printf("%d ", x); x -= 2; printf("%d ", x); x *= 2; printf("%d ", x);
  x /= 3; printf("%d ", x); x %= 2; printf("%d ", x); x <<= 2; printf("%d ", x); x >>= 1; printf("%d ", x);
  x |= 1; printf("%d ", x); x &= 2; printf("%d ", x); x ^= 3; printf("%d\n", x); }'
run incdec '1 2 2 1 2' 'VMXLoad { int i = 1; printf("%d ", i++); printf("%d ", i); printf("%d ", i--); printf("%d ", i); printf("%d\n", ++i); }'
run strings 'eq ab, ne, cd!' 'VMXLoad { string s = "ab"; string t; if (s == "ab") printf("eq %s, ", s);
  if (s != "xy") printf("ne, "); t = "cd"; sprintf(s, "%s!", t); printf("%s\n", s); }'
run concat 'a b c' 'VMXLoad { printf("a " "b" " c\n"); }'
run escapes 'x	y"\' 'VMXLoad { printf("x\ty\"\\\n"); }'
run charlit '65 10' "VMXLoad { printf(\"%d %d\\n\", 'A', '\\n'); }"
run loops '0 1 2 | 3 2 1 | 5 | 0 2 4 .' 'VMXLoad { int i; for (i = 0; i < 3; i++) printf("%d ", i); printf("| ");
  while (i > 0) { printf("%d ", i); i--; } printf("| ");
  do { i += 5; } while (i < 5); printf("%d | ", i);
  for (i = 0; ; i++) { if (i > 4) break; if (i % 2) continue; printf("%d ", i); } printf(".\n"); }'
run for_decl '0,1,2,' 'VMXLoad { for (int j = 0; j < 3; j++) printf("%d,", j); printf("\n"); }'
run comma '3 5' 'VMXLoad { int i, j; for (i = 0, j = 0; i < 3; i++, j += 2) {} printf("%d %d\n", i, j - 1); }'
run functions '14 120 void' 'int squareSum(int n) { if (n == 0) { return 0; } else { return n * n + squareSum(n - 1); } }
  int fact(int n) { return n <= 1 ? 1 : n * fact(n - 1); }
  void say(string s) { printf("%s\n", s); }
  VMXLoad { printf("%d %d ", squareSum(3), fact(5)); say("void"); }'
run string_fn 'hello world' 'string greet(string who) { string r; sprintf(r, "hello %s", who); return r; }
  VMXLoad { printf("%s\n", greet("world")); }'
run inference '7 str' 'VMXLoad { a = 3; b = a + 4; s = "str"; } VMXUnload { printf("%d %s\n", b, s); }'
run globals '5 -1 hi 1' 'int g = 5; int8 h = 255; string s = "hi"; pervm int p = 1; VMXLoad { printf("%d %d %s %d\n", g, h, s, p); }'
run shared '2 1 0 7' 'perhost int lock; pervm int ctr; VMXLoad { fetchadd(ctr, 1); x = fetchadd(ctr, 1);
  y = cmpxchg(lock, 0, 7); z = cmpxchg(lock, 0, 9); printf("%d %d %d %d\n", ctr, y, z, lock); }'
run early_return 'before' 'VMXLoad { printf("before\n"); if (1) return; printf("after\n"); }'
run try_div 'div' 'VMXLoad { try { x = 1 / 0; printf("no\n"); } catch (DivisionByZeroError) { printf("div\n"); } }'
run try_bag 'empty full' 'bag b[1]; VMXLoad { try { x = b[3]; } catch (BagEmptyError) { printf("empty "); }
  try { b[1] <- 1; b[2] <- 2; } catch (BagFullError) { printf("full\n"); } }'
run try_all 'caught 2' 'VMXLoad { try { x = 2; y = x / 0; } catch { printf("caught %d\n", x); } }'
run try_budget 'budget' 'VMXLoad { try { for (i = 0; ; i += 1) {} } catch (BudgetExceededError) { printf("budget\n"); } }'
run mem_fault 'bad read' 'VMXLoad { int *p = 0; try { x = *p; } catch (MemAccessError) { printf("bad read\n"); } }'
run bags '30 1:10 2:20 ' 'bag b[8]; VMXLoad { int k, v; b[1] <- 10; b[2] <- 20; b[3] <- 30; printf("%d ", b[3]);
  foreach (k, v) in b { printf("%d:%d ", k, v); } printf("\n"); }'
run aggr_count 'intKey0  count   pct%
    0x1      1  33.3%
    0x2      2  66.7%' 'aggr a[1]; VMXLoad { a[2]++; a[1]++; a[2]++; printa(a); }'
run aggr_values 'intKey0 strKey0  avg  count  min  max   pct%
    0x1 k          2      2    1    3  40.0%
    0x0 k          6      1    6    6  60.0%' 'aggr a[1][1]; VMXLoad { a["k", 1] <- 1; a[1, "k"] <- 3; a[0, "k"] <- 6; printa(a); }'
run aggr_keyless 'count    pct%
    3  100.0%' 'aggr calls[0][0]; VMXLoad { calls++; calls++; calls[]++; printa(calls); }'
run aggr_fmt 'k=1 n=2' 'aggr a[1]; VMXLoad { a[1] <- 4; a[1] <- 6; printa(a, "k=%0$=d n=%count$=d"); }'
run aggr_clear 'strKey0  count  pct%' 'aggr a[0][1]; VMXLoad { a["x"]++; clearaggr(a); printa(a); }'
run structs '8 32 12 -72' 'struct S { int a; uint32 b; int16 c; char name[8]; struct S *next; };
  VMXLoad { struct S *p = 0; printf("%d %d %d %d\n", &p->b, sizeof(struct S), (int)&p[1].b - 28, &p[1].b - 28); }'
run ptr_arith '16 2 0' 'VMXLoad { int *p = 0; int *q = p + 2; uint32 *r = 8; printf("%d %d %d\n", q, q - p, r - (uint32 *)0 - 2); }'
run enum_sizeof '0 5 6 8 1' 'enum E { A, B = 5, C }; VMXLoad { printf("%d %d %d %d %d\n", A, B, C, sizeof(int), sizeof(char)); }'
run probename 'VMXLoad' 'VMXLoad { printf("%s\n", PROBENAME); }'
run single_stmt 'one' 'VMXLoad printf("one\n");'
run unload 'load unload' 'VMXLoad { printf("load "); } VMXUnload { printf("unload\n"); }'
run locals_shadow '1 2' 'int x = 1; VMXLoad { { int x = 2; } int y = x; { int x = 2; y = y * 10 + x; } printf("%d %d\n", y / 10, y % 10); }'
run ternary_str 'yes' 'VMXLoad { x = 3; printf("%s\n", x > 2 ? "yes" : "no"); }'
run logic '1 0 1 0' 'VMXLoad { printf("%d %d %d %d\n", 1 && 2, 0 && (1 / 0), 0 || 3, !5); }'
run writeint_text 'ok' 'VMXLoad { writeint(5, 4); printf("ok\n"); }'
run bag_param '12 100
100 12
1:5 2:7 ' 'bag a[4], b[4];
  int total(bag x, int depth) { int k, v, s; if (depth > 0) return total(x, depth - 1); s = 0;
    foreach (k, v) in x { s += v; } return s; }
  void both(bag x, bag y) { printf("%d %d\n", total(x, 2), total(y, 0)); }
  void list(bag x) { int k, v; foreach (k, v) in x { printf("%d:%d ", k, v); } printf("\n"); }
  VMXLoad { a[1] <- 5; a[2] <- 7; b[3] <- 100; both(a, b); both(b, a); list(a); }'
run aggr_param 'x=7
intKey0  count    pct%
    0x9      2  100.0%' 'aggr lat[0][1], cnt[1];
  void note(aggr g, string what, int n) { g[what] <- n; }
  void show(aggr g) { printa(g, "%0$=s=%sum$=d"); }
  void bump(aggr g, int key) { g[key]++; }
  VMXLoad { note(lat, "x", 3); note(lat, "x", 4); show(lat); bump(cnt, 9); bump(cnt, 9); printa(cnt); }'
out=$("$VPROBE" "$VPROBE_TOP/examples/basics/bags.emt" 2>&1)
check_match bags_example 'usec *: avg 800 over *3' "$out"
check_match bags_example_open 'still open: 4 started at 400 still open: 5 started at 500' "$(printf '%s' "$out" | tr '\n' ' ')"

# Errors come back as one line naming the script position.
out=$("$VPROBE" -c 'VMXLoad { x = 1 }' 2>&1)
check_match compile_error ':1:16: error: expected .;. after expression' "$out"
"$VPROBE" -c 'VMXLoad { x = 1 }' >/dev/null 2>&1
check compile_error_exit 1 "$?"

done_testing
