// test_chat.c — src/gen/chat.c: exact Gemma 4 prompt strings (docs/gemma4.md §3.8), incremental
// rendering for the interactive mode, thinking removal, and the ik fixture's chat prompt.
#include <stdlib.h>

#include "gen/chat.h"
#include "harness.h"

// Renders (fully or incrementally), compares and frees.
static void check_render(ilm_chat *c, bool incremental, bool add_generation_prompt, const char *want) {
    ilm_err err = {{0}};
    char *got = incremental ? ilm_chat_render_new(c, add_generation_prompt, &err)
                            : ilm_chat_render(c, add_generation_prompt, &err);
    CHECK_MSG(got != NULL, "render failed: %s", err.msg);
    if (got) CHECK_STR(got, want);
    free(got);
}

static void add(ilm_chat *c, ilm_chat_role role, const char *text) {
    ilm_err err = {{0}};
    CHECK_MSG(ilm_chat_add(c, role, text, &err) == 0, "add failed: %s", err.msg);
}

// JSON string escaping of the characters a prompt here can contain.
static void json_escape(const char *s, char *out, size_t cap) {
    size_t n = 0;
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\n') out[n++] = '\\', out[n++] = 'n';
        else if (*s == '"' || *s == '\\') out[n++] = '\\', out[n++] = *s;
        else out[n++] = *s;
    }
    out[n] = 0;
}

TEST(chat_single_turn_matches_ik_fixture_prompt) {
    const char *want = "<|turn>user\nWhat is free software?<turn|>\n<|turn>model\n";
    ilm_chat c;
    ilm_chat_init(&c);
    add(&c, ILM_CHAT_USER, "What is free software?");
    ilm_err err;
    char *got = ilm_chat_render(&c, true, &err);
    CHECK_STR(got, want);
    // ik/README.md prompt_2, as recorded in the greedy references.
    char *json = t_read(t_fixture("ik/refs/greedy/dense-f32.json"), NULL);
    if (!json) {
        t_skip("fixture ik/refs/greedy/dense-f32.json not found");
    } else if (got) {
        char escaped[256], needle[300];
        json_escape(got, escaped, sizeof escaped);
        snprintf(needle, sizeof needle, "\"prompt_text\": \"%s\"", escaped);
        CHECK_MSG(strstr(json, needle) != NULL, "fixture has no prompt %s", needle);
    }
    free(json);
    free(got);
    ilm_chat_free(&c);
}

TEST(chat_with_system_message) {
    ilm_chat c;
    ilm_chat_init(&c);
    add(&c, ILM_CHAT_SYSTEM, "  You answer in one sentence.\n");
    add(&c, ILM_CHAT_USER, "\nWhy is the sky blue? ");
    check_render(&c, false, true,
                 "<|turn>system\nYou answer in one sentence.<turn|>\n"
                 "<|turn>user\nWhy is the sky blue?<turn|>\n"
                 "<|turn>model\n");
    check_render(&c, false, false,
                 "<|turn>system\nYou answer in one sentence.<turn|>\n"
                 "<|turn>user\nWhy is the sky blue?<turn|>\n");
    ilm_chat_free(&c);
}

TEST(chat_thinking_options) {
    ilm_chat c;
    ilm_chat_init(&c);
    c.enable_thinking = true;  // a system turn appears even without a system message
    add(&c, ILM_CHAT_USER, "Hi");
    check_render(&c, false, true, "<|turn>system\n<|think|>\n<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
    ilm_chat_free(&c);

    ilm_chat_init(&c);
    c.enable_thinking = true;
    add(&c, ILM_CHAT_SYSTEM, "Be brief.");
    add(&c, ILM_CHAT_USER, "Hi");
    check_render(&c, false, true,
                 "<|turn>system\n<|think|>\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
    ilm_chat_free(&c);

    ilm_chat_init(&c);
    c.empty_thought = true;  // ik's 31B template with thinking off
    add(&c, ILM_CHAT_USER, "Hi");
    check_render(&c, false, true, "<|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
    ilm_chat_free(&c);
}

TEST(chat_multi_turn_replays_answers_without_thinking) {
    ilm_chat c;
    ilm_chat_init(&c);
    add(&c, ILM_CHAT_USER, "Hi");
    add(&c, ILM_CHAT_MODEL, "<|channel>thought\nThe user greets me.<channel|>Hello! How can I help?");
    add(&c, ILM_CHAT_USER, "Name a prime.");
    check_render(&c, false, true,
                 "<|turn>user\nHi<turn|>\n"
                 "<|turn>model\nHello! How can I help?<turn|>\n"
                 "<|turn>user\nName a prime.<turn|>\n"
                 "<|turn>model\n");
    ilm_chat_free(&c);
}

TEST(chat_incremental_render_interactive) {
    ilm_chat c;
    ilm_err err;
    ilm_chat_init(&c);
    add(&c, ILM_CHAT_SYSTEM, "Be brief.");
    add(&c, ILM_CHAT_USER, "Hi");
    check_render(&c, true, true, "<|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\n");
    // The model generated its answer (thinking included) into the KV cache, then <turn|>.
    CHECK_EQ(ilm_chat_add_generated(&c, "<|channel>thought\nhm<channel|>Hello!", &err), 0);
    add(&c, ILM_CHAT_USER, "Name a prime.");
    check_render(&c, true, true, "<turn|>\n<|turn>user\nName a prime.<turn|>\n<|turn>model\n");
    CHECK_EQ(ilm_chat_add_generated(&c, "7", &err), 0);
    check_render(&c, true, false, "<turn|>\n");
    check_render(&c, true, false, "");  // nothing new
    add(&c, ILM_CHAT_USER, "Another.");
    check_render(&c, true, true, "<|turn>user\nAnother.<turn|>\n<|turn>model\n");
    // A full render replays the generated answers, thinking stripped.
    check_render(&c, false, true,
                 "<|turn>system\nBe brief.<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\nHello!<turn|>\n"
                 "<|turn>user\nName a prime.<turn|>\n<|turn>model\n7<turn|>\n"
                 "<|turn>user\nAnother.<turn|>\n<|turn>model\n");
    ilm_chat_free(&c);
}

// Without generated answers, the incremental renders concatenate to the full render.
TEST(chat_incremental_concatenates_to_full) {
    ilm_chat inc, full;
    ilm_chat_init(&inc);
    ilm_chat_init(&full);
    const char *turns[][2] = {{"Hi", "Hello <|channel>x<channel|>there."}, {"2+2?", "4"}, {"Bye", "Bye!"}};
    char joined[1024] = "";
    ilm_err err;
    for (int t = 0; t < 3; t++) {
        add(&inc, ILM_CHAT_USER, turns[t][0]);
        add(&full, ILM_CHAT_USER, turns[t][0]);
        char *part = ilm_chat_render_new(&inc, true, &err);
        CHECK(part != NULL);
        if (part) strncat(joined, part, sizeof joined - strlen(joined) - 1);
        free(part);
        add(&inc, ILM_CHAT_MODEL, turns[t][1]);  // an answer written by the caller, not generated
        add(&full, ILM_CHAT_MODEL, turns[t][1]);
    }
    char *part = ilm_chat_render_new(&inc, false, &err);
    if (part) strncat(joined, part, sizeof joined - strlen(joined) - 1);
    free(part);
    char *whole = ilm_chat_render(&full, false, &err);
    CHECK_STR(joined, whole);
    CHECK_STR(whole,
              "<|turn>user\nHi<turn|>\n<|turn>model\nHello there.<turn|>\n<|turn>user\n2+2?<turn|>\n"
              "<|turn>model\n4<turn|>\n<|turn>user\nBye<turn|>\n<|turn>model\nBye!<turn|>\n");
    free(whole);
    ilm_chat_free(&inc);
    ilm_chat_free(&full);
}

TEST(chat_strip_thinking) {
    struct {
        const char *in, *out;
    } cases[] = {
        {"plain answer", "plain answer"},
        {"<|channel>thought\nLet me think.<channel|>The answer is 4.", "The answer is 4."},
        {"a<|channel>x<channel|>b<|channel>y<channel|>c", "abc"},
        {"  <|channel>t<channel|>\n  answer \n", "answer"},
        {"before<|channel>unfinished thought", "before"},  // cut off mid-thought
        {"stray<channel|> close", "stray close"},
        {"a<|channel>x<|channel>y<channel|>b", "ab"},
        {"<|channel>only thought<channel|>", ""},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s", cases[i].in);
        size_t n = ilm_chat_strip_thinking(buf);
        CHECK_STR(buf, cases[i].out);
        CHECK_EQ(n, strlen(cases[i].out));
    }
}

TEST(chat_rejects_misplaced_messages) {
    ilm_chat c;
    ilm_err err = {{0}};
    ilm_chat_init(&c);
    add(&c, ILM_CHAT_USER, "Hi");
    CHECK(ilm_chat_add(&c, ILM_CHAT_SYSTEM, "late", &err) != 0 && strstr(err.msg, "system"));
    CHECK(ilm_chat_add_generated(&c, "no prompt yet", &err) != 0);  // no generation prompt rendered
    char *p = ilm_chat_render_new(&c, true, &err);
    free(p);
    add(&c, ILM_CHAT_USER, "Hello?");  // a user message where the answer should be
    CHECK(ilm_chat_render_new(&c, true, &err) == NULL && strstr(err.msg, "generation prompt"));
    ilm_chat_free(&c);
}
