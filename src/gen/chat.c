// chat.c — Gemma 4 chat prompts (docs/gemma4.md §3.8, ik's google-gemma-4-31B-it.jinja): the
// conversation object, full and incremental rendering, and thinking removal. See chat.h.
#include "gen/chat.h"

#include <stdlib.h>
#include <string.h>

// ---- a growing string -----------------------------------------------------------------------

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} text_buf;

static void buf_append(text_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_puts(text_buf *b, const char *s) { buf_append(b, s, strlen(s)); }

// ---- text clean-up as the template does it ----------------------------------------------------

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

// Jinja's `| trim` (ASCII whitespace; the template's Python strip would also take Unicode spaces).
static void buf_append_trimmed(text_buf *b, const char *s) {
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1])) n--;
    while (n > 0 && is_space(*s)) s++, n--;
    buf_append(b, s, n);
}

static const char CHANNEL_OPEN[] = "<|channel>", CHANNEL_CLOSE[] = "<channel|>";

// The template's strip_thinking: split at "<channel|>"; of each part keep what precedes its
// first "<|channel>"; join; trim. Works in place: the write position never passes the read one.
size_t ilm_chat_strip_thinking(char *text) {
    const size_t close_len = sizeof CHANNEL_CLOSE - 1;
    char *out = text, *part = text;
    for (;;) {
        char *close = strstr(part, CHANNEL_CLOSE);
        size_t part_len = close ? (size_t)(close - part) : strlen(part);
        // "<|channel>" within this part (strstr on the part alone: cut it at the close marker)
        char saved = part[part_len];
        part[part_len] = 0;
        char *open = strstr(part, CHANNEL_OPEN);
        part[part_len] = saved;
        size_t keep = open ? (size_t)(open - part) : part_len;
        memmove(out, part, keep);
        out += keep;
        if (!close) break;
        part = close + close_len;
    }
    *out = 0;
    size_t n = (size_t)(out - text);
    while (n > 0 && is_space(text[n - 1])) n--;
    size_t lead = 0;
    while (lead < n && is_space(text[lead])) lead++;
    memmove(text, text + lead, n - lead);
    text[n - lead] = 0;
    return n - lead;
}

// Appends a model answer with its thinking stripped, without a temporary copy.
static void buf_append_answer(text_buf *b, const char *answer) {
    size_t start = b->len;
    buf_puts(b, answer);
    if (b->oom) return;
    b->len = start + ilm_chat_strip_thinking(b->p + start);
}

// ---- the conversation -------------------------------------------------------------------------

void ilm_chat_init(ilm_chat *c) { memset(c, 0, sizeof *c); }

void ilm_chat_free(ilm_chat *c) {
    for (int i = 0; i < c->n_msgs; i++) free(c->msgs[i].text);
    free(c->msgs);
    memset(c, 0, sizeof *c);
}

static int append_message(ilm_chat *c, ilm_chat_role role, const char *text, bool in_cache, ilm_err *err) {
    if (c->n_msgs == c->cap_msgs) {
        int cap = c->cap_msgs ? 2 * c->cap_msgs : 8;
        ilm_chat_message *m = realloc(c->msgs, (size_t)cap * sizeof *m);
        if (!m) return ilm_fail(err, "chat: out of memory");
        c->msgs = m;
        c->cap_msgs = cap;
    }
    char *copy = strdup(text ? text : "");
    if (!copy) return ilm_fail(err, "chat: out of memory");
    c->msgs[c->n_msgs++] = (ilm_chat_message){role, copy, in_cache};
    return 0;
}

int ilm_chat_add(ilm_chat *c, ilm_chat_role role, const char *text, ilm_err *err) {
    if (role != ILM_CHAT_SYSTEM && role != ILM_CHAT_USER && role != ILM_CHAT_MODEL)
        return ilm_fail(err, "chat: unknown role %d", (int)role);
    // The template reads the system prompt from the first message only.
    if (role == ILM_CHAT_SYSTEM && (c->n_msgs > 0 || c->rendered_anything))
        return ilm_fail(err, "chat: the system message must come first, before any other message");
    return append_message(c, role, text, false, err);
}

int ilm_chat_add_generated(ilm_chat *c, const char *answer, ilm_err *err) {
    if (!c->model_turn_open || c->n_rendered != c->n_msgs)
        return ilm_fail(err, "chat: no generation prompt is waiting for this answer");
    return append_message(c, ILM_CHAT_MODEL, answer, true, err);
}

static const char *role_name(ilm_chat_role role) {
    return role == ILM_CHAT_SYSTEM ? "system" : role == ILM_CHAT_USER ? "user" : "model";
}

// Renders messages [n_rendered or 0, n_msgs) after the state the previous render left (or from
// scratch), then records the new state.
static char *render(ilm_chat *c, bool incremental, bool add_generation_prompt, ilm_err *err) {
    text_buf b = {0};
    buf_append(&b, "", 0);  // an empty render is "", not NULL
    int i = incremental ? c->n_rendered : 0;
    bool turn_open = incremental && c->model_turn_open;
    bool has_system = c->n_msgs > 0 && c->msgs[0].role == ILM_CHAT_SYSTEM;

    if (!incremental || !c->rendered_anything) {
        if (has_system || c->enable_thinking) {
            buf_puts(&b, "<|turn>system\n");
            if (c->enable_thinking) buf_puts(&b, "<|think|>\n");
            if (has_system) buf_append_trimmed(&b, c->msgs[0].text);
            buf_puts(&b, "<turn|>\n");
        }
        if (has_system && i == 0) i = 1;
    }
    for (; i < c->n_msgs; i++) {
        const ilm_chat_message *m = &c->msgs[i];
        if (turn_open) {  // the answer to the generation prompt already rendered
            if (m->role != ILM_CHAT_MODEL) {
                free(b.p);
                ilm_fail(err, "chat: a %s message follows the generation prompt; the model's answer must come first",
                         role_name(m->role));
                return NULL;
            }
            if (!m->in_cache) buf_append_answer(&b, m->text);
            buf_puts(&b, "<turn|>\n");
            turn_open = false;
            continue;
        }
        buf_puts(&b, "<|turn>");
        buf_puts(&b, role_name(m->role));
        buf_puts(&b, "\n");
        if (m->role == ILM_CHAT_MODEL) buf_append_answer(&b, m->text);
        else buf_append_trimmed(&b, m->text);
        buf_puts(&b, "<turn|>\n");
    }
    if (add_generation_prompt && !turn_open) {
        buf_puts(&b, "<|turn>model\n");
        if (c->empty_thought && !c->enable_thinking) buf_puts(&b, "<|channel>thought\n<channel|>");
        turn_open = true;
    }
    if (b.oom) {
        free(b.p);
        ilm_fail(err, "chat: out of memory rendering the prompt");
        return NULL;
    }
    c->n_rendered = c->n_msgs;
    c->rendered_anything = true;
    c->model_turn_open = turn_open;
    return b.p;
}

char *ilm_chat_render(ilm_chat *c, bool add_generation_prompt, ilm_err *err) {
    return render(c, false, add_generation_prompt, err);
}

char *ilm_chat_render_new(ilm_chat *c, bool add_generation_prompt, ilm_err *err) {
    return render(c, true, add_generation_prompt, err);
}
