// toolcall.h — Gemma 4's model output → OpenAI's channels: tool calls and reasoning.
//
// Gemma 4 writes a tool call as `<|tool_call>call:NAME{key:value,...}<tool_call|>` with values in
// the chat template's notation (format_argument): strings between `<|"|>` markers, taken
// verbatim (the template escapes nothing), bare numbers, true / false / null, nested `{...}`
// objects and `[...]` arrays; keys bare (or `<|"|>`-quoted, the template's escape_keys form). It
// thinks inside `<|channel>thought\n ... <channel|>` (the template writes `\n` before the close).
//
// ilm_toolcall_parse turns one call into a name and a compact JSON object; ilm_outsplit routes
// streamed text into content, reasoning and completed tool calls.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/util.h"

#define ILM_TOOLCALL_MAX_DEPTH 64  // nesting of {} / [] in one call's arguments

// Parses one `<|tool_call>call:NAME{...}<tool_call|>` (both markers optional, whitespace around
// tokens allowed). On success returns 0, *name (malloc'd, NUL-terminated; [A-Za-z0-9_.:-]+) and
// args_json appended with the arguments as a compact JSON object: keys in the order given,
// strings escaped with ilm_json_buf_str (invalid UTF-8 → U+FFFD), numbers as written (JSON
// number syntax required), `None` read as null. Malformed input → -1 with err set, *name NULL,
// args_json back at its old length.
int ilm_toolcall_parse(const char *text, size_t len, char **name, ilm_buf *args_json, ilm_err *err);

// ---- the streaming splitter -------------------------------------------------------------------

typedef enum { ILM_OUT_CONTENT, ILM_OUT_REASONING, ILM_OUT_TOOL_CALL } ilm_out_kind;

// One routed piece, valid during the callback only.
typedef struct {
    ilm_out_kind kind;
    const char *text;   // content / reasoning bytes; a tool call's arguments (compact JSON object)
    size_t len;
    const char *name;   // ILM_OUT_TOOL_CALL: the function name (NUL-terminated); else NULL
    bool malformed;     // ILM_OUT_CONTENT: text is a whole tool call (markers included) that did
                        // not parse, or one never closed; passed through so nothing is lost
    const char *error;  // malformed: why (one line); else NULL
} ilm_out_piece;

typedef void (*ilm_outsplit_cb)(void *ctx, const ilm_out_piece *p);

// Routing: outside a channel, text is content; `<|channel>NAME\n` opens reasoning (any channel
// name; the name line is dropped) until `<channel|>` (a `\n` just before it is dropped too); a
// stray `<channel|>` in content is dropped; `<|tool_call>` opens a call, buffered until
// `<tool_call|>` outside a `<|"|>` string, then parsed. Markers may be split across feeds: the
// longest suffix that could start a marker is held back (at most 11 bytes), so content and
// reasoning stream as they come. Independent of enable_thinking.
typedef struct ilm_outsplit ilm_outsplit;
int ilm_outsplit_new(ilm_outsplit **out, ilm_err *err);
void ilm_outsplit_free(ilm_outsplit *s);
// Feeds generated text; calls cb for each piece now complete, in order (no empty pieces).
// Returns 0, or -1 when out of memory (what was fed is then lost).
int ilm_outsplit_feed(ilm_outsplit *s, const char *text, size_t n, ilm_outsplit_cb cb, void *ctx);
// End of generation: passes on what was held back (an unfinished tool call as malformed
// content, an unfinished channel name dropped). The splitter is then back at its start state.
int ilm_outsplit_flush(ilm_outsplit *s, ilm_outsplit_cb cb, void *ctx);
