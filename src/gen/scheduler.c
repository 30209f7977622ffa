// scheduler.c — slots advanced together: chunked prefill, decoding and speculative rounds of
// every active slot in one verifier pass per step. See scheduler.h.
#include "gen/scheduler.h"

#include "gen/constrain.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_IDLE, SLOT_PREFILL, SLOT_DECODE };

typedef struct {
    int state;
    ilm_kv *kv;
    ilm_job job;
    int32_t *prompt;        // the job's prompt [n_prompt] (own copy)
    int n_prompt, cap_prompt, fed;  // tokens of it in the cache
    int32_t *tokens;        // [n_ctx] the token at each cached position, known for [0, n_known)
    int n_known;
    int32_t pending;        // the last emitted token, not yet in the cache
    float *g0;              // [H] the verifier's final hidden state for `pending` (drafter input)
    ilm_gen_stats st;
    ilm_autotune at;
    int n_max;              // the job's draft length cap
    int32_t drafts[ILM_SPEC_MAX_DRAFT];
    int n_drafts;
    int row, n_rows;        // this step: first wanted row, wanted rows
    bool in_step, cancel;
    double t_start, t_gen0;
    long last_used;         // step counter at the end of the last job (LRU)
} slot;

typedef struct {
    double t[ILM_SPEC_MAX_DRAFT + 1];  // fastest step with this draft length (s)
    int n[ILM_SPEC_MAX_DRAFT + 1];
    long round;
} step_tune;

struct ilm_sched {
    ilm_engine *e;
    ilm_drafter *drafter;
    int n_slots, max_draft, rows_cap, tok_cap;
    slot *slots;
    ilm_kv **kvs;
    // step scratch
    int32_t *tok, *pos, *seq;   // [tok_cap]
    bool *want;
    float *logits, *hidden;     // [rows_cap][V], [rows_cap][H]
    float *probs;               // [V]
    // the draft chains of one step, batched over the decoding slots
    const ilm_kv **ch_kv;       // [n_slots]
    int32_t *ch_t0, *ch_drafts; // [n_slots], [n_slots][ILM_SPEC_MAX_DRAFT]
    int *ch_pos, *ch_len, *ch_count, *ch_slot;
    float *ch_g0, *ch_pmin;     // [n_slots][H], [n_slots]
    long steps;
    int rr;                     // round-robin start for prefill chunks
    // --spec-autotune with several decoding slots: one draft length for the step, chosen from
    // the measured cost of whole steps (drafting + verification) per number of decoding slots
    // and the acceptance of all slots (a slot's own pass time says nothing about what its rows
    // add to a shared pass)
    step_tune *tune;            // [n_slots + 1]
    ilm_autotune acc;           // acceptance counts per chain position, all slots
};

static int known(const slot *sl) { return sl->n_known < sl->kv->n_pos ? sl->n_known : sl->kv->n_pos; }

int ilm_sched_create(ilm_sched **out, ilm_engine *e, ilm_drafter *drafter, int n_slots, int max_draft, ilm_err *err) {
    *out = NULL;
    int n_seq = e->opt.n_seq > 0 ? e->opt.n_seq : 1;
    if (n_slots < 1 || n_slots > n_seq) return ilm_fail(err, "scheduler: %d slots for %d KV caches", n_slots, n_seq);
    if (max_draft < 0) max_draft = 0;
    if (max_draft > ILM_SPEC_MAX_DRAFT) max_draft = ILM_SPEC_MAX_DRAFT;
    if (!drafter) max_draft = 0;
    ilm_sched *s = calloc(1, sizeof *s);
    if (!s) return ilm_fail(err, "out of memory");
    const int V = e->model->n_vocab, H = e->model->n_embd;
    s->e = e;
    s->drafter = drafter;
    s->n_slots = n_slots;
    s->max_draft = max_draft;
    s->rows_cap = n_slots * (max_draft + 1);
    int B = e->opt.max_batch > 0 ? e->opt.max_batch : 512;
    s->tok_cap = s->rows_cap + B;
    s->slots = calloc((size_t)n_slots, sizeof *s->slots);
    s->kvs = calloc((size_t)n_slots, sizeof *s->kvs);
    s->tok = malloc(sizeof(int32_t) * (size_t)s->tok_cap);
    s->pos = malloc(sizeof(int32_t) * (size_t)s->tok_cap);
    s->seq = malloc(sizeof(int32_t) * (size_t)s->tok_cap);
    s->want = malloc(sizeof(bool) * (size_t)s->tok_cap);
    s->logits = malloc(sizeof(float) * (size_t)s->rows_cap * V);
    s->hidden = malloc(sizeof(float) * (size_t)s->rows_cap * H);
    s->probs = malloc(sizeof(float) * (size_t)V);
    size_t ns = (size_t)n_slots;
    s->ch_kv = calloc(ns, sizeof *s->ch_kv);
    s->ch_t0 = calloc(ns, sizeof(int32_t));
    s->ch_drafts = calloc(ns * ILM_SPEC_MAX_DRAFT, sizeof(int32_t));
    s->ch_pos = calloc(ns, sizeof(int));
    s->ch_len = calloc(ns, sizeof(int));
    s->ch_count = calloc(ns, sizeof(int));
    s->ch_slot = calloc(ns, sizeof(int));
    s->ch_g0 = calloc(ns * (size_t)H, sizeof(float));
    s->ch_pmin = calloc(ns, sizeof(float));
    s->tune = calloc(ns + 1, sizeof *s->tune);
    s->acc.max = max_draft;
    if (!s->slots || !s->kvs || !s->tok || !s->pos || !s->seq || !s->want || !s->logits || !s->hidden || !s->probs ||
        !s->ch_kv || !s->ch_t0 || !s->ch_drafts || !s->ch_pos || !s->ch_len || !s->ch_count || !s->ch_slot ||
        !s->ch_g0 || !s->ch_pmin || !s->tune)
        goto oom;
    if (drafter && max_draft > 0 && ilm_drafter_reserve(drafter, n_slots, err)) {
        ilm_sched_free(s);
        return -1;
    }
    for (int i = 0; i < n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->kv = &e->kv[i];
        s->kvs[i] = sl->kv;
        sl->tokens = malloc(sizeof(int32_t) * (size_t)e->n_ctx);
        sl->g0 = malloc(sizeof(float) * (size_t)H);
        if (!sl->tokens || !sl->g0) goto oom;
    }
    *out = s;
    return 0;
oom:
    ilm_sched_free(s);
    return ilm_fail(err, "out of memory (scheduler of %d slots)", n_slots);
}

void ilm_sched_free(ilm_sched *s) {
    if (!s) return;
    for (int i = 0; s->slots && i < s->n_slots; i++) {
        free(s->slots[i].prompt);
        free(s->slots[i].tokens);
        free(s->slots[i].g0);
    }
    free(s->slots);
    free(s->kvs);
    free(s->tok);
    free(s->pos);
    free(s->seq);
    free(s->want);
    free(s->logits);
    free(s->hidden);
    free(s->probs);
    free(s->ch_kv);
    free(s->ch_t0);
    free(s->ch_drafts);
    free(s->ch_pos);
    free(s->ch_len);
    free(s->ch_count);
    free(s->ch_slot);
    free(s->ch_g0);
    free(s->ch_pmin);
    free(s->tune);
    free(s);
}

int ilm_sched_slots(const ilm_sched *s) { return s->n_slots; }
bool ilm_sched_busy(const ilm_sched *s, int i) { return i >= 0 && i < s->n_slots && s->slots[i].state != SLOT_IDLE; }
int ilm_sched_cached(const ilm_sched *s, int i) { return known(&s->slots[i]); }
const ilm_gen_stats *ilm_sched_stats(const ilm_sched *s, int i) { return &s->slots[i].st; }

int ilm_sched_active(const ilm_sched *s) {
    int n = 0;
    for (int i = 0; i < s->n_slots; i++) n += s->slots[i].state != SLOT_IDLE;
    return n;
}

void ilm_sched_cancel(ilm_sched *s, int i) {
    if (ilm_sched_busy(s, i)) s->slots[i].cancel = true;
}

int ilm_sched_reusable(const ilm_sched *s, int i, const int32_t *prompt, int n_prompt) {
    const slot *sl = &s->slots[i];
    int k = known(sl), n = 0;
    // at least the last prompt token is computed: its logits start the generation
    while (n < k && n < n_prompt - 1 && sl->tokens[n] == prompt[n]) n++;
    return ilm_kv_reusable(sl->kv, n);
}

int ilm_sched_pick(const ilm_sched *s, const int32_t *prompt, int n_prompt) {
    int best = -1, best_n = -1;
    for (int i = 0; i < s->n_slots; i++) {
        const slot *sl = &s->slots[i];
        if (sl->state != SLOT_IDLE) continue;
        int n = ilm_sched_reusable(s, i, prompt, n_prompt);
        if (n > best_n || (n == best_n && sl->last_used < s->slots[best].last_used)) {
            best = i;
            best_n = n;
        }
    }
    return best;
}

int ilm_sched_submit(ilm_sched *s, int i, const ilm_job *job, ilm_err *err) {
    if (i < 0 || i >= s->n_slots) return ilm_fail(err, "slot %d does not exist (%d slots)", i, s->n_slots);
    slot *sl = &s->slots[i];
    if (sl->state != SLOT_IDLE) return ilm_fail(err, "slot %d is busy", i);
    if (job->n_prompt < 1) return ilm_fail(err, "empty prompt");
    if (!job->sampler) return ilm_fail(err, "no sampler");
    int keep = job->append ? sl->kv->n_pos : job->reuse ? ilm_sched_reusable(s, i, job->prompt, job->n_prompt) : 0;
    int rest = job->append ? job->n_prompt : job->n_prompt - keep;
    if (keep + rest > s->e->n_ctx)
        return ilm_fail(err, "prompt of %d tokens does not fit the context (%d of %d used)", job->n_prompt,
                        job->append ? keep : 0, s->e->n_ctx);
    if (job->n_prompt > sl->cap_prompt) {
        int32_t *p = realloc(sl->prompt, sizeof(int32_t) * (size_t)job->n_prompt);
        if (!p) return ilm_fail(err, "out of memory");
        sl->prompt = p;
        sl->cap_prompt = job->n_prompt;
    }
    // the part of the prompt still to compute
    memcpy(sl->prompt, job->prompt + (job->n_prompt - rest), sizeof(int32_t) * (size_t)rest);
    sl->n_prompt = rest;
    sl->fed = 0;
    ilm_kv_truncate(sl->kv, keep);
    if (!job->append && sl->n_known > keep) sl->n_known = keep;
    sl->job = *job;
    sl->job.prompt = NULL;  // the caller's array may go
    memset(&sl->st, 0, sizeof sl->st);
    sl->st.n_prompt = rest;
    sl->st.n_cached = job->append ? 0 : keep;
    int dm = job->gen.draft_max < s->max_draft ? job->gen.draft_max : s->max_draft;
    sl->n_max = s->drafter && dm > 0 ? dm : 0;
    memset(&sl->at, 0, sizeof sl->at);
    sl->at.max = sl->n_max;
    sl->cancel = false;
    sl->t_start = 0;
    // the penalty history: the whole prompt (as llama.cpp's server), then each token chosen
    for (int k = 0; k < job->n_prompt; k++) ilm_sampler_accept(job->sampler, job->prompt[k]);
    sl->state = SLOT_PREFILL;
    return 0;
}

// --- ending a job --------------------------------------------------------------------------------

static bool is_eog(const ilm_gen_opts *o, int32_t t) {
    for (int i = 0; i < o->n_eog; i++)
        if (o->eog[i] == t) return true;
    return false;
}

// Emits one token: returns -1 to go on, else the reason generation ends.
static int emit(slot *sl, int32_t t) {
    const ilm_gen_opts *o = &sl->job.gen;
    if (!o->ignore_eos && is_eog(o, t)) {
        sl->st.stopped_at_eog = true;
        return ILM_END_STOP;
    }
    sl->st.n_gen++;
    if (o->on_token && o->on_token(o->ctx, t)) return ILM_END_STOP;
    return sl->st.n_gen >= o->n_predict ? ILM_END_LENGTH : -1;
}

static void note_plain_step(ilm_gen_stats *st, double secs) {
    if (!st->plain_steps++ || secs < st->t_plain_step) st->t_plain_step = secs;
}

// Runs one single-row pass for slot i: the token at the cache's next position.
static int forward_one(ilm_sched *s, int i, int32_t token, ilm_err *err) {
    slot *sl = &s->slots[i];
    int32_t pos = sl->kv->n_pos, seq = i;
    bool want = true;
    ilm_batch b = {1, &token, &pos, &seq, &want};
    return ilm_forward(s->e->fwd, s->kvs, s->n_slots, &b, s->logits, s->hidden, err);
}

static void finish(ilm_sched *s, int i, ilm_end why, const char *error) {
    slot *sl = &s->slots[i];
    if (sl->state == SLOT_DECODE) sl->st.t_gen = ilm_now() - sl->t_gen0;
    else if (sl->t_start > 0) sl->st.t_prompt = ilm_now() - sl->t_start;
    sl->st.final_draft_max = sl->job.gen.autotune && sl->n_max ? ilm_autotune_best(&sl->at) : sl->n_max;
    // The plain decoding rate to compare with: unless 3 rounds ran without drafts, time plain
    // steps now (the pending token at the next position, rolled back), outside t_gen.
    if (why != ILM_END_ERROR && why != ILM_END_CANCEL && sl->state == SLOT_DECODE)
        while (sl->job.gen.measure_plain && sl->n_max > 0 && sl->st.plain_steps < 3 && sl->kv->n_pos < s->e->n_ctx) {
            int p = sl->kv->n_pos;
            ilm_err e2;
            double tv = ilm_now();
            if (forward_one(s, i, sl->pending, &e2)) break;
            note_plain_step(&sl->st, ilm_now() - tv);
            ilm_kv_truncate(sl->kv, p);
        }
    sl->state = SLOT_IDLE;
    sl->last_used = s->steps;
    if (sl->job.on_end) sl->job.on_end(sl->job.gen.ctx, why, &sl->st, error);
}

// --- the step tuner (several decoding slots) -------------------------------------------------------

// Tokens a slot gains per round with N drafts: 1 + Σ_k Π_{j<=k} α_j (α with a Laplace prior).
static double tokens_per_round(const ilm_autotune *acc, int N) {
    double tokens = 1.0, p = 1.0;
    for (int k = 1; k <= N; k++) {
        p *= (acc->ok[k] + 1.0) / (acc->tried[k] + 2.0);
        tokens += p;
    }
    return tokens;
}

// The draft length for a step with m decoding slots (at most nmax): every length is measured
// twice first, another is re-measured every 16th step, otherwise the best predicted
// m·tokens(N) / t_step(N); drafting only when it beats plain steps by 5%.
static int tune_pick(ilm_sched *s, int m, int nmax) {
    step_tune *t = &s->tune[m];
    t->round++;
    for (int N = 0; N <= nmax; N++)
        if (t->n[N] < 2) return N;
    if (t->round % 16 == 0) return (int)(t->round / 16 % (nmax + 1));
    int best = 0;
    double r0 = 1.0 / t->t[0], rb = r0;
    for (int N = 1; N <= nmax; N++) {
        double r = tokens_per_round(&s->acc, N) / t->t[N];
        if (r > rb) {
            rb = r;
            best = N;
        }
    }
    return rb > 1.05 * r0 ? best : 0;
}

static void tune_observe(ilm_sched *s, int m, int N, double secs) {
    step_tune *t = &s->tune[m];
    if (!t->n[N]++ || secs < t->t[N]) t->t[N] = secs;
}

// --- one step ------------------------------------------------------------------------------------

// Adds a row for slot i: token at the cache's next free position after the rows already added.
static void add_row(ilm_sched *s, int *n, int i, int32_t token, int32_t pos, bool want) {
    s->tok[*n] = token;
    s->pos[*n] = pos;
    s->seq[*n] = i;
    s->want[*n] = want;
    (*n)++;
}

// Records what a pass wrote to slot i's cache (tokens at positions, for prefix reuse).
static void record(slot *sl, const int32_t *tok, int32_t pos0, int n) {
    if (known(sl) < pos0) return;  // a gap of unknown tokens before: nothing to extend
    for (int k = 0; k < n; k++) sl->tokens[pos0 + k] = tok[k];
    sl->n_known = pos0 + n;
}

// A slot's prefill finished with these logits/hidden rows: pick the first token.
static void prefill_done(ilm_sched *s, int i, const float *logits, const float *hidden) {
    slot *sl = &s->slots[i];
    const int V = s->e->model->n_vocab, H = s->e->model->n_embd;
    sl->st.t_prompt = ilm_now() - sl->t_start;
    sl->t_gen0 = ilm_now();
    sl->state = SLOT_DECODE;
    sl->pending = ilm_sample(sl->job.sampler, logits, V);
    ilm_sampler_accept_generated(sl->job.sampler, sl->pending);
    memcpy(sl->g0, hidden, sizeof(float) * (size_t)H);
    int why = sl->job.gen.n_predict <= 0 ? ILM_END_LENGTH : emit(sl, sl->pending);
    if (why >= 0) finish(s, i, (ilm_end)why, NULL);
}

// A slot's verified round: rows [n_drafts + 1] of logits and hidden states.
static void round_done(ilm_sched *s, int i, const float *logits, const float *hidden, double t_verify, bool tuned) {
    slot *sl = &s->slots[i];
    const int V = s->e->model->n_vocab, H = s->e->model->n_embd;
    const int n = sl->n_drafts, p = sl->kv->n_pos - (n + 1);
    ilm_autotune_verified(&sl->at, n + 1, t_verify);
    if (n == 0) note_plain_step(&sl->st, t_verify);
    int32_t next;
    int a = ilm_spec_round(sl->job.sampler, logits, V, sl->drafts, n, s->probs, &sl->st, tuned ? &s->acc : &sl->at, &next);
    // rows 0..a stay in the cache (pending token + accepted drafts); the rest is rolled back
    ilm_kv_truncate(sl->kv, p + a + 1);
    memcpy(sl->g0, hidden + (size_t)a * H, sizeof(float) * (size_t)H);
    int why = -1;
    for (int k = 0; k < a && why < 0; k++) why = emit(sl, sl->drafts[k]);
    if (why < 0) why = emit(sl, next);
    sl->pending = next;
    if (why >= 0) finish(s, i, (ilm_end)why, NULL);
}

// A NaN or Inf in the rows a slot samples from (only those: one pass over n_rows x V) ends its
// job with an error naming the position, the cache rolled back (sampling would pick token 0).
static bool nonfinite(ilm_sched *s, int i, const float *lg, int V, int32_t pos0) {
    slot *sl = &s->slots[i];
    for (int r = 0; r < sl->n_rows; r++) {
        const float *row = lg + (size_t)r * V;
        uint32_t bad = 0, b;   // all exponent bits set: NaN or Inf (an integer reduction, vectorizable)
        for (int v = 0; v < V; v++) bad |= (~(memcpy(&b, row + v, sizeof b), b) & 0x7f800000u) == 0;
        if (!bad) continue;
        int v = 0;
        while (v < V && isfinite(row[v])) v++;
        char msg[256];
        snprintf(msg, sizeof msg, "non-finite logits (%s for token %d) at position %d: the model's weights or "
                 "activations are not finite", isnan(row[v]) ? "NaN" : "Inf", v, sl->kv->n_pos - sl->n_rows + r);
        ilm_kv_truncate(sl->kv, pos0);
        finish(s, i, ILM_END_ERROR, msg);
        return true;
    }
    return false;
}

int ilm_sched_step(ilm_sched *s, ilm_err *err) {
    ilm_engine *e = s->e;
    const int V = e->model->n_vocab, H = e->model->n_embd;
    const int B = e->opt.max_batch > 0 ? e->opt.max_batch : 512;
    s->steps++;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        sl->in_step = false;
        if (sl->state != SLOT_IDLE && sl->cancel) finish(s, i, ILM_END_CANCEL, NULL);
    }
    // Decoding slots: every slot's draft chain (one batched drafter step per chain position),
    // then the pending token and the drafts as rows.
    int n = 0, rows = 0, nc = 0, m = 0, m_tuned = 0, nmax = 0;
    for (int i = 0; i < s->n_slots; i++) {
        const slot *sl = &s->slots[i];
        if (sl->state != SLOT_DECODE) continue;
        m++;
        if (sl->job.gen.autotune && sl->n_max) {
            m_tuned++;
            if (sl->n_max > nmax) nmax = sl->n_max;
        }
    }
    // several decoding slots, all tuned: one length for the step (a single slot keeps its own
    // autotune, which times its own passes)
    const bool tuned = m > 1 && m_tuned == m;
    const int N_step = tuned ? tune_pick(s, m, nmax) : 0;
    bool clean = tuned;  // every slot drafts N_step, no prompt rows: the step's time is a sample
    double t_step = ilm_now();
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_DECODE) continue;
        const int p = sl->kv->n_pos;
        if (p >= e->n_ctx) {
            finish(s, i, ILM_END_CONTEXT, NULL);
            clean = false;
            continue;
        }
        int N = tuned ? (N_step < sl->n_max ? N_step : sl->n_max)
                : sl->job.gen.autotune && sl->n_max ? ilm_autotune_pick(&sl->at) : sl->n_max;
        int budget = sl->job.gen.n_predict - sl->st.n_gen;  // tokens still wanted; a round emits <= N+1
        if (N > budget - 1) N = budget - 1;
        if (N > e->n_ctx - p - 1) N = e->n_ctx - p - 1;
        if (N < 0) N = 0;
        clean &= N == N_step;
        sl->n_drafts = 0;
        sl->in_step = true;
        if (N > 0) {
            s->ch_slot[nc] = i;
            s->ch_kv[nc] = sl->kv;
            s->ch_t0[nc] = sl->pending;
            memcpy(s->ch_g0 + (size_t)nc * H, sl->g0, sizeof(float) * (size_t)H);
            s->ch_pos[nc] = p;
            s->ch_len[nc] = N;
            s->ch_pmin[nc] = sl->job.gen.draft_p_min;
            nc++;
        }
    }
    if (nc) {
        double td = ilm_now();
        ilm_drafter_chains(s->drafter, nc, s->ch_kv, s->ch_t0, s->ch_g0, s->ch_pos, s->ch_len, s->ch_pmin, s->ch_drafts,
                           ILM_SPEC_MAX_DRAFT, s->ch_count, NULL);
        td = ilm_now() - td;
        int steps = 0;
        for (int c = 0; c < nc; c++) steps = s->ch_count[c] > steps ? s->ch_count[c] : steps;
        for (int c = 0; c < nc; c++) {
            slot *sl = &s->slots[s->ch_slot[c]];
            sl->n_drafts = s->ch_count[c];
            clean &= sl->n_drafts == N_step;
            memcpy(sl->drafts, s->ch_drafts + (size_t)c * ILM_SPEC_MAX_DRAFT, sizeof(int32_t) * (size_t)sl->n_drafts);
            ilm_constraint *con = sl->job.sampler->constraint;
            if (con) {  // the chain ends at the first draft the constraint rejects (after those before it)
                ilm_constraint_state cs;
                ilm_constraint_save(con, &cs);
                int k = 0;
                while (k < sl->n_drafts && ilm_constraint_accept(con, sl->drafts[k]) == 0) k++;
                ilm_constraint_restore(con, &cs);
                sl->n_drafts = k;
            }
            if (steps) ilm_autotune_drafted(&sl->at, td / steps);
        }
    }
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_DECODE || !sl->in_step) continue;
        const int p = sl->kv->n_pos;
        sl->row = rows;
        sl->n_rows = sl->n_drafts + 1;
        add_row(s, &n, i, sl->pending, p, true);
        for (int k = 0; k < sl->n_drafts; k++) add_row(s, &n, i, sl->drafts[k], p + 1 + k, true);
        rows += sl->n_rows;
    }
    // Prefilling slots: chunks of their prompts, at most B tokens in all, round-robin.
    int budget = B;
    for (int k = 0; k < s->n_slots && budget > 0; k++) {
        int i = (s->rr + k) % s->n_slots;
        slot *sl = &s->slots[i];
        if (sl->state != SLOT_PREFILL) continue;
        clean = false;
        int c = sl->n_prompt - sl->fed < budget ? sl->n_prompt - sl->fed : budget;
        if (!sl->t_start) sl->t_start = ilm_now();
        bool last = sl->fed + c == sl->n_prompt;
        int p = sl->kv->n_pos;
        for (int j = 0; j < c; j++) add_row(s, &n, i, sl->prompt[sl->fed + j], p + j, last && j == c - 1);
        sl->fed += c;
        sl->row = rows;
        sl->n_rows = last;
        sl->in_step = true;
        rows += last;
        budget -= c;
    }
    s->rr = (s->rr + 1) % s->n_slots;
    if (!n) return 0;
    // Where each slot's rows start in the batch, before the pass moves n_pos.
    int32_t first_pos[64], *fp = s->n_slots <= 64 ? first_pos : malloc(sizeof(int32_t) * (size_t)s->n_slots);
    if (!fp) return ilm_fail(err, "out of memory");
    for (int i = 0; i < s->n_slots; i++) fp[i] = s->slots[i].kv->n_pos;
    double tv = ilm_now();
    ilm_batch b = {n, s->tok, s->pos, s->seq, s->want};
    int rc = ilm_forward(e->fwd, s->kvs, s->n_slots, &b, s->logits, s->hidden, err);
    tv = ilm_now() - tv;
    if (!rc && clean) tune_observe(s, m, N_step, ilm_now() - t_step);
    if (rc) {
        for (int i = 0; i < s->n_slots; i++) {
            slot *sl = &s->slots[i];
            if (!sl->in_step) continue;
            ilm_kv_truncate(sl->kv, fp[i]);
            finish(s, i, ILM_END_ERROR, err->msg);
        }
        if (fp != first_pos) free(fp);
        return -1;
    }
    // Record the cached tokens (rows of a slot are consecutive positions from fp[i]).
    for (int r = 0; r < n;) {
        int i = s->seq[r], k = r;
        while (k < n && s->seq[k] == i) k++;
        record(&s->slots[i], s->tok + r, s->pos[r], k - r);
        r = k;
    }
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (!sl->in_step || !sl->n_rows) continue;
        const float *lg = s->logits + (size_t)sl->row * V, *hd = s->hidden + (size_t)sl->row * H;
        if (nonfinite(s, i, lg, V, fp[i])) continue;
        if (sl->state == SLOT_PREFILL) prefill_done(s, i, lg, hd);
        else round_done(s, i, lg, hd, tv, tuned);
    }
    if (fp != first_pos) free(fp);
    return 0;
}

// --- one job, run to the end (`run`, bench, tests) --------------------------------------------

typedef struct {
    ilm_end why;
    bool ended;
    char error[512];
    const ilm_gen_opts *o;
} one_job;

static int one_token(void *ctx, int32_t t) {
    one_job *j = ctx;
    return j->o->on_token ? j->o->on_token(j->o->ctx, t) : 0;
}

static void one_end(void *ctx, ilm_end why, const ilm_gen_stats *st, const char *error) {
    (void)st;
    one_job *j = ctx;
    j->why = why;
    j->ended = true;
    if (error) snprintf(j->error, sizeof j->error, "%s", error);
}

int ilm_generate(ilm_engine *e, ilm_drafter *drafter, ilm_sampler *smp, const int32_t *prompt, int n_prompt,
                 const ilm_gen_opts *o, ilm_gen_stats *st, ilm_err *err) {
    memset(st, 0, sizeof *st);
    st->n_prompt = n_prompt;
    ilm_sched *s;
    if (ilm_sched_create(&s, e, drafter, 1, drafter ? o->draft_max : 0, err)) return -1;
    one_job j = {.o = o};
    ilm_job job = {prompt, n_prompt, smp, *o, true, false, one_end};
    job.gen.on_token = one_token;
    job.gen.ctx = &j;
    int rc = ilm_sched_submit(s, 0, &job, err);
    while (!rc && !j.ended) {
        if (o->interrupted && o->interrupted(o->ctx)) ilm_sched_cancel(s, 0);
        if (ilm_sched_step(s, err)) break;
    }
    if (!rc && j.ended) {
        if (j.why == ILM_END_ERROR) rc = ilm_fail(err, "%s", j.error);
        else if (j.why == ILM_END_CONTEXT && !o->context_end_ok)
            rc = ilm_fail(err, "context full (%d tokens)", e->n_ctx);
    } else rc = -1;
    if (j.ended || !rc) {
        *st = *ilm_sched_stats(s, 0);
        st->hit_context = j.ended && j.why == ILM_END_CONTEXT;
        st->interrupted = j.ended && j.why == ILM_END_CANCEL;
    }
    ilm_sched_free(s);
    return rc;
}
