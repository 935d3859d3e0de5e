/*
 * test_history.c - the status page's sample ring (history.h): order and
 * bounds, reads after a time, the JSON document, and the note text that
 * persists it (round trip, refusal of anything else).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"

static pc_history_sample at(int64_t t, int64_t remaining)
{
    return (pc_history_sample){.t = t,
                               .remaining = remaining,
                               .limit = 100,
                               .reserve = 5,
                               .n429 = t % 3,
                               .hits = t,
                               .misses = 1,
                               .pulls = 2,
                               .bytes = 1000 * t,
                               .avoided = 7 * t};
}

static void ring_keeps_the_newest_in_order(void **state)
{
    const char *names[] = {"a", "b"};
    pc_history *h;
    pc_history_sample out[8];
    assert_int_equal(pc_history_new(&h, names, 2, 4), 0);
    for (int64_t t = 10; t <= 60; t += 10) {
        pc_history_sample s = at(t, 100 - t);
        assert_int_equal(pc_history_add(h, 0, &s), 0);
    }
    /* capacity 4: 30..60 left, oldest first */
    assert_int_equal(pc_history_get(h, 0, -1, out, 8), 4);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(out[k].t, 30 + 10 * k);
        assert_int_equal(out[k].remaining, 70 - 10 * k);
    }
    /* after a time; at most max */
    assert_int_equal(pc_history_get(h, 0, 40, out, 8), 2);
    assert_int_equal(out[0].t, 50);
    assert_int_equal(pc_history_get(h, 0, -1, out, 1), 1);
    assert_int_equal(out[0].t, 30);
    /* not later than the newest: dropped */
    pc_history_sample old = at(60, 1);
    assert_int_equal(pc_history_add(h, 0, &old), PC_EEXISTS);
    assert_int_equal(pc_history_get(h, 0, 55, out, 8), 1);
    assert_int_equal(out[0].remaining, 40);
    /* the other upstream has its own ring; no such upstream */
    assert_int_equal(pc_history_get(h, 1, -1, out, 8), 0);
    assert_int_equal(pc_history_add(h, 2, &old), PC_ENOTFOUND);
    pc_history_free(h);
}

static void json_document(void **state)
{
    const char *names[] = {"docker.io"};
    pc_history *h;
    assert_int_equal(pc_history_new(&h, names, 1, 8), 0);
    pc_history_sample s = at(10, -1); /* budget not known yet */
    s.limit = -1;
    pc_history_add(h, 0, &s);
    s = at(20, 99);
    pc_history_add(h, 0, &s);
    json_t *doc = pc_history_json(h, -1);
    assert_non_null(doc);
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_string_equal(
        text,
        "{\"interval\":10,\"capacity\":8,\"fields\":[\"t\",\"remaining\",\"limit\",\"reserve\","
        "\"n429\",\"hits\",\"misses\",\"pulls\",\"bytes\",\"avoided\"],\"upstreams\":[{\"name\":"
        "\"docker.io\",\"samples\":[[10,null,null,5,1,10,1,2,10000,70],[20,99,100,5,2,20,1,2,"
        "20000,140]]}]}");
    free(text);
    json_decref(doc);
    doc = pc_history_json(h, 10);
    assert_int_equal(json_array_size(json_object_get(
                         json_array_get(json_object_get(doc, "upstreams"), 0), "samples")),
                     1);
    json_decref(doc);
    pc_history_free(h);
}

static void chunk_round_trip(void **state)
{
    pc_history_sample in[PC_HISTORY_CHUNK], out[PC_HISTORY_CHUNK];
    char buf[1024];
    for (int k = 0; k < PC_HISTORY_CHUNK; k++) {
        in[k] = at(1796292000 + 10 * k, k == 3 ? -1 : 100 - k);
        in[k].bytes = INT64_C(1) << 40; /* large counts still fit a note */
        in[k].avoided = INT64_C(1) << 41;
    }
    assert_int_equal(pc_history_chunk_encode(in, PC_HISTORY_CHUNK, buf, sizeof(buf)), 0);
    assert_int_equal(pc_history_chunk_decode(buf, out), PC_HISTORY_CHUNK);
    assert_memory_equal(in, out, sizeof(in));
    assert_int_equal(pc_history_chunk_encode(in, 2, buf, sizeof(buf)), 0);
    assert_int_equal(pc_history_chunk_decode(buf, out), 2);
    assert_int_equal(pc_history_chunk_encode(in, PC_HISTORY_CHUNK, buf, 100), PC_ETOOBIG);
}

static void chunk_refuses_other_text(void **state)
{
    pc_history_sample out[PC_HISTORY_CHUNK];
    static const char *bad[] = {
        "",
        "pcbudget1\n1 2 3\n",
        "pchist1\n1 2 3\n",                   /* too few fields */
        "pchist1\n1 2 3 4 5 6 7 8 9 10 11\n", /* too many */
        "pchist1\n1 2 3 4 5 6 7 8 9 x\n",
        "pchist1\n1 2 3 4 5 6 7 8 9 10",    /* no newline */
        "pchist1\n1  2 3 4 5 6 7 8 9 10\n", /* empty field */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pc_history_chunk_decode(bad[i], out), PC_EINVAL);
    assert_int_equal(pc_history_chunk_decode("pchist1\n", out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ring_keeps_the_newest_in_order),
        cmocka_unit_test(json_document),
        cmocka_unit_test(chunk_round_trip),
        cmocka_unit_test(chunk_refuses_other_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
