/* test_errors.c - bad programs and the exact first error each one gets
 * (FILE:LINE:COL: error: message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "emmett/emmett.h"

static const struct {
  const char *src, *err;
} cases[] = {
    /* syntax */
    {"VMXLoad { x = 1 }", "t.emt:1:16: error: expected ';' after expression"},
    {"VMXLoad {\n  x = 1\n  y = 2;\n}", "t.emt:2:8: error: expected ';' after expression"},
    {"VMXLoad { printf(\"hi\\n\");",
     "t.emt:1:9: error: expected '}' before end of file (unclosed '{' here)"},
    {"int f() {\n  if (1) {\n    x = 1;\n}\n",
     "t.emt:1:9: error: expected '}' before end of file (unclosed '{' here)"},
    {"VMXLoad { x = 1 +; }", "t.emt:1:18: error: expected expression before ';'"},
    {"VMXLoad { x = (1; }", "t.emt:1:17: error: expected ')' before ';'"},
    {"VMXLoad { if x { } }", "t.emt:1:14: error: expected '(' after 'if'"},
    {"VMXLoad { x = @; }", "t.emt:1:15: error: expected expression before '@'"},
    {"VMXLoad\n", "t.emt:2:1: error: expected '{' after probe name 'VMXLoad'"},
    {"VMXLoad { else x = 1; }", "t.emt:1:11: error: 'else' without a previous 'if'"},
    {"VMXLoad { x = \"open; }", "t.emt:1:15: error: missing terminating \" character"},
    {"VMXLoad { /* open\n", "t.emt:1:11: error: unterminated comment"},
    {"VMXLoad { x = 0x; }", "t.emt:1:15: error: invalid integer literal '0x'"},
    {"VMXLoad { x = 99999999999999999999; }", "t.emt:1:15: error: integer literal is too large"},
    {"VMXLoad { x = '\\q'; }", "t.emt:1:17: error: unknown escape sequence '\\q'"},
    {"VMXLoad { x = 1; } `", "t.emt:1:20: error: stray '`' in program"},
    {"if (1) { }", "t.emt:1:1: error: 'if' outside of a probe or function"},
    {"aggr a;", "t.emt:1:7: error: expected '[' after aggregate name 'a'"},
    {"aggr a[5];", "t.emt:1:6: error: aggregate 'a' has more than 4 keys of one kind"},
    {"memmodel bogus;", "t.emt:1:10: error: unknown memory model 'bogus'"},
    {"VMXLoad { int x[4]; }",
     "t.emt:1:15: error: variable 'x' of type int[4]: only pointers can reach target memory"},
    {"VMXLoad { $vmk.T *p; }", "t.emt:1:11: error: external types ($module.type) are not supported"},
    /* positions come from #line markers (after #include and macros) */
    {"#line 10 \"foo.emt\"\nVMXLoad { x = ; }", "foo.emt:10:15: error: expected expression before ';'"},
    {"VMXLoad {\n#line 7 \"inc.emt\"\n  x = 1 +;\n}", "inc.emt:7:10: error: expected expression before ';'"},
    /* probes */
    {"NOPE:foo { }", "t.emt:1:1: error: unknown probe 'NOPE:foo'"},
    {"int x;\nBOGUS { x = 1; }", "t.emt:2:1: error: unknown probe 'BOGUS'"},
    {"USEC:0x10 { }", "t.emt:1:1: error: probe 'USEC:0x10': bad period (want decimal N, 1 ns to "
                      "1 hour)"},
    {"VMM:TIMER:5 { }", "t.emt:1:1: error: probe 'VMM:TIMER:5': bad period (want decimal "
                        "N[nsec|usec|msec|sec], 1 ns to 1 hour)"},
    {"VMXLoad { return 1; }", "t.emt:1:18: error: a probe cannot return a value"},
    {"VMXLoad { x = ARG0; }", "t.emt:1:15: error: 'ARG0' is not available in probe 'VMXLoad'"},
    {"VMXLoad(int a) { }", "t.emt:1:13: error: probe 'VMXLoad' has no arguments"},
    {"VMX:ENTER:f(string s) { }", "t.emt:1:20: error: probe parameter 's' cannot be a string"},
    /* types */
    {"VMXLoad {\n  int x;\n  x = \"a\";\n}", "t.emt:3:7: error: cannot assign string to int variable 'x'"},
    {"VMXLoad { s = \"a\"; s = 5; }", "t.emt:1:24: error: cannot assign int to string variable 's'"},
    {"string s = 3;", "t.emt:1:12: error: cannot assign int to string variable 's'"},
    {"int f() { return \"s\"; }", "t.emt:1:18: error: cannot convert string to int"},
    {"int g(int) { return 1; }", "t.emt:1:10: error: parameter without a name"},
    {"void f() { return 1; }", "t.emt:1:19: error: void function should not return a value"},
    {"VMXLoad { x = \"a\" + 1; }", "t.emt:1:19: error: invalid operands to binary operator (string and int)"},
    {"VMXLoad { x = \"a\" == 1; }", "t.emt:1:19: error: comparison between string and int"},
    {"VMXLoad { if (\"a\") { } }", "t.emt:1:15: error: string used where an integer is required"},
    {"VMXLoad { x = 1 ? \"a\" : 2; }",
     "t.emt:1:17: error: operands of '?:' have different types (string and int)"},
    {"VMXLoad { x = *5; }", "t.emt:1:15: error: indirection requires a pointer operand (int invalid)"},
    {"VMXLoad { int *p; x = p->f; }",
     "t.emt:1:24: error: member reference base type int is not a struct or union"},
    {"struct S { int a; };\nVMXLoad { struct S *p; x = p->b; }", "t.emt:2:29: error: no field 'b' in struct S"},
    {"VMXLoad { x = 1; y = &x; }",
     "t.emt:1:22: error: cannot take the address of a variable (variables are not in target memory)"},
    {"VMXLoad { x = (string)5; }",
     "t.emt:1:15: error: cannot convert int to string (only char pointers and arrays)"},
    {"VMXLoad { x = unknown_type_t; }", "t.emt:1:15: error: use of undeclared variable 'unknown_type_t'"},
    {"perhost string s;", "t.emt:1:1: error: storage classes apply only to integers"},
    /* lvalues */
    {"VMXLoad { 3 = 4; }", "t.emt:1:11: error: expression is not assignable"},
    {"VMXLoad { TSC = 5; }", "t.emt:1:11: error: cannot assign to built-in variable 'TSC'"},
    {"VMXLoad { int *p; *p = 3; }", "t.emt:1:19: error: target memory is read-only: cannot assign to it"},
    {"VMXLoad { s = \"x\"; s++; }", "t.emt:1:20: error: cannot increment string 's'"},
    /* names */
    {"VMXLoad { undefined_fn(3); }", "t.emt:1:11: error: unknown function 'undefined_fn'"},
    {"VMXLoad { int x; x = 1; }\nVMXLoad { y = x; }", "t.emt:2:15: error: use of undeclared variable 'x'"},
    {"VMXLoad { y = z + 1; }", "t.emt:1:15: error: use of undeclared variable 'z'"},
    {"VMXLoad { y += 1; }", "t.emt:1:11: error: use of undeclared variable 'y'"},
    {"int x;\nint x;", "t.emt:2:5: error: redefinition of 'x'"},
    {"int f() { return 1; }\nint f() { return 2; }", "t.emt:2:5: error: redefinition of 'f'"},
    {"int f() { return 1; }\nint f;", "t.emt:2:5: error: redefinition of 'f'"},
    {"VMXLoad { int a; int a; }", "t.emt:1:22: error: redefinition of 'a'"},
    {"int TSC;", "t.emt:1:5: error: 'TSC' is a built-in variable"},
    {"VMXLoad { x = 1; x(); }", "t.emt:1:18: error: called object 'x' is not a function"},
    {"VMXLoad { break; }", "t.emt:1:11: error: 'break' statement not in a loop"},
    {"VMXLoad { try { } catch (Bogus) { } }", "t.emt:1:26: error: unknown exception 'Bogus'"},
    /* calls */
    {"int f(int a) { return a; }\nVMXLoad { f(1, 2); }",
     "t.emt:2:11: error: wrong number of arguments to 'f' (2 given, 1 expected)"},
    {"int f(int a) { return a; }\nVMXLoad { f(\"s\"); }", "t.emt:2:13: error: cannot convert string to int"},
    {"VMXLoad { printf(\"%s\\n\", 5); }",
     "t.emt:1:26: error: format '%s' expects a string, but the argument is int"},
    {"VMXLoad { printf(\"%d\\n\", \"x\"); }",
     "t.emt:1:26: error: format '%d' expects an integer, but the argument is a string"},
    {"VMXLoad { printf(\"%d %d\\n\", 5); }", "t.emt:1:18: error: too few arguments for format in printf"},
    {"VMXLoad { printf(\"%d\\n\", 5, 6); }", "t.emt:1:29: error: too many arguments for format in printf"},
    {"VMXLoad { printf(\"%q\", 1); }", "t.emt:1:18: error: unknown conversion '%q' in format of printf"},
    {"VMXLoad { printf(x); }", "t.emt:1:18: error: printf needs a format string literal"},
    {"VMXLoad { strcmp(\"a\"); }", "t.emt:1:11: error: too few arguments to 'strcmp'"},
    {"VMXLoad { strcmp(\"a\", 1); }", "t.emt:1:23: error: int used where a string is required"},
    {"VMXLoad { getsystemtime(5); }",
     "t.emt:1:25: error: argument of getsystemtime must be an integer variable"},
    {"VMXLoad { fetchadd(x, 1); }", "t.emt:1:20: error: use of undeclared variable 'x'"},
    {"int x;\nVMXLoad { fetchadd(x, 1); }",
     "t.emt:2:20: error: 'fetchadd' needs a pervm, pervmk or perhost integer"},
    {"VMXLoad { writeint(1, 9); }", "t.emt:1:23: error: writeint size must be a constant from 1 to 8"},
    /* aggregates and bags */
    {"aggr a[1][1];\nVMXLoad { a[1]++; }",
     "t.emt:2:11: error: aggregate 'a' takes 1 integer and 1 string keys, but 1 integer and 0 "
     "string keys were given"},
    {"aggr a[1];\nVMXLoad { a[1] = 2; }", "t.emt:2:16: error: use '<-' to add to aggregate 'a'"},
    {"aggr a[1];\nVMXLoad { x = a[1]; }",
     "t.emt:2:15: error: void value not ignored as it ought to be"},
    {"aggr a[1];\nVMXLoad { printa(b); }", "t.emt:2:18: error: argument of printa must be an aggregate"},
    {"aggr a[1];\nVMXLoad { printa(a, 1); }", "t.emt:2:21: error: printa needs a format string literal"},
    {"aggr a[1];\nVMXLoad { a[1] <- \"s\"; }", "t.emt:2:19: error: string used where an integer is required"},
    {"bag b;\nVMXLoad { b[1, 2] <- 3; }", "t.emt:2:16: error: bag 'b' takes one key"},
    {"VMXLoad { int k, v; foreach (k, v) in nobag { } }", "t.emt:1:39: error: 'nobag' is not a bag"},
    {"VMXLoad { aggr a[1]; }", "t.emt:1:11: error: 'aggr' declarations must be global"},
    /* bag and aggregate parameters */
    {"void pb(bag b) { }\nVMXLoad { int x; pb(x); }",
     "t.emt:2:21: error: argument 1 of 'pb' must be a global bag (parameter 'b'), not int 'x'"},
    {"void pb(int n, bag b) { }\naggr g[1];\nVMXLoad { pb(1, g); }",
     "t.emt:3:17: error: argument 2 of 'pb' must be a global bag (parameter 'b'), not aggregate 'g'"},
    {"void pa(aggr a) { }\nbag q;\nVMXLoad { pa(q); }",
     "t.emt:3:14: error: argument 1 of 'pa' must be a global aggregate (parameter 'a'), not bag 'q'"},
    {"void pb(bag b) { }\nVMXLoad { pb(\"s\"); }",
     "t.emt:2:14: error: argument 1 of 'pb' must be a global bag (parameter 'b'), not string expression"},
    {"void pb(bag b) { }\nVMXLoad { pb(nob); }", "t.emt:2:14: error: use of undeclared variable 'nob'"},
    {"void pb(bag b) { }\nbag q;\nVMXLoad { pb(q, 1); }",
     "t.emt:3:11: error: wrong number of arguments to 'pb' (2 given, 1 expected)"},
    {"void f(aggr g) {\n  g[1]++;\n}\naggr s[0][1];\nVMXLoad { f(s); }",
     "t.emt:2:3: error: aggregate 'g' (here 's') takes 0 integer and 1 string keys, but 1 integer and "
     "0 string keys were given"},
    {"void f(bag b) { x = b; }\nbag s;\nVMXLoad { f(s); }", "t.emt:1:21: error: bag 'b' used as a value"},
    {"void f(bag b, bag b) { }", "t.emt:1:19: error: redefinition of 'b'"},
    {"VMXLoad(bag b) { }", "t.emt:1:9: error: probe parameters cannot be bags"},
    {"void f(bag) { }", "t.emt:1:11: error: expected a bag parameter name before ')'"},
};

static void t_errors(void **state) {
  (void)state;
  int bad = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char err[1024];
    char *vp = em_compile_text(cases[i].src, "t.emt", NULL, err, sizeof err);
    if (vp) {
      printf("case %zu compiled but should fail:\n%s\n--- VP ---\n%s\n", i, cases[i].src, vp);
      free(vp);
      bad++;
    } else if (strcmp(err, cases[i].err)) {
      printf("case %zu: %s\n  expected: %s\n  actual:   %s\n", i, cases[i].src, cases[i].err, err);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(t_errors)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
