// convert_tokenizer.h — a Hugging Face checkpoint's tokenizer as GGUF metadata, for
// `ironlm convert` and the direct load of a checkpoint directory (tools/convert.c).
#pragma once
#include "base/util.h"
#include "format/gguf_write.h"

// Reads HF_DIR/tokenizer.json (BPE vocabulary, merges, added and special tokens) and the chat
// template (HF_DIR/chat_template.jinja, else "chat_template" in HF_DIR/tokenizer_config.json)
// (and config.json's *_token_id, as the reference does) and adds the tokenizer keys to w exactly
// as the reference converter writes them for gemma4, in its order: tokenizer.ggml.model, tokens,
// scores, token_type, merges, the special ids, the add_* flags of the checkpoint,
// tokenizer.chat_template when it has one, add_space_prefix (false), add_bos_token (true; keeps
// the place of an earlier add_bos_token). Nothing is written to w on failure. Rules and the
// deliberate differences: the comment at the top of convert_tokenizer.c.
int ilm_convert_tokenizer(ilm_gguf_writer *w, const char *hf_dir, ilm_err *err);
