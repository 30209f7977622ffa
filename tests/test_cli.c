// test_cli.c — the command line as a careful user meets it (issue 14): output files that are
// special, inputs that are not regular files, range-checked options, conflicting options,
// --help/--version, context full, Ctrl-C, chat input. The real binary (IRONLM_BIN) on a tiny
// model that `ironlm synth` writes here, so none of these needs the reference fixtures.
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "base/util.h"
#include "format/gguf.h"
#include "format/gguf_write.h"
#include "simd/kernels.h"
#include "simd/types.h"

// Runs `ironlm ARGS 2>&1` (printf-style), returns the exit status; *out gets stdout+stderr.
__attribute__((format(printf, 2, 3))) static int ilm(char **out, const char *fmt, ...) {
    char args[3000], cmd[4000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", t_bin(), args);
    char *o = NULL;
    int rc = t_run(cmd, &o);
    if (out) *out = o;
    else free(o);
    return rc;
}

// True if s contains every needle (NULL-terminated list); reports the first missing one.
static bool has(const char *s, const char *needle) {
    bool ok = s && strstr(s, needle);
    if (!ok) printf("  (output does not contain \"%s\": %.400s)\n", needle, s ? s : "(null)");
    return ok;
}

// A 1-layer e2b-shaped model with a 2048-token vocabulary (24 MB, well under a second),
// written once per test run. F16 weights so that quantize can take it as input.
static const char *tiny_model(void) {
    static char path[600];
    if (!path[0]) {
        snprintf(path, sizeof path, "%s", t_tmp("tiny.gguf"));
        char *o = NULL;
        int rc = ilm(&o, "synth --variant e2b --type f16 --layers 1 --vocab 2048 -o %s", path);
        CHECK_MSG(rc == 0, "synth failed: %s", o ? o : "");
        free(o);
    }
    return path;
}

static long file_size(const char *p) {
    struct stat st;
    return lstat(p, &st) == 0 ? (long)st.st_size : -1;
}

// ---- 1. special files as outputs ----------------------------------------------------

// OUT exists and is not a regular file: every writer refuses it, names it, and leaves it as
// it was (no temp file left). Symlinks to devices are refused the same way (written through).
TEST(cli_out_special_files) {
    const char *m = tiny_model();
    const char *fifo = t_tmp("out.fifo"), *dir = t_tmp("out.dir"), *ln = t_tmp("out-null.lnk");
    const char *lnf = t_tmp("out-full.lnk");
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(symlink("/dev/null", ln) == 0);
    CHECK(symlink("/dev/full", lnf) == 0);
    const char *outs[] = {fifo, dir, ln, lnf};
    const char *kinds[] = {"a FIFO", "a directory", "a character device", "a character device"};
    for (int i = 0; i < 4; i++) {
        char *o = NULL;
        const char *cmds[] = {"quantize %s %s --type q8_0", "strip %s %s", NULL};
        for (int c = 0; cmds[c]; c++) {
            char fmt[200];
            snprintf(fmt, sizeof fmt, cmds[c], m, outs[i]);
            CHECK_EQ(ilm(&o, "%s", fmt), 1);
            CHECK(has(o, "cannot create") && has(o, kinds[i]) && has(o, "refusing"));
            free(o);
        }
        CHECK_EQ(ilm(&o, "synth --variant e2b --type q8_0 --layers 1 --vocab 2048 -o %s", outs[i]), 1);
        CHECK(has(o, kinds[i]));
        free(o);
        CHECK_EQ(ilm(&o, "logits -m %s --tokens 2,3 -o %s -t 1", m, outs[i]), 1);
        CHECK(has(o, kinds[i]));
        free(o);
    }
    struct stat st;
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode));
    CHECK(lstat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    CHECK(lstat(ln, &st) == 0 && S_ISLNK(st.st_mode));
    char *o = NULL;
    t_run("ls /dev/null.tmp.* /dev/full.tmp.* 2>/dev/null | wc -l", &o);
    CHECK(o && atoi(o) == 0);
    free(o);
}

// A symlink OUT is written through (the link stays, its target is replaced); an existing OUT
// keeps its permission bits; logits -o goes through temp + rename the same way.
TEST(cli_out_symlink_and_mode) {
    const char *m = tiny_model();
    const char *target = t_tmp("target.gguf"), *ln = t_tmp("via.lnk");
    FILE *f = fopen(target, "w");
    CHECK(f && fputs("old", f) >= 0);
    if (f) fclose(f);
    CHECK(chmod(target, 0640) == 0);
    CHECK(symlink(target, ln) == 0);
    char *o = NULL;
    CHECK_EQ(ilm(&o, "strip %s %s", m, ln), 0);
    free(o);
    struct stat st;
    CHECK(lstat(ln, &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat(target, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0640);
    CHECK(file_size(target) > 1000000);

    const char *lg = t_tmp("logits.f32");
    f = fopen(lg, "w");
    if (f) fclose(f);
    CHECK(chmod(lg, 0600) == 0);
    CHECK_EQ(ilm(&o, "logits -m %s --tokens 2,3 -o %s -t 1", m, lg), 0);
    free(o);
    CHECK(stat(lg, &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK_EQ(file_size(lg), 2 * 2048 * 4);
    // A dangling link is refused.
    const char *dl = t_tmp("dangling.lnk");
    CHECK(symlink(t_tmp("nowhere/x"), dl) == 0);
    CHECK_EQ(ilm(&o, "strip %s %s", m, dl), 1);
    CHECK(has(o, "dangling"));
    free(o);
    // cannot create names the reason.
    CHECK_EQ(ilm(&o, "strip %s %s", m, t_tmp("no/such/dir.gguf")), 1);
    CHECK(has(o, "cannot create") && has(o, "No such file or directory"));
    free(o);
}

// ---- 2. one range-checked number parser -----------------------------------------------

TEST(cli_parse_numbers) {
    ilm_err err;
    double d;
    CHECK(ilm_parse_double("--x", "0.5", 0, 1, false, &d, &err) == 0 && d == 0.5);
    CHECK(ilm_parse_double("--x", "1.5", 0, 1, false, &d, &err) != 0);
    CHECK(strstr(err.msg, "--x") && strstr(err.msg, "'1.5'") && strstr(err.msg, "0..1"));
    CHECK(ilm_parse_double("--x", "nan", -1e9, 1e9, true, &d, &err) != 0);
    CHECK(ilm_parse_double("--x", "inf", -1e9, 1e9, false, &d, &err) != 0);
    CHECK(ilm_parse_double("--x", "-inf", -INFINITY, INFINITY, true, &d, &err) == 0 && isinf(d) && d < 0);
    CHECK(ilm_parse_double("--x", "1e400", -INFINITY, INFINITY, false, &d, &err) != 0);
    CHECK(ilm_parse_double("--x", "", 0, 1, false, &d, &err) != 0);
    CHECK(ilm_parse_double("--x", "0.5x", 0, 1, false, &d, &err) != 0);
    uint64_t u;
    CHECK(ilm_parse_u64("--seed", "18446744073709551615", &u, &err) == 0 && u == UINT64_MAX);
    CHECK(ilm_parse_u64("--seed", "18446744073709551616", &u, &err) != 0);
    CHECK(strstr(err.msg, "--seed") && strstr(err.msg, "18446744073709551615"));
    CHECK(ilm_parse_u64("--seed", "-1", &u, &err) != 0);
    CHECK(ilm_parse_u64("--seed", "+1", &u, &err) != 0);
    CHECK(ilm_parse_u64("--seed", "", &u, &err) != 0);
    CHECK(ilm_parse_u64("--seed", "9223372036854775808", &u, &err) == 0 && u == 9223372036854775808ull);
    long l;
    CHECK(ilm_parse_long("-n", "99999999999999999999", 0, 10, &l, &err) != 0);
    CHECK(ilm_parse_long("-n", "-5", 0, 10, &l, &err) != 0 && strstr(err.msg, "0..10"));
}

// bench --kernels: huge sizes are range errors (exit 2, the range named), unknown or foreign
// kernel sets and types are errors, not empty tables.
TEST(cli_bench_kernels_ranges) {
    const char *bad[][2] = {
        {"-n 100000000", "1..1024"},      {"--mem 100000000", "1..1048576"},
        {"--rows 99999999999", "--rows"}, {"--cols 33", "multiple of 32"},
        {"--types q5_0", "q5_0"},         {"--isa bogus", "unknown kernel set"},
        {"--min-time nan", "--min-time"}, {"-t 0", "-t"},
#if defined(__x86_64__)
        {"--isa neon", "neon"},
#else
        {"--isa avx2", "avx2"},
#endif
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *o = NULL;
        CHECK_MSG(ilm(&o, "bench --kernels %s", bad[i][0]) == 2, "bench --kernels %s: not a usage error", bad[i][0]);
        CHECK(has(o, "error") && has(o, bad[i][1]));
        free(o);
    }
    char *o = NULL;
    CHECK_EQ(ilm(&o, "bench --kernels --isa scalar --types q8_0 --rows 64 --cols 64 -n 1,2 --min-time 0 --mem 1 -t 1"), 0);
    CHECK(has(o, "q8_0 x q8"));
    free(o);
}

// ---- 3. a model path that is not a regular file --------------------------------------

// A FIFO as -m used to block in open(); a directory or a device is refused the same way.
// `timeout` turns a hang into a failure instead of a stuck test run.
TEST(cli_model_not_regular) {
    const char *fifo = t_tmp("model.fifo");
    CHECK(mkfifo(fifo, 0644) == 0);
    const char *paths[] = {fifo, t_tmpdir(), "/dev/null"};
    const char *kinds[] = {"a FIFO", "a directory", "a character device"};
    const char *cmds[] = {"run -m %s -p hi -n 1", "inspect %s", "tokenize -m %s -p hi", "bench -m %s -n 1 -r 1"};
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 4; c++) {
            char fmt[300], *o = NULL;
            snprintf(fmt, sizeof fmt, cmds[c], paths[i]);
            char cmd[800];
            snprintf(cmd, sizeof cmd, "timeout 20 %s %s 2>&1", t_bin(), fmt);
            int rc = t_run(cmd, &o);
            CHECK_MSG(rc == 1 || rc == 2, "%s: exit %d", fmt, rc);
            CHECK(has(o, "not a regular file") && has(o, kinds[i]));
            free(o);
        }
}

// ---- 4. NaN / Inf ----------------------------------------------------------------------

// Copies the tiny model to `name` with element `elem` of tensor `tensor` replaced by NaN
// (f32 or f16 tensors). Returns the copy's path, NULL on failure.
static const char *nan_copy(const char *name, const char *tensor, int64_t elem) {
    const char *src = tiny_model(), *dst = t_tmp(name);
    ilm_err err;
    ilm_gguf *g = NULL;
    if (ilm_gguf_open(&g, src, &err)) {
        CHECK_MSG(0, "%s", err.msg);
        return NULL;
    }
    const ilm_gguf_tensor *t = ilm_gguf_find_tensor(g, tensor);
    CHECK_MSG(t && (t->type == ILM_TYPE_F32 || t->type == ILM_TYPE_F16), "tensor %s missing or not f32/f16", tensor);
    size_t off = t ? (size_t)((const uint8_t *)t->data - g->map) : 0;
    int type = t ? t->type : 0;
    ilm_gguf_close(g);
    if (!t) return NULL;
    size_t n = 0;
    char *data = t_read(src, &n);
    if (!data) return NULL;
    if (type == ILM_TYPE_F32) {
        const float nan = NAN;
        memcpy(data + off + 4 * (size_t)elem, &nan, 4);
    } else {
        const uint16_t nan16 = 0x7e00;
        memcpy(data + off + 2 * (size_t)elem, &nan16, 2);
    }
    FILE *f = fopen(dst, "wb");
    bool ok = f && fwrite(data, 1, n, f) == n;
    if (f) fclose(f);
    free(data);
    CHECK(ok);
    return ok ? dst : NULL;
}

// A NaN in a norm vector is named at load; a NaN reaching the logits stops generation with an
// error naming the position instead of sampling token 0.
TEST(cli_nan_weights) {
    const char *m = nan_copy("nan-norm.gguf", "blk.0.attn_norm.weight", 7);
    char *o = NULL;
    if (m) {
        CHECK_EQ(ilm(&o, "run -m %s --tokens 2,5,6 -n 4 -t 1", m), 1);
        CHECK(has(o, "blk.0.attn_norm.weight") && has(o, "NaN"));
        free(o);
    }
    // token 5's embedding row: position 1 onwards is NaN (the prompt's last row, position 2)
    m = nan_copy("nan-embd.gguf", "token_embd.weight", 5 * 1536 + 3);
    if (m) {
        CHECK_EQ(ilm(&o, "run -m %s --tokens 2,5,6 -n 4 -t 1 --ids", m), 1);
        CHECK(has(o, "non-finite logits") && has(o, "at position 2"));
        free(o);
        // the same model decodes fine up to the token: the prompt 2,3 then generation reaching 5
        // is not forced, so only check a clean prompt runs without the NaN row being sampled
    }
}

// Every kernel set's softcap keeps NaN (the AVX2/AVX-512 tanh used to clamp it to ±cap, so a
// NaN model gave finite logits).
TEST(cli_nan_softcap_kernels) {
    for (const char *const *name = ilm_kernels_all(); *name; name++) {
        const ilm_kernels *k = ilm_kernels_get(*name);
        if (!k) continue;
        float x[19];
        for (int i = 0; i < 19; i++) x[i] = (float)i - 9.0f;
        x[3] = NAN;
        x[17] = NAN;   // in the scalar tail of a 8- or 16-wide loop
        k->softcap(x, 19, 30.0f);
        CHECK_MSG(isnan(x[3]) && isnan(x[17]), "%s: softcap(NaN) is finite", *name);
        CHECK_MSG(isfinite(x[4]) && x[4] < 0, "%s: softcap(-5) = %g", *name, (double)x[4]);
    }
}

// ---- 5. context full -------------------------------------------------------------------

// `run` stops at the end of the context with a notice and the statistics, exit 0.
TEST(cli_context_full_run) {
    const char *m = tiny_model();
    char *o = NULL;
    CHECK_EQ(ilm(&o, "run -m %s -p hello -n 100 -c 24 --ignore-eos --temp 0 -t 1", m), 0);
    CHECK(has(o, "context full (24 tokens)") && has(o, "generated"));
    CHECK(!strstr(o, "error"));
    free(o);
    // A prompt longer than the context is still an error (nothing to generate with).
    CHECK_EQ(ilm(&o, "run -m %s --tokens 2,3,4,5,6,7,8,9 -c 4 -t 1", m), 1);
    CHECK(has(o, "does not fit the context"));
    free(o);
}

// ---- 7. chat input ---------------------------------------------------------------------

static int count(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

// Piped stdin with --chat: a line per turn, a trailing backslash continues the line, blank
// lines are skipped, /exit ends (the rest is not read as turns).
TEST(cli_chat_piped) {
    const char *m = tiny_model(), *in = t_tmp("chat-in.txt");
    FILE *f = fopen(in, "w");
    CHECK(f && fputs("first turn\n\nsecond \\\ncontinued\n/exit\nnever sent\n", f) >= 0);
    if (f) fclose(f);
    char *o = NULL;
    CHECK_EQ(ilm(&o, "run -m %s --chat -n 3 --ignore-eos --temp 0 -t 1 < %s", m, in), 0);
    CHECK_MSG(count(o, "ironlm: prompt ") == 2, "expected 2 turns: %s", o ? o : "");
    CHECK(!strstr(o, "empty prompt"));
    free(o);
    // The continued line is one turn: 2 turns without /exit as well, and /clear resets.
    f = fopen(in, "w");
    CHECK(f && fputs("one\n/clear\ntwo \\\nthree\n", f) >= 0);
    if (f) fclose(f);
    CHECK_EQ(ilm(&o, "run -m %s --chat -n 2 --temp 0 -t 1 < %s", m, in), 0);
    CHECK_MSG(count(o, "ironlm: prompt ") == 2, "expected 2 turns: %s", o ? o : "");
    CHECK(has(o, "new conversation"));
    free(o);
}

// Chat at the end of the context: the reply is cut with a notice; a message that no longer
// fits is refused (piped input: an error, since the rest cannot fit either).
TEST(cli_chat_context_full) {
    const char *m = tiny_model(), *in = t_tmp("chat-full.txt");
    FILE *f = fopen(in, "w");
    CHECK(f && fputs("hello there\nand a second message\n", f) >= 0);
    if (f) fclose(f);
    char *o = NULL;
    CHECK_EQ(ilm(&o, "run -m %s --chat -n 100 --ignore-eos -c 30 --temp 0 -t 1 < %s", m, in), 1);
    CHECK(has(o, "the reply was cut") && has(o, "this message does not fit") && has(o, "/clear"));
    free(o);
}

// ---- 8. conflicting options, seeds --------------------------------------------------

TEST(cli_run_conflicts) {
    const char *m = tiny_model();
    const char *bad[][2] = {
        {"-p a -f x", "one prompt"},          {"-p a --tokens 2,3", "one prompt"},
        {"-f x --tokens 2", "one prompt"},    {"-p a --system s", "--system needs --chat"},
        {"--chat --tokens 2,3", "--chat"},    {"-p a --seed 18446744073709551616", "0..18446744073709551615"},
        {"-p a --seed -1", "--seed"},         {"-p a -n 99999999999", "0..16777216"},
        {"-p a --draft-max 100", "--draft-max"}, {"-p a --temp nan", "--temp"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *o = NULL;
        CHECK_MSG(ilm(&o, "run -m %s %s", m, bad[i][0]) == 2, "run %s: not a usage error", bad[i][0]);
        CHECK(has(o, bad[i][1]));
        free(o);
    }
    char *o = NULL;
    CHECK_EQ(ilm(&o, "run -m %s -p a -n 2 --temp 1 --seed 18446744073709551615 -t 1", m), 0);
    CHECK(has(o, "seed 18446744073709551615"));
    free(o);
}

// ---- 9. threads above the usable CPUs ----------------------------------------------------

TEST(cli_threads_capped) {
    const char *m = tiny_model();
    char *o = NULL;
    CHECK_EQ(ilm(&o, "run -m %s -p a -n 1 -t 4000", m), 0);
    CHECK(has(o, "warning: -t 4000 is more than the") && has(o, "--threads-force"));
    CHECK(!strstr(o, "4000 threads"));
    free(o);
}

// ---- 6. Ctrl-C -------------------------------------------------------------------------

// Starts `exec ironlm ARGS` with SIGINT at its default action, stdout+stderr to `log` and stdin
// from `in` (NULL: /dev/null); once the log shows the model is loaded, sends `n_int` SIGINTs
// `gap` seconds apart (the first after `delay`). Returns the exit status (128 + signal when
// killed), -1 on a timeout.
static int with_sigint(const char *args, const char *in, const char *log, int n_int, double delay, double gap) {
    char cmd[3000];
    snprintf(cmd, sizeof cmd, "exec %s %s < %s > %s 2>&1", t_bin(), args, in ? in : "/dev/null", log);
    unlink(log);   // a log left by an earlier call must not look like this one's
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) return -1;
    for (int k = 0; k < 600; k++) {   // up to 60 s for the model to load
        char *l = t_read(log, NULL);
        bool loaded = l && strstr(l, "KV cache");
        free(l);
        if (loaded) break;
        usleep(100000);
    }
    usleep((useconds_t)(delay * 1e6));
    for (int k = 0; k < n_int; k++) {
        if (k) usleep((useconds_t)(gap * 1e6));
        kill(pid, SIGINT);
    }
    int st = 0;
    for (int k = 0; k < 1200; k++) {   // up to 120 s to end
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

// One-shot: the first Ctrl-C ends the generation; the text so far, a notice and the statistics
// are printed, exit 130.
TEST(cli_sigint_oneshot) {
    const char *m = tiny_model(), *log = t_tmp("sigint1.log");
    char args[1000];
    snprintf(args, sizeof args, "run -m %s -p hello -n 1000000 -c 131072 --ignore-eos --temp 0 -t 1", m);
    CHECK_EQ(with_sigint(args, NULL, log, 1, 0.5, 0), 130);
    char *o = t_read(log, NULL);
    CHECK(has(o, "interrupted") && has(o, "generated"));
    free(o);
}

// Chat: the first Ctrl-C ends the reply and the chat goes on with the next message (here
// /exit: exit 0); two during one reply end the chat.
TEST(cli_sigint_chat) {
    const char *m = tiny_model(), *log = t_tmp("sigint2.log"), *in = t_tmp("sigint2.in");
    FILE *f = fopen(in, "w");
    CHECK(f && fputs("tell me everything\n/exit\n", f) >= 0);
    if (f) fclose(f);
    char args[1000];
    snprintf(args, sizeof args, "run -m %s --chat -n 1000000 -c 131072 --ignore-eos --temp 0 -t 1", m);
    CHECK_EQ(with_sigint(args, in, log, 1, 0.5, 0), 0);
    char *o = t_read(log, NULL);
    CHECK_MSG(count(o, "ironlm: prompt ") == 1, "expected one reply's statistics: %s", o ? o : "");
    free(o);
    f = fopen(in, "w");
    CHECK(f && fputs("tell me everything\nand more\n", f) >= 0);
    if (f) fclose(f);
    log = t_tmp("sigint3.log");
    CHECK_EQ(with_sigint(args, in, log, 2, 0.5, 0.05), 0);
    o = t_read(log, NULL);
    CHECK_MSG(count(o, "ironlm: prompt ") == 1, "the second message must not be answered: %s", o ? o : "");
    free(o);
}

// ---- 10. --help, --version -----------------------------------------------------------

TEST(cli_help_version) {
    const char *cmds[] = {"run", "serve", "bench", "logits", "tokenize", "detokenize", "inspect", "strip", "quantize",
                          "synth", "loadtest", "convert"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char cmd[600], *o = NULL;
        snprintf(cmd, sizeof cmd, "%s %s --help 2>/dev/null", t_bin(), cmds[i]);
        CHECK_MSG(t_run(cmd, &o) == 0, "%s --help: not exit 0", cmds[i]);
        CHECK(has(o, "usage: ironlm "));
        free(o);
    }
    char *o = NULL;
    CHECK_EQ(ilm(&o, "--version"), 0);
    CHECK(has(o, "ironlm 0.") && has(o, "compiler: ") && has(o, "kernel sets: scalar") && has(o, "hwloc: "));
    free(o);
    // run --help: one line per flag, every flag of the README's run table among them
    CHECK_EQ(ilm(&o, "run --help"), 0);
    const char *flags[] = {"--temp", "--seed", "--draft-max", "--threads-force", "--system", "--json-schema", "Ctrl-C"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) CHECK(has(o, flags[i]));
    free(o);
    CHECK_EQ(ilm(&o, "nosuchcommand"), 2);
    free(o);
}

// ---- 11. messages ----------------------------------------------------------------------

TEST(cli_vocab_only_model) {
    const char *p = t_tmp("vocab-only.gguf");
    ilm_err err;
    ilm_gguf_writer *w = ilm_gguf_writer_new(&err);
    CHECK(w && ilm_gguf_writer_add_str(w, "general.architecture", "gemma4", &err) == 0);
    CHECK(w && ilm_gguf_writer_begin(w, p, &err) == 0 && ilm_gguf_writer_finish(w, &err) == 0);
    ilm_gguf_writer_free(w);
    char *o = NULL;
    CHECK_EQ(ilm(&o, "run -m %s -p hi", p), 1);
    CHECK(has(o, "has no tensors: a vocabulary-only file"));
    free(o);
    CHECK_EQ(ilm(&o, "run -m %s -p hi --draft-max 99", tiny_model()), 2);
    CHECK(has(o, "--draft-max") && has(o, "0.."));
    free(o);
}

// ---- 12. a clone without the fixtures ------------------------------------------------

// The test runner itself (/proc/self/exe) on a fixture-needing test with no fixture tree:
// skipped, one summary line naming the path; with IRONLM_REQUIRE_FIXTURES=1 a failure.
TEST(cli_fixtures_missing) {
    char exe[600], cmd[1600];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        t_skip("no /proc/self/exe");
        return;
    }
    exe[n] = 0;
    char *o = NULL;
    snprintf(cmd, sizeof cmd, "IRONLM_REQUIRE_FIXTURES= IRONLM_FIXTURES=/nonexistent-fx '%s' bench_json_plain tokenizer_ 2>&1", exe);
    CHECK_EQ(t_run(cmd, &o), 0);
    CHECK(has(o, "skipped: reference fixtures not found at /nonexistent-fx; set FIXTURES="));
    CHECK_EQ(count(o, "reference fixtures not found"), 1);
    CHECK(!strstr(o, "SKIP"));
    free(o);
    snprintf(cmd, sizeof cmd, "IRONLM_REQUIRE_FIXTURES=1 IRONLM_FIXTURES=/nonexistent-fx '%s' bench_json_plain 2>&1", exe);
    CHECK_EQ(t_run(cmd, &o), 1);
    CHECK(has(o, "IRONLM_REQUIRE_FIXTURES") && has(o, "1 failed"));
    free(o);
}
