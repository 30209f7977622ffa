// test_api.c — src/serve/api_*.c: request parsing (the rendered chat prompt, every field, every
// validation error), and every response writer read back with the JSON parser.
#include <math.h>
#include <stdlib.h>

#include "format/json.h"
#include "harness.h"
#include "serve/api.h"

// ---- helpers ------------------------------------------------------------------------------------

static int parse(int kind, const char *body, ilm_api_request *r, ilm_api_error *e) {
    memset(e, 0, sizeof *e);
    return ilm_api_parse_request(kind, body, strlen(body), r, e);
}

static void must_parse(int kind, const char *body, ilm_api_request *r) {
    ilm_api_error e;
    int rc = parse(kind, body, r, &e);
    CHECK_MSG(rc == 0, "%s: rejected: [%s] %s", body, e.param, e.message);
}

// The body is rejected with status 400, this param and a message containing `what`.
static void must_fail(int kind, const char *body, const char *param, const char *what) {
    ilm_api_request r;
    ilm_api_error e;
    int rc = parse(kind, body, &r, &e);
    CHECK_MSG(rc == -1, "%s: accepted", body);
    if (rc == 0) {
        ilm_api_request_free(&r);
        return;
    }
    CHECK_EQ(e.status, 400);
    CHECK_STR(e.type, "invalid_request_error");
    CHECK_MSG(!strcmp(e.param, param), "%s: param \"%s\", want \"%s\" (%s)", body, e.param, param, e.message);
    CHECK_MSG(strstr(e.message, what) != NULL, "%s: message \"%s\" lacks \"%s\"", body, e.message, what);
    CHECK(r.prompt_text == NULL && r.stop == NULL && r.model == NULL);  // left empty
    ilm_api_request_free(&r);
}

static void chat_fail(const char *body, const char *param, const char *what) { must_fail(ILM_API_CHAT, body, param, what); }
static void comp_fail(const char *body, const char *param, const char *what) {
    must_fail(ILM_API_COMPLETION, body, param, what);
}

// Parses b (a JSON object, or one SSE event when sse) and resets it.
static ilm_json *read_back(ilm_buf *b, bool sse) {
    CHECK(!b->oom);
    const char *p = b->p;
    size_t n = b->len;
    if (sse) {
        CHECK_MSG(n > 8 && !strncmp(p, "data: ", 6) && !strcmp(p + n - 2, "\n\n"), "not one SSE event: %s", p);
        CHECK_MSG(memchr(p, '\n', n - 2) == NULL, "newline inside the event: %s", p);
        p += 6, n -= 8;
    }
    ilm_err err;
    ilm_json *j = ilm_json_parse(p, n, &err);
    CHECK_MSG(j != NULL, "does not parse (%s): %.*s", err.msg, (int)n, p);
    ilm_buf_reset(b);
    return j;
}

// A member by path "a.b.0.c" (numbers index arrays).
static const ilm_json *at(const ilm_json *j, const char *path) {
    char key[64];
    while (j && *path) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        if (j->type == JSON_ARR) j = ilm_json_at(j, (size_t)atoi(key));
        else j = ilm_json_get(j, key);
        path += n + (path[n] == '.');
    }
    return j;
}

static const char *str_at(const ilm_json *j, const char *path) {
    const ilm_json *v = at(j, path);
    CHECK_MSG(v && v->type == JSON_STR, "%s is not a string", path);
    return v && v->type == JSON_STR ? v->str : NULL;
}

static double num_at(const ilm_json *j, const char *path) {
    const ilm_json *v = at(j, path);
    CHECK_MSG(v && v->type == JSON_NUM, "%s is not a number", path);
    return v && v->type == JSON_NUM ? v->num : NAN;
}

static bool is_null(const ilm_json *j, const char *path) {
    const ilm_json *v = at(j, path);
    return v && v->type == JSON_NULL;
}

// ---- chat requests ------------------------------------------------------------------------------

TEST(api_chat_minimal_renders_gemma_turns) {
    ilm_api_request r;
    must_parse(ILM_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}]}", &r);
    CHECK_STR(r.prompt_text, "<|turn>user\nHi there<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
    CHECK_EQ(r.prompt_len, strlen(r.prompt_text));
    CHECK(r.prompt_ids == NULL && r.kind == ILM_API_CHAT);
    // Defaults.
    ilm_sampler_params d = ilm_sampler_default_params();
    CHECK(!r.stream && !r.include_usage && !r.seed_given && !r.ignore_eos && !r.enable_thinking);
    CHECK_EQ(r.max_tokens, -1);
    CHECK(r.sampling.temperature == d.temperature && r.sampling.top_k == d.top_k && r.sampling.top_p == d.top_p &&
          r.sampling.min_p == d.min_p && r.sampling.seed == d.seed);
    CHECK(r.presence_penalty == 0 && r.frequency_penalty == 0 && r.repeat_penalty == 1);
    CHECK_EQ(r.repeat_last_n, 64);
    CHECK(r.cache_prompt);
    CHECK_EQ(r.id_slot, -1);
    CHECK_EQ(r.spec_n_max, -1);
    CHECK(r.spec_p_min < 0);
    CHECK(r.n_stop == 0 && r.n_logit_bias == 0 && r.model == NULL);
    ilm_api_request_free(&r);
    ilm_api_request_free(&r);  // twice is harmless
}

TEST(api_chat_conversation_renders_the_template) {
    ilm_api_request r;
    must_parse(ILM_API_CHAT,
               "{\"model\":\"gemma\",\"messages\":["
               "{\"role\":\"developer\",\"content\":\"  Be brief. \"},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Line one\"},{\"type\":\"text\",\"text\":\"line two\"}]},"
               "{\"role\":\"assistant\",\"content\":\"<|channel>thought\\nhmm<channel|>Sure.\"},"
               "{\"role\":\"assistant\",\"content\":null},"
               "{\"role\":\"user\",\"content\":\"Again \\\"quoted\\\"\",\"name\":\"bob\"}]}",
               &r);
    // Text parts are trimmed and joined as they are; a second assistant message continues the
    // first one's turn (the template's continue_same_model_turn); no <bos> (the tokenizer adds it).
    CHECK_STR(r.prompt_text,
              "<|turn>system\nBe brief.<turn|>\n<|turn>user\nLine oneline two<turn|>\n<|turn>model\nSure.<turn|>\n"
              "<turn|>\n<|turn>user\nAgain \"quoted\"<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
    CHECK(r.tools_json == NULL && r.tool_choice == ILM_API_TOOL_AUTO && r.tool_choice_name == NULL);
    CHECK_STR(r.model, "gemma");
    ilm_api_request_free(&r);
}

TEST(api_chat_prefill_and_thinking) {
    ilm_api_request r;
    // A final assistant message is continued: the generation prompt, then its text verbatim.
    must_parse(ILM_API_CHAT,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"Count\"},{\"role\":\"assistant\",\"content\":\"1, 2,\"}]}",
               &r);
    CHECK_STR(r.prompt_text, "<|turn>user\nCount<turn|>\n<|turn>model\n<|channel>thought\n<channel|>1, 2,");
    ilm_api_request_free(&r);
    must_parse(ILM_API_CHAT,
               "{\"chat_template_kwargs\":{\"enable_thinking\":true},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               &r);
    CHECK(r.enable_thinking);
    CHECK_STR(r.prompt_text, "<|turn>system\n<|think|>\n<turn|>\n<|turn>user\nx<turn|>\n<|turn>model\n");
    ilm_api_request_free(&r);
}

#define MSG_FOR_TOOLS "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
#define TOOLS "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather.\"," \
              "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]"
#define DECL "<|tool>declaration:get_weather{description:<|\"|>Weather.<|\"|>,parameters:{properties:{city:{type:<|\"|>STRING" \
             "<|\"|>}},required:[<|\"|>city<|\"|>],type:<|\"|>OBJECT<|\"|>}}<tool|>"

TEST(api_chat_tools_and_tool_messages) {
    ilm_api_request r;
    // OpenAI's form: arguments as a JSON string, the result in a tool message; tool_choice kept.
    must_parse(ILM_API_CHAT,
               "{" TOOLS ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}},\"messages\":["
               "{\"role\":\"user\",\"content\":\"Oslo?\"},"
               "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"look it up\",\"tool_calls\":[{\"id\":\"c1\","
               "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},"
               "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"-3\"}]}",
               &r);
    CHECK_STR(r.prompt_text, "<|turn>system\n" DECL "<turn|>\n<|turn>user\nOslo?<turn|>\n<|turn>model\n"
                             "<|channel>thought\nlook it up\n<channel|><|tool_call>call:get_weather{city:<|\"|>Oslo<|\"|>}"
                             "<tool_call|><|tool_response>response:get_weather{value:<|\"|>-3<|\"|>}<tool_response|>");
    CHECK(r.tools_json && strstr(r.tools_json, "\"name\":\"get_weather\"") && r.tools_json[0] == '[');
    CHECK_EQ(r.tool_choice, ILM_API_TOOL_FUNCTION);
    CHECK_STR(r.tool_choice_name, "get_weather");
    ilm_api_request_free(&r);
    // tools_json parses back to the same declarations
    must_parse(ILM_API_CHAT, "{" TOOLS ",\"tool_choice\":\"required\"," MSG_FOR_TOOLS "}", &r);
    CHECK_EQ(r.tool_choice, ILM_API_TOOL_REQUIRED);
    ilm_err err;
    ilm_json *t = r.tools_json ? ilm_json_parse(r.tools_json, strlen(r.tools_json), &err) : NULL;
    CHECK(t && t->type == JSON_ARR && t->len == 1);
    ilm_json_free(t);
    ilm_api_request_free(&r);
    must_parse(ILM_API_CHAT, "{\"tool_choice\":\"none\"," MSG_FOR_TOOLS "}", &r);
    CHECK(r.tool_choice == ILM_API_TOOL_NONE && r.tools_json == NULL);
    ilm_api_request_free(&r);
}

TEST(api_apply_template) {
    char *p;
    ilm_api_error e;
    const char *b = "{\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}";
    CHECK(ilm_api_apply_template(b, strlen(b), &p, &e) == 0);
    CHECK_STR(p, "<bos><|turn>user\nHi<turn|>\n<|turn>model\n<|channel>thought\n<channel|>");
    free(p);
    b = "{\"add_generation_prompt\":false,\"chat_template_kwargs\":{\"enable_thinking\":true}," TOOLS ","
                    "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\",\"content\":\"Yo\"}]}";
    CHECK(ilm_api_apply_template(b, strlen(b), &p, &e) == 0);
    CHECK_STR(p, "<bos><|turn>system\n<|think|>\n" DECL "<turn|>\n<|turn>user\nHi<turn|>\n<|turn>model\nYo<turn|>\n");
    ilm_buf out = {0};
    ilm_api_write_prompt(&out, p, strlen(p));
    CHECK(out.p && !strncmp(out.p, "{\"prompt\":\"<bos><|turn>system\\n", 31));
    ilm_buf_free(&out);
    free(p);
    b = "{\"add_generation_prompt\":1,\"messages\":[]}";
    CHECK(ilm_api_apply_template(b, strlen(b), &p, &e) == -1 && p == NULL && e.status == 400);
    CHECK_STR(e.param, "add_generation_prompt");
    b = "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}";
    CHECK(ilm_api_apply_template(b, strlen(b), &p, &e) == -1);
    CHECK_STR(e.param, "messages[0].role");
}

TEST(api_chat_reads_every_field) {
    ilm_api_request r;
    must_parse(ILM_API_CHAT,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
               "\"stream_options\":{\"include_usage\":true},\"max_tokens\":77,\"temperature\":0.25,\"top_p\":0.5,"
               "\"top_k\":7,\"min_p\":0.125,\"seed\":12345678901,\"n\":1,\"stop\":[\"END\",\"\\n\\n\"],"
               "\"presence_penalty\":0.5,\"frequency_penalty\":-0.25,\"repeat_penalty\":1.1,\"repeat_last_n\":-1,"
               "\"logit_bias\":{\"5\":-100,\"17\":2.5},\"cache_prompt\":false,\"id_slot\":3,"
               "\"speculative\":{\"n_max\":8,\"p_min\":0.75},\"ignore_eos\":true,\"unknown_field\":[1,{}],"
               "\"user\":\"u\",\"logprobs\":false}",
               &r);
    CHECK(r.stream && r.include_usage && r.seed_given && r.ignore_eos && !r.cache_prompt);
    CHECK_EQ(r.max_tokens, 77);
    CHECK(r.sampling.temperature == 0.25f && r.sampling.top_p == 0.5f && r.sampling.top_k == 7 &&
          r.sampling.min_p == 0.125f);
    CHECK(r.sampling.seed == 12345678901ull);
    CHECK_EQ(r.n_stop, 2);
    if (r.n_stop == 2) {
        CHECK_STR(r.stop[0], "END");
        CHECK_STR(r.stop[1], "\n\n");
    }
    CHECK(r.presence_penalty == 0.5f && r.frequency_penalty == -0.25f && r.repeat_penalty == 1.1f);
    CHECK_EQ(r.repeat_last_n, -1);
    CHECK_EQ(r.n_logit_bias, 2);
    if (r.n_logit_bias == 2) {
        CHECK(r.logit_bias[0].token == 5 && r.logit_bias[0].bias == -100);
        CHECK(r.logit_bias[1].token == 17 && r.logit_bias[1].bias == 2.5f);
    }
    CHECK_EQ(r.id_slot, 3);
    CHECK_EQ(r.spec_n_max, 8);
    CHECK(r.spec_p_min == 0.75f);
    ilm_api_request_free(&r);

    // max_completion_tokens wins over max_tokens; stop as one string; llama.cpp's flat
    // "speculative.*" keys; seed -1 = random; null values = defaults.
    must_parse(ILM_API_CHAT,
               "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5,\"max_completion_tokens\":9,"
               "\"stop\":\"###\",\"speculative.n_max\":0,\"speculative.p_min\":1,\"seed\":-1,\"temperature\":null,"
               "\"stream\":false,\"stream_options\":null,\"logit_bias\":null,\"model\":null}",
               &r);
    CHECK_EQ(r.max_tokens, 9);
    CHECK(r.n_stop == 1 && r.stop && !strcmp(r.stop[0], "###"));
    CHECK_EQ(r.spec_n_max, 0);
    CHECK(r.spec_p_min == 1);
    CHECK(!r.seed_given && !r.stream);
    CHECK(r.sampling.temperature == ilm_sampler_default_params().temperature);
    ilm_api_request_free(&r);

    must_parse(ILM_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n_predict\":-1,\"temperature\":0}", &r);
    CHECK_EQ(r.max_tokens, -1);
    CHECK(r.sampling.temperature == 0);
    ilm_api_request_free(&r);
    must_parse(ILM_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n_predict\":12}", &r);
    CHECK_EQ(r.max_tokens, 12);
    ilm_api_request_free(&r);
}

TEST(api_logit_bias_both_forms) {
    ilm_api_request r;
    must_parse(ILM_API_COMPLETION, "{\"prompt\":\"p\",\"logit_bias\":[[123,-1.5],[456,false],[7,100]]}", &r);
    CHECK_EQ(r.n_logit_bias, 3);
    if (r.n_logit_bias == 3) {
        CHECK(r.logit_bias[0].token == 123 && r.logit_bias[0].bias == -1.5f);
        CHECK(r.logit_bias[1].token == 456 && isinf(r.logit_bias[1].bias) && r.logit_bias[1].bias < 0);
        CHECK(r.logit_bias[2].token == 7 && r.logit_bias[2].bias == 100);
    }
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION, "{\"prompt\":\"p\",\"logit_bias\":{\"2147483647\":-100,\"0\":false}}", &r);
    CHECK_EQ(r.n_logit_bias, 2);
    if (r.n_logit_bias == 2) {
        CHECK(r.logit_bias[0].token == INT32_MAX && r.logit_bias[0].bias == -100);
        CHECK(r.logit_bias[1].token == 0 && isinf(r.logit_bias[1].bias));
    }
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION, "{\"prompt\":\"p\",\"logit_bias\":{}}", &r);
    CHECK_EQ(r.n_logit_bias, 0);
    ilm_api_request_free(&r);
}

// ---- completion prompts -------------------------------------------------------------------------

TEST(api_completion_prompt_forms) {
    ilm_api_request r;
    must_parse(ILM_API_COMPLETION, "{\"prompt\":\"def f(x):\\n\",\"max_tokens\":0}", &r);
    CHECK_STR(r.prompt_text, "def f(x):\n");
    CHECK(r.prompt_ids == NULL && r.kind == ILM_API_COMPLETION && r.max_tokens == 0);
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION, "{\"prompt\":[2, 106, 0, 2147483647]}", &r);
    CHECK(r.prompt_text == NULL);
    CHECK_EQ(r.n_prompt_ids, 4);
    if (r.n_prompt_ids == 4) CHECK(r.prompt_ids[0] == 2 && r.prompt_ids[1] == 106 && r.prompt_ids[3] == INT32_MAX);
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION, "{\"prompt\":[\"only one\"]}", &r);
    CHECK_STR(r.prompt_text, "only one");
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION, "{\"prompt\":[[5,6]]}", &r);
    CHECK(r.n_prompt_ids == 2 && r.prompt_ids && r.prompt_ids[1] == 6);
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION, "{\"prompt\":\"\"}", &r);  // empty text: just BOS
    CHECK_STR(r.prompt_text, "");
    ilm_api_request_free(&r);
    // A chat request ignores `prompt`, a completion `messages`.
    must_parse(ILM_API_COMPLETION, "{\"prompt\":\"a\",\"messages\":7}", &r);
    ilm_api_request_free(&r);
}

// ---- validation ---------------------------------------------------------------------------------

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"

TEST(api_rejects_bad_bodies_and_messages) {
    chat_fail("", "", "not valid JSON");
    chat_fail("{\"messages\":", "", "not valid JSON");
    chat_fail("[1,2]", "", "must be a JSON object");
    chat_fail("{}", "messages", "messages is missing");
    chat_fail("{\"messages\":null}", "messages", "messages is missing");
    chat_fail("{\"messages\":\"hi\"}", "messages", "must be an array");
    chat_fail("{\"messages\":[]}", "messages", "must not be empty");
    chat_fail("{\"messages\":[3]}", "messages[0]", "must be an object");
    chat_fail("{\"messages\":[{\"content\":\"x\"}]}", "messages[0].role", "must be a string");
    chat_fail("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", "messages[0].role", "\"robot\" is not one of");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"tool\",\"content\":\"42\"}]}",
              "messages[1].role", "a tool message must follow an assistant message with tool_calls");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"system\",\"content\":\"s\"}]}",
              "messages[1].role", "system message must be the first");
    chat_fail("{\"messages\":[{\"role\":\"system\",\"content\":\"x\"},{\"role\":\"developer\",\"content\":\"s\"}]}",
              "messages[1].role", "system message must be the first");
    chat_fail("{\"messages\":[{\"role\":\"user\"}]}", "messages[0].content", "is missing");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":null}]}", "messages[0].content", "is missing");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "messages[0].content",
              "must be a string or an array of text parts");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", "messages[0].content", "NUL");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"user\",\"content\":"
              "[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]}]}",
              "messages[1].content[1]", "\"image_url\" are not supported");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":[\"text\"]}]}", "messages[0].content[0]", "must be an object");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"a\"}]}]}", "messages[0].content[0]",
              "needs a \"type\"");
    chat_fail("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}",
              "messages[0].content[0]", ".text must be a string");
    chat_fail("{" MSG ",\"tools\":[{\"type\":\"function\"}]}", "tools[0]", "must be an object with a \"function\"");
    chat_fail("{" MSG ",\"tools\":{}}", "tools", "tools must be an array");
    chat_fail("{" MSG ",\"tools\":[{\"function\":{\"name\":\"\"}}]}", "tools[0].function.name", "non-empty string");
    chat_fail("{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"1\",\"function\":{\"name\":\"f\","
              "\"arguments\":\"[1]\"}}]}]}",
              "messages[0].tool_calls[0].function.arguments", "must be a JSON object");
    chat_fail("{" MSG ",\"tool_choice\":\"sometimes\"}", "tool_choice", "not one of none, auto, required");
    chat_fail("{" MSG ",\"tool_choice\":{\"type\":\"function\"}}", "tool_choice.function.name", "non-empty string");
    chat_fail("{" MSG ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"g\"}}}", "tool_choice.function.name",
              "not among the tools");
    chat_fail("{" MSG ",\"tool_choice\":3}", "tool_choice", "tool_choice must be");
}

TEST(api_rejects_bad_field_types_and_ranges) {
    chat_fail("{" MSG ",\"temperature\":\"hot\"}", "temperature", "temperature must be a number, not a string");
    chat_fail("{" MSG ",\"temperature\":-0.5}", "temperature", "between 0 and 100");
    chat_fail("{" MSG ",\"temperature\":101}", "temperature", "between 0 and 100");
    chat_fail("{" MSG ",\"temperature\":1e999}", "temperature", "finite");
    chat_fail("{" MSG ",\"top_p\":1.5}", "top_p", "between 0 and 1");
    chat_fail("{" MSG ",\"top_p\":-0.1}", "top_p", "between 0 and 1");
    chat_fail("{" MSG ",\"top_k\":-1}", "top_k", "top_k must be between 0");
    chat_fail("{" MSG ",\"top_k\":2.5}", "top_k", "top_k must be an integer");
    chat_fail("{" MSG ",\"min_p\":2}", "min_p", "between 0 and 1");
    chat_fail("{" MSG ",\"max_tokens\":-1}", "max_tokens", "max_tokens must be between 0 and 16777216");
    chat_fail("{" MSG ",\"max_tokens\":16777217}", "max_tokens", "between 0 and 16777216");
    chat_fail("{" MSG ",\"max_completion_tokens\":\"10\"}", "max_completion_tokens", "must be an integer, not a string");
    chat_fail("{" MSG ",\"n_predict\":-2}", "n_predict", "between 0");
    chat_fail("{" MSG ",\"n\":2}", "n", "only n=1 is supported");
    chat_fail("{" MSG ",\"seed\":-5}", "seed", "seed must be between 0");
    chat_fail("{" MSG ",\"seed\":1.5}", "seed", "seed must be a non-negative integer");
    chat_fail("{" MSG ",\"seed\":\"7\"}", "seed", "must be a number");
    chat_fail("{" MSG ",\"stream\":\"yes\"}", "stream", "stream must be a boolean");
    chat_fail("{" MSG ",\"stream_options\":true}", "stream_options", "must be an object");
    chat_fail("{" MSG ",\"stream_options\":{\"include_usage\":1}}", "stream_options.include_usage", "must be a boolean");
    chat_fail("{" MSG ",\"model\":7}", "model", "model must be a string");
    chat_fail("{" MSG ",\"stop\":5}", "stop", "stop must be a string or an array of strings");
    chat_fail("{" MSG ",\"stop\":[\"a\",3]}", "stop[1]", "stop[1] must be a string");
    chat_fail("{" MSG ",\"stop\":[\"a\",\"\"]}", "stop[1]", "must not be empty");
    chat_fail("{" MSG ",\"stop\":\"\"}", "stop", "must not be empty");
    chat_fail("{" MSG ",\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\","
              "\"14\",\"15\",\"16\",\"17\"]}",
              "stop", "at most 16");
    {
        char body[600], long_stop[260];
        memset(long_stop, 'a', 257);
        long_stop[257] = 0;
        snprintf(body, sizeof body, "{" MSG ",\"stop\":[\"%s\"]}", long_stop);
        chat_fail(body, "stop[0]", "longer than 256 bytes");
    }
    chat_fail("{" MSG ",\"presence_penalty\":\"x\"}", "presence_penalty", "must be a number");
    chat_fail("{" MSG ",\"frequency_penalty\":-1e999}", "frequency_penalty", "finite");
    chat_fail("{" MSG ",\"repeat_penalty\":0}", "repeat_penalty", "greater than 0");
    chat_fail("{" MSG ",\"repeat_penalty\":-1}", "repeat_penalty", "between 0");
    chat_fail("{" MSG ",\"repeat_last_n\":-2}", "repeat_last_n", "between -1");
    chat_fail("{" MSG ",\"logit_bias\":5}", "logit_bias", "must be an object or an array");
    chat_fail("{" MSG ",\"logit_bias\":{\"-3\":1}}", "logit_bias.-3", "must be a token id");
    chat_fail("{" MSG ",\"logit_bias\":{\"hello\":1}}", "logit_bias.hello", "must be a token id");
    chat_fail("{" MSG ",\"logit_bias\":{\"12\":101}}", "logit_bias.12", "between -100 and 100");
    chat_fail("{" MSG ",\"logit_bias\":{\"12\":\"1\"}}", "logit_bias.12", "between -100 and 100");
    chat_fail("{" MSG ",\"logit_bias\":[[1.5,1]]}", "logit_bias[0]", "logit_bias[0][0] must be a token id");
    chat_fail("{" MSG ",\"logit_bias\":[[-1,1]]}", "logit_bias[0]", "must be a token id");
    chat_fail("{" MSG ",\"logit_bias\":[[1,true]]}", "logit_bias[0]", "or false to ban");
    chat_fail("{" MSG ",\"logit_bias\":[5]}", "logit_bias[0]", "must be a [token, bias] pair");
    chat_fail("{" MSG ",\"cache_prompt\":1}", "cache_prompt", "must be a boolean");
    chat_fail("{" MSG ",\"id_slot\":-2}", "id_slot", "between -1");
    chat_fail("{" MSG ",\"ignore_eos\":\"no\"}", "ignore_eos", "must be a boolean");
    chat_fail("{" MSG ",\"speculative\":{\"n_max\":17}}", "speculative.n_max", "between 0 and 16");
    chat_fail("{" MSG ",\"speculative.n_max\":-1}", "speculative.n_max", "between 0 and 16");
    chat_fail("{" MSG ",\"speculative\":{\"p_min\":1.5}}", "speculative.p_min", "between 0 and 1");
    chat_fail("{" MSG ",\"speculative\":[1]}", "speculative", "must be an object");
    chat_fail("{" MSG ",\"chat_template_kwargs\":{\"enable_thinking\":\"on\"}}", "chat_template_kwargs.enable_thinking",
              "must be a boolean");
}

TEST(api_rejects_bad_prompts) {
    comp_fail("{}", "prompt", "prompt is missing");
    comp_fail("{\"prompt\":5}", "prompt", "must be a string or an array of token ids");
    comp_fail("{\"prompt\":{}}", "prompt", "must be a string or an array of token ids");
    comp_fail("{\"prompt\":[]}", "prompt", "must not be empty");
    comp_fail("{\"prompt\":[\"a\",\"b\"]}", "prompt", "batched prompts are not supported");
    comp_fail("{\"prompt\":[1,\"b\"]}", "prompt", "prompt[1] must be a token id");
    comp_fail("{\"prompt\":[1,-2]}", "prompt", "prompt[1] must be a token id");
    comp_fail("{\"prompt\":[1,2.5]}", "prompt", "prompt[1] must be a token id");
    comp_fail("{\"prompt\":[1,2147483648]}", "prompt", "prompt[1] must be a token id");
    comp_fail("{\"prompt\":[true]}", "prompt[0]", "must be a string or an array of token ids");
    comp_fail("{\"prompt\":[[]]}", "prompt[0]", "must not be empty");
    comp_fail("{\"prompt\":\"a\\u0000\"}", "prompt", "NUL");
    comp_fail("{\"prompt\":\"a\",\"top_p\":\"high\"}", "top_p", "must be a number");
}

// ---- /tokenize, /detokenize ---------------------------------------------------------------------

TEST(api_tokenize_detokenize_requests) {
    ilm_api_tokenize_request t;
    ilm_api_error e;
    const char *body = "{\"content\":\"a\\u0000b\",\"add_special\":true,\"with_pieces\":true}";
    CHECK(ilm_api_parse_tokenize(body, strlen(body), &t, &e) == 0);
    CHECK(t.content_len == 3 && t.content && !memcmp(t.content, "a\0b", 4) && t.add_special && t.with_pieces);
    ilm_api_tokenize_request_free(&t);
    body = "{\"content\":\"x\"}";
    CHECK(ilm_api_parse_tokenize(body, strlen(body), &t, &e) == 0);
    CHECK(!t.add_special && !t.with_pieces);
    ilm_api_tokenize_request_free(&t);
    body = "{\"content\":3}";
    CHECK(ilm_api_parse_tokenize(body, strlen(body), &t, &e) == -1);
    CHECK(e.status == 400 && !strcmp(e.param, "content"));
    body = "{\"content\":\"x\",\"add_special\":\"yes\"}";
    CHECK(ilm_api_parse_tokenize(body, strlen(body), &t, &e) == -1);
    CHECK(!strcmp(e.param, "add_special") && t.content == NULL);
    body = "{}";
    CHECK(ilm_api_parse_tokenize(body, strlen(body), &t, &e) == -1);

    int32_t *ids;
    int n;
    body = "{\"tokens\":[1,2,300]}";
    CHECK(ilm_api_parse_detokenize(body, strlen(body), &ids, &n, &e) == 0);
    CHECK(n == 3 && ids && ids[2] == 300);
    free(ids);
    body = "{\"tokens\":[]}";
    CHECK(ilm_api_parse_detokenize(body, strlen(body), &ids, &n, &e) == 0);
    CHECK(n == 0 && ids == NULL);
    body = "{\"tokens\":[1,\"x\"]}";
    CHECK(ilm_api_parse_detokenize(body, strlen(body), &ids, &n, &e) == -1);
    CHECK(!strcmp(e.param, "tokens") && strstr(e.message, "tokens[1]"));
    body = "{\"tokens\":\"1 2\"}";
    CHECK(ilm_api_parse_detokenize(body, strlen(body), &ids, &n, &e) == -1);
    body = "nope";
    CHECK(ilm_api_parse_detokenize(body, strlen(body), &ids, &n, &e) == -1);
}

// ---- writers ------------------------------------------------------------------------------------

static const ilm_api_usage USAGE = {.prompt_tokens = 12, .completion_tokens = 4, .cached_tokens = 2,
                                    .prompt_ms = 20.0, .predicted_ms = 50.0, .draft_n = 6, .draft_n_accepted = 3};

static void check_usage(const ilm_json *j) {
    CHECK_EQ(num_at(j, "usage.prompt_tokens"), 12);
    CHECK_EQ(num_at(j, "usage.completion_tokens"), 4);
    CHECK_EQ(num_at(j, "usage.total_tokens"), 16);
    CHECK_EQ(num_at(j, "usage.prompt_tokens_details.cached_tokens"), 2);
}

static void check_timings(const ilm_json *j) {
    CHECK_EQ(num_at(j, "timings.prompt_n"), 10);
    CHECK_EQ(num_at(j, "timings.cache_n"), 2);
    CHECK_NEAR(num_at(j, "timings.prompt_ms"), 20.0, 1e-9);
    CHECK_NEAR(num_at(j, "timings.prompt_per_second"), 500.0, 1e-9);
    CHECK_EQ(num_at(j, "timings.predicted_n"), 4);
    CHECK_NEAR(num_at(j, "timings.predicted_ms"), 50.0, 1e-9);
    CHECK_NEAR(num_at(j, "timings.predicted_per_token_ms"), 12.5, 1e-9);
    CHECK_NEAR(num_at(j, "timings.predicted_per_second"), 80.0, 1e-9);
    CHECK_EQ(num_at(j, "timings.draft_n"), 6);
    CHECK_EQ(num_at(j, "timings.draft_n_accepted"), 3);
}

TEST(api_write_chat_response) {
    ilm_buf b = {0};
    ilm_api_write_response(&b, ILM_API_CHAT, "chatcmpl-1", 1700000000, "gemma-4", "Hello!", 6, "stop", &USAGE);
    ilm_json *j = read_back(&b, false);
    CHECK_STR(str_at(j, "id"), "chatcmpl-1");
    CHECK_STR(str_at(j, "object"), "chat.completion");
    CHECK_EQ(num_at(j, "created"), 1700000000);
    CHECK_STR(str_at(j, "model"), "gemma-4");
    CHECK_EQ(num_at(j, "choices.0.index"), 0);
    CHECK_STR(str_at(j, "choices.0.message.role"), "assistant");
    CHECK_STR(str_at(j, "choices.0.message.content"), "Hello!");
    CHECK_STR(str_at(j, "choices.0.finish_reason"), "stop");
    check_usage(j);
    check_timings(j);
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_completion_response) {
    ilm_buf b = {0};
    ilm_api_write_response(&b, ILM_API_COMPLETION, "cmpl-2", 5, NULL, "x = 1", 5, "length", &USAGE);
    ilm_json *j = read_back(&b, false);
    CHECK_STR(str_at(j, "object"), "text_completion");
    CHECK_STR(str_at(j, "model"), "");
    CHECK_STR(str_at(j, "choices.0.text"), "x = 1");
    CHECK(is_null(j, "choices.0.logprobs"));
    CHECK_STR(str_at(j, "choices.0.finish_reason"), "length");
    check_usage(j);
    check_timings(j);
    ilm_json_free(j);
    // Zero counters and times: no NaN or inf anywhere.
    ilm_api_usage z = {0};
    z.prompt_ms = NAN;
    z.predicted_ms = INFINITY;
    ilm_api_write_response(&b, ILM_API_COMPLETION, "c", 0, "m", "", 0, "stop", &z);
    CHECK(!strstr(b.p, "nan") && !strstr(b.p, "inf"));
    j = read_back(&b, false);
    CHECK_EQ(num_at(j, "timings.predicted_per_second"), 0);
    CHECK_EQ(num_at(j, "timings.prompt_ms"), 0);
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_escapes_text) {
    ilm_buf b = {0};
    const char text[] = "say \"hi\"\n\tback\\slash \x01 bad:\xff\xc3 ok:\xc3\xa9 \xf0\x9f\x98\x80";
    ilm_api_write_response(&b, ILM_API_CHAT, "id\"x", 1, "m\n", text, sizeof text - 1, "stop", NULL);
    CHECK(!memchr(b.p, '\n', b.len));
    ilm_json *j = read_back(&b, false);
    CHECK_STR(str_at(j, "choices.0.message.content"),
              "say \"hi\"\n\tback\\slash \x01 bad:\xef\xbf\xbd\xef\xbf\xbd ok:\xc3\xa9 \xf0\x9f\x98\x80");
    CHECK_STR(str_at(j, "id"), "id\"x");
    CHECK_STR(str_at(j, "model"), "m\n");
    CHECK(at(j, "usage") == NULL);
    ilm_json_free(j);
    // An embedded NUL survives as \u0000.
    ilm_api_write_chunk(&b, ILM_API_COMPLETION, "i", 1, "m", false, "a\0b", 3, NULL, NULL);
    j = read_back(&b, true);
    const ilm_json *t = at(j, "choices.0.text");
    CHECK(t && t->type == JSON_STR && t->len == 3 && !memcmp(t->str, "a\0b", 3));
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_chat_chunk_sequence) {
    ilm_buf b = {0};
    ilm_api_write_chunk(&b, ILM_API_CHAT, "c1", 9, "g", true, "", 0, NULL, NULL);
    ilm_json *j = read_back(&b, true);
    CHECK_STR(str_at(j, "object"), "chat.completion.chunk");
    CHECK_STR(str_at(j, "id"), "c1");
    CHECK_STR(str_at(j, "choices.0.delta.role"), "assistant");
    CHECK_STR(str_at(j, "choices.0.delta.content"), "");
    CHECK(is_null(j, "choices.0.finish_reason"));
    CHECK(at(j, "timings") == NULL);
    ilm_json_free(j);

    ilm_api_write_chunk(&b, ILM_API_CHAT, "c1", 9, "g", false, "Hel\"lo\n", 7, NULL, NULL);
    j = read_back(&b, true);
    CHECK_STR(str_at(j, "choices.0.delta.content"), "Hel\"lo\n");
    CHECK(at(j, "choices.0.delta.role") == NULL);
    CHECK(is_null(j, "choices.0.finish_reason"));
    ilm_json_free(j);

    ilm_api_write_chunk(&b, ILM_API_CHAT, "c1", 9, "g", false, NULL, 0, "stop", &USAGE);
    j = read_back(&b, true);
    const ilm_json *delta = at(j, "choices.0.delta");
    CHECK(delta && delta->type == JSON_OBJ && delta->len == 0);
    CHECK_STR(str_at(j, "choices.0.finish_reason"), "stop");
    check_timings(j);
    ilm_json_free(j);

    ilm_api_write_usage_chunk(&b, ILM_API_CHAT, "c1", 9, "g", &USAGE);
    j = read_back(&b, true);
    const ilm_json *choices = at(j, "choices");
    CHECK(choices && choices->type == JSON_ARR && choices->len == 0);
    CHECK_STR(str_at(j, "object"), "chat.completion.chunk");
    check_usage(j);
    ilm_json_free(j);

    ilm_api_write_done(&b);
    CHECK_STR(b.p, "data: [DONE]\n\n");
    ilm_buf_free(&b);
}

TEST(api_write_completion_chunks) {
    ilm_buf b = {0};
    ilm_api_write_chunk(&b, ILM_API_COMPLETION, "k", 3, "g", false, "abc", 3, NULL, NULL);
    ilm_json *j = read_back(&b, true);
    CHECK_STR(str_at(j, "object"), "text_completion");
    CHECK_STR(str_at(j, "choices.0.text"), "abc");
    CHECK(is_null(j, "choices.0.finish_reason"));
    ilm_json_free(j);
    ilm_api_write_chunk(&b, ILM_API_COMPLETION, "k", 3, "g", false, "", 0, "length", &USAGE);
    j = read_back(&b, true);
    CHECK_STR(str_at(j, "choices.0.text"), "");
    CHECK_STR(str_at(j, "choices.0.finish_reason"), "length");
    check_timings(j);
    ilm_json_free(j);
    ilm_api_write_usage_chunk(&b, ILM_API_COMPLETION, "k", 3, "g", &USAGE);
    j = read_back(&b, true);
    CHECK_STR(str_at(j, "object"), "text_completion");
    check_usage(j);
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_error_object) {
    ilm_buf b = {0};
    ilm_api_request r;
    ilm_api_error e;
    CHECK(parse(ILM_API_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"}", &r, &e) == -1);
    ilm_api_write_error(&b, &e);
    ilm_json *j = read_back(&b, false);
    CHECK_EQ(num_at(j, "error.code"), 400);
    CHECK_STR(str_at(j, "error.type"), "invalid_request_error");
    CHECK_STR(str_at(j, "error.param"), "temperature");
    CHECK(strstr(str_at(j, "error.message") ? str_at(j, "error.message") : "", "temperature"));
    ilm_json_free(j);
    ilm_api_fail(&e, 503, NULL, "the server is \"busy\"");
    ilm_api_write_error(&b, &e);
    j = read_back(&b, false);
    CHECK_EQ(num_at(j, "error.code"), 503);
    CHECK_STR(str_at(j, "error.type"), "server_error");
    CHECK(is_null(j, "error.param"));
    CHECK_STR(str_at(j, "error.message"), "the server is \"busy\"");
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_models) {
    ilm_buf b = {0};
    ilm_api_write_models(&b, "gemma-4-31b", 1234, 131072, 262144, 30700000000LL);
    ilm_json *j = read_back(&b, false);
    CHECK_STR(str_at(j, "object"), "list");
    CHECK_STR(str_at(j, "data.0.id"), "gemma-4-31b");
    CHECK_STR(str_at(j, "data.0.object"), "model");
    CHECK(at(j, "created") == NULL);  // only inside data
    CHECK_EQ(num_at(j, "data.0.created"), 1234);
    CHECK_STR(str_at(j, "data.0.owned_by"), "ironlm");
    CHECK_EQ(num_at(j, "data.0.meta.n_ctx_train"), 131072);
    CHECK_EQ(num_at(j, "data.0.meta.n_vocab"), 262144);
    CHECK_EQ(num_at(j, "data.0.meta.n_params"), 30700000000LL);
    ilm_json_free(j);
    ilm_api_write_models(&b, "m", 1, 0, 0, 0);
    j = read_back(&b, false);
    CHECK(at(j, "data.0.meta") == NULL);
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_tokens_and_content) {
    ilm_buf b = {0};
    const int32_t ids[] = {2, 818, 7};
    ilm_api_write_tokens(&b, ids, 3, NULL, NULL);
    CHECK_STR(b.p, "{\"tokens\":[2,818,7]}");
    ilm_buf_reset(&b);
    const char *pieces[] = {"<bos>", "\"hi\"", "\xe2\x82"};  // the last is half a character
    const size_t lens[] = {5, 4, 2};
    ilm_api_write_tokens(&b, ids, 3, pieces, lens);
    ilm_json *j = read_back(&b, false);
    CHECK_EQ(num_at(j, "tokens.1.id"), 818);
    CHECK_STR(str_at(j, "tokens.0.piece"), "<bos>");
    CHECK_STR(str_at(j, "tokens.1.piece"), "\"hi\"");
    const ilm_json *bytes = at(j, "tokens.2.piece");
    CHECK(bytes && bytes->type == JSON_ARR && bytes->len == 2);
    CHECK_EQ(num_at(j, "tokens.2.piece.0"), 0xe2);
    CHECK_EQ(num_at(j, "tokens.2.piece.1"), 0x82);
    ilm_json_free(j);
    ilm_api_write_content(&b, "line\n\xff", 6);
    j = read_back(&b, false);
    CHECK_STR(str_at(j, "content"), "line\n\xef\xbf\xbd");
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_reasoning_and_tool_call_chunks) {
    ilm_buf b = {0};
    ilm_api_write_reasoning_chunk(&b, "c1", 9, "g", "think \"hard\"\n\xff", 14);
    ilm_json *j = read_back(&b, true);
    CHECK_STR(str_at(j, "object"), "chat.completion.chunk");
    CHECK_STR(str_at(j, "choices.0.delta.reasoning_content"), "think \"hard\"\n\xef\xbf\xbd");
    CHECK(at(j, "choices.0.delta.content") == NULL);
    CHECK(is_null(j, "choices.0.finish_reason"));
    ilm_json_free(j);

    const char *args = "{\"city\":\"Paris\",\"q\":\"a\\\"b\"}";
    ilm_api_tool_call tc = {"call_1", "get_weather", args, strlen(args)};
    ilm_api_write_tool_call_chunk(&b, "c1", 9, "g", 2, &tc);
    j = read_back(&b, true);
    CHECK_EQ(num_at(j, "choices.0.delta.tool_calls.0.index"), 2);
    CHECK_STR(str_at(j, "choices.0.delta.tool_calls.0.id"), "call_1");
    CHECK_STR(str_at(j, "choices.0.delta.tool_calls.0.type"), "function");
    CHECK_STR(str_at(j, "choices.0.delta.tool_calls.0.function.name"), "get_weather");
    CHECK_STR(str_at(j, "choices.0.delta.tool_calls.0.function.arguments"), args);  // a string holding JSON
    CHECK(at(j, "choices.0.delta.content") == NULL);
    CHECK(is_null(j, "choices.0.finish_reason"));
    ilm_json_free(j);

    // the last chunk of a stream with calls
    ilm_api_write_chunk(&b, ILM_API_CHAT, "c1", 9, "g", false, "", 0, "tool_calls", &USAGE);
    j = read_back(&b, true);
    CHECK_STR(str_at(j, "choices.0.finish_reason"), "tool_calls");
    ilm_json_free(j);
    ilm_buf_free(&b);
}

TEST(api_write_chat_response_tool_calls) {
    ilm_buf b = {0};
    ilm_api_tool_call calls[2] = {{"call_a", "f", "{}", 2}, {"call_b", "g", "{\"x\":[1,2]}", 11}};
    ilm_api_write_chat_response(&b, "chatcmpl-3", 7, "m", NULL, 0, "why\n", 4, calls, 2, "tool_calls", &USAGE);
    ilm_json *j = read_back(&b, false);
    CHECK_STR(str_at(j, "object"), "chat.completion");
    CHECK_STR(str_at(j, "choices.0.message.role"), "assistant");
    CHECK(is_null(j, "choices.0.message.content"));
    CHECK_STR(str_at(j, "choices.0.message.reasoning_content"), "why\n");
    CHECK_STR(str_at(j, "choices.0.message.tool_calls.0.id"), "call_a");
    CHECK_STR(str_at(j, "choices.0.message.tool_calls.0.type"), "function");
    CHECK_STR(str_at(j, "choices.0.message.tool_calls.0.function.name"), "f");
    CHECK_STR(str_at(j, "choices.0.message.tool_calls.0.function.arguments"), "{}");
    CHECK_STR(str_at(j, "choices.0.message.tool_calls.1.id"), "call_b");
    CHECK_STR(str_at(j, "choices.0.message.tool_calls.1.function.arguments"), "{\"x\":[1,2]}");
    CHECK(at(j, "choices.0.message.tool_calls.2") == NULL);
    CHECK_STR(str_at(j, "choices.0.finish_reason"), "tool_calls");
    CHECK_EQ(num_at(j, "usage.prompt_tokens"), 12);
    ilm_json_free(j);

    // content with calls stays; no reasoning, no calls: the plain answer, byte for byte
    ilm_api_write_chat_response(&b, "c", 1, "m", "ok", 2, NULL, 0, calls, 1, "tool_calls", NULL);
    j = read_back(&b, false);
    CHECK_STR(str_at(j, "choices.0.message.content"), "ok");
    CHECK(at(j, "choices.0.message.reasoning_content") == NULL);
    CHECK(at(j, "usage") == NULL);
    ilm_json_free(j);
    ilm_buf plain = {0};
    ilm_api_write_chat_response(&b, "c", 1, "m", "hi", 2, "", 0, NULL, 0, "stop", &USAGE);
    ilm_api_write_response(&plain, ILM_API_CHAT, "c", 1, "m", "hi", 2, "stop", &USAGE);
    CHECK_STR(b.p, plain.p);
    CHECK(strstr(b.p, "tool_calls") == NULL && strstr(b.p, "reasoning_content") == NULL);
    ilm_buf_free(&plain);
    ilm_buf_free(&b);
}

TEST(api_response_format) {
    ilm_api_request r;
    must_parse(ILM_API_CHAT, "{" MSG "}", &r);
    CHECK_EQ(r.response_format, ILM_API_FORMAT_TEXT);
    ilm_api_request_free(&r);
    must_parse(ILM_API_CHAT, "{" MSG ",\"response_format\":{\"type\":\"json_object\"}}", &r);
    CHECK_EQ(r.response_format, ILM_API_FORMAT_JSON_OBJECT);
    CHECK(r.json_schema == NULL);
    ilm_api_request_free(&r);
    must_parse(ILM_API_COMPLETION,
               "{\"prompt\":\"x\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"t\",\"schema\":"
               "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}}}}",
               &r);
    CHECK_EQ(r.response_format, ILM_API_FORMAT_JSON_SCHEMA);
    CHECK_STR(r.json_schema, "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}},\"required\":[\"a\"]}");
    ilm_api_request_free(&r);
    chat_fail("{" MSG ",\"response_format\":\"json\"}", "response_format", "must be an object");
    chat_fail("{" MSG ",\"response_format\":{\"type\":\"yaml\"}}", "response_format.type", "is not text, json_object or json_schema");
    chat_fail("{" MSG ",\"response_format\":{\"type\":\"json_schema\"}}", "response_format.json_schema.schema", "must be an object");
    chat_fail("{" MSG ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"schema\":{\"$ref\":\"#/x\"}}}}",
              "response_format.json_schema.schema", "$ref");
}

// tool_choice "none": the tools are not declared in the prompt; "auto" declares them.
TEST(api_tool_choice_none_hides_tools) {
    static const char tools[] = ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
                                "\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
    ilm_api_request r;
    char body[1024];
    snprintf(body, sizeof body, "{" MSG "%s,\"tool_choice\":\"auto\"}", tools);
    must_parse(ILM_API_CHAT, body, &r);
    CHECK(r.prompt_text && strstr(r.prompt_text, "<|tool>declaration:get_weather") != NULL);
    CHECK_EQ(r.tool_choice, ILM_API_TOOL_AUTO);
    ilm_api_request_free(&r);
    snprintf(body, sizeof body, "{" MSG "%s,\"tool_choice\":\"none\"}", tools);
    must_parse(ILM_API_CHAT, body, &r);
    CHECK(r.prompt_text && strstr(r.prompt_text, "<|tool>") == NULL);
    CHECK_EQ(r.tool_choice, ILM_API_TOOL_NONE);
    ilm_api_request_free(&r);
}
