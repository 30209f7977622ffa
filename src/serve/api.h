// api.h — the OpenAI-compatible HTTP API as data: request bodies (JSON) → C structs with every
// field validated, and C values → response bodies (JSON objects, SSE events). No sockets, no
// threads: the HTTP layer and the scheduler call these. Parsing is in api_request.c, writing in
// api_response.c.
//
// Endpoints covered: POST /v1/chat/completions (ILM_API_CHAT), POST /v1/completions and
// /completion (ILM_API_COMPLETION), GET /v1/models, POST /tokenize, POST /detokenize,
// POST /apply-template.
// Besides OpenAI's fields the requests take llama.cpp server's extras (n_predict, top_k, min_p,
// repeat_penalty, repeat_last_n, cache_prompt, id_slot, speculative.*, ignore_eos, the
// [[id, bias]] logit_bias form, chat_template_kwargs.enable_thinking); responses carry llama.cpp's
// "timings" object. Unknown fields are ignored (OpenAI clients send many).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "gen/sampler.h"

enum { ILM_API_CHAT, ILM_API_COMPLETION };
// tool_choice of a chat request.
enum { ILM_API_TOOL_AUTO, ILM_API_TOOL_NONE, ILM_API_TOOL_REQUIRED, ILM_API_TOOL_FUNCTION };

// A rejected request: the HTTP status, OpenAI's error type, the offending field as a path
// ("messages[1].content[0].type", "temperature"; "" when none) and one line naming it.
typedef struct {
    int status;          // 400 (413, 500, ... when the server fills one itself)
    char type[40];       // "invalid_request_error"
    char param[64];
    char message[300];
} ilm_api_error;

// Limits the parser enforces.
#define ILM_API_MAX_STOP 16         // stop strings per request
#define ILM_API_MAX_STOP_LEN 256    // bytes per stop string
#define ILM_API_MAX_TOKENS (1 << 24)

typedef struct {
    int32_t token;
    float bias;  // added to the token's logit; -INFINITY bans it
} ilm_api_logit_bias;

typedef struct {
    int kind;  // ILM_API_CHAT or ILM_API_COMPLETION
    // The prompt, exactly one of:
    //   chat: the messages and tools rendered by Gemma 4's chat template (gen/chat_template.h,
    //     no <bos>) with the generation prompt; a final assistant message without tool calls is
    //     a prefill: its text follows the generation prompt verbatim (the model continues it)
    //     and its turn is left open.
    //   completion: `prompt` as given (a string, or a one-element array of one string).
    // prompt_len excludes the NUL (strings containing NUL bytes are rejected).
    char *prompt_text;
    size_t prompt_len;
    int32_t *prompt_ids;  // completion `prompt` given as token ids (then prompt_text is NULL)
    int n_prompt_ids;
    bool enable_thinking;  // chat_template_kwargs.enable_thinking (chat only; default false)
    // chat only: the request's `tools` (already in the prompt) as compact JSON text, NULL when
    // none; tool_choice (ILM_API_TOOL_*, default AUTO) and, for FUNCTION, the function's name
    // (checked to be among the tools).
    char *tools_json;
    int tool_choice;
    char *tool_choice_name;
    // parallel_tool_calls (default true). With tool_choice required or a function, the reply
    // is constrained to tool calls (one, or several in a row when parallel) whose arguments
    // follow the function's parameters schema (gen/constrain.h: ilm_constraint_new_tools).
    bool parallel_tool_calls;

    bool stream, include_usage;  // stream_options.include_usage
    int max_tokens;              // max_completion_tokens | max_tokens | n_predict; -1 = not given
    ilm_sampler_params sampling; // ilm_sampler_default_params() overridden by temperature, top_k,
                                 // top_p, min_p, seed
    bool seed_given;             // false also for llama.cpp's "seed": -1 (random)
    char **stop;                 // stop strings, each non-empty and NUL-free
    int n_stop;
    float presence_penalty, frequency_penalty;  // default 0, 0
    float repeat_penalty;                       // default 1 (off)
    int repeat_last_n;                          // default 64; -1 = the whole context
    ilm_api_logit_bias *logit_bias;
    int n_logit_bias;
    bool cache_prompt;  // default true
    int id_slot;        // -1 = any
    int spec_n_max;     // speculative.n_max, -1 = server default (else 0..16)
    float spec_p_min;   // speculative.p_min, < 0 = server default (else [0, 1])
    bool ignore_eos;
    char *model;  // as given, or NULL
    // response_format: {"type":"text"} (none), {"type":"json_object"} (any JSON object) or
    // {"type":"json_schema","json_schema":{"schema":{...}}} (gen/constrain.h's subset; an
    // unsupported construct is a 400 naming it)
    int response_format;  // ILM_API_FORMAT_*
    char *json_schema;    // the schema as compact JSON (json_schema only)
} ilm_api_request;
enum { ILM_API_FORMAT_TEXT, ILM_API_FORMAT_JSON_OBJECT, ILM_API_FORMAT_JSON_SCHEMA };

// Parses and validates a request body. Returns 0 and fills *out (free with
// ilm_api_request_free), or -1 with *e filled (status 400) and *out left empty (freeing it is
// harmless).
int ilm_api_parse_request(int kind, const char *body, size_t len, ilm_api_request *out, ilm_api_error *e);
void ilm_api_request_free(ilm_api_request *r);

// POST /apply-template {messages, tools, add_generation_prompt (default true),
// chat_template_kwargs.enable_thinking}: *prompt (malloc'd) is the chat template's render with
// "<bos>" written first, as llama.cpp's endpoint answers {"prompt": ...}. Returns 0, or -1 with
// *e filled (400).
int ilm_api_apply_template(const char *body, size_t len, char **prompt, ilm_api_error *e);
// Its answer: {"prompt":"..."} appended to b (written in api_request.c, beside the parser).
void ilm_api_write_prompt(ilm_buf *b, const char *prompt, size_t len);

// POST /tokenize {"content": string, "add_special": bool (default false), "with_pieces": bool}.
typedef struct {
    char *content;  // may contain NUL bytes: see content_len
    size_t content_len;
    bool add_special, with_pieces;
} ilm_api_tokenize_request;
int ilm_api_parse_tokenize(const char *body, size_t len, ilm_api_tokenize_request *out, ilm_api_error *e);
void ilm_api_tokenize_request_free(ilm_api_tokenize_request *r);
// POST /detokenize {"tokens": [ids]}: *ids is malloc'd (NULL when empty).
int ilm_api_parse_detokenize(const char *body, size_t len, int32_t **ids, int *n_ids, ilm_api_error *e);

// ---- responses: each writer appends to b (check b->oom once at the end) ----------------------

// Counters of one finished (or finishing) request. prompt_tokens counts the whole prompt,
// cached_tokens the part reused from the KV cache; prompt_ms times the rest.
typedef struct {
    int prompt_tokens, completion_tokens, cached_tokens;
    double prompt_ms, predicted_ms;
    long draft_n, draft_n_accepted;  // drafted / accepted tokens (0, 0 without a drafter)
} ilm_api_usage;

// A whole non-streamed answer. chat: {"id","object":"chat.completion","created","model",
// "choices":[{"index":0,"message":{"role":"assistant","content":text},"finish_reason"}],
// "usage":{...},"timings":{...}}; completion: "object":"text_completion",
// "choices":[{"index":0,"text","logprobs":null,"finish_reason"}]. finish_reason: "stop" or
// "length". model NULL is written as "".
void ilm_api_write_response(ilm_buf *b, int kind, const char *id, long long created, const char *model,
                            const char *text, size_t len, const char *finish_reason, const ilm_api_usage *u);

// One SSE event "data: {...}\n\n" of a streamed answer. chat ("chat.completion.chunk"): with
// role_start the delta is {"role":"assistant","content":text}, else {"content":text}, or {}
// when text is empty and finish_reason is set; completion ("text_completion"): choices
// [{"index":0,"text","logprobs":null,"finish_reason"}]. finish_reason is NULL (written null)
// except on the last chunk, which also carries "timings" when `timings` is non-NULL.
void ilm_api_write_chunk(ilm_buf *b, int kind, const char *id, long long created, const char *model,
                         bool role_start, const char *text, size_t len, const char *finish_reason,
                         const ilm_api_usage *timings);
// The stream_options.include_usage event after the last chunk: "choices":[] and "usage".
void ilm_api_write_usage_chunk(ilm_buf *b, int kind, const char *id, long long created, const char *model,
                               const ilm_api_usage *u);
void ilm_api_write_done(ilm_buf *b);  // "data: [DONE]\n\n"

// {"error":{"code":status,"message","type","param"}} (param null when empty), as llama.cpp.
void ilm_api_write_error(ilm_buf *b, const ilm_api_error *e);
// Fills e (type "invalid_request_error" for 4xx, "server_error" for 5xx); returns -1.
int ilm_api_fail(ilm_api_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

// GET /v1/models: {"object":"list","data":[{"id":alias,"object":"model","created",
// "owned_by":"ironlm","meta":{"n_ctx_train","n_vocab","n_params"}}]}; meta fields <= 0 are left
// out (and meta with them all).
void ilm_api_write_models(ilm_buf *b, const char *alias, long long created, int n_ctx_train, int n_vocab,
                          long long n_params);

// /tokenize: {"tokens":[id,...]}, or with pieces (pieces[i] of piece_lens[i] bytes)
// {"tokens":[{"id":id,"piece":"..."},...]}; a piece that is not valid UTF-8 (a byte token, half
// a character) is written as an array of its byte values, as llama.cpp does.
void ilm_api_write_tokens(ilm_buf *b, const int32_t *ids, int n, const char *const *pieces, const size_t *piece_lens);
// /detokenize: {"content":"..."}.
void ilm_api_write_content(ilm_buf *b, const char *text, size_t len);

// ---- reasoning and tool calls (chat only; gen/toolcall.h splits the model's output) -----------

typedef struct {
    const char *id;         // "call_..."
    const char *name;
    const char *arguments;  // the arguments as a JSON object text; written as a JSON string (OpenAI)
    size_t arguments_len;
} ilm_api_tool_call;

// Chat SSE event whose delta is {"reasoning_content":text} (llama.cpp's field), finish_reason null.
void ilm_api_write_reasoning_chunk(ilm_buf *b, const char *id, long long created, const char *model,
                                   const char *text, size_t len);
// Chat SSE event whose delta is {"tool_calls":[{"index":index,"id","type":"function",
// "function":{"name","arguments"}}]} (the whole call in one event), finish_reason null.
void ilm_api_write_tool_call_chunk(ilm_buf *b, const char *id, long long created, const char *model, int index,
                                   const ilm_api_tool_call *call);
// A whole non-streamed chat answer as ilm_api_write_response, its message
// {"role":"assistant","content":text,"reasoning_content":...,"tool_calls":[{"id","type":"function",
// "function":{"name","arguments"}},...]}: reasoning_content only when reasoning_len > 0,
// tool_calls only when n_calls > 0, and then content null when empty (OpenAI's form).
void ilm_api_write_chat_response(ilm_buf *b, const char *id, long long created, const char *model, const char *text,
                                 size_t len, const char *reasoning, size_t reasoning_len,
                                 const ilm_api_tool_call *calls, int n_calls, const char *finish_reason,
                                 const ilm_api_usage *u);
