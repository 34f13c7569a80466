/*
 * Unit tests for plugin/lib/message.c, SPEC 8's JSON: errors that name a
 * topic, channel replies, member events and counts, stamped attributes, and
 * recognising stored attributes and counts when they are read back.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "rtm_message.h"

#define TS 1700000000123LL

/* `got` (of `len` bytes, NUL-terminated) is exactly `want`; frees `got`. */
static void expect_json(char *got, size_t len, const char *want)
{
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        print_error("got  %s\nwant %s\n", got, want);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
}

/* A copy of `s` in a buffer of exactly its length (no NUL after it, as an
 * MQTT payload), so reading past it trips ASan. */
static char *payload(const char *s, size_t len)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, s, len);
    return buf;
}

static void test_limit_exceeded_code(void **state)
{
    (void)state;
    assert_string_equal(rtm_err_code(RTM_ERR_LIMIT_EXCEEDED), "limit_exceeded");
    assert_string_equal(rtm_err_code(RTM_ERR_BUSY_LIMIT), "busy_limit");
    assert_string_equal(rtm_err_code((enum rtm_err)(RTM_ERR_LIMIT_EXCEEDED + 1)), "internal");
    size_t len;
    char *s =
        rtm_topic_error_json(RTM_ERR_LIMIT_EXCEEDED, "too many channels", "rtm/c/r/join", TS, &len);
    expect_json(s, len,
                "{\"type\":\"error\",\"code\":\"limit_exceeded\",\"message\":\"too many "
                "channels\",\"topic\":\"rtm/c/r/join\",\"ts\":1700000000123}");
}

/* The "topic" an error names for `topic`. */
static void expect_error_topic(const char *topic, const char *want)
{
    size_t len;
    char *s = rtm_topic_error_json(RTM_ERR_NOT_PARTY, "m", topic, 7, &len);
    char expected[1024];
    snprintf(expected, sizeof(expected),
             "{\"type\":\"error\",\"code\":\"not_party\",\"message\":\"m\",\"topic\":\"%s\","
             "\"ts\":7}",
             want);
    expect_json(s, len, expected);
}

static void test_topic_error_json(void **state)
{
    (void)state;
    expect_error_topic("rtm/u/bob/msg/alice", "rtm/u/bob/msg/alice");
    expect_error_topic("", "");
    expect_error_topic("rtm/c/caf\xc3\xa9/join", "rtm/c/caf\xc3\xa9/join");
    /* Escaped as any JSON string. */
    expect_error_topic("rtm/\"q\"/a\\b\tc\x01", "rtm/\\\"q\\\"/a\\\\b\\tc\\u0001");
    /* Not UTF-8: every byte above ASCII is a '?'. */
    expect_error_topic("rtm/u/\xff/x", "rtm/u/?/x");
    expect_error_topic("rtm/\xc3", "rtm/?");
    expect_error_topic("\xc3\xa9\xed\xa0\x80", "?????");

    char topic[400], want[400];
    /* 256 bytes are kept, 257 cut to 256. */
    memset(topic, 'a', 300);
    topic[256] = '\0';
    expect_error_topic(topic, topic);
    topic[256] = 'a';
    topic[300] = '\0';
    memcpy(want, topic, 256);
    want[256] = '\0';
    expect_error_topic(topic, want);
    /* A character across byte 256 is dropped whole, whatever its length. */
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t i = 0; i < 3; i++) {
        size_t clen = strlen(chars[i]);
        memset(topic, 'a', 256 - clen + 1);
        memcpy(topic + 256 - clen + 1, chars[i], clen);
        strcpy(topic + 257, "zz");
        memcpy(want, topic, 256 - clen + 1);
        want[256 - clen + 1] = '\0';
        expect_error_topic(topic, want);
        /* Ending exactly at byte 256, it stays. */
        memcpy(topic + 256 - clen, chars[i], clen);
        topic[256] = '\0';
        expect_error_topic(topic, topic);
    }
    /* Long and not UTF-8: cut at most three bytes back, then '?'. */
    memset(topic, 0x80, 300);
    topic[300] = '\0';
    memset(want, '?', 253);
    want[253] = '\0';
    expect_error_topic(topic, want);
}

static void test_members_json(void **state)
{
    (void)state;
    static const char *const uids[] = {"alice", "bob", "c.d@e"};
    size_t len;
    char *s = rtm_members_json(true, "room1", 3, uids, 3, false, TS, &len);
    expect_json(s, len,
                "{\"type\":\"joined\",\"channel\":\"room1\",\"count\":3,\"members\":[\"alice\","
                "\"bob\",\"c.d@e\"],\"truncated\":false,\"ts\":1700000000123}");
    s = rtm_members_json(false, "room1", 900, uids, 2, true, 5, &len);
    expect_json(s, len,
                "{\"type\":\"members\",\"channel\":\"room1\",\"count\":900,\"members\":[\"alice\","
                "\"bob\"],\"truncated\":true,\"ts\":5}");
    s = rtm_members_json(false, "r", 0, NULL, 0, false, 0, &len);
    expect_json(s, len,
                "{\"type\":\"members\",\"channel\":\"r\",\"count\":0,\"members\":[],"
                "\"truncated\":false,\"ts\":0}");

    /* 512 members of 64 characters: past the first guess of the buffer. */
    enum { N = 512 };
    char(*names)[65] = malloc(N * sizeof(*names));
    const char **list = malloc(N * sizeof(*list));
    assert_non_null(names);
    assert_non_null(list);
    for (size_t i = 0; i < N; i++) {
        memset(names[i], 'a' + (char)(i % 26), 64);
        snprintf(names[i] + 60, 5, "%04zu", i);
        list[i] = names[i];
    }
    s = rtm_members_json(true, "big", 1000, list, N, true, TS, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    cJSON *j = cJSON_Parse(s);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "members");
    assert_int_equal(cJSON_GetArraySize(arr), N);
    assert_string_equal(cJSON_GetArrayItem(arr, N - 1)->valuestring, names[N - 1]);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated")));
    cJSON_Delete(j);
    free(s);
    free(list);
    free(names);
}

static void test_member_event_and_count_json(void **state)
{
    (void)state;
    size_t len;
    char *s = rtm_member_event_json(true, "room1", "bob", 4, TS, &len);
    expect_json(s, len,
                "{\"type\":\"member_joined\",\"channel\":\"room1\",\"uid\":\"bob\",\"count\":4,"
                "\"ts\":1700000000123}");
    s = rtm_member_event_json(false, "a.b@c", "x-y_z", 0, 1, &len);
    expect_json(s, len,
                "{\"type\":\"member_left\",\"channel\":\"a.b@c\",\"uid\":\"x-y_z\",\"count\":0,"
                "\"ts\":1}");
    s = rtm_count_json("room1", 12, TS, &len);
    expect_json(s, len, "{\"channel\":\"room1\",\"count\":12,\"ts\":1700000000123}");
    s = rtm_count_json("r", 0, 0, &len);
    expect_json(s, len, "{\"channel\":\"r\",\"count\":0,\"ts\":0}");
}

static void test_attr_json(void **state)
{
    (void)state;
    size_t len;
    char *s = rtm_attr_json("status", "busy", 4, "bob", TS, &len);
    expect_json(s, len,
                "{\"key\":\"status\",\"value\":\"busy\",\"by\":\"bob\",\"ts\":1700000000123}");
    /* Only value_len bytes count. */
    s = rtm_attr_json("k", "abcdef", 3, "bob", 1, &len);
    expect_json(s, len, "{\"key\":\"k\",\"value\":\"abc\",\"by\":\"bob\",\"ts\":1}");
    s = rtm_attr_json("k", "", 0, "bob", 1, &len);
    expect_json(s, len, "{\"key\":\"k\",\"value\":\"\",\"by\":\"bob\",\"ts\":1}");
    /* Quotes, backslashes and control characters escaped; UTF-8 as it is. */
    const char value[] = "say \"hi\"\\\n\t\x01\x1f\x7f caf\xc3\xa9 \xf0\x9f\x98\x80";
    s = rtm_attr_json("k", value, sizeof(value) - 1, "bob", 1, &len);
    expect_json(s, len,
                "{\"key\":\"k\",\"value\":\"say \\\"hi\\\"\\\\\\n\\t\\u0001\\u001f\x7f "
                "caf\xc3\xa9 \xf0\x9f\x98\x80\",\"by\":\"bob\",\"ts\":1}");
}

/* rtm_attr_payload_parse on an exact-length copy of `text`. */
static bool attr_parse(const char *text, const char *key, struct rtm_attr_claim *out)
{
    char *buf = payload(text, strlen(text));
    bool ok = rtm_attr_payload_parse(buf, strlen(text), key, out);
    free(buf);
    return ok;
}

static void test_attr_round_trip(void **state)
{
    (void)state;
    const char value[] = "a \"quoted\" \\ value\n\x01 caf\xc3\xa9 \xf0\x9f\x98\x80";
    size_t len;
    char *s = rtm_attr_json("notice.1", value, sizeof(value) - 1, "a.b@c", TS, &len);
    assert_non_null(s);
    struct rtm_attr_claim c;
    memset(&c, 0x5A, sizeof(c));
    assert_true(attr_parse(s, "notice.1", &c));
    assert_int_equal(c.value_len, sizeof(value) - 1);
    assert_string_equal(c.by, "a.b@c");
    assert_int_equal(c.ts, TS);
    free(s);

    char by[RTM_UID_MAX + 1];
    memset(by, 'b', RTM_UID_MAX);
    by[RTM_UID_MAX] = '\0';
    s = rtm_attr_json("k", "", 0, by, 0, &len);
    assert_true(attr_parse(s, "k", &c));
    assert_int_equal(c.value_len, 0);
    assert_string_equal(c.by, by);
    assert_int_equal(c.ts, 0);
    free(s);

    /* Order, whitespace and other members do not matter. */
    assert_true(attr_parse(" { \"ts\" : 5, \"by\":\"bob\", \"x\":[1], \"value\":\"\\u00e9\", "
                           "\"key\":\"k\" } ",
                           "k", &c));
    assert_int_equal(c.value_len, 2);
    assert_int_equal(c.ts, 5);
}

static void test_attr_parse_refusals(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "{\"key\":\"other\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"K\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1}",
        "{\"value\":\"v\",\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"v\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\"}",
        "{\"key\":1,\"value\":\"v\",\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":1,\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":null,\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":[\"v\"],\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":7,\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"b b\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":\"1\"}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":-1}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1.5}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1e300}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":true}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1}x",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1}{}",
        "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1",
        "{\"key\":\"k\",\"value\":\"v\\u0000w\",\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1}",
        "{\"key\":\"k\",\"value\":\"\xff\",\"by\":\"bob\",\"ts\":1}",
        "[\"k\",\"v\",\"bob\",1]",
        "\"k\"",
        "busy",
        "",
    };
    struct rtm_attr_claim c;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&c, 0x5A, sizeof(c));
        if (attr_parse(bad[i], "k", &c))
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(c.ts, (int64_t)0x5A5A5A5A5A5A5A5ALL); /* left alone */
    }
    char by[80];
    memset(by, 'b', 65);
    by[65] = '\0';
    char text[160];
    snprintf(text, sizeof(text), "{\"key\":\"k\",\"value\":\"v\",\"by\":\"%s\",\"ts\":1}", by);
    assert_false(attr_parse(text, "k", &c));
    assert_false(rtm_attr_payload_parse(NULL, 0, "k", &c));
    /* Only `len` bytes count. */
    const char *two = "{\"key\":\"k\",\"value\":\"v\",\"by\":\"bob\",\"ts\":1}{";
    assert_true(rtm_attr_payload_parse(two, strlen(two) - 1, "k", &c));
    assert_false(rtm_attr_payload_parse(two, strlen(two), "k", &c));
}

/* rtm_count_payload_parse on an exact-length copy of `text`. */
static bool count_parse(const char *text, const char *channel, uint64_t *count)
{
    char *buf = payload(text, strlen(text));
    bool ok = rtm_count_payload_parse(buf, strlen(text), channel, count);
    free(buf);
    return ok;
}

static void test_count_round_trip_and_refusals(void **state)
{
    (void)state;
    size_t len;
    uint64_t count = 99;
    char *s = rtm_count_json("room1", 12, TS, &len);
    assert_true(count_parse(s, "room1", &count));
    assert_int_equal(count, 12);
    assert_false(count_parse(s, "room2", &count));
    assert_false(count_parse(s, "room", &count));
    free(s);
    s = rtm_count_json("r", 0, 0, &len);
    assert_true(count_parse(s, "r", &count));
    assert_int_equal(count, 0);
    free(s);
    /* Any number is a ts; other members are ignored. */
    assert_true(count_parse("{\"ts\":-1.5,\"count\":3,\"channel\":\"r\",\"x\":0}", "r", &count));
    assert_int_equal(count, 3);

    static const char *const bad[] = {
        "{\"count\":1,\"ts\":1}",
        "{\"channel\":\"r\",\"ts\":1}",
        "{\"channel\":\"r\",\"count\":1}",
        "{\"channel\":\"R\",\"count\":1,\"ts\":1}",
        "{\"channel\":1,\"count\":1,\"ts\":1}",
        "{\"channel\":\"r\",\"count\":-1,\"ts\":1}",
        "{\"channel\":\"r\",\"count\":1.5,\"ts\":1}",
        "{\"channel\":\"r\",\"count\":\"1\",\"ts\":1}",
        "{\"channel\":\"r\",\"count\":1e30,\"ts\":1}",
        "{\"channel\":\"r\",\"count\":1,\"ts\":\"1\"}",
        "{\"channel\":\"r\",\"count\":1,\"ts\":null}",
        "{\"channel\":\"r\",\"count\":1,\"ts\":1} x",
        "{\"channel\":\"r\",\"count\":1,\"ts\":1",
        "[\"r\",1,1]",
        "12",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        count = 99;
        if (count_parse(bad[i], "r", &count))
            fail_msg("accepted: %s", bad[i]);
        assert_int_equal(count, 99);
    }
    assert_false(rtm_count_payload_parse(NULL, 0, "r", &count));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_exceeded_code),
        cmocka_unit_test(test_topic_error_json),
        cmocka_unit_test(test_members_json),
        cmocka_unit_test(test_member_event_and_count_json),
        cmocka_unit_test(test_attr_json),
        cmocka_unit_test(test_attr_round_trip),
        cmocka_unit_test(test_attr_parse_refusals),
        cmocka_unit_test(test_count_round_trip_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
