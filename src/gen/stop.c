// stop.c — stop strings over streamed text. See stop.h for the contract.
//
// The matcher looks at held + text, where `held` (< ILM_STOP_LEN_MAX bytes) is what the previous
// feeds kept back. No stop string lies wholly inside `held` (it would have matched), so a search
// over the concatenation finds exactly the new matches. Bytes are read through at() so the
// concatenation is never built: a feed allocates nothing but what `out` needs.
#include "gen/stop.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct ilm_stop {
    int n;
    char str[ILM_STOP_MAX][ILM_STOP_LEN_MAX + 1];
    size_t len[ILM_STOP_MAX];
    char held[ILM_STOP_LEN_MAX];
    size_t held_len;
    int which;  // the stop string that matched, -1 before
};

int ilm_stop_new(ilm_stop **out, const char *const *stops, int n, ilm_err *err) {
    *out = NULL;
    if (n < 0 || n > ILM_STOP_MAX) return ilm_fail(err, "stop: at most %d stop strings (got %d)", ILM_STOP_MAX, n);
    if (n > 0 && !stops) return ilm_fail(err, "stop: no array for %d stop strings", n);
    for (int i = 0; i < n; i++) {
        if (!stops[i] || !stops[i][0]) return ilm_fail(err, "stop: stop string %d is empty", i);
        size_t len = strlen(stops[i]);
        if (len > ILM_STOP_LEN_MAX)
            return ilm_fail(err, "stop: stop string %d is %zu bytes long (at most %d)", i, len, ILM_STOP_LEN_MAX);
    }
    ilm_stop *s = ilm_calloc(1, sizeof *s, err);
    if (!s) return -1;
    s->n = n;
    s->which = -1;
    for (int i = 0; i < n; i++) {
        s->len[i] = strlen(stops[i]);
        memcpy(s->str[i], stops[i], s->len[i] + 1);
    }
    *out = s;
    return 0;
}

void ilm_stop_free(ilm_stop *s) { free(s); }

const char *ilm_stop_which(const ilm_stop *s) { return s->which >= 0 ? s->str[s->which] : NULL; }

// Byte i of held + text.
static inline char at(const ilm_stop *s, const char *text, size_t i) {
    return i < s->held_len ? s->held[i] : text[i - s->held_len];
}

// Whether held + text has stop string k at position pos, compared up to `len` bytes.
static bool has_at(const ilm_stop *s, const char *text, size_t pos, int k, size_t len) {
    if (pos >= s->held_len) return memcmp(text + (pos - s->held_len), s->str[k], len) == 0;
    for (size_t j = 0; j < len; j++)
        if (at(s, text, pos + j) != s->str[k][j]) return false;
    return true;
}

// Appends bytes [0, end) of held + text to out and keeps [end, total) as the new held part
// (the caller makes sure it is shorter than ILM_STOP_LEN_MAX).
static void emit(ilm_stop *s, const char *text, size_t n, size_t end, ilm_buf *out) {
    size_t total = s->held_len + n;
    if (end <= s->held_len) {
        ilm_buf_add(out, s->held, end);
        memmove(s->held, s->held + end, s->held_len - end);
        s->held_len -= end;
        memcpy(s->held + s->held_len, text, n);
        s->held_len += n;
    } else {
        ilm_buf_add(out, s->held, s->held_len);
        ilm_buf_add(out, text, end - s->held_len);
        memcpy(s->held, text + (end - s->held_len), total - end);
        s->held_len = total - end;
    }
}

int ilm_stop_feed(ilm_stop *s, const char *text, size_t n, ilm_buf *out) {
    if (s->which >= 0) return 1;
    if (n == 0) text = "";  // never hand a NULL to memcmp / memcpy
    if (s->n == 0) {
        ilm_buf_add(out, text, n);
        return 0;
    }
    const size_t total = s->held_len + n;
    // Earliest complete match; at the same position the first listed (strict < below).
    size_t best_pos = total;
    int best = -1;
    for (int k = 0; k < s->n; k++) {
        const size_t len = s->len[k];
        if (len > total) continue;
        const char c0 = s->str[k][0];
        size_t last = total - len < best_pos ? total - len : best_pos;  // later starts cannot win
        for (size_t pos = 0; pos <= last; pos++) {
            if (pos == best_pos) break;
            if (at(s, text, pos) == c0 && has_at(s, text, pos, k, len)) {
                best_pos = pos;
                best = k;
                break;
            }
        }
    }
    if (best >= 0) {  // pass on what precedes it, drop the rest
        size_t from_held = best_pos < s->held_len ? best_pos : s->held_len;
        ilm_buf_add(out, s->held, from_held);
        if (best_pos > s->held_len) ilm_buf_add(out, text, best_pos - s->held_len);
        s->held_len = 0;
        s->which = best;
        return 1;
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    size_t hold = 0;
    for (int k = 0; k < s->n; k++) {
        const size_t len = s->len[k];
        const char c0 = s->str[k][0];
        for (size_t l = (len - 1 < total ? len - 1 : total); l > hold; l--)
            if (at(s, text, total - l) == c0 && has_at(s, text, total - l, k, l)) {
                hold = l;
                break;
            }
    }
    emit(s, text, n, total - hold, out);
    return 0;
}

void ilm_stop_flush(ilm_stop *s, ilm_buf *out) {
    if (s->which < 0) ilm_buf_add(out, s->held, s->held_len);
    s->held_len = 0;
}
