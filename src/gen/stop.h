// stop.h — OpenAI / llama.cpp `stop` strings over streamed text.
//
// Generated text arrives in pieces (one detokenized token at a time); a stop string may span
// pieces and must never be shown. The matcher passes text through as soon as it can no longer
// become part of a stop string, holds back the rest, and reports the first stop string to appear.
//
// Matching is on bytes. A match is reported as soon as a stop string is complete; among those
// complete at that moment the earliest in the text wins, and at the same position the one listed
// first. (A longer stop string that starts earlier but is not complete yet cannot win: the text
// that would complete it never comes.) Held back is only the longest suffix of the text that is a
// proper prefix of some stop string, so at most ILM_STOP_LEN_MAX - 1 bytes. With valid UTF-8
// text and stop strings, what is passed on always ends on a character boundary.
#pragma once
#include <stddef.h>

#include "base/buf.h"
#include "base/util.h"

#define ILM_STOP_MAX 16       // stop strings per matcher (OpenAI allows 4)
#define ILM_STOP_LEN_MAX 256  // bytes per stop string

typedef struct ilm_stop ilm_stop;

// Up to ILM_STOP_MAX (16) non-empty strings of at most ILM_STOP_LEN_MAX (256) bytes each; copied.
// n == 0 is allowed: then everything passes through at once.
int ilm_stop_new(ilm_stop **out, const char *const *stops, int n, ilm_err *err);
void ilm_stop_free(ilm_stop *s);
// Feeds newly generated text. Appends to `out` the text that is now safe to show (nothing that
// could still become the start of a stop string). Returns 1 when a stop string has appeared:
// everything before it was appended, it and anything after it are dropped (generation should end);
// 0 otherwise. After a match every further feed appends nothing and returns 1.
int ilm_stop_feed(ilm_stop *s, const char *text, size_t n, ilm_buf *out);
// End of generation without a match: appends the held-back text (nothing after a match).
void ilm_stop_flush(ilm_stop *s, ilm_buf *out);
// The stop string that matched (NULL if none).
const char *ilm_stop_which(const ilm_stop *s);
