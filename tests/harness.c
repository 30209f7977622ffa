// harness.c — test registry, runner main() and helpers. See harness.h.
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    const char *name, *file;
    t_fn fn;
} t_entry;

static t_entry *t_tests;  // grows as tests register (before main)
static int t_count, t_cap;
static int t_cur_failures, t_cur_skipped;
// Set when the running test asked for a fixture and there is no fixture tree at all (a clone
// without ../shared): the test is reported skipped and its later checks are not counted.
// A missing file inside an existing tree still fails.
static int t_cur_no_fixtures;
static const char *t_cur_name;
// Tests skipped because the fixture tree is missing: reported in one summary line at the end
// (not one SKIP line each). IRONLM_REQUIRE_FIXTURES=1 (set by .ci/run) makes a missing
// fixture tree or file a failure instead.
static int t_fixture_skips;
static char t_fixture_root[512];

// Runs from constructors, before main: a test that cannot be registered stops the run here
// rather than going missing from the count.
void t_register(const char *name, t_fn fn, const char *file) {
    if (t_count == t_cap) {
        int cap = t_cap ? 2 * t_cap : 256;
        t_entry *t = realloc(t_tests, (size_t)cap * sizeof *t);
        if (!t) {
            fprintf(stderr, "harness: out of memory registering test %s (%s)\n", name, file);
            exit(2);
        }
        t_tests = t;
        t_cap = cap;
    }
    t_tests[t_count++] = (t_entry){name, file, fn};
}

void t_fail(const char *file, int line, const char *fmt, ...) {
    if (t_cur_no_fixtures) return;
    if (t_cur_failures < 20) {
        fprintf(stdout, "  FAIL %s:%d: %s: ", file, line, t_cur_name);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
        fflush(stdout);
    }
    t_cur_failures++;
}

void t_skip(const char *why) {
    t_cur_skipped = 1;
    if (t_cur_no_fixtures) return;   // in the summary line
    fprintf(stdout, "  SKIP %s: %s\n", t_cur_name, why);
}

static int t_cmp(const void *a, const void *b) {
    const t_entry *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

const char *t_fixture(const char *rel) {
    static char buf[8][1024];
    static int slot;
    const char *root = getenv("IRONLM_FIXTURES");
    if (!root || !*root) root = "../shared/fixtures";
    const char *req = getenv("IRONLM_REQUIRE_FIXTURES");
    const bool require = req && *req && strcmp(req, "0") != 0;
    struct stat st;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", root, rel);
    if (!t_cur_no_fixtures && (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))) {
        if (require) {
            t_fail(__FILE__, __LINE__, "reference fixtures not found at %s (IRONLM_REQUIRE_FIXTURES is set)", root);
            return b;
        }
        snprintf(t_fixture_root, sizeof t_fixture_root, "%s", root);
        t_cur_skipped = 1;   // counted in the summary line, no SKIP line of its own
        t_cur_no_fixtures = 1;
    } else if (require && !t_cur_no_fixtures && stat(b, &st) != 0) {
        t_fail(__FILE__, __LINE__, "fixture %s is missing (IRONLM_REQUIRE_FIXTURES is set)", b);
    }
    return b;
}

const char *t_bin(void) {
    const char *b = getenv("IRONLM_BIN");
    return b && *b ? b : "./ironlm";
}

const char *t_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/ironlm-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(2);
        }
    }
    return dir;
}

const char *t_tmp(const char *name) {
    static char buf[8][512];
    static int slot;
    char *b = buf[slot++ & 7];
    snprintf(b, sizeof buf[0], "%s/%s", t_tmpdir(), name);
    return b;
}

int t_run(const char *cmd, char **out) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += got;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
    }
    int st = pclose(p);
    if (buf) buf[n] = 0;
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

char *t_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = 0;
        if (size) *size = (size_t)n;
    }
    return buf;
}

uint64_t t_rand_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float t_rand_f32(uint64_t *s) { return (float)((double)(t_rand_u64(s) >> 11) * 0x1.0p-52 - 1.0); }

static void t_rmtree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (t_count) qsort(t_tests, (size_t)t_count, sizeof t_tests[0], t_cmp);
    int passed = 0, failed = 0, skipped = 0;
    for (int i = 0; i < t_count; i++) {
        bool want = argc < 2;
        for (int a = 1; a < argc; a++)
            if (strstr(t_tests[i].name, argv[a]) || strstr(t_tests[i].file, argv[a])) want = true;
        if (!want) continue;
        t_cur_name = t_tests[i].name;
        t_cur_failures = 0;
        t_cur_skipped = 0;
        t_cur_no_fixtures = 0;
        t_tests[i].fn();
        if (t_cur_failures) {
            failed++;
            printf("FAIL %s (%d checks failed)\n", t_cur_name, t_cur_failures);
        } else if (t_cur_skipped) {
            skipped++;
            t_fixture_skips += t_cur_no_fixtures;
        } else {
            passed++;
            if (getenv("T_VERBOSE")) printf("ok   %s\n", t_cur_name);
        }
    }
    if (t_tmpdir()[0] && !getenv("T_KEEP")) t_rmtree(t_tmpdir());
    free(t_tests);
    if (t_fixture_skips)
        printf("%d skipped: reference fixtures not found at %s; set FIXTURES=DIR (make) or IRONLM_FIXTURES=DIR\n",
               t_fixture_skips, t_fixture_root);
    if (skipped) printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    else printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
