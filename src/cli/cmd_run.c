// cmd_run.c — `ironlm run`: generate text from a prompt, a chat turn or an interactive chat,
// optionally with the MTP drafter (--draft). See README.md for every option.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gen/chat.h"
#include "cli/commands.h"
#include "model/drafter.h"
#include "gen/engine.h"
#include "gen/constrain.h"
#include "gen/sampler.h"
#include "gen/scheduler.h"
#include "gen/stop.h"
#include "gen/tokenizer.h"
#include "tools/convert.h"

typedef struct {
    bool ids;               // print ids instead of text
    int printed;
    ilm_detok *detok;
    FILE *out;
    char *answer;           // collected text (chat history)
    size_t answer_len, answer_cap;
    ilm_stop *stop;         // --stop strings (never printed)
    ilm_buf shown;          // scratch: the text the stop matcher released
} printer;

static void append_answer(printer *p, const char *s, size_t n) {
    if (p->answer_len + n + 1 > p->answer_cap) {
        size_t cap = (p->answer_len + n + 1) * 2;
        char *a = realloc(p->answer, cap);
        if (!a) return;
        p->answer = a;
        p->answer_cap = cap;
    }
    memcpy(p->answer + p->answer_len, s, n);
    p->answer_len += n;
    p->answer[p->answer_len] = 0;
}

static void show(printer *p, const char *s, size_t n) {
    if (!n) return;
    fwrite(s, 1, n, p->out);
    fflush(p->out);
    append_answer(p, s, n);
}

static int on_token(void *ctx, int32_t t) {
    printer *p = ctx;
    if (p->ids) {
        fprintf(p->out, p->printed++ ? ",%d" : "%d", t);
        return 0;
    }
    size_t n;
    ilm_err err;
    const char *s = ilm_detok_push(p->detok, t, &n, &err);
    int stop = 0;
    if (s && n) {
        ilm_buf_reset(&p->shown);
        stop = ilm_stop_feed(p->stop, s, n, &p->shown);
        show(p, p->shown.p, p->shown.len);
    }
    return stop;
}

// End of a generation: what the detokenizer and the stop matcher still hold.
static void finish_text(printer *p) {
    size_t n;
    const char *rest = ilm_detok_flush(p->detok, &n);
    if (p->ids) return;
    ilm_buf_reset(&p->shown);
    if (!ilm_stop_which(p->stop)) {
        if (rest && n) ilm_stop_feed(p->stop, rest, n, &p->shown);
        if (!ilm_stop_which(p->stop)) ilm_stop_flush(p->stop, &p->shown);
    }
    show(p, p->shown.p, p->shown.len);
}

static const char HELP[] =
    "usage: ironlm run -m MODEL.gguf (-p TEXT | -f FILE | --tokens IDS | --chat) [options]\n"
    "  -m, --model FILE        the model (GGUF, arch gemma4)\n"
    "  -p, --prompt TEXT       the prompt (one of -p, -f, --tokens; with --chat: the one user turn)\n"
    "  -f, --file FILE         the prompt from a file\n"
    "  --tokens IDS            the prompt as token ids 2,17,300 (no BOS added; not with --chat)\n"
    "  --chat                  chat format; without -p/-f an interactive chat (piped stdin: a line per turn)\n"
    "  --system TEXT           system message (with --chat)\n"
    "  -n, --n-predict N       tokens to generate, 0..16777216 (default 128)\n"
    "  --ignore-eos            do not stop at end-of-generation tokens\n"
    "  --ids                   print token ids instead of text\n"
    "  --stop TEXT             stop string, not printed (repeatable; also -r)\n"
    "  --temp T                temperature 0..100 (0: greedy; default 0.8)\n"
    "  --top-k K               0..16777216 (0: off; default 40)\n"
    "  --top-p P               0..1 (default 0.95)\n"
    "  --min-p P               0..1 (default 0.05)\n"
    "  --seed S                0..18446744073709551615 (default: the time)\n"
    "  --repeat-penalty P      > 0..100 (1: off)\n"
    "  --repeat-last-n N       -1..16777216 (-1: whole history; default 64)\n"
    "  --presence-penalty P    -100..100\n"
    "  --frequency-penalty P   -100..100\n"
    "  --logit-bias ID(+|-)B   add B to token ID's logit (-inf bans it; repeatable)\n"
    "  --json                  output: any JSON object\n"
    "  --json-schema FILE      output: JSON valid for the schema\n"
    "  --draft, -md FILE       MTP drafter for speculative decoding\n"
    "  --draft-max N           drafts per round, 0..%d (default 3)\n"
    "  --draft-p-min P         end a chain below this drafter probability, 0..1 (default 0)\n"
    "  --spec-autotune         choose the draft length from measured costs\n"
    "  -t, --threads N         threads, 1..4096 (capped at the CPUs this process may use)\n"
    "  --threads-force         keep -t above the usable CPUs\n"
    "  -c, --ctx-size N        context length, 1..16777216 (default 8192, capped at the model's)\n"
    "  -b, --batch-size N      prompt tokens per forward pass, 1..65536 (default 512)\n"
    "  --kv-type f16|f32       KV cache type (default f16)\n"
    "  --act q8|bf16|f32       activations of Q4_0/Q8_0 matmuls (default q8; bf16: the fast W4A16 path, f32: exact)\n"
    "  --numa off|distribute|interleave|replicate\n"
    "  -h, --help              this help\n"
    "Ctrl-C ends the current generation (statistics printed; a one-shot run exits 130); in a chat,\n"
    "a second Ctrl-C or Ctrl-C at the prompt ends the chat. Chat: a line ending in \\ continues on\n"
    "the next, /clear starts a new conversation, /exit (or Ctrl-D) ends it.\n";

static void usage(FILE *f) { fprintf(f, HELP, ILM_SPEC_MAX_DRAFT); }

// ---- Ctrl-C ----------------------------------------------------------------------------
// The one piece of mutable global state of the command line: SIGINTs received while `run`
// generates or waits for chat input. Written only by the handler (async-signal-safe: a
// volatile sig_atomic_t and signal()), read between generation steps through
// ilm_gen_opts.interrupted. After the second press the default action is back, so a third
// Ctrl-C kills a process stuck in a long step.
static volatile sig_atomic_t run_sigints;

static void on_sigint(int sig) {
    (void)sig;
    run_sigints = run_sigints + 1;
    if (run_sigints >= 2) signal(SIGINT, SIG_DFL);
}

static bool run_interrupted(void *ctx) {
    (void)ctx;
    return run_sigints > 0;
}

// Catches SIGINT unless it is ignored (a background job of a non-interactive shell, nohup).
// One-shot runs reset to the default after the first press (SA_RESETHAND); no SA_RESTART, so
// Ctrl-C at the chat prompt ends fgets.
static void catch_sigint(bool chat) {
    struct sigaction old;
    if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler == SIG_IGN) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = chat ? 0 : SA_RESETHAND;
    sigaction(SIGINT, &sa, NULL);
}

// ---- chat input ------------------------------------------------------------------------

// Reads one user message into b: a line ending in '\' continues on the next (the backslash
// becomes a newline), blank lines between messages are skipped. Returns 1 with a message, 0
// at the end of input, -1 on Ctrl-C.
static int read_turn(bool tty, ilm_buf *b) {
    ilm_buf_reset(b);
    char line[8192];
    bool cont = false;
    for (;;) {
        if (tty) fputs(cont ? "... " : "> ", stderr);
        if (!fgets(line, sizeof line, stdin)) {
            if (run_sigints) return -1;
            if (ferror(stdin) && errno == EINTR) return -1;
            return b->len ? 1 : 0;
        }
        size_t ll = strlen(line);
        const bool whole = ll && line[ll - 1] == '\n';
        while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        if (!whole && !feof(stdin)) {   // a line longer than the buffer: the rest follows
            ilm_buf_add(b, line, ll);
            cont = true;
            continue;
        }
        if (ll && line[ll - 1] == '\\') {
            line[--ll] = 0;
            ilm_buf_add(b, line, ll);
            ilm_buf_putc(b, '\n');
            cont = true;
            continue;
        }
        ilm_buf_add(b, line, ll);
        cont = false;
        size_t k = 0;
        while (k < b->len && (b->p[k] == ' ' || b->p[k] == '\t' || b->p[k] == '\n')) k++;
        if (k == b->len) {   // blank: nothing to send
            ilm_buf_reset(b);
            continue;
        }
        return b->oom ? 0 : 1;
    }
}

// What a chat turn can be undone to when it does not fit or is interrupted in its prompt.
typedef struct {
    int n_msgs, n_rendered, kv_pos;
    bool rendered_anything, model_turn_open;
} chat_mark;

static chat_mark chat_save(const ilm_chat *c, const ilm_kv *kv) {
    return (chat_mark){c->n_msgs, c->n_rendered, kv->n_pos, c->rendered_anything, c->model_turn_open};
}

static void chat_undo(ilm_chat *c, ilm_kv *kv, const chat_mark *m) {
    while (c->n_msgs > m->n_msgs) free(c->msgs[--c->n_msgs].text);
    c->n_rendered = m->n_rendered;
    c->rendered_anything = m->rendered_anything;
    c->model_turn_open = m->model_turn_open;
    ilm_kv_truncate(kv, m->kv_pos);
}

int ilm_cmd_run(int argc, char **argv) {
    ilm_engine_opts eo;
    ilm_engine_opts_default(&eo);
    ilm_sampler_params sp = ilm_sampler_default_params();
    const char *stops[ILM_STOP_MAX];
    int n_stops = 0;
    bool chat = false, ids_out = false, ignore_eos = false, autotune = false, json = false;
    const char *schema_path = NULL;
    const char *prompt = NULL, *prompt_file = NULL, *tokens = NULL, *system = NULL, *draft_path = NULL;
    long n_predict = 128, draft_max = 3;
    float p_min = 0.0f;
    ilm_err err;
    for (int i = 1; i < argc; i++) {
        int r = ilm_engine_parse_opt(&eo, argc, argv, &i, &err);
        if (!r) r = ilm_sampler_parse_opt(&sp, argc, argv, &i, &err);
        if (r < 0) goto bad;
        if (r) continue;
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--chat")) chat = true;
        else if (!strcmp(a, "--ids")) ids_out = true;
        else if (!strcmp(a, "--ignore-eos")) ignore_eos = true;
        else if (!strcmp(a, "--spec-autotune")) autotune = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            ilm_fail(&err, "run: unknown option or missing value: %s", a);
            goto bad;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) prompt = argv[++i];
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) prompt_file = argv[++i];
        else if (!strcmp(a, "--tokens")) tokens = argv[++i];
        else if (!strcmp(a, "--system")) system = argv[++i];
        else if (!strcmp(a, "--draft") || !strcmp(a, "-md")) draft_path = argv[++i];
        else if (!strcmp(a, "--json-schema")) schema_path = argv[++i];
        else if (!strcmp(a, "--stop") || !strcmp(a, "-r") || !strcmp(a, "--reverse-prompt")) {
            if (n_stops == ILM_STOP_MAX) {
                ilm_fail(&err, "%s: at most %d stop strings", a, ILM_STOP_MAX);
                goto bad;
            }
            stops[n_stops++] = argv[++i];
        }
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict")) {
            if (ilm_parse_long(a, argv[++i], 0, 1 << 24, &n_predict, &err)) goto bad;   // names 0..16777216
        } else if (!strcmp(a, "--draft-max")) {
            if (ilm_parse_long(a, argv[++i], 0, ILM_SPEC_MAX_DRAFT, &draft_max, &err)) goto bad;
        } else if (!strcmp(a, "--draft-p-min")) {
            if (ilm_parse_float(a, argv[++i], 0, 1, &p_min, &err)) goto bad;
        } else {
            ilm_fail(&err, "run: unknown option %s", a);
            goto bad;
        }
    }
    if (!eo.model || (!prompt && !prompt_file && !tokens && !chat)) {
        usage(stderr);
        ilm_fail(&err, "run: need -m MODEL and a prompt (-p, -f, --tokens or --chat)");
        goto bad;
    }
    // Options that would be silently ignored are refused.
    if ((prompt != NULL) + (prompt_file != NULL) + (tokens != NULL) > 1) {
        ilm_fail(&err, "run: give one prompt: -p, -f or --tokens (%s%s%s)", prompt ? "-p " : "",
                 prompt_file ? "-f " : "", tokens ? "--tokens" : "");
        goto bad;
    }
    if (tokens && chat) {
        ilm_fail(&err, "run: --tokens is a raw token prompt and cannot be combined with --chat (use -p or -f)");
        goto bad;
    }
    if (system && !chat) {
        ilm_fail(&err, "run: --system needs --chat");
        goto bad;
    }
    if (!sp.seed_set) sp.seed = (uint64_t)time(NULL);

    ilm_engine e;
    ilm_tokenizer *tk = NULL;
    ilm_drafter *d = NULL;
    ilm_sampler s;
    ilm_constraint *con = NULL;
    ilm_chat conv;
    ilm_chat_init(&conv);
    int32_t *ids = NULL;
    int n_ids = 0, rc = 1;
    char *text = NULL;
    size_t text_len = 0;
    printer pr = {.ids = ids_out, .out = stdout};
    bool sampler_ok = false;
    // -m / --draft HF_DIR: converted into a memfd, loaded as /proc/self/fd/N
    char mpath[4096], dpath[4096];
    bool w4a16;
    int mfd = -1, dfd = -1, orc = ilm_convert_resolve_model(eo.model, mpath, sizeof mpath, &mfd, &w4a16, &err);
    if (!orc) ilm_convert_pick_act(&eo, w4a16);
    if (!orc && draft_path) orc = ilm_convert_resolve_model(draft_path, dpath, sizeof dpath, &dfd, NULL, &err);
    if (!orc) {
        eo.model = mpath;
        if (draft_path) draft_path = dpath;
        orc = ilm_engine_open(&e, &eo, &err);
    }
    if (mfd >= 0) close(mfd);
    if (orc) {
        if (dfd >= 0) close(dfd);
        goto fail_early;
    }
    if (ilm_tokenizer_load(&tk, e.model->gguf, &err)) goto fail;
    if (ilm_sampler_init(&s, &sp, &err)) goto fail;
    sampler_ok = true;
    if (json || schema_path) {
        char *schema = NULL;
        size_t schema_len;
        if (schema_path && ilm_read_file(schema_path, &schema, &schema_len, &err)) goto fail;
        con = ilm_constraint_new_json(tk, schema, &err);
        free(schema);
        if (!con) goto fail;
        s.constraint = con;
    }
    if (draft_path) {
        int drc = ilm_drafter_load(&d, draft_path, e.model, e.pool, eo.act, &err);
        if (dfd >= 0) close(dfd);
        if (drc) goto fail;
        fprintf(stderr, "ironlm: %s; draft-max %ld, p-min %.2f%s\n", ilm_drafter_describe(d), draft_max, (double)p_min,
                autotune ? ", autotune" : "");
    }
    if (!ilm_sampler_is_greedy(&s)) fprintf(stderr, "ironlm: seed %llu\n", (unsigned long long)sp.seed);
    if (!(pr.detok = ilm_detok_new(tk, false, &err))) goto fail;
    if (ilm_stop_new(&pr.stop, stops, n_stops, &err)) goto fail;

    if (tokens) {
        if (ilm_parse_int_list(tokens, &ids, &n_ids, &err)) goto fail;
    } else {
        if (prompt_file) {
            if (ilm_read_file(prompt_file, &text, &text_len, &err)) goto fail;
        } else if (prompt) {
            text = strdup(prompt);
            text_len = strlen(prompt);
        }
        if (chat) {
            if (system && ilm_chat_add(&conv, ILM_CHAT_SYSTEM, system, &err)) goto fail;
            if (text) {
                if (ilm_chat_add(&conv, ILM_CHAT_USER, text, &err)) goto fail;
                free(text);
                text = ilm_chat_render(&conv, true, &err);
                if (!text) goto fail;
                text_len = strlen(text);
            }
        }
        if (text && ilm_tokenize(tk, text, text_len, 0, &ids, &n_ids, &err)) goto fail;
    }
    ilm_gen_stats st;
    const bool conversation = chat && !text && !tokens;   // turns from stdin
    const bool tty = isatty(STDIN_FILENO);
    // one-shot runs measure the plain decoding rate for the statistics; chat turns do not wait for it
    ilm_gen_opts go = {(int)n_predict, ignore_eos, tk->eog_ids, tk->n_eog, d ? (int)draft_max : 0, p_min, autotune,
                       on_token, &pr, !conversation, run_interrupted, true};
    catch_sigint(conversation);
    if (!conversation) {
        if (!ids || !n_ids) {
            ilm_fail(&err, "run: nothing to generate from (empty prompt)");
            goto fail;
        }
        if (n_ids >= e.n_ctx) {
            ilm_fail(&err, "run: the prompt (%d tokens) does not fit the context (%d tokens; -c N for more)", n_ids,
                     e.n_ctx);
            goto fail;
        }
        if (ilm_generate(&e, d, &s, ids, n_ids, &go, &st, &err)) goto fail;
        finish_text(&pr);
        fputc('\n', stdout);
        fflush(stdout);
        if (st.hit_context)
            fprintf(stderr, "ironlm: context full (%d tokens): generation stopped (-c N for a longer context)\n", e.n_ctx);
        if (st.interrupted) fprintf(stderr, "ironlm: interrupted\n");
        ilm_gen_stats_print(&st, &e, d != NULL);
        rc = st.interrupted ? 130 : 0;
        goto done;
    }
    // A conversation: the KV cache keeps it; each turn appends only the new text.
    if (tty) fprintf(stderr, "ironlm: chat; a line ending in \\ continues, /clear starts over, /exit or Ctrl-D ends\n");
    ilm_buf in = {0};
    err.msg[0] = 0;
    for (;;) {
        run_sigints = 0;
        int got = read_turn(tty, &in);
        if (got < 0) fputc('\n', stderr);
        if (got <= 0) break;
        if (!strcmp(in.p, "/exit") || !strcmp(in.p, "/quit")) break;
        if (!strcmp(in.p, "/clear")) {
            ilm_chat_free(&conv);
            ilm_chat_init(&conv);
            ilm_kv_truncate(&e.kv[0], 0);
            if (system && ilm_chat_add(&conv, ILM_CHAT_SYSTEM, system, &err)) break;
            fprintf(stderr, "ironlm: new conversation\n");
            continue;
        }
        chat_mark mark = chat_save(&conv, &e.kv[0]);
        if (ilm_chat_add(&conv, ILM_CHAT_USER, in.p, &err)) break;
        char *turn = ilm_chat_render_new(&conv, true, &err);
        if (!turn) break;
        free(ids);
        ids = NULL;
        // BOS only at the very start of the conversation
        int flags = e.kv[0].n_pos ? ILM_TOK_NO_BOS : 0;
        int r = ilm_tokenize(tk, turn, strlen(turn), flags, &ids, &n_ids, &err);
        free(turn);
        if (r) break;
        if (e.kv[0].n_pos + n_ids >= e.n_ctx) {
            chat_undo(&conv, &e.kv[0], &mark);
            fprintf(stderr, "ironlm: context full (%d of %d tokens used): this message does not fit; /clear starts a "
                    "new conversation (-c N for a longer context)\n", e.kv[0].n_pos, e.n_ctx);
            if (!tty) {   // piped input: the rest cannot fit either
                ilm_fail(&err, "run: context full (%d tokens) in a piped conversation", e.n_ctx);
                break;
            }
            continue;
        }
        pr.answer_len = 0;
        if (pr.answer) pr.answer[0] = 0;
        if (con) ilm_constraint_reset(con);
        if (ilm_generate(&e, d, &s, ids, n_ids, &go, &st, &err)) break;
        finish_text(&pr);
        ilm_stop_free(pr.stop);  // a fresh matcher for the next turn
        pr.stop = NULL;
        if (ilm_stop_new(&pr.stop, stops, n_stops, &err)) break;
        fputc('\n', stdout);
        fflush(stdout);
        if (st.interrupted && e.kv[0].n_pos < mark.kv_pos + n_ids) {
            chat_undo(&conv, &e.kv[0], &mark);   // stopped inside the prompt: as if never sent
        } else if (ilm_chat_add_generated(&conv, pr.answer ? pr.answer : "", &err)) {
            break;
        }
        if (st.hit_context)
            fprintf(stderr, "ironlm: context full (%d tokens): the reply was cut; /clear starts a new conversation\n",
                    e.n_ctx);
        ilm_gen_stats_print(&st, &e, d != NULL);
        // A second Ctrl-C during the reply or within 0.3 s after it ended (a double press) ends
        // the chat; at a terminal prompt, Ctrl-C interrupts the read and ends it too.
        for (int k = 0; st.interrupted && k < 30 && run_sigints < 2; k++) nanosleep(&(struct timespec){0, 10000000}, NULL);
        if (run_sigints >= 2) break;
    }
    ilm_buf_free(&in);
    if (err.msg[0]) goto fail;
    rc = 0;
    goto done;
fail:
    rc = 1;
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
done:
    free(ids);
    free(text);
    free(pr.answer);
    ilm_stop_free(pr.stop);
    ilm_buf_free(&pr.shown);
    if (pr.detok) ilm_detok_free(pr.detok);
    if (sampler_ok) ilm_sampler_free(&s);
    ilm_constraint_free(con);
    ilm_chat_free(&conv);
    ilm_drafter_free(d);
    ilm_tokenizer_free(tk);
    ilm_engine_close(&e);
    return rc;
fail_early:
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
    ilm_chat_free(&conv);
    return 1;
bad:
    fprintf(stderr, "ironlm: error: %s\n", err.msg);
    return 2;
}
