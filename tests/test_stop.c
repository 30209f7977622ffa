// test_stop.c — src/gen/stop.c: stop strings over streamed text, against hand-worked cases and
// a brute-force reference fed in random pieces.
#include <stdlib.h>

#include "harness.h"
#include "gen/stop.h"

static ilm_stop *make_stop(const char *const *stops, int n) {
    ilm_stop *s = NULL;
    ilm_err err = {{0}};
    CHECK_MSG(ilm_stop_new(&s, stops, n, &err) == 0, "ilm_stop_new: %s", err.msg);
    return s;
}

// Feeds the pieces in order (stopping at a match), flushes when none matched, and checks the
// text shown, whether and which stop matched, and how many pieces it took.
static void run_pieces(const char *const *stops, int n_stops, const char *const *pieces, int n_pieces,
                       const char *want_text, const char *want_which, int want_pieces) {
    ilm_stop *s = make_stop(stops, n_stops);
    if (!s) return;
    ilm_buf out = {0};
    int used = 0, r = 0;
    for (int i = 0; i < n_pieces && !r; i++, used++) r = ilm_stop_feed(s, pieces[i], strlen(pieces[i]), &out);
    if (!r) ilm_stop_flush(s, &out);
    CHECK(!out.oom);
    CHECK_STR(out.p ? out.p : "", want_text);
    CHECK_EQ(r, want_which != NULL);
    if (want_which) CHECK_STR(ilm_stop_which(s), want_which);
    else CHECK(ilm_stop_which(s) == NULL);
    if (want_pieces) CHECK_EQ(used, want_pieces);
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

TEST(stop_match_inside_one_piece) {
    const char *stops[] = {"STOP"};
    const char *pieces[] = {"hello STOP world", "never seen"};
    run_pieces(stops, 1, pieces, 2, "hello ", "STOP", 1);
    const char *at_start[] = {"STOPx"};
    run_pieces(stops, 1, at_start, 1, "", "STOP", 1);
}

TEST(stop_match_across_pieces) {
    const char *stops[] = {"</answer>"};
    const char *two[] = {"42</ans", "wer> trailing"};
    run_pieces(stops, 1, two, 2, "42", "</answer>", 2);
    const char *three[] = {"x <", "/answ", "er>y"};
    run_pieces(stops, 1, three, 3, "x ", "</answer>", 3);
    // Byte by byte.
    const char *text = "abc</answer>def";
    const char *bytes[16];
    char buf[16][2];
    int n = (int)strlen(text);
    for (int i = 0; i < n; i++) buf[i][0] = text[i], buf[i][1] = 0, bytes[i] = buf[i];
    run_pieces(stops, 1, bytes, n, "abc", "</answer>", 12);
}

TEST(stop_holds_back_only_a_possible_start) {
    const char *stops[] = {"abc"};
    ilm_stop *s = make_stop(stops, 1);
    ilm_buf out = {0};
    CHECK_EQ(ilm_stop_feed(s, "xxab", 4, &out), 0);
    CHECK_STR(out.p, "xx");  // "ab" might begin "abc"
    CHECK_EQ(ilm_stop_feed(s, "d", 1, &out), 0);
    CHECK_STR(out.p, "xxabd");  // it did not: released
    CHECK_EQ(ilm_stop_feed(s, "a", 1, &out), 0);
    CHECK_EQ(ilm_stop_feed(s, "a", 1, &out), 0);
    CHECK_STR(out.p, "xxabda");  // only the longest suffix that could start it is held: "a"
    ilm_stop_flush(s, &out);
    CHECK_STR(out.p, "xxabdaa");
    CHECK(ilm_stop_which(s) == NULL);
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

TEST(stop_overlapping_candidates) {
    // "ab" is held for "abc"; "d" breaks it but completes "bd" starting inside the held part.
    const char *stops[] = {"abc", "bd"};
    const char *p1[] = {"xab", "d tail"};
    run_pieces(stops, 2, p1, 2, "xa", "bd", 2);
    // Self-overlapping stop string: "aab" in "aaab".
    const char *s2[] = {"aab"};
    const char *p2[] = {"a", "a", "a", "b", "c"};
    run_pieces(s2, 1, p2, 5, "a", "aab", 4);
    // A prefix that fails, then a real match right after.
    const char *s3[] = {"<end>"};
    const char *p3[] = {"1 <e", "nd <", "end> 2"};
    run_pieces(s3, 1, p3, 3, "1 <end ", "<end>", 3);
}

TEST(stop_flush_releases_held_text) {
    const char *stops[] = {"###"};
    const char *pieces[] = {"text #", "#"};
    run_pieces(stops, 1, pieces, 2, "text ##", NULL, 2);
    ilm_stop *s = make_stop(stops, 1);
    ilm_buf out = {0};
    ilm_stop_flush(s, &out);  // nothing fed, nothing held
    CHECK_EQ(out.len, 0);
    CHECK_EQ(ilm_stop_feed(s, "", 0, &out), 0);
    CHECK_EQ(ilm_stop_feed(s, NULL, 0, &out), 0);
    CHECK_EQ(out.len, 0);
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

TEST(stop_none_passes_through) {
    ilm_stop *s = make_stop(NULL, 0);
    ilm_buf out = {0};
    CHECK_EQ(ilm_stop_feed(s, "any<", 4, &out), 0);
    CHECK_STR(out.p, "any<");
    CHECK_EQ(ilm_stop_feed(s, "\0x", 2, &out), 0);  // bytes, NULs included
    CHECK_EQ(out.len, 6);
    ilm_stop_flush(s, &out);
    CHECK_EQ(out.len, 6);
    CHECK(ilm_stop_which(s) == NULL);
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

TEST(stop_earliest_position_wins) {
    const char *stops[] = {"world", "o w", "lo"};
    const char *p1[] = {"hello world"};
    run_pieces(stops, 3, p1, 1, "hel", "lo", 1);  // "lo" at 3 is before "o w" at 4 and "world" at 6
    // Same position: the first listed.
    const char *same[] = {"ab", "abc", "a"};
    const char *p2[] = {"xabc"};
    run_pieces(same, 3, p2, 1, "x", "ab", 1);
    const char *same2[] = {"abc", "ab"};
    run_pieces(same2, 2, p2, 1, "x", "abc", 1);
    // A match that completes now beats a longer one that started earlier and is still open.
    const char *open[] = {"abcdef", "cd"};
    const char *p3[] = {"xab", "cd", "ef"};
    run_pieces(open, 2, p3, 3, "xab", "cd", 2);
    // After a match further feeds show nothing.
    const char *one[] = {"!"};
    ilm_stop *s = make_stop(one, 1);
    ilm_buf out = {0};
    CHECK_EQ(ilm_stop_feed(s, "a!b", 3, &out), 1);
    CHECK_EQ(ilm_stop_feed(s, "more", 4, &out), 1);
    ilm_stop_flush(s, &out);
    CHECK_STR(out.p, "a");
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

TEST(stop_utf8_split_across_pieces) {
    const char *stops[] = {"\xe2\x80\x94" "end"};  // "—end"
    const char *pieces[] = {"caf\xc3\xa9 \xe2", "\x80", "\x94", "en", "d!"};
    run_pieces(stops, 1, pieces, 5, "caf\xc3\xa9 ", "\xe2\x80\x94" "end", 5);
    // A different character with the same lead byte is released whole.
    const char *other[] = {"x\xe2\x80", "\x93y"};  // "–" (en dash)
    run_pieces(stops, 1, other, 2, "x\xe2\x80\x93y", NULL, 2);
    ilm_stop *s = make_stop(stops, 1);
    ilm_buf out = {0};
    CHECK_EQ(ilm_stop_feed(s, "a\xe2\x80", 3, &out), 0);
    CHECK_STR(out.p, "a");  // the held part begins at a character boundary
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

TEST(stop_limits_rejected) {
    ilm_stop *s = (ilm_stop *)1;
    ilm_err err = {{0}};
    const char *many[ILM_STOP_MAX + 1];
    for (int i = 0; i <= ILM_STOP_MAX; i++) many[i] = "x";
    CHECK(ilm_stop_new(&s, many, ILM_STOP_MAX + 1, &err) != 0 && strstr(err.msg, "at most 16"));
    CHECK(s == NULL);
    CHECK(ilm_stop_new(&s, many, -1, &err) != 0);
    const char *empty[] = {"ok", ""};
    CHECK(ilm_stop_new(&s, empty, 2, &err) != 0 && strstr(err.msg, "string 1 is empty"));
    const char *null[] = {NULL};
    CHECK(ilm_stop_new(&s, null, 1, &err) != 0 && strstr(err.msg, "empty"));
    char long_s[ILM_STOP_LEN_MAX + 2];
    memset(long_s, 'a', sizeof long_s - 1);
    long_s[sizeof long_s - 1] = 0;
    const char *too_long[] = {long_s};
    CHECK(ilm_stop_new(&s, too_long, 1, &err) != 0 && strstr(err.msg, "257 bytes") && strstr(err.msg, "256"));
    // The limits themselves are fine, and the strings are copied.
    long_s[ILM_STOP_LEN_MAX] = 0;
    char copy_me[] = "zz";
    const char *ok[ILM_STOP_MAX];
    for (int i = 0; i < ILM_STOP_MAX; i++) ok[i] = i == 0 ? long_s : i == 1 ? copy_me : "q";
    CHECK_EQ(ilm_stop_new(&s, ok, ILM_STOP_MAX, &err), 0);
    copy_me[0] = 'y';
    ilm_buf out = {0};
    CHECK_EQ(ilm_stop_feed(s, "azzb", 4, &out), 1);
    CHECK_STR(ilm_stop_which(s), "zz");
    CHECK_STR(out.p, "a");
    ilm_buf_free(&out);
    ilm_stop_free(s);
    // A full-length stop string held almost whole, then completed.
    const char *big[] = {long_s};
    s = NULL;
    CHECK_EQ(ilm_stop_new(&s, big, 1, &err), 0);
    CHECK_EQ(ilm_stop_feed(s, long_s, ILM_STOP_LEN_MAX - 1, &out), 0);
    CHECK_EQ(out.len, 0);
    CHECK_EQ(ilm_stop_feed(s, "a", 1, &out), 1);
    CHECK_EQ(out.len, 0);
    ilm_buf_free(&out);
    ilm_stop_free(s);
}

// Reference: the earliest position where a stop string ends first, scanning the whole text.
// Returns the length of the text shown, and *which (-1: none).
static size_t reference(const char *text, size_t n, const char *const *stops, int n_stops, size_t *piece_ends,
                        int n_pieces, int *which) {
    // A match is found at the first piece end e where some stop lies wholly in text[0, e);
    // then the earliest such position, first listed on ties.
    *which = -1;
    for (int p = 0; p < n_pieces; p++) {
        size_t e = piece_ends[p], best = n;
        for (int k = 0; k < n_stops; k++) {
            size_t len = strlen(stops[k]);
            for (size_t pos = 0; pos + len <= e && pos < best; pos++)
                if (memcmp(text + pos, stops[k], len) == 0) {
                    best = pos;
                    *which = k;
                    break;
                }
        }
        if (*which >= 0) return best;
    }
    return n;
}

TEST(stop_random_pieces_match_reference) {
    const char *stops[] = {"aba", "bb", "abab", "cab"};
    uint64_t rs = 1234;
    for (int trial = 0; trial < 3000; trial++) {
        char text[64];
        size_t n = 1 + t_rand_u64(&rs) % 40;
        for (size_t i = 0; i < n; i++) text[i] = "abcx"[t_rand_u64(&rs) % 4];
        int n_stops = 1 + (int)(t_rand_u64(&rs) % 4);
        size_t ends[64];
        int n_pieces = 0;
        for (size_t at = 0; at < n;) {
            at += 1 + t_rand_u64(&rs) % 5;
            if (at > n) at = n;
            ends[n_pieces++] = at;
        }
        int want_which;
        size_t want_len = reference(text, n, stops, n_stops, ends, n_pieces, &want_which);
        ilm_stop *s = make_stop(stops, n_stops);
        ilm_buf out = {0};
        int r = 0;
        size_t from = 0;
        for (int p = 0; p < n_pieces && !r; p++) {
            r = ilm_stop_feed(s, text + from, ends[p] - from, &out);
            from = ends[p];
            // Never shown: anything that could still be part of a stop string; held back: only
            // the longest suffix that is a proper prefix of one.
            CHECK(out.len <= want_len);
            if (!r) {
                size_t hold = 0;
                for (int k = 0; k < n_stops; k++)
                    for (size_t l = strlen(stops[k]) - 1; l > hold; l--)
                        if (l <= from && memcmp(text + from - l, stops[k], l) == 0) hold = l;
                CHECK_EQ(out.len, from - hold);
            }
        }
        if (!r) ilm_stop_flush(s, &out);
        CHECK_EQ(r, want_which >= 0);
        CHECK_EQ(out.len, want_len);
        CHECK(out.len == 0 || memcmp(out.p, text, out.len) == 0);
        if (want_which >= 0) CHECK_STR(ilm_stop_which(s), stops[want_which]);
        ilm_buf_free(&out);
        ilm_stop_free(s);
    }
}
