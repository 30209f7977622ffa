// test_serve.c — `ironlm serve` end to end on loopback ports, with the committed demo pair
// (models/pycoder-q8_0.gguf + its MTP drafter), so these tests always run: chat and
// completions whole and streamed (C client and curl), greedy streams under concurrency equal to
// `ironlm run`, stop strings across token boundaries, penalties, the prompt cache, every error
// status, disconnects, the queue limit, API keys, SIGTERM and a bounded `ironlm loadtest`.
// Every test starts its own server (serve_util.c) and checks its exit status at the end: under
// `make check` the server is the ASan build, so a leak or a sanitizer report fails the test.
#include <pthread.h>
#include <signal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "serve_util.h"

#define N_GEN 24  // tokens per request in the exactness tests

// Token-id prompts of different lengths (plain text of the demo model's vocabulary and arbitrary
// ids): the same ids go to `ironlm run --tokens` and to /v1/completions as "prompt": [ids].
static const char *const prompts[8] = {
    "2,3492,271,551,1417,1263",
    "2,10,20",
    "2,590,271,1197,2642,2620,481,1911,481,1423,1063,518,1911,439,985,285,271",
    "2,100,200,300,400",
    "2,1715,354,271,627,2534,3492,271,551",
    "2,7,77,777,1777,2777,3777,4000,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34",
    "2,621,714,510,350,559",
    "2,2000",
};

#define START(s, name, ...)                                                       \
    do {                                                                          \
        if (!srv_supported()) {                                                   \
            t_skip("IRONLM_BIN has a launcher prefix; the server tests exec it"); \
            return;                                                               \
        }                                                                         \
        const char *const a_[] = {__VA_ARGS__, NULL};                             \
        if (srv_start((s), (name), a_)) {                                         \
            CHECK_MSG(0, "%s: the server did not start", (name));                 \
            return;                                                               \
        }                                                                         \
    } while (0)

// A completion request body on token ids.
static void completion_body(ilm_buf *b, const char *ids, int n, bool stream, const char *extra) {
    ilm_buf_printf(b, "{\"prompt\":[%s],\"max_tokens\":%d,\"temperature\":0,\"ignore_eos\":true%s%s}", ids, n,
                   stream ? ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" : "", extra ? extra : "");
}

static bool has_curl(void) { return t_run("command -v curl >/dev/null 2>&1", NULL) == 0; }

// --- 1. whole and streamed answers ---------------------------------------------------------------

TEST(serve_chat_and_completions) {
    srv s;
    START(&s, "basic", "--draft", SRV_DRAFT, "-np", "2");
    CHECK_EQ(srv_health(&s), 200);
    srv_resp r;
    if (!srv_req(&s, "GET", "/v1/models", NULL, NULL, &r)) {
        CHECK_EQ(r.status, 200);
        CHECK_STR(sj_str(r.json, "object"), "list");
        CHECK_STR(sj_str(r.json, "data.0.id"), "pycoder-q8_0.gguf");
        CHECK_EQ(sj_num(r.json, "data.0.meta.n_vocab", 0), 4096);
    }
    srv_resp_free(&r);

    // chat, whole
    const char *chat = "{\"messages\":[{\"role\":\"system\",\"content\":\"You write Python.\"},"
                       "{\"role\":\"user\",\"content\":\"def add(a, b):\"}],"
                       "\"max_tokens\":16,\"temperature\":0,\"ignore_eos\":true%s}";
    char body[1024];
    snprintf(body, sizeof body, chat, "");
    char *chat_text = NULL;
    int chat_prompt = -1;
    if (!srv_req(&s, "POST", "/v1/chat/completions", NULL, body, &r)) {
        CHECK_EQ(r.status, 200);
        const char *id = sj_str(r.json, "id");
        CHECK(id && !strncmp(id, "chatcmpl-", 9));
        CHECK_STR(sj_str(r.json, "object"), "chat.completion");
        CHECK_STR(sj_str(r.json, "model"), "pycoder-q8_0.gguf");
        CHECK(sj_num(r.json, "created", 0) > 1.6e9);
        CHECK_STR(sj_str(r.json, "choices.0.message.role"), "assistant");
        const char *content = sj_str(r.json, "choices.0.message.content");
        CHECK(content && *content);
        chat_text = content ? strdup(content) : NULL;
        CHECK_STR(sj_str(r.json, "choices.0.finish_reason"), "length");
        CHECK_EQ(sj_num(r.json, "choices.0.index", -1), 0);
        chat_prompt = (int)sj_num(r.json, "usage.prompt_tokens", -1);
        CHECK(chat_prompt > 10);
        CHECK_EQ(sj_num(r.json, "usage.completion_tokens", -1), 16);
        CHECK_EQ(sj_num(r.json, "usage.total_tokens", -1), chat_prompt + 16);
        CHECK(sj_num(r.json, "usage.prompt_tokens_details.cached_tokens", -1) >= 0);
        CHECK_EQ(sj_num(r.json, "timings.predicted_n", -1), 16);
        CHECK_EQ(sj_num(r.json, "timings.prompt_n", -1) + sj_num(r.json, "timings.cache_n", -1), chat_prompt);
        CHECK(sj_num(r.json, "timings.draft_n", -1) > 0);
        CHECK(sj_num(r.json, "timings.draft_n_accepted", -1) >= 0);
        CHECK(sj_num(r.json, "timings.draft_n_accepted", -1) <= sj_num(r.json, "timings.draft_n", -1));
    }
    srv_resp_free(&r);

    // chat, streamed: the same text in deltas, role first, one id, usage chunk, [DONE]
    snprintf(body, sizeof body, chat, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    srv_stream st = {.kind = 0};
    if (!srv_stream_req(&s, "/v1/chat/completions", NULL, body, &st)) {
        CHECK_EQ(st.status, 200);
        CHECK(!st.bad);
        CHECK(st.done);
        CHECK(st.role_first);
        CHECK(st.ids_same);
        CHECK(!strncmp(st.id, "chatcmpl-", 9));
        CHECK_STR(st.text.p ? st.text.p : "", chat_text ? chat_text : "?");
        CHECK_STR(st.finish, "length");
        CHECK_EQ(st.completion_tokens, 16);
        CHECK_EQ(st.prompt_tokens, chat_prompt);
        CHECK(st.draft_n > 0);
        CHECK(st.n_pieces >= 2);
    }
    srv_stream_free(&st);

    // completions on token ids: whole and streamed equal `ironlm run`
    char *ref = srv_run_ref(prompts[0], N_GEN, NULL);
    CHECK(ref != NULL);
    ilm_buf b = {0};
    completion_body(&b, prompts[0], N_GEN, false, NULL);
    if (!srv_req(&s, "POST", "/v1/completions", NULL, b.p, &r)) {
        CHECK_EQ(r.status, 200);
        const char *id = sj_str(r.json, "id");
        CHECK(id && !strncmp(id, "cmpl-", 5));
        CHECK_STR(sj_str(r.json, "object"), "text_completion");
        CHECK_STR(sj_str(r.json, "choices.0.text"), ref ? ref : "?");
        CHECK_STR(sj_str(r.json, "choices.0.finish_reason"), "length");
        CHECK_EQ(sj_num(r.json, "usage.prompt_tokens", -1), 6);
        CHECK_EQ(sj_num(r.json, "usage.completion_tokens", -1), N_GEN);
        CHECK_EQ(sj_num(r.json, "usage.total_tokens", -1), 6 + N_GEN);
        CHECK(sj_num(r.json, "timings.draft_n", -1) > 0);
    }
    srv_resp_free(&r);
    ilm_buf_reset(&b);
    completion_body(&b, prompts[0], N_GEN, true, NULL);
    st = (srv_stream){.kind = 1};
    if (!srv_stream_req(&s, "/v1/completions", NULL, b.p, &st)) {
        CHECK_EQ(st.status, 200);
        CHECK(!st.bad && st.done && st.ids_same);
        CHECK(!strncmp(st.id, "cmpl-", 5));
        CHECK_STR(st.text.p ? st.text.p : "", ref ? ref : "?");
        CHECK_STR(st.finish, "length");
        CHECK_EQ(st.completion_tokens, N_GEN);
        CHECK_EQ(st.prompt_tokens, 6);
        CHECK(st.draft_n > 0);
    }
    srv_stream_free(&st);

    // completions on a text prompt (BOS added): "import numpy as np\ndef main():" is 2,3492,...
    if (!srv_req(&s, "POST", "/v1/completions", NULL,
                 "{\"prompt\":\"import numpy as np\\ndef main():\",\"max_tokens\":8,\"temperature\":0}", &r)) {
        CHECK_EQ(r.status, 200);
        CHECK(sj_str(r.json, "choices.0.text") != NULL);
        CHECK_EQ(sj_num(r.json, "usage.prompt_tokens", -1), 6);
    }
    srv_resp_free(&r);

    // the same through curl
    if (!has_curl()) {
        printf("  (curl not installed: the curl part of serve_chat_and_completions is skipped)\n");
    } else {
        const char *bf = t_tmp("basic-body.json");
        FILE *f = fopen(bf, "w");
        if (f) {
            fputs(b.p, f);
            fclose(f);
        }
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "curl -sN --max-time 60 -H 'Content-Type: application/json' --data-binary @%s "
                 "http://127.0.0.1:%d/v1/completions", bf, s.port);
        char *out = NULL;
        CHECK_EQ(t_run(cmd, &out), 0);
        // SSE: concatenate the "text" of every data line
        ilm_buf text = {0};
        int n_data = 0;
        bool done = false, finish_length = false;
        for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
            if (strncmp(line, "data: ", 6)) continue;
            n_data++;
            if (!strcmp(line + 6, "[DONE]")) {
                done = true;
                continue;
            }
            ilm_err err;
            ilm_json *j = ilm_json_parse(line + 6, strlen(line + 6), &err);
            CHECK(j != NULL);
            const char *t = sj_str(j, "choices.0.text");
            if (t) ilm_buf_puts(&text, t);
            const char *fin = sj_str(j, "choices.0.finish_reason");
            if (fin && !strcmp(fin, "length")) finish_length = true;
            ilm_json_free(j);
        }
        CHECK(done);
        CHECK(finish_length);
        CHECK(n_data >= 3);
        CHECK_STR(text.p ? text.p : "", ref ? ref : "?");
        ilm_buf_free(&text);
        free(out);
        // whole, chat
        snprintf(body, sizeof body, chat, "");
        f = fopen(bf, "w");
        if (f) {
            fputs(body, f);
            fclose(f);
        }
        snprintf(cmd, sizeof cmd, "curl -s --max-time 60 -H 'Content-Type: application/json' --data-binary @%s "
                 "http://127.0.0.1:%d/v1/chat/completions", bf, s.port);
        out = NULL;
        CHECK_EQ(t_run(cmd, &out), 0);
        ilm_err err;
        ilm_json *j = out ? ilm_json_parse(out, strlen(out), &err) : NULL;
        CHECK(j != NULL);
        CHECK_STR(sj_str(j, "choices.0.message.content"), chat_text ? chat_text : "?");
        CHECK_EQ(sj_num(j, "usage.completion_tokens", -1), 16);
        ilm_json_free(j);
        free(out);
    }
    ilm_buf_free(&b);
    free(ref);
    free(chat_text);
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 2. concurrent greedy streams equal `ironlm run` --------------------------------------------

typedef struct {
    const srv *s;
    int idx;
    srv_stream st;
    int rc;
} stream_job;

static void *stream_thread(void *arg) {
    stream_job *j = arg;
    ilm_buf b = {0};
    completion_body(&b, prompts[j->idx], N_GEN, true, NULL);
    j->st = (srv_stream){.kind = 1};
    j->rc = srv_stream_req(j->s, "/v1/completions", NULL, b.p, &j->st);
    ilm_buf_free(&b);
    return NULL;
}

static void concurrent_streams(const char *np, int n, char *const *refs) {
    srv s;
    char name[32];
    snprintf(name, sizeof name, "concurrent-np%s", np);
    START(&s, name, "--draft", SRV_DRAFT, "-np", np);
    stream_job jobs[8];
    pthread_t th[8];
    int started = 0;
    for (int i = 0; i < n; i++) {
        jobs[i] = (stream_job){.s = &s, .idx = i, .rc = -1};
        if (pthread_create(&th[i], NULL, stream_thread, &jobs[i])) break;
        started++;
    }
    CHECK_EQ(started, n);
    long drafted = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        stream_job *j = &jobs[i];
        CHECK_EQ(j->rc, 0);
        CHECK_EQ(j->st.status, 200);
        CHECK(j->st.done && !j->st.bad);
        CHECK_MSG(refs[i] && j->st.text.p && !strcmp(j->st.text.p, refs[i]), "-np %s, prompt %d: \"%s\" vs run's \"%s\"", np, i,
                  j->st.text.p ? j->st.text.p : "", refs[i] ? refs[i] : "?");
        CHECK_EQ(j->st.completion_tokens, N_GEN);
        CHECK_STR(j->st.finish, "length");
        if (j->st.draft_n > 0) drafted += j->st.draft_n;
        srv_stream_free(&j->st);
    }
    CHECK(drafted > 0);
    // every slot is idle again
    srv_resp r;
    if (!srv_req(&s, "GET", "/slots", NULL, NULL, &r)) {
        CHECK_EQ(r.status, 200);
        CHECK(r.json && r.json->type == JSON_ARR && (int)r.json->len == atoi(np));
        for (size_t i = 0; r.json && i < r.json->len; i++) CHECK_EQ(sj_num(ilm_json_at(r.json, i), "is_processing", 1), 0);
    }
    srv_resp_free(&r);
    CHECK_EQ(srv_stop(&s), 0);
}

TEST(serve_concurrent_greedy_streams) {
    if (!srv_supported()) {
        t_skip("IRONLM_BIN has a launcher prefix; the server tests exec it");
        return;
    }
    char *refs[8];
    for (int i = 0; i < 8; i++) {
        refs[i] = srv_run_ref(prompts[i], N_GEN, NULL);
        CHECK(refs[i] != NULL);
    }
    concurrent_streams("2", 2, refs);
    concurrent_streams("8", 8, refs);
    for (int i = 0; i < 8; i++) free(refs[i]);
}

// --- 3. stop strings across token boundaries ----------------------------------------------------

// The length of the text of ids[0..k) (through /detokenize), -1 on failure.
static int detok_len(const srv *s, const char *ids_csv, int k) {
    ilm_buf b = {0};
    ilm_buf_puts(&b, "{\"tokens\":[");
    const char *p = ids_csv;
    for (int i = 0; i < k && *p; i++) {
        size_t n = strcspn(p, ",");
        ilm_buf_printf(&b, "%s%.*s", i ? "," : "", (int)n, p);
        p += n + (p[n] == ',');
    }
    ilm_buf_puts(&b, "]}");
    srv_resp r;
    int len = -1;
    if (!srv_req(s, "POST", "/detokenize", NULL, b.p, &r) && r.status == 200 && sj_str(r.json, "content"))
        len = (int)strlen(sj_str(r.json, "content"));
    srv_resp_free(&r);
    ilm_buf_free(&b);
    return len;
}

TEST(serve_stop_across_tokens) {
    srv s;
    START(&s, "stop", "--draft", SRV_DRAFT);
    const char *P = prompts[0];
    const int n = 32;
    char *text = srv_run_ref(P, n, NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s run -m %s --tokens %s -n %d --temp 0 --ignore-eos --ids 2>/dev/null", t_bin(), SRV_MODEL, P, n);
    char *ids = NULL;
    CHECK_EQ(t_run(cmd, &ids), 0);
    CHECK(text && ids);
    // a boundary k (between generated tokens k-1 and k) whose neighbours have >= 1 byte each and
    // where stop = the last 2 bytes before it + the first 2 after it first occurs right there
    char stop[8] = {0};
    int cut = -1;
    for (int k = 2; text && ids && k < n - 2 && cut < 0; k++) {
        int a = detok_len(&s, ids, k - 1), m = detok_len(&s, ids, k), z = detok_len(&s, ids, k + 1);
        if (a < 0 || m < 0 || z < 0 || m - a < 1 || z - m < 1) continue;
        int before = m - a < 2 ? m - a : 2, after = z - m < 2 ? z - m : 2;
        memcpy(stop, text + m - before, (size_t)before);
        memcpy(stop + before, text + m, (size_t)after);
        stop[before + after] = 0;
        const char *first = strstr(text, stop);
        if (first == text + m - before) cut = m - before;
    }
    CHECK_MSG(cut > 0, "no token boundary found for a stop string in \"%s\"", text ? text : "");
    if (cut > 0) {
        ilm_buf extra = {0}, b = {0};
        ilm_buf_puts(&extra, ",\"stop\":[\"never-there\",");
        sj_buf_str(&extra, stop);
        ilm_buf_puts(&extra, "]");
        completion_body(&b, P, n, false, extra.p);
        srv_resp r;
        if (!srv_req(&s, "POST", "/v1/completions", NULL, b.p, &r)) {
            CHECK_EQ(r.status, 200);
            const char *t = sj_str(r.json, "choices.0.text");
            CHECK_MSG(t && (int)strlen(t) == cut && !strncmp(t, text, (size_t)cut), "stop \"%s\": \"%s\", expected the first %d bytes of \"%s\"",
                      stop, t ? t : "", cut, text);
            CHECK_STR(sj_str(r.json, "choices.0.finish_reason"), "stop");
            CHECK(sj_num(r.json, "usage.completion_tokens", 99) < n);
        }
        srv_resp_free(&r);
        // streamed: the same text; no piece holds the stop string or starts inside it
        ilm_buf_reset(&b);
        completion_body(&b, P, n, true, extra.p);
        srv_stream st = {.kind = 1};
        if (!srv_stream_req(&s, "/v1/completions", NULL, b.p, &st)) {
            CHECK_EQ(st.status, 200);
            CHECK(st.done && !st.bad);
            CHECK_EQ((long)st.text.len, cut);
            CHECK(st.text.p && !strncmp(st.text.p, text, (size_t)cut));
            CHECK_STR(st.finish, "stop");
            const char *p = st.pieces.p;
            for (int i = 0; p && i < st.n_pieces; i++, p += strlen(p) + 1) CHECK_MSG(!strstr(p, stop), "piece %d \"%s\" holds the stop string", i, p);
        }
        srv_stream_free(&st);
        ilm_buf_free(&extra);
        ilm_buf_free(&b);
    }
    free(text);
    free(ids);
    CHECK_EQ(srv_health(&s), 200);
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 4. penalties equal `ironlm run` with the same flags -----------------------------------------

TEST(serve_penalties_equal_run) {
    srv s;
    START(&s, "penalties", "--draft", SRV_DRAFT);
    const char *P = prompts[0];
    const int n = 32;
    char *plain = srv_run_ref(P, n, NULL);
    char *pen = srv_run_ref(P, n, "--repeat-penalty 1.3 --repeat-last-n 64 --presence-penalty 0.5");
    char *freq = srv_run_ref(P, n, "--frequency-penalty 0.4 --repeat-last-n -1");
    CHECK(plain && pen && freq);
    CHECK_MSG(plain && pen && strcmp(plain, pen), "the penalties change nothing here: pick other settings");
    CHECK_MSG(plain && freq && strcmp(plain, freq), "the frequency penalty changes nothing here: pick other settings");
    const char *const extras[2] = {",\"repeat_penalty\":1.3,\"repeat_last_n\":64,\"presence_penalty\":0.5",
                                   ",\"frequency_penalty\":0.4,\"repeat_last_n\":-1"};
    const char *const want[2] = {pen, freq};
    for (int v = 0; v < 2; v++)
        for (int stream = 0; stream < 2; stream++) {
            ilm_buf b = {0};
            completion_body(&b, P, n, stream, extras[v]);
            if (stream) {
                srv_stream st = {.kind = 1};
                if (!srv_stream_req(&s, "/v1/completions", NULL, b.p, &st)) {
                    CHECK_EQ(st.status, 200);
                    CHECK_MSG(want[v] && st.text.p && !strcmp(st.text.p, want[v]), "variant %d streamed: \"%s\" vs run's \"%s\"", v,
                              st.text.p ? st.text.p : "", want[v] ? want[v] : "?");
                    CHECK_EQ(st.completion_tokens, n);
                }
                srv_stream_free(&st);
            } else {
                srv_resp r;
                if (!srv_req(&s, "POST", "/v1/completions", NULL, b.p, &r)) {
                    CHECK_EQ(r.status, 200);
                    const char *t = sj_str(r.json, "choices.0.text");
                    CHECK_MSG(want[v] && t && !strcmp(t, want[v]), "variant %d: \"%s\" vs run's \"%s\"", v, t ? t : "",
                              want[v] ? want[v] : "?");
                }
                srv_resp_free(&r);
            }
            ilm_buf_free(&b);
        }
    free(plain);
    free(pen);
    free(freq);
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 5. prompt cache ------------------------------------------------------------------------------

// POST a chat body; returns the content (malloc'd) and the cached token count.
static char *chat_once(const srv *s, const char *body, int *cached, int *prompt_tokens) {
    srv_resp r;
    char *out = NULL;
    *cached = *prompt_tokens = -1;
    if (!srv_req(s, "POST", "/v1/chat/completions", NULL, body, &r)) {
        CHECK_EQ(r.status, 200);
        const char *c = sj_str(r.json, "choices.0.message.content");
        if (c) out = strdup(c);
        *cached = (int)sj_num(r.json, "usage.prompt_tokens_details.cached_tokens", -1);
        *prompt_tokens = (int)sj_num(r.json, "usage.prompt_tokens", -1);
        CHECK_EQ(sj_num(r.json, "timings.cache_n", -2), *cached);
    }
    srv_resp_free(&r);
    return out;
}

TEST(serve_prompt_cache) {
    srv s;
    START(&s, "cache", "--draft", SRV_DRAFT);
    const char *u1 = "Write a function that adds two numbers.", *u2 = "Now one that multiplies them.";
    char body[4096];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":12,\"temperature\":0,\"ignore_eos\":true}", u1);
    int cached, pt;
    char *a1 = chat_once(&s, body, &cached, &pt);
    CHECK(a1 != NULL);
    CHECK_EQ(cached, 0);
    // the conversation resent with the answer and one more turn
    ilm_buf b = {0};
    ilm_buf_printf(&b, "{\"messages\":[{\"role\":\"user\",\"content\":\"%s\"},{\"role\":\"assistant\",\"content\":", u1);
    sj_buf_str(&b, a1 ? a1 : "");
    ilm_buf_printf(&b, "},{\"role\":\"user\",\"content\":\"%s\"}],\"max_tokens\":12,\"temperature\":0,\"ignore_eos\":true", u2);
    ilm_buf b_nocache = {0};
    ilm_buf_printf(&b_nocache, "%s,\"cache_prompt\":false}", b.p);
    ilm_buf_puts(&b, "}");
    int cached2, pt2, cached3, pt3;
    char *a2 = chat_once(&s, b.p, &cached2, &pt2);
    CHECK_MSG(cached2 > 0, "cached_tokens %d on the resent conversation", cached2);
    CHECK(cached2 < pt2);
    char *a3 = chat_once(&s, b_nocache.p, &cached3, &pt3);
    CHECK_EQ(cached3, 0);
    CHECK_EQ(pt3, pt2);
    CHECK(a2 && a3);
    CHECK_STR(a2 ? a2 : "", a3 ? a3 : "?");
    // and once more with the cache (the slot now holds the whole of the last prompt)
    int cached4, pt4;
    char *a4 = chat_once(&s, b.p, &cached4, &pt4);
    CHECK(cached4 > cached2);
    CHECK_STR(a4 ? a4 : "", a3 ? a3 : "?");
    srv_resp r;
    if (!srv_req(&s, "GET", "/metrics", NULL, NULL, &r)) {
        const char *m = r.body.p ? strstr(r.body.p, "\nironlm_prompt_tokens_cached_total ") : NULL;
        CHECK(m && atol(m + strlen("\nironlm_prompt_tokens_cached_total ")) == cached2 + cached4);
    }
    srv_resp_free(&r);
    free(a1);
    free(a2);
    free(a3);
    free(a4);
    ilm_buf_free(&b);
    ilm_buf_free(&b_nocache);
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 6. errors ------------------------------------------------------------------------------------

// POSTs body to path; checks the status, that the error JSON is OpenAI's shape and, when
// `field` is non-NULL, that param or message names it; then that /health answers 200.
static void expect_error(const srv *s, const char *path, const char *body, int status, const char *field) {
    srv_resp r;
    if (srv_req(s, "POST", path, NULL, body, &r)) {
        CHECK_MSG(0, "%s: no answer", body);
        return;
    }
    CHECK_MSG(r.status == status, "%.200s: status %d, expected %d (%s)", body, r.status, status, r.body.p ? r.body.p : "");
    CHECK_EQ(sj_num(r.json, "error.code", -1), status);
    CHECK(sj_str(r.json, "error.message") != NULL);
    CHECK_STR(sj_str(r.json, "error.type"), status < 500 ? "invalid_request_error" : "server_error");
    if (field) {
        const char *param = sj_str(r.json, "error.param");
        CHECK_MSG(param && !strncmp(param, field, strlen(field)), "%.200s: the error's param is not %s: %s", body, field,
                  r.body.p ? r.body.p : "");
    }
    srv_resp_free(&r);
    CHECK_EQ(srv_health(s), 200);
}

// Sends raw bytes on a fresh connection; returns the status of the answer (-1: none; 0: closed
// without an answer). *closed: the server closed the connection after it.
static int raw_status(const srv *s, const char *bytes, size_t n, int timeout_ms, bool *closed) {
    int fd = srv_raw_connect(s->port);
    if (fd < 0) return -1;
    ilm_buf out = {0};
    srv_raw_send(fd, bytes, n);  // the server may close before reading it all
    int rc = srv_raw_read(fd, &out, timeout_ms);
    int st = out.len ? srv_raw_status(out.p) : rc == 1 ? 0 : -1;
    if (closed) {
        // after a whole answer: closed when the next read sees EOF soon
        ilm_buf more = {0};
        *closed = rc == 1 || srv_raw_read(fd, &more, 1000) == 1;
        ilm_buf_free(&more);
    }
    ilm_buf_free(&out);
    close(fd);
    return st;
}

TEST(serve_errors) {
    srv s;
    START(&s, "errors", "-c", "64", "--max-body", "2048", "--timeout", "2", "--max-conn", "4");
    const char *C = "/v1/chat/completions", *P = "/v1/completions";
    const char *msg = "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]";
    char b[512];
    // malformed JSON
    expect_error(&s, C, "{\"messages\": [", 400, NULL);
    expect_error(&s, C, "not json", 400, NULL);
    expect_error(&s, C, "", 400, NULL);
    // wrong field types
    expect_error(&s, C, "{\"messages\":\"hi\"}", 400, "messages");
    expect_error(&s, C, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages[0].content");
    snprintf(b, sizeof b, "{%s,\"max_tokens\":\"8\"}", msg);
    expect_error(&s, C, b, 400, "max_tokens");
    snprintf(b, sizeof b, "{%s,\"temperature\":\"hot\"}", msg);
    expect_error(&s, C, b, 400, "temperature");
    snprintf(b, sizeof b, "{%s,\"stream\":1}", msg);
    expect_error(&s, C, b, 400, "stream");
    snprintf(b, sizeof b, "{%s,\"stop\":[1]}", msg);
    expect_error(&s, C, b, 400, "stop");
    expect_error(&s, P, "{\"prompt\":{\"a\":1}}", 400, "prompt");
    expect_error(&s, P, "{\"max_tokens\":4}", 400, "prompt");
    // out of range
    snprintf(b, sizeof b, "{%s,\"temperature\":-1}", msg);
    expect_error(&s, C, b, 400, "temperature");
    snprintf(b, sizeof b, "{%s,\"top_p\":1.5}", msg);
    expect_error(&s, C, b, 400, "top_p");
    snprintf(b, sizeof b, "{%s,\"max_tokens\":-5}", msg);
    expect_error(&s, C, b, 400, "max_tokens");
    snprintf(b, sizeof b, "{%s,\"id_slot\":3}", msg);
    expect_error(&s, C, b, 400, "id_slot");
    expect_error(&s, P, "{\"prompt\":[2,99999]}", 400, "prompt");
    // n = 2
    snprintf(b, sizeof b, "{%s,\"n\":2}", msg);
    expect_error(&s, C, b, 400, "n");
    // a prompt longer than the slot's context (64)
    {
        ilm_buf lp = {0};
        ilm_buf_puts(&lp, "{\"prompt\":[2");
        for (int i = 0; i < 80; i++) ilm_buf_printf(&lp, ",%d", 100 + i);
        ilm_buf_puts(&lp, "],\"max_tokens\":4}");
        expect_error(&s, P, lp.p, 400, "prompt");
        ilm_buf_reset(&lp);
        ilm_buf_puts(&lp, "{\"messages\":[{\"role\":\"user\",\"content\":\"");
        for (int i = 0; i < 60; i++) ilm_buf_puts(&lp, "def f(x): return x ");
        ilm_buf_puts(&lp, "\"}]}");
        expect_error(&s, C, lp.p, 400, "messages");
        ilm_buf_free(&lp);
    }
    // a request that fits still works (and ends at the context: finish_reason length)
    {
        srv_resp r;
        if (!srv_req(&s, "POST", P, NULL, "{\"prompt\":[2,10,20],\"max_tokens\":200,\"temperature\":0,\"ignore_eos\":true}", &r)) {
            CHECK_EQ(r.status, 200);
            CHECK_STR(sj_str(r.json, "choices.0.finish_reason"), "length");
            int ct = (int)sj_num(r.json, "usage.completion_tokens", -1);
            CHECK(ct > 0 && ct <= 64 - 3 + 1);  // the last token is sampled, never stored
        }
        srv_resp_free(&r);
    }
    bool closed;
    char raw[4096];
    // a body over --max-body (2048)
    {
        ilm_buf big = {0};
        ilm_buf_printf(&big, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3000\r\n\r\n", C);
        for (int i = 0; i < 3000; i++) ilm_buf_putc(&big, ' ');
        CHECK_EQ(raw_status(&s, big.p, big.len, 5000, &closed), 413);
        CHECK(closed);
        ilm_buf_free(&big);
        CHECK_EQ(srv_health(&s), 200);
    }
    // too many header bytes (the limit is 16 KiB)
    {
        ilm_buf big = {0};
        ilm_buf_puts(&big, "GET /health HTTP/1.1\r\nHost: x\r\nX-Fill: ");
        for (int i = 0; i < 20000; i++) ilm_buf_putc(&big, 'a');
        ilm_buf_puts(&big, "\r\n\r\n");
        CHECK_EQ(raw_status(&s, big.p, big.len, 5000, &closed), 431);
        CHECK(closed);
        ilm_buf_free(&big);
        CHECK_EQ(srv_health(&s), 200);
    }
    // unknown path, wrong method
    {
        srv_resp r;
        if (!srv_req(&s, "GET", "/v1/nothing", NULL, NULL, &r)) {
            CHECK_EQ(r.status, 404);
            CHECK(sj_str(r.json, "error.message") != NULL);
        }
        srv_resp_free(&r);
        if (!srv_req(&s, "GET", C, NULL, NULL, &r)) CHECK_EQ(r.status, 405);
        srv_resp_free(&r);
        if (!srv_req(&s, "POST", "/health", NULL, "{}", &r)) CHECK_EQ(r.status, 405);
        srv_resp_free(&r);
        CHECK_EQ(srv_health(&s), 200);
    }
    // Transfer-Encoding in a request
    snprintf(raw, sizeof raw,
             "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\n{\"a\":\r\n0\r\n\r\n", C);
    CHECK_EQ(raw_status(&s, raw, strlen(raw), 5000, &closed), 501);
    CHECK(closed);
    CHECK_EQ(srv_health(&s), 200);
    // a request that does not complete within --timeout (2 s): 408, or the connection closed
    {
        snprintf(raw, sizeof raw, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"messages\":", C);
        int st = raw_status(&s, raw, strlen(raw), 6000, &closed);
        CHECK_MSG(st == 408 || st == 0, "a stalled request got %d", st);
        CHECK(closed);
        snprintf(raw, sizeof raw, "GET /health HTTP/1.1\r\nHost: x\r\n");  // the head never ends
        st = raw_status(&s, raw, strlen(raw), 6000, &closed);
        CHECK_MSG(st == 408 || st == 0, "a stalled head got %d", st);
        CHECK_EQ(srv_health(&s), 200);
    }
    // more connections than --max-conn (4): the fifth gets 503
    {
        int fds[4], n_open = 0;
        const char *hreq = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        for (int i = 0; i < 4; i++) {
            fds[i] = srv_raw_connect(s.port);
            if (fds[i] < 0) break;
            n_open++;
            ilm_buf out = {0};
            srv_raw_send(fds[i], hreq, strlen(hreq));  // answered: the server holds the connection
            CHECK_EQ(srv_raw_read(fds[i], &out, 5000), 0);
            CHECK_EQ(srv_raw_status(out.p), 200);
            ilm_buf_free(&out);
        }
        CHECK_EQ(n_open, 4);
        int st = raw_status(&s, hreq, strlen(hreq), 5000, &closed);
        CHECK_EQ(st, 503);
        CHECK(closed);
        for (int i = 0; i < n_open; i++) close(fds[i]);
        // the server notices the closed ones at once
        int h = -1;
        for (int k = 0; k < 50 && h != 200; k++) {
            h = srv_health(&s);
            if (h != 200) srv_sleep_ms(50);
        }
        CHECK_EQ(h, 200);
    }
    // the counters saw it all
    {
        srv_resp r;
        if (!srv_req(&s, "GET", "/metrics", NULL, NULL, &r)) {
            const char *m = r.body.p ? r.body.p : "";
            const char *k400 = strstr(m, "ironlm_requests_total{status=\"400\"} ");
            CHECK(k400 && atol(k400 + strlen("ironlm_requests_total{status=\"400\"} ")) >= 19);
            const char *k413 = strstr(m, "ironlm_requests_total{status=\"408_413_431\"} ");
            CHECK(k413 && atol(k413 + strlen("ironlm_requests_total{status=\"408_413_431\"} ")) >= 2);
        }
        srv_resp_free(&r);
    }
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 6b/7. a full queue, and a disconnect that frees the slot --------------------------------

typedef struct {
    const srv *s;
    int busy_status;
    bool retry_after;
} queue_ctx;

// Runs while the long stream is going (after its third piece): one more request must be refused.
static int refuse_while_busy(void *ctx, int n_pieces) {
    queue_ctx *q = ctx;
    if (n_pieces != 3) return 0;
    const char *req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n"
                      "{\"prompt\":[2],\"max_tokens\":4}";
    int fd = srv_raw_connect(q->s->port);
    ilm_buf out = {0};
    if (fd >= 0 && !srv_raw_send(fd, req, strlen(req)) && srv_raw_read(fd, &out, 5000) >= 0 && out.p) {
        q->busy_status = srv_raw_status(out.p);
        q->retry_after = strcasestr(out.p, "\r\nRetry-After: ") != NULL;
    }
    ilm_buf_free(&out);
    if (fd >= 0) close(fd);
    return 0;
}

static long metric(const srv *s, const char *name) {
    srv_resp r;
    long v = -1;
    if (!srv_req(s, "GET", "/metrics", NULL, NULL, &r) && r.body.p) {
        char key[128];
        snprintf(key, sizeof key, "\n%s ", name);
        const char *m = strstr(r.body.p, key);
        if (m) v = atol(m + strlen(key));
    }
    srv_resp_free(&r);
    return v;
}

// Polls /slots up to timeout_ms for slot 0 not processing; returns whether it got there.
static bool slot_idle(const srv *s, int timeout_ms) {
    for (int t = 0; t <= timeout_ms; t += 50) {
        srv_resp r;
        bool idle = !srv_req(s, "GET", "/slots", NULL, NULL, &r) && r.status == 200 && sj_path(r.json, "0.is_processing") &&
                    sj_num(r.json, "0.is_processing", 1) == 0;
        srv_resp_free(&r);
        if (idle) return true;
        srv_sleep_ms(50);
    }
    return false;
}

TEST(serve_queue_full_and_disconnect) {
    srv s;
    START(&s, "queue", "--draft", SRV_DRAFT, "--max-queue", "0");
    // a long stream (up to the 4096-position context); the client drops it after 6 pieces
    queue_ctx q = {.s = &s, .busy_status = -1};
    srv_stream st = {.kind = 1, .cancel_after = 6, .on_piece = refuse_while_busy, .ctx = &q};
    const char *body = "{\"prompt\":[2,10,20],\"max_tokens\":100000,\"temperature\":0,\"ignore_eos\":true,\"stream\":true}";
    CHECK_EQ(srv_stream_req(&s, "/v1/completions", NULL, body, &st), 0);
    CHECK(st.cancelled);
    CHECK(!st.done);
    CHECK_EQ(q.busy_status, 503);
    CHECK(q.retry_after);
    srv_stream_free(&st);
    // the slot is freed within 2 s and the cancel counted
    CHECK_MSG(slot_idle(&s, 2000), "the slot still processes 2 s after the client went away");
    CHECK(metric(&s, "ironlm_requests_cancelled_total") >= 1);
    CHECK_EQ(metric(&s, "ironlm_slots_busy"), 0);
    CHECK_EQ(srv_health(&s), 200);
    // and the next request runs
    srv_resp r;
    if (!srv_req(&s, "POST", "/v1/completions", NULL, "{\"prompt\":[2,10,20],\"max_tokens\":4,\"temperature\":0}", &r))
        CHECK_EQ(r.status, 200);
    srv_resp_free(&r);
    // a non-streamed request whose client goes away is cancelled too
    {
        const char *req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n";
        char b[96];
        snprintf(b, sizeof b, "%-80s", "{\"prompt\":[2,10,20],\"max_tokens\":100000,\"temperature\":0,\"ignore_eos\":true}");
        long before = metric(&s, "ironlm_requests_cancelled_total");
        int fd = srv_raw_connect(s.port);
        CHECK(fd >= 0);
        if (fd >= 0) {
            srv_raw_send(fd, req, strlen(req));
            srv_raw_send(fd, b, 80);
            srv_sleep_ms(300);
            close(fd);
        }
        CHECK(slot_idle(&s, 2000));
        CHECK_EQ(metric(&s, "ironlm_requests_cancelled_total"), before + 1);
    }
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 8. API keys ---------------------------------------------------------------------------------

TEST(serve_api_key) {
    srv s;
    START(&s, "auth", "--api-key", "sekrit-42");
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3,\"temperature\":0}";
    srv_resp r;
    const struct {
        const char *headers;
        int status;
    } cases[] = {
        {NULL, 401},
        {"Authorization: Bearer sekrit-42\r\n", 200},
        {"X-Api-Key: sekrit-42\r\n", 200},
        {"Authorization: Bearer sekrit-43\r\n", 401},
        {"Authorization: Bearer sekrit-4\r\n", 401},
        {"X-Api-Key: wrong\r\n", 401},
        {"Authorization: sekrit-42\r\n", 401},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (srv_req(&s, "POST", "/v1/chat/completions", cases[i].headers, body, &r)) continue;
        CHECK_MSG(r.status == cases[i].status, "case %zu: %d, expected %d", i, r.status, cases[i].status);
        if (cases[i].status == 401) {
            CHECK_EQ(sj_num(r.json, "error.code", 0), 401);
            CHECK_STR(sj_str(r.json, "error.type"), "authentication_error");
            CHECK(sj_str(r.json, "error.message") != NULL);
        } else {
            CHECK(sj_str(r.json, "choices.0.message.content") != NULL);
        }
        srv_resp_free(&r);
    }
    // open endpoints; /metrics and /slots need the key
    CHECK_EQ(srv_health(&s), 200);
    if (!srv_req(&s, "GET", "/v1/models", NULL, NULL, &r)) CHECK_EQ(r.status, 200);
    srv_resp_free(&r);
    if (!srv_req(&s, "GET", "/metrics", NULL, NULL, &r)) CHECK_EQ(r.status, 401);
    srv_resp_free(&r);
    if (!srv_req(&s, "GET", "/metrics", "X-Api-Key: sekrit-42\r\n", NULL, &r)) {
        CHECK_EQ(r.status, 200);
        CHECK(r.body.p && strstr(r.body.p, "ironlm_requests_total{status=\"401\"} 6\n"));
    }
    srv_resp_free(&r);
    // streaming with the key
    srv_stream st = {.kind = 0};
    if (!srv_stream_req(&s, "/v1/chat/completions", "Authorization: Bearer sekrit-42\r\n",
                        "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":3,\"stream\":true}", &st)) {
        CHECK_EQ(st.status, 200);
        CHECK(st.done);
    }
    srv_stream_free(&st);
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 9. SIGTERM while a request runs ------------------------------------------------------------

typedef struct {
    const srv *s;
    bool sent;
} term_ctx;

static int term_on_first(void *ctx, int n_pieces) {
    term_ctx *t = ctx;
    if (n_pieces == 1 && !t->sent) {
        kill(t->s->pid, SIGTERM);
        t->sent = true;
    }
    return 0;
}

TEST(serve_sigterm_finishes_running) {
    srv s;
    START(&s, "sigterm", "--draft", SRV_DRAFT);
    term_ctx t = {.s = &s};
    srv_stream st = {.kind = 1, .on_piece = term_on_first, .ctx = &t};
    ilm_buf b = {0};
    const int n = 300;
    completion_body(&b, "2,10,20", n, true, NULL);
    CHECK_EQ(srv_stream_req(&s, "/v1/completions", NULL, b.p, &st), 0);
    CHECK(t.sent);
    CHECK_EQ(st.status, 200);
    CHECK(st.done && !st.bad);
    CHECK_STR(st.finish, "length");
    CHECK_EQ(st.completion_tokens, n);
    srv_stream_free(&st);
    ilm_buf_free(&b);
    char *log = srv_log(&s);
    CHECK(strstr(log, "finishing running requests") != NULL);
    free(log);
    CHECK_EQ(srv_stop(&s), 0);  // SIGTERM once more is harmless; exit status 0
    log = srv_log(&s);
    CHECK(strstr(log, "ironlm: stopped") != NULL);
    free(log);
}

// --- 10. a bounded load test ---------------------------------------------------------------------

TEST(serve_loadtest) {
    srv s;
    START(&s, "loadtest", "--draft", SRV_DRAFT, "-np", "4");
    // 300 requests take ~4 s here but ~60 s against the ASan+UBSan server (prefill under ASan
    // is slow: ~5 requests/s on 2 cores), so the sanitizer build gets 200
    const int requests = strstr(t_bin(), "sanitize") ? 200 : 300;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "%s loadtest --url http://127.0.0.1:%d --concurrency 8 --requests %d --max-tokens 8 --cancel-frac 0.1 2>&1",
             t_bin(), s.port, requests);
    char *out = NULL;
    int rc = t_run(cmd, &out);
    CHECK_MSG(rc == 0, "loadtest exit %d:\n%s", rc, out ? out : "");
    free(out);
    CHECK_EQ(srv_health(&s), 200);
    CHECK_EQ(metric(&s, "ironlm_slots_busy"), 0);
    CHECK_EQ(srv_stop(&s), 0);
}

// --- 11. response_format: JSON-constrained output ---------------------------------------------

// Constrained output always parses (and matches the schema), sampled or greedy; greedy with
// the drafter equals greedy without it (per-request speculative.n_max 0); an unsupported schema
// keyword is a 400 naming it.
TEST(serve_response_format_json) {
    srv s;
    START(&s, "json", "--draft", SRV_DRAFT, "-np", "2");
    static const char schema[] =
        "{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":\"object\",\"properties\":{\"name\":{\"type\":"
        "\"string\"},\"n\":{\"type\":\"integer\"}},\"required\":[\"name\",\"n\"],\"additionalProperties\":false}}}";
    static const char object[] = "{\"type\":\"json_object\"}";
    const char *const formats[2] = {schema, object};
    int complete = 0;
    for (int f = 0; f < 2; f++)
        for (int seed = 0; seed < 5; seed++) {
            ilm_buf b = {0};
            ilm_buf_printf(&b, "{\"prompt\":\"data = \",\"max_tokens\":120,\"temperature\":%s,\"seed\":%d,\"response_format\":%s}",
                           seed ? "0.9" : "0", seed, formats[f]);
            srv_resp r;
            if (!srv_req(&s, "POST", "/v1/completions", NULL, b.p, &r)) {
                CHECK_EQ(r.status, 200);
                const char *t = sj_str(r.json, "choices.0.text"), *fin = sj_str(r.json, "choices.0.finish_reason");
                if (t && fin && !strcmp(fin, "stop")) {
                    complete++;
                    ilm_err err;
                    ilm_json *v = ilm_json_parse(t, strlen(t), &err);
                    CHECK_MSG(v && v->type == JSON_OBJ, "format %d seed %d: not a JSON object: %s", f, seed, t);
                    if (v && f == 0) {
                        const ilm_json *name = ilm_json_get(v, "name"), *n = ilm_json_get(v, "n");
                        CHECK_MSG(name && name->type == JSON_STR && n && n->type == JSON_NUM && n->num == (long)n->num &&
                                      v->len == 2,
                                  "seed %d: does not match the schema: %s", seed, t);
                    }
                    ilm_json_free(v);
                }
            }
            srv_resp_free(&r);
            ilm_buf_free(&b);
        }
    CHECK_MSG(complete >= 5, "only %d of 10 constrained answers completed", complete);
    // greedy, drafter on vs off
    char *texts[2] = {NULL, NULL};
    for (int spec = 0; spec < 2; spec++) {
        ilm_buf b = {0};
        ilm_buf_printf(&b, "{\"prompt\":\"data = \",\"max_tokens\":120,\"temperature\":0,\"response_format\":%s%s}", schema,
                       spec ? "" : ",\"speculative\":{\"n_max\":0}");
        srv_resp r;
        if (!srv_req(&s, "POST", "/v1/completions", NULL, b.p, &r)) {
            const char *t = sj_str(r.json, "choices.0.text");
            texts[spec] = t ? strdup(t) : NULL;
            if (spec) CHECK(sj_num(r.json, "timings.draft_n", 0) > 0);
        }
        srv_resp_free(&r);
        ilm_buf_free(&b);
    }
    CHECK_MSG(texts[0] && texts[1] && !strcmp(texts[0], texts[1]), "constrained greedy: drafter \"%s\" vs plain \"%s\"",
              texts[1] ? texts[1] : "?", texts[0] ? texts[0] : "?");
    free(texts[0]);
    free(texts[1]);
    srv_resp r;
    if (!srv_req(&s, "POST", "/v1/completions", NULL,
                 "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"type\":"
                 "\"string\",\"pattern\":\"a+\"}}}}",
                 &r)) {
        CHECK_EQ(r.status, 400);
        const char *param = sj_str(r.json, "error.param"), *msg = sj_str(r.json, "error.message");
        CHECK(param && !strcmp(param, "response_format.json_schema.schema"));
        CHECK(msg && strstr(msg, "pattern"));
    }
    srv_resp_free(&r);
    CHECK_EQ(srv_health(&s), 200);
    CHECK_EQ(srv_stop(&s), 0);
}

// tool_choice required / a named function: the reply is constrained to tool calls whose
// arguments follow the declared schema, returned as OpenAI tool_calls (whole and streamed);
// greedy with the drafter equals greedy without it; schema errors are a 400 naming the construct.
#define TOOLS_BODY                                                                                                   \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in a city\","    \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"enum\":[\"Paris\",\"Oslo\"]},\"days\":{\"type\":"     \
    "\"integer\"}},\"required\":[\"city\",\"days\"]}}},{\"type\":\"function\",\"function\":{\"name\":\"ping\","           \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"}},\"required\":[\"ok\"],"            \
    "\"additionalProperties\":false}}}],\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris for 3 days?\"}]"

// The arguments (JSON text) of a call to NAME are valid for TOOLS_BODY's declaration.
static bool tool_args_ok(const char *name, const char *args) {
    ilm_err err;
    ilm_json *a = args ? ilm_json_parse(args, strlen(args), &err) : NULL;
    bool ok = false;
    if (a && a->type == JSON_OBJ && name && !strcmp(name, "get_weather")) {
        const ilm_json *city = ilm_json_get(a, "city"), *days = ilm_json_get(a, "days");
        ok = a->len == 2 && city && city->type == JSON_STR && (!strcmp(city->str, "Paris") || !strcmp(city->str, "Oslo")) &&
             days && days->type == JSON_NUM && days->num == floor(days->num);
    } else if (a && a->type == JSON_OBJ && name && !strcmp(name, "ping")) {
        const ilm_json *o = ilm_json_get(a, "ok");
        ok = a->len == 1 && o && o->type == JSON_BOOL;
    }
    ilm_json_free(a);
    return ok;
}

TEST(serve_tool_calls) {
    srv s;
    START(&s, "tools", "--draft", SRV_DRAFT, "-np", "2");
    char *greedy[2] = {NULL, NULL};
    for (int k = 0; k < 6; k++) {  // required: 0-3 (0 and 1 greedy, drafter on/off), named: 4-5
        ilm_buf b = {0};
        ilm_buf_printf(&b, "{" TOOLS_BODY ",\"max_tokens\":60,\"temperature\":%s,\"seed\":%d,\"tool_choice\":%s%s}",
                       k < 2 ? "0" : "0.9", k, k < 4 ? "\"required\"" : "{\"type\":\"function\",\"function\":{\"name\":\"ping\"}}",
                       k == 1 ? ",\"speculative\":{\"n_max\":0}" : "");
        srv_resp r;
        if (!srv_req(&s, "POST", "/v1/chat/completions", NULL, b.p, &r)) {
            CHECK_EQ(r.status, 200);
            const char *fin = sj_str(r.json, "choices.0.finish_reason"), *type = sj_str(r.json, "choices.0.message.tool_calls.0.type"),
                       *name = sj_str(r.json, "choices.0.message.tool_calls.0.function.name"),
                       *args = sj_str(r.json, "choices.0.message.tool_calls.0.function.arguments"),
                       *id = sj_str(r.json, "choices.0.message.tool_calls.0.id");
            CHECK_MSG(fin && !strcmp(fin, "tool_calls"), "request %d: finish_reason %s: %.*s", k, fin ? fin : "-",
                      (int)r.body.len, r.body.p);
            CHECK(type && !strcmp(type, "function") && id && *id);
            CHECK_MSG(tool_args_ok(name, args), "request %d: %s(%s)", k, name ? name : "-", args ? args : "-");
            if (k >= 4) CHECK(name && !strcmp(name, "ping"));
            if (k < 2 && name && args) {
                ilm_buf g = {0};
                ilm_buf_printf(&g, "%s%s", name, args);
                greedy[k] = g.p;
            }
            if (k == 0) CHECK(sj_num(r.json, "timings.draft_n", 0) > 0);
        }
        srv_resp_free(&r);
        ilm_buf_free(&b);
    }
    CHECK_MSG(greedy[0] && greedy[1] && !strcmp(greedy[0], greedy[1]), "greedy tool call: drafter %s vs plain %s",
              greedy[0] ? greedy[0] : "-", greedy[1] ? greedy[1] : "-");
    free(greedy[0]);
    free(greedy[1]);
    // streamed: delta.tool_calls, finish_reason tool_calls, no content
    srv_stream st = {0};
    if (!srv_stream_req(&s, "/v1/chat/completions", NULL,
                        "{" TOOLS_BODY ",\"max_tokens\":60,\"temperature\":0,\"stream\":true,\"tool_choice\":\"required\"}",
                        &st)) {
        CHECK(st.done && !st.bad);
        CHECK_MSG(!strcmp(st.finish, "tool_calls"), "streamed finish_reason %s", st.finish);
        CHECK_EQ(st.n_tool_calls, 1);
        ilm_buf_putc(&st.tool_args, 0);
        CHECK_MSG(tool_args_ok(st.tool_name, st.tool_args.p), "streamed %s(%s)", st.tool_name,
                  st.tool_args.p ? st.tool_args.p : "-");
        CHECK_EQ((int)st.text.len, 0);
    }
    srv_stream_free(&st);
    // errors: an unsupported construct in a declared schema, tool_choice with response_format
    static const struct {
        const char *body, *param, *what;
    } bad[] = {
        {"{\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":"
         "{\"a\":{\"type\":\"string\",\"pattern\":\"x+\"}}}}}],\"tool_choice\":\"required\",\"messages\":[{\"role\":"
         "\"user\",\"content\":\"hi\"}]}",
         "tools", "pattern"},
        {"{" TOOLS_BODY ",\"tool_choice\":\"required\",\"response_format\":{\"type\":\"json_object\"}}", "response_format",
         "cannot be combined"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tool_choice\":\"required\"}", "tool_choice", "tools"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        srv_resp r;
        if (srv_req(&s, "POST", "/v1/chat/completions", NULL, bad[i].body, &r)) continue;
        CHECK_EQ(r.status, 400);
        const char *param = sj_str(r.json, "error.param"), *msg = sj_str(r.json, "error.message");
        CHECK_MSG(param && !strcmp(param, bad[i].param), "case %zu: param %s", i, param ? param : "-");
        CHECK_MSG(msg && strstr(msg, bad[i].what), "case %zu: %s", i, msg ? msg : "-");
        srv_resp_free(&r);
    }
    CHECK_EQ(srv_health(&s), 200);
    CHECK_EQ(srv_stop(&s), 0);
}
