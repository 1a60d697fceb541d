/*
 * testhelp.h — a tiny assert helper for the C unit tests (after Redis's).
 * Each test file calls TEST("name") blocks and ends with TEST_REPORT(),
 * which prints "N passed, N failed" and returns the exit status.
 */
#ifndef KVGATE_TESTHELP_H
#define KVGATE_TESTHELP_H
#include <stdio.h>
#include <string.h>

static int th_passed, th_failed, th_cur_failed;
static const char *th_cur = "";

#define TEST(name) for (th_cur = (name), th_cur_failed = 0, th_once = 1; th_once; \
                        th_once = 0, th_cur_failed ? th_failed++ : th_passed++)
static int th_once;

#define CHECK(cond) do { if (!(cond)) { th_cur_failed = 1; \
    fprintf(stderr, "FAIL %s: %s:%d: %s\n", th_cur, __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    if (_a != _b) { th_cur_failed = 1; fprintf(stderr, "FAIL %s: %s:%d: %s == %lld, expected %lld\n", \
    th_cur, __FILE__, __LINE__, #a, _a, _b); } } while (0)
#define CHECK_EQ_STR(a, b) do { const char *_a = (a), *_b = (b); \
    if (!_a || !_b || strcmp(_a, _b) != 0) { th_cur_failed = 1; \
    fprintf(stderr, "FAIL %s: %s:%d: %s == \"%s\", expected \"%s\"\n", th_cur, __FILE__, __LINE__, \
    #a, _a ? _a : "(null)", _b ? _b : "(null)"); } } while (0)
#define CHECK_MEM(a, alen, b, blen) do { if ((size_t)(alen) != (size_t)(blen) || \
    ((alen) && memcmp((a), (b), (alen)) != 0)) { th_cur_failed = 1; \
    fprintf(stderr, "FAIL %s: %s:%d: %s differs\n", th_cur, __FILE__, __LINE__, #a); } } while (0)

#define TEST_REPORT() (printf("%s: %d passed, %d failed\n", __FILE__, th_passed, th_failed), \
                       th_failed ? 1 : 0)
#endif
