// metrics.c — the server's counters as Prometheus text (GET /metrics) and the slot table
// (GET /slots). Callers hold the server mutex.
#include "serve/state.h"

// requests[] bins, in the order of the labels below
static int status_bin(int status) {
    if (status < 400) return 0;
    if (status == 400) return 1;
    if (status == 401) return 2;
    if (status == 404 || status == 405) return 3;
    if (status == 408 || status == 413 || status == 431) return 4;
    return 5;
}
static const char *const bin_label[6] = {"2xx", "400", "401", "404_405", "408_413_431", "5xx"};

void ilm_serve_count_status(ilm_server *S, int status) { S->c.requests[status_bin(status)]++; }

void ilm_serve_write_metrics(ilm_server *S, ilm_buf *b) {
    const ilm_serve_counters *c = &S->c;
    ilm_buf_puts(b, "# HELP ironlm_requests_total HTTP responses by status.\n# TYPE ironlm_requests_total counter\n");
    for (int i = 0; i < 6; i++) ilm_buf_printf(b, "ironlm_requests_total{status=\"%s\"} %ld\n", bin_label[i], c->requests[i]);
    ilm_buf_printf(b,
                   "# HELP ironlm_prompt_tokens_total Prompt tokens computed (not counting reused ones).\n"
                   "# TYPE ironlm_prompt_tokens_total counter\nironlm_prompt_tokens_total %ld\n"
                   "# HELP ironlm_prompt_tokens_cached_total Prompt tokens reused from a slot's cache.\n"
                   "# TYPE ironlm_prompt_tokens_cached_total counter\nironlm_prompt_tokens_cached_total %ld\n"
                   "# HELP ironlm_tokens_predicted_total Generated tokens.\n"
                   "# TYPE ironlm_tokens_predicted_total counter\nironlm_tokens_predicted_total %ld\n"
                   "# HELP ironlm_prompt_seconds_total Time spent on prompts, summed over requests.\n"
                   "# TYPE ironlm_prompt_seconds_total counter\nironlm_prompt_seconds_total %.6f\n"
                   "# HELP ironlm_tokens_predicted_seconds_total Time spent generating, summed over requests.\n"
                   "# TYPE ironlm_tokens_predicted_seconds_total counter\nironlm_tokens_predicted_seconds_total %.6f\n"
                   "# HELP ironlm_prompt_tokens_per_second Prompt tokens per second of prompt time.\n"
                   "# TYPE ironlm_prompt_tokens_per_second gauge\nironlm_prompt_tokens_per_second %.3f\n"
                   "# HELP ironlm_predicted_tokens_per_second Generated tokens per second of generation time (one stream).\n"
                   "# TYPE ironlm_predicted_tokens_per_second gauge\nironlm_predicted_tokens_per_second %.3f\n"
                   "# HELP ironlm_requests_cancelled_total Requests cancelled by their client.\n"
                   "# TYPE ironlm_requests_cancelled_total counter\nironlm_requests_cancelled_total %ld\n",
                   c->prompt_tokens, c->cached_tokens, c->generated_tokens, c->prompt_seconds, c->generation_seconds,
                   c->prompt_seconds > 0 ? c->prompt_tokens / c->prompt_seconds : 0.0,
                   c->generation_seconds > 0 ? c->generated_tokens / c->generation_seconds : 0.0, c->cancelled);
    ilm_buf_puts(b, "# HELP ironlm_draft_tokens_total Tokens drafted by the MTP drafter, per slot.\n"
                    "# TYPE ironlm_draft_tokens_total counter\n");
    for (int i = 0; i < S->opt.n_parallel; i++) ilm_buf_printf(b, "ironlm_draft_tokens_total{slot=\"%d\"} %ld\n", i, c->drafted[i]);
    ilm_buf_puts(b, "# HELP ironlm_draft_tokens_accepted_total Drafted tokens the verifier accepted, per slot.\n"
                    "# TYPE ironlm_draft_tokens_accepted_total counter\n");
    for (int i = 0; i < S->opt.n_parallel; i++)
        ilm_buf_printf(b, "ironlm_draft_tokens_accepted_total{slot=\"%d\"} %ld\n", i, c->accepted[i]);
    ilm_buf_puts(b, "# HELP ironlm_draft_acceptance_rate Accepted / drafted, per slot.\n# TYPE ironlm_draft_acceptance_rate gauge\n");
    for (int i = 0; i < S->opt.n_parallel; i++)
        ilm_buf_printf(b, "ironlm_draft_acceptance_rate{slot=\"%d\"} %.4f\n", i,
                       c->drafted[i] ? (double)c->accepted[i] / c->drafted[i] : 0.0);
    ilm_buf_printf(b,
                   "# HELP ironlm_slots_busy Slots running a request.\n# TYPE ironlm_slots_busy gauge\nironlm_slots_busy %d\n"
                   "# HELP ironlm_slots_total Slots.\n# TYPE ironlm_slots_total gauge\nironlm_slots_total %d\n"
                   "# HELP ironlm_queue_length Requests waiting for a slot.\n# TYPE ironlm_queue_length gauge\n"
                   "ironlm_queue_length %d\n",
                   S->busy, S->opt.n_parallel, S->queue_len);
}

void ilm_serve_write_slots(ilm_server *S, ilm_buf *b) {
    ilm_buf_putc(b, '[');
    for (int i = 0; i < S->opt.n_parallel; i++) {
        const ilm_sreq *r = S->running[i];
        ilm_buf_printf(b,
                       "%s{\"id\":%d,\"n_ctx\":%d,\"is_processing\":%s,\"id_task\":%ld,\"n_cached\":%d,\"requests\":%ld,"
                       "\"draft_n\":%ld,\"draft_n_accepted\":%ld,\"speculative\":%s}",
                       i ? "," : "", i, S->n_ctx_slot, r ? "true" : "false", r ? r->id : -1L, S->slot_cached[i],
                       S->c.slot_requests[i], S->c.drafted[i], S->c.accepted[i], S->drafter ? "true" : "false");
    }
    ilm_buf_puts(b, "]");
}
