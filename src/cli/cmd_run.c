// cmd_run.c — `ironlm run`: generate text from a prompt, a chat turn or an interactive chat,
// optionally with the MTP drafter (--draft). See README.md for every option.
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

static void usage(void) {
    fprintf(stderr,
            "usage: ironlm run -m MODEL.gguf (-p TEXT | -f FILE | --tokens IDS | --chat) [options]\n"
            "  -n N  --temp T  --top-k K  --top-p P  --min-p P  --seed S  --ignore-eos  --ids  --stop TEXT\n"
            "  --repeat-penalty P  --repeat-last-n N  --presence-penalty P  --frequency-penalty P  --logit-bias ID(+|-)B\n"
            "  --chat  --system TEXT  --draft D.gguf  --draft-max N  --draft-p-min P  --spec-autotune\n"
            "  --json (output: any JSON object)  --json-schema FILE (output: JSON valid for the schema)\n"
            "  -t N  -c N  -b N  --kv-type f16|f32  --act q8|f32  --numa off|distribute|interleave|replicate\n");
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
        else if (!v) {
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
            if (ilm_parse_long(a, argv[++i], 0, 1 << 24, &n_predict, &err)) goto bad;
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
        usage();
        ilm_fail(&err, "run: need -m MODEL and a prompt (-p, -f, --tokens or --chat)");
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
    if (ilm_engine_open(&e, &eo, &err)) goto fail_early;
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
        if (ilm_drafter_load(&d, draft_path, e.model, e.pool, eo.act_f32, &err)) goto fail;
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
    bool interactive = chat && !text && !tokens && isatty(STDIN_FILENO);
    // one-shot runs measure the plain decoding rate for the statistics; chat turns do not wait for it
    ilm_gen_opts go = {(int)n_predict, ignore_eos, tk->eog_ids, tk->n_eog, d ? (int)draft_max : 0, p_min, autotune,
                       on_token, &pr, !interactive};
    if (!interactive) {
        if (!ids) {
            ilm_fail(&err, "run: nothing to generate from (empty prompt)");
            goto fail;
        }
        if (ilm_generate(&e, d, &s, ids, n_ids, &go, &st, &err)) goto fail;
        finish_text(&pr);
        fputc('\n', stdout);
        fflush(stdout);
        ilm_gen_stats_print(&st, &e, d != NULL);
        rc = 0;
        goto fail;  // cleanup
    }
    // Interactive multi-turn chat: the KV cache keeps the conversation; each turn appends
    // only the new text.
    fprintf(stderr, "ironlm: interactive chat; an empty line or Ctrl-D ends it\n");
    char line[8192];
    for (;;) {
        fprintf(stderr, "> ");
        if (!fgets(line, sizeof line, stdin)) break;
        size_t ll = strlen(line);
        while (ll && (line[ll - 1] == '\n' || line[ll - 1] == '\r')) line[--ll] = 0;
        if (!ll) break;
        if (ilm_chat_add(&conv, ILM_CHAT_USER, line, &err)) goto fail;
        char *turn = ilm_chat_render_new(&conv, true, &err);
        if (!turn) goto fail;
        free(ids);
        ids = NULL;
        // BOS only at the very start of the conversation
        int flags = e.kv[0].n_pos ? ILM_TOK_NO_BOS : 0;
        int r = ilm_tokenize(tk, turn, strlen(turn), flags, &ids, &n_ids, &err);
        free(turn);
        if (r) goto fail;
        pr.answer_len = 0;
        if (con) ilm_constraint_reset(con);
        if (ilm_generate(&e, d, &s, ids, n_ids, &go, &st, &err)) goto fail;
        finish_text(&pr);
        ilm_stop_free(pr.stop);  // a fresh matcher for the next turn
        pr.stop = NULL;
        if (ilm_stop_new(&pr.stop, stops, n_stops, &err)) goto fail;
        fputc('\n', stdout);
        fflush(stdout);
        if (ilm_chat_add_generated(&conv, pr.answer ? pr.answer : "", &err)) goto fail;
        ilm_gen_stats_print(&st, &e, d != NULL);
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "ironlm: error: %s\n", err.msg);
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
