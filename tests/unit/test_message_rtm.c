/*
 * Unit tests for plugin/lib/message.c, SPEC 8's JSON: errors that name a
 * topic, channel replies, member events and counts, stamped attributes.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limit_exceeded_code),
        cmocka_unit_test(test_topic_error_json),
        cmocka_unit_test(test_members_json),
        cmocka_unit_test(test_member_event_and_count_json),
        cmocka_unit_test(test_attr_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
