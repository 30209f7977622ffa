// harness.h — a small dependency-free test harness.
//
//   TEST(gguf_reads_v3) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-3); }
//
// Tests register themselves at start-up (any number: the registry grows, and a test that
// cannot be registered stops the run); tests/harness.c runs those whose name or file contains
// the command-line filter and ends with "N passed, N failed". A failed CHECK prints
// file:line and the expression, and the test goes on (so one run shows every failure).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef void (*t_fn)(void);
void t_register(const char *name, t_fn fn, const char *file);
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_skip(const char *why);   // marks the running test skipped (counted, not passed)
// Fixtures: t_fixture() below. Without the fixture tree the test is skipped (one summary line
// for all of them); IRONLM_REQUIRE_FIXTURES=1 makes a missing tree or file a failure.

#define TEST(name)                                                                      \
    static void name(void);                                                             \
    __attribute__((constructor)) static void t_reg_##name(void) { t_register(#name, name, __FILE__); } \
    static void name(void)

#define CHECK(cond)                                                     \
    do {                                                                \
        if (!(cond)) t_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);    \
    } while (0)
#define CHECK_MSG(cond, ...)                                            \
    do {                                                                \
        if (!(cond)) t_fail(__FILE__, __LINE__, __VA_ARGS__);           \
    } while (0)
#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        long long t_a_ = (long long)(a), t_b_ = (long long)(b);                         \
        if (t_a_ != t_b_) t_fail(__FILE__, __LINE__, "%s == %s (%lld vs %lld)", #a, #b, t_a_, t_b_); \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double t_a_ = (double)(a), t_b_ = (double)(b);                                  \
        if (!(t_a_ - t_b_ <= (tol) && t_b_ - t_a_ <= (tol)))                            \
            t_fail(__FILE__, __LINE__, "|%s - %s| <= %g (%.9g vs %.9g)", #a, #b, (double)(tol), t_a_, t_b_); \
    } while (0)
#define CHECK_STR(a, b)                                                                 \
    do {                                                                                \
        const char *t_a_ = (a), *t_b_ = (b);                                            \
        if (!t_a_ || !t_b_ || strcmp(t_a_, t_b_) != 0)                                  \
            t_fail(__FILE__, __LINE__, "%s == %s (\"%s\" vs \"%s\")", #a, #b, t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)"); \
    } while (0)

// --- helpers for tests -----------------------------------------------------------
// Path of a fixture file: $IRONLM_FIXTURES/rel (default ../shared/fixtures). Static buffer
// rotated over 8 slots, so a few can be alive at once.
const char *t_fixture(const char *rel);
// The ironlm binary under test ($IRONLM_BIN, default ./ironlm); may contain a launcher prefix.
const char *t_bin(void);
// A fresh temporary directory for this test run (created once), and a path inside it.
const char *t_tmpdir(void);
const char *t_tmp(const char *name);
// Runs a shell command, capturing stdout (malloc'd, NUL-terminated) and the exit status.
int t_run(const char *cmd, char **out);
// Reads a whole file (malloc'd); NULL on failure.
char *t_read(const char *path, size_t *size);
// Deterministic pseudo-random numbers (splitmix64).
uint64_t t_rand_u64(uint64_t *state);
float t_rand_f32(uint64_t *state);   // uniform in [-1, 1)
