// chat.h — the Gemma 4 turn format (docs/gemma4.md §3.8): a conversation of system / user /
// model messages rendered as prompt text, whole or as the part added since the last render.
//
//   <|turn>system\n[<|think|>\n]{system}<turn|>\n      only with a system message or thinking
//   <|turn>user\n{text}<turn|>\n
//   <|turn>model\n{answer, thinking stripped}<turn|>\n
//   <|turn>model\n                                      the generation prompt
//
// <bos> is not written: the tokenizer adds it. Text is trimmed of surrounding whitespace as the
// template does (`| trim`); special-token strings inside it are left for the tokenizer to parse.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/util.h"

typedef enum { ILM_CHAT_SYSTEM, ILM_CHAT_USER, ILM_CHAT_MODEL } ilm_chat_role;

typedef struct {
    ilm_chat_role role;
    char *text;     // as given; a model answer keeps its thinking (stripped when rendered)
    bool in_cache;  // a generated answer: its tokens already follow the generation prompt
} ilm_chat_message;

typedef struct {
    // Options, set before the first render.
    bool enable_thinking;  // "<|think|>\n" opens the system turn (which then always exists)
    bool empty_thought;    // ik's 31B template without thinking: the generation prompt is
                           // followed by an empty thought "<|channel>thought\n<channel|>"
    ilm_chat_message *msgs;
    int n_msgs, cap_msgs;
    // What the last render covered, for incremental rendering.
    int n_rendered;          // messages rendered so far
    bool rendered_anything;  // the system turn (if any) is out
    bool model_turn_open;    // the last render ended with the generation prompt
} ilm_chat;

void ilm_chat_init(ilm_chat *c);  // an empty conversation, options off
void ilm_chat_free(ilm_chat *c);

// Appends a message. A system message must come first (at most one, before any render).
int ilm_chat_add(ilm_chat *c, ilm_chat_role role, const char *text, ilm_err *err);
// Appends the model answer just generated after the generation prompt (its tokens are in the KV
// cache, the `<turn|>` that ended it is not): an incremental render then emits only the turn's
// closing "<turn|>\n", while a full render replays it like any model message.
int ilm_chat_add_generated(ilm_chat *c, const char *answer, ilm_err *err);

// The whole conversation as prompt text (malloc'd; NULL + err on failure), ending with the
// generation prompt when add_generation_prompt. Marks everything as rendered.
char *ilm_chat_render(ilm_chat *c, bool add_generation_prompt, ilm_err *err);
// Only the text added since the previous render (or everything, the first time): for the
// interactive mode, where the KV cache already holds the earlier turns. Concatenating the
// incremental renders gives the full render, except that generated answers are not repeated.
// Fails when a generation prompt is followed by anything but a model answer.
char *ilm_chat_render_new(ilm_chat *c, bool add_generation_prompt, ilm_err *err);

// Removes thinking from a model answer in place, as the template's strip_thinking does: every
// "<|channel>...<channel|>" span goes (an unclosed "<|channel>" runs to the end, a stray
// "<channel|>" goes), then surrounding whitespace is trimmed. Returns the new length.
size_t ilm_chat_strip_thinking(char *text);
