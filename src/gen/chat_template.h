// chat_template.h — Gemma 4's chat template (google-gemma-4-31B-it.jinja, the 31B GGUFs'
// tokenizer.chat_template) implemented in C over an OpenAI-format conversation: JSON DOM in,
// prompt text out, byte for byte what the Jinja template renders (tests/test_chat_template.c
// checks the fixture renders).
//
//   messages: [{role: system|developer|user|assistant|tool, content: string | [{type: "text",
//     text}], assistant: tool_calls [{id, function: {name, arguments: object | JSON string}}],
//     reasoning_content | reasoning, tool_responses [{name, response}]; tool: tool_call_id, name}]
//   tools: [{type: "function", function: {name, description, parameters (JSON Schema), response}}]
//
// What it writes: "<bos>" (with_bos), the system turn "<|turn>system\n[<|think|>\n]{system}
// {<|tool>declaration:NAME{...}<tool|>...}<turn|>\n" (when thinking, tools or a leading
// system/developer message), one "<|turn>ROLE\n...<turn|>\n" per message (assistant → model,
// thinking stripped from its text; its tool calls as "<|tool_call>call:NAME{k:v}<tool_call|>",
// then the tool messages that follow it as "<|tool_response>response:NAME{value:...}
// <tool_response|>", the model turn left open when the answer is still to come), and the
// generation prompt "<|turn>model\n" (+ the empty thought "<|channel>thought\n<channel|>"
// without thinking) unless the conversation ends in a tool call or response. Values are in
// Gemma's notation: strings quoted <|"|>...<|"|>, object keys sorted (case-insensitively),
// schema types upper-cased, JSON null as None (as Python's Jinja writes it).
//
// Rejected (err names the field, e.g. "messages[2].tool_calls[0].function.arguments"): what the
// template cannot express or would fail on — unknown roles, non-text content parts, a tool
// message that follows no assistant tool call or whose call it cannot name, tool-call arguments
// that are not a JSON object, a tool without function.name, non-string descriptions or types.
#pragma once
#include <stdbool.h>

#include "base/util.h"
#include "format/json.h"

// The prompt text (malloc'd, NUL-terminated), or NULL with err set. tools may be NULL; messages
// may be empty. with_bos writes "<bos>" first (the tokenizer adds BOS itself: pass false to
// tokenize the result).
char *ilm_chat_template_render(const ilm_json *messages, const ilm_json *tools, bool add_generation_prompt,
                               bool enable_thinking, bool with_bos, ilm_err *err);
