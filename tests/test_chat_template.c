// test_chat_template.c — gen/chat_template.c against the reference renders of Google's Gemma 4
// template (fixtures chat/chat-ref.json), and the conversations it rejects.
#include <stdlib.h>
#include <string.h>

#include "format/json.h"
#include "gen/chat_template.h"
#include "fixture_util.h"
#include "harness.h"

TEST(chat_template_matches_reference) {
    ilm_json *ref = t_load_json("chat/chat-ref.json");
    if (!ref) return;
    ilm_err err;
    const ilm_json *cases = ilm_json_get(ref, "cases");
    CHECK(cases && cases->type == JSON_ARR && cases->len >= 12);
    for (size_t i = 0; cases && i < cases->len; i++) {
        const ilm_json *c = &cases->items[i], *name = ilm_json_get(c, "name"), *agp = ilm_json_get(c, "add_generation_prompt"),
                       *think = ilm_json_get(c, "enable_thinking"), *want = ilm_json_get(c, "rendered");
        bool add_gen = !agp || agp->type != JSON_BOOL || agp->num != 0;
        bool thinking = think && think->type == JSON_BOOL && think->num != 0;
        char *got = ilm_chat_template_render(ilm_json_get(c, "messages"), ilm_json_get(c, "tools"), add_gen, thinking, true, &err);
        CHECK_MSG(got && want && !strcmp(got, want->str), "case %s:\n got  %s\n want %s", name ? name->str : "?",
                  got ? got : err.msg, want ? want->str : "?");
        // without BOS: the same text after "<bos>"
        char *nobos = ilm_chat_template_render(ilm_json_get(c, "messages"), ilm_json_get(c, "tools"), add_gen, thinking, false, &err);
        CHECK(got && nobos && !strncmp(got, "<bos>", 5) && !strcmp(got + 5, nobos));
        free(got);
        free(nobos);
    }
    ilm_json_free(ref);
}

static char *render(const char *msgs, const char *tools, bool add_gen, bool thinking, ilm_err *err) {
    ilm_json *m = ilm_json_parse(msgs, strlen(msgs), err), *t = tools ? ilm_json_parse(tools, strlen(tools), err) : NULL;
    char *p = m ? ilm_chat_template_render(m, t, add_gen, thinking, false, err) : NULL;
    ilm_json_free(m);
    ilm_json_free(t);
    return p;
}

static void render_fails(const char *msgs, const char *tools, const char *want) {
    ilm_err err = {{0}};
    char *p = render(msgs, tools, true, false, &err);
    CHECK_MSG(!p && strstr(err.msg, want), "want an error containing \"%s\", got %s", want, p ? p : err.msg);
    free(p);
}

TEST(chat_template_details) {
    ilm_err err;
    // arguments given as a JSON string (OpenAI's form), nested values, null; no tool answer yet
    char *p = render("[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"reasoning_content\":\"hmm\","
                     "\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":"
                     "\"{\\\"b\\\":[1,2.5,true,null],\\\"A\\\":{\\\"k\\\":\\\"v\\\"}}\"}}]}]",
                     NULL, true, false, &err);
    CHECK_STR(p, "<|turn>user\nx<turn|>\n<|turn>model\n<|channel>thought\nhmm\n<channel|>"
                 "<|tool_call>call:f{A:{k:<|\"|>v<|\"|>},b:[1,2.5,true,None]}<tool_call|><|tool_response>");
    free(p);
    // thinking is dropped from history before the last user message; a mid-turn continuation
    p = render("[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"1\","
               "\"function\":{\"name\":\"g\",\"arguments\":{}}}]},{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":"
               "[{\"type\":\"text\",\"text\":\"ok\"}]},{\"role\":\"assistant\",\"content\":\"done\"}]",
               NULL, true, true, &err);
    CHECK_STR(p, "<|turn>system\n<|think|>\n<turn|>\n<|turn>user\nq<turn|>\n<|turn>model\n<|tool_call>call:g{}<tool_call|>"
                 "<|tool_response>response:g{value:<|\"|>ok<|\"|>}<tool_response|>done<turn|>\n<|turn>model\n");
    free(p);
    // empty conversation
    ilm_json empty = {.type = JSON_ARR};
    p = ilm_chat_template_render(&empty, NULL, true, false, true, &err);
    CHECK_STR(p, "<bos><|turn>model\n<|channel>thought\n<channel|>");
    free(p);
}

TEST(chat_template_rejects) {
    render_fails("[{\"role\":\"robot\",\"content\":\"x\"}]", NULL, "messages[0].role");
    render_fails("[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"y\"}]", NULL,
                 "messages[1].role: a tool message must follow");
    render_fails("[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{}}]}]", NULL, "messages[0].content[0]");
    render_fails("[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"1\",\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]",
                 NULL, "messages[0].tool_calls[0].function.arguments must be a JSON object");
    render_fails("[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"1\",\"function\":{\"name\":\"f\",\"arguments\":\"{\"}}]}]",
                 NULL, "messages[0].tool_calls[0].function.arguments is not valid JSON");
    render_fails("[{\"role\":\"assistant\",\"tool_calls\":[{\"function\":{\"arguments\":{}}}]}]", NULL,
                 "messages[0].tool_calls[0].function.name");
    render_fails("[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"1\",\"function\":{\"name\":\"f\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"2\",\"content\":\"y\"}]",
                 NULL, "messages[1].tool_call_id matches no tool call");
    render_fails("[{\"role\":\"user\",\"content\":\"x\"}]", "[{\"type\":\"function\",\"function\":{\"description\":\"d\"}}]",
                 "tools[0].function.name");
    render_fails("[{\"role\":\"user\",\"content\":\"x\"}]",
                 "[{\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}}}}}]",
                 "tools[0].function.parameters.properties.a.type must be a string");
    render_fails("[{\"role\":\"system\",\"content\":null}]", NULL, "messages[0].content is missing");
}
