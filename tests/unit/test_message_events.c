/*
 * Unit tests for plugin/lib/message.c: writing stamped events, errors and
 * presence (PROTOCOL.md section 3), and UTF-8 validation.
 * test_message.c tests the validation of client requests.
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

#include "rtm_config.h"
#include "rtm_message.h"

/* Parses `text` (of `len` bytes, NUL-terminated) and checks that the object
 * has exactly the keys listed. */
static cJSON *parse_exact(const char *text, size_t len, const char *const *keys, size_t nkeys)
{
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    cJSON *j = cJSON_Parse(text);
    if (!j)
        print_error("not JSON: %s\n", text);
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    size_t n = 0;
    for (cJSON *c = j->child; c; c = c->next) {
        bool listed = false;
        for (size_t k = 0; k < nkeys; k++)
            if (strcmp(c->string, keys[k]) == 0)
                listed = true;
        if (!listed)
            print_error("unexpected key \"%s\" in %s\n", c->string, text);
        assert_true(listed);
        n++;
    }
    if (n != nkeys)
        print_error("%zu keys, expected %zu, in %s\n", n, nkeys, text);
    assert_int_equal(n, nkeys);
    return j;
}

static void expect_str(const cJSON *j, const char *key, const char *value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_non_null(v);
    assert_true(cJSON_IsString(v));
    assert_string_equal(v->valuestring, value);
}

static void expect_num(const cJSON *j, const char *key, int64_t value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_non_null(v);
    assert_true(cJSON_IsNumber(v));
    assert_true(v->valuedouble == (double)value);
}

static void expect_bool(const cJSON *j, const char *key, bool value)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    assert_non_null(v);
    assert_true(cJSON_IsBool(v));
    assert_int_equal(cJSON_IsTrue(v), value);
}

#define TS 1764100000000LL

static void test_event_invite(void **state)
{
    (void)state;
    static const char *const keys[] = {"type", "id",      "caller",  "callee",    "by",
                                       "ts",   "content", "channel", "expires_at"};
    struct rtm_event ev = {
        .type = RTM_MSG_INVITE,
        .id = "c-7f3a",
        .caller = "alice",
        .callee = "bob",
        .by = "alice",
        .ts = TS,
        .content = "{\"video\":true}",
        .channel = "room-42",
        .expires_at = TS + 30000,
    };
    size_t len = 0;
    char *s = rtm_event_json(&ev, &len);
    cJSON *j = parse_exact(s, len, keys, 9);
    expect_str(j, "type", "invite");
    expect_str(j, "id", "c-7f3a");
    expect_str(j, "caller", "alice");
    expect_str(j, "callee", "bob");
    expect_str(j, "by", "alice");
    expect_num(j, "ts", TS);
    expect_str(j, "content", "{\"video\":true}");
    expect_str(j, "channel", "room-42");
    expect_num(j, "expires_at", TS + 30000);
    /* Milliseconds are written as integers, not in exponent form. */
    assert_non_null(strstr(s, "1764100000000"));
    assert_non_null(strstr(s, "1764100030000"));
    cJSON_Delete(j);
    free(s);

    /* content and channel absent: written as "". */
    ev.content = NULL;
    ev.channel = NULL;
    s = rtm_event_json(&ev, &len);
    j = parse_exact(s, len, keys, 9);
    expect_str(j, "content", "");
    expect_str(j, "channel", "");
    expect_num(j, "expires_at", TS + 30000);
    cJSON_Delete(j);
    free(s);

    /* Strings needing escapes survive. */
    ev.content = "quote \" backslash \\ newline \n tab \t \xc3\xa9";
    s = rtm_event_json(&ev, &len);
    j = parse_exact(s, len, keys, 9);
    expect_str(j, "content", "quote \" backslash \\ newline \n tab \t \xc3\xa9");
    cJSON_Delete(j);
    free(s);
}

static void test_event_ringing_cancel(void **state)
{
    (void)state;
    static const char *const keys[] = {"type", "id", "caller", "callee", "by", "ts"};
    struct rtm_event ev = {
        .type = RTM_MSG_RINGING,
        .id = "c-7f3a",
        .caller = "alice",
        .callee = "bob",
        .by = "bob",
        .ts = TS + 350,
    };
    size_t len = 0;
    char *s = rtm_event_json(&ev, &len);
    cJSON *j = parse_exact(s, len, keys, 6);
    expect_str(j, "type", "ringing");
    expect_str(j, "by", "bob");
    expect_num(j, "ts", TS + 350);
    cJSON_Delete(j);
    free(s);

    ev.type = RTM_MSG_CANCEL;
    ev.by = "alice";
    s = rtm_event_json(&ev, &len);
    j = parse_exact(s, len, keys, 6);
    expect_str(j, "type", "cancel");
    expect_str(j, "id", "c-7f3a");
    expect_str(j, "caller", "alice");
    expect_str(j, "callee", "bob");
    expect_str(j, "by", "alice");
    cJSON_Delete(j);
    free(s);
}

static void test_event_accept_refuse(void **state)
{
    (void)state;
    static const char *const with_resp[] = {"type", "id", "caller",  "callee",
                                            "by",   "ts", "response"};
    struct rtm_event ev = {
        .type = RTM_MSG_ACCEPT,
        .id = "c-7f3a",
        .caller = "alice",
        .callee = "bob",
        .by = "bob",
        .ts = TS + 4000,
        .response = "ok",
    };
    size_t len = 0;
    char *s = rtm_event_json(&ev, &len);
    cJSON *j = parse_exact(s, len, with_resp, 7);
    expect_str(j, "type", "accept");
    expect_str(j, "response", "ok");
    cJSON_Delete(j);
    free(s);

    ev.type = RTM_MSG_REFUSE;
    ev.response = "busy";
    s = rtm_event_json(&ev, &len);
    j = parse_exact(s, len, with_resp, 7);
    expect_str(j, "type", "refuse");
    expect_str(j, "response", "busy");
    cJSON_Delete(j);
    free(s);

    /* No response: no key. */
    ev.response = NULL;
    s = rtm_event_json(&ev, &len);
    j = parse_exact(s, len, with_resp, 6);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "response"));
    cJSON_Delete(j);
    free(s);
}

static void test_event_failure(void **state)
{
    (void)state;
    static const char *const keys[] = {"type", "id", "caller", "callee", "by", "ts", "reason"};
    static const struct {
        enum rtm_fail_reason r;
        const char *name;
    } reasons[] = {
        {RTM_FAIL_PEER_OFFLINE, "peer_offline"},
        {RTM_FAIL_NO_RESPONSE, "no_response"},
        {RTM_FAIL_EXPIRED, "expired"},
        {RTM_FAIL_CALLER_OFFLINE, "caller_offline"},
    };
    for (size_t i = 0; i < 4; i++) {
        struct rtm_event ev = {
            .type = RTM_MSG_FAILURE,
            .id = "c-7f3a",
            .caller = "alice",
            .callee = "bob",
            .by = NULL,
            .ts = TS + 30050,
            .reason = reasons[i].r,
        };
        size_t len = 0;
        char *s = rtm_event_json(&ev, &len);
        cJSON *j = parse_exact(s, len, keys, 7);
        expect_str(j, "type", "failure");
        expect_str(j, "by", "server");
        expect_str(j, "reason", reasons[i].name);
        expect_num(j, "ts", TS + 30050);
        cJSON_Delete(j);
        free(s);
    }
}

static void test_error_json(void **state)
{
    (void)state;
    static const char *const full[] = {"type", "code", "message", "id", "request", "ts"};
    size_t len = 0;
    char *s =
        rtm_error_json(RTM_ERR_INVALID_STATE, "invitation c-7f3a has already ended (canceled)",
                       "c-7f3a", RTM_MSG_ACCEPT, TS + 5000, &len);
    cJSON *j = parse_exact(s, len, full, 6);
    expect_str(j, "type", "error");
    expect_str(j, "code", "invalid_state");
    expect_str(j, "message", "invitation c-7f3a has already ended (canceled)");
    expect_str(j, "id", "c-7f3a");
    expect_str(j, "request", "accept");
    expect_num(j, "ts", TS + 5000);
    cJSON_Delete(j);
    free(s);

    /* No valid id, no valid type: neither key. */
    static const char *const bare[] = {"type", "code", "message", "ts"};
    s = rtm_error_json(RTM_ERR_BAD_REQUEST, "not JSON", NULL, RTM_MSG_NONE, TS, &len);
    j = parse_exact(s, len, bare, 4);
    expect_str(j, "code", "bad_request");
    expect_str(j, "message", "not JSON");
    cJSON_Delete(j);
    free(s);

    /* A type but no id. */
    static const char *const typed[] = {"type", "code", "message", "request", "ts"};
    s = rtm_error_json(RTM_ERR_BAD_REQUEST, "missing id", NULL, RTM_MSG_CANCEL, TS, &len);
    j = parse_exact(s, len, typed, 5);
    expect_str(j, "request", "cancel");
    cJSON_Delete(j);
    free(s);

    /* An id but no type. */
    static const char *const ided[] = {"type", "code", "message", "id", "ts"};
    s = rtm_error_json(RTM_ERR_BAD_REQUEST, "unknown type", "x1", RTM_MSG_NONE, TS, &len);
    j = parse_exact(s, len, ided, 5);
    expect_str(j, "id", "x1");
    cJSON_Delete(j);
    free(s);

    /* Every code. */
    static const enum rtm_err errs[] = {
        RTM_ERR_BAD_REQUEST,   RTM_ERR_UNKNOWN_INVITATION, RTM_ERR_NOT_PARTY,
        RTM_ERR_INVALID_STATE, RTM_ERR_DUPLICATE_ID,       RTM_ERR_SELF_CALL,
        RTM_ERR_RATE_LIMITED,  RTM_ERR_BUSY_LIMIT,
    };
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        s = rtm_error_json(errs[i], "m", "i", RTM_MSG_INVITE, TS, &len);
        j = parse_exact(s, len, full, 6);
        expect_str(j, "code", rtm_err_code(errs[i]));
        cJSON_Delete(j);
        free(s);
    }
}

static void test_presence_json(void **state)
{
    (void)state;
    static const char *const on[] = {"uid", "online", "sessions", "ts"};
    static const char *const off[] = {"uid", "online", "ts"};
    size_t len = 0;
    char *s = rtm_presence_json("bob", true, 2, TS, &len);
    cJSON *j = parse_exact(s, len, on, 4);
    expect_str(j, "uid", "bob");
    expect_bool(j, "online", true);
    expect_num(j, "sessions", 2);
    expect_num(j, "ts", TS);
    cJSON_Delete(j);
    assert_int_equal(rtm_presence_payload_claim(s, len, "bob"), RTM_PRESENCE_ONLINE);
    free(s);

    s = rtm_presence_json("bob", false, 0, TS + 1, &len);
    j = parse_exact(s, len, off, 3);
    expect_str(j, "uid", "bob");
    expect_bool(j, "online", false);
    expect_num(j, "ts", TS + 1);
    cJSON_Delete(j);
    assert_int_equal(rtm_presence_payload_claim(s, len, "bob"), RTM_PRESENCE_OFFLINE);
    free(s);
}

/* The claim of `payload` on bob's presence topic, from a buffer of exactly
 * its length (no NUL after it), so overreads trip ASan. */
static enum rtm_presence_claim claim_n(const char *payload)
{
    size_t len = strlen(payload);
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, payload, len);
    enum rtm_presence_claim r = rtm_presence_payload_claim(buf, len, "bob");
    free(buf);
    return r;
}

static void test_presence_payload_claim(void **state)
{
    (void)state;
    assert_int_equal(claim_n("{\"uid\":\"bob\",\"online\":true,\"sessions\":1,\"ts\":1}"),
                     RTM_PRESENCE_ONLINE);
    assert_int_equal(claim_n(" { \"ts\" : 5 , \"online\" : true, \"uid\":\"bob\" } "),
                     RTM_PRESENCE_ONLINE);
    assert_int_equal(claim_n("{\"uid\":\"bob\",\"online\":false,\"ts\":1}"), RTM_PRESENCE_OFFLINE);
    /* Not what the plugin writes on bob's topic. */
    static const char *const not_ours[] = {
        "{\"online\":true}",
        "{\"uid\":\"carol\",\"online\":true}",
        "{\"uid\":\"bob\"}",
        "{\"uid\":\"bob\",\"online\":\"yes\"}",
        "",
        "garbage",
        "[true]",
        "true",
        "{\"uid\":\"bob\",\"online\":true",
    };
    for (size_t i = 0; i < sizeof(not_ours) / sizeof(not_ours[0]); i++)
        assert_int_equal(claim_n(not_ours[i]), RTM_PRESENCE_NOT_OURS);
    assert_int_equal(rtm_presence_payload_claim(NULL, 0, "bob"), RTM_PRESENCE_NOT_OURS);
    /* Only `len` bytes count. */
    const char *text = "{\"uid\":\"bob\",\"online\":false}{\"online\":true}";
    assert_int_equal(
        rtm_presence_payload_claim(text, strlen("{\"uid\":\"bob\",\"online\":false}"), "bob"),
        RTM_PRESENCE_OFFLINE);
}

/* --- UTF-8 ------------------------------------------------------------------ */

static bool utf8(const char *s)
{
    return rtm_utf8_valid(s, strlen(s));
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(rtm_utf8_valid("", 0));
    assert_true(utf8("plain ascii"));
    assert_true(utf8("\x7f"));
    assert_true(utf8("\xc2\x80"));         /* U+0080 */
    assert_true(utf8("\xc3\xa9"));         /* é */
    assert_true(utf8("\xdf\xbf"));         /* U+07FF */
    assert_true(utf8("\xe0\xa0\x80"));     /* U+0800 */
    assert_true(utf8("\xe2\x82\xac"));     /* € */
    assert_true(utf8("\xed\x9f\xbf"));     /* U+D7FF */
    assert_true(utf8("\xee\x80\x80"));     /* U+E000 */
    assert_true(utf8("\xef\xbf\xbf"));     /* U+FFFF */
    assert_true(utf8("\xf0\x90\x80\x80")); /* U+10000 */
    assert_true(utf8("\xf0\x9f\x98\x80")); /* 😀 */
    assert_true(utf8("\xf4\x8f\xbf\xbf")); /* U+10FFFF */
    assert_true(utf8("a\xc3\xa9z\xe2\x82\xac\xf0\x9f\x98\x80!"));

    /* Overlong encodings. */
    assert_false(utf8("\xc0\x80"));
    assert_false(utf8("\xc0\xaf"));
    assert_false(utf8("\xc1\xbf"));
    assert_false(utf8("\xe0\x80\x80"));
    assert_false(utf8("\xe0\x9f\xbf"));
    assert_false(utf8("\xf0\x80\x80\x80"));
    assert_false(utf8("\xf0\x8f\xbf\xbf"));
    /* Surrogates. */
    assert_false(utf8("\xed\xa0\x80"));
    assert_false(utf8("\xed\xbf\xbf"));
    assert_false(utf8("\xed\xa0\xbd\xed\xb8\x80"));
    /* Beyond U+10FFFF. */
    assert_false(utf8("\xf4\x90\x80\x80"));
    assert_false(utf8("\xf5\x80\x80\x80"));
    assert_false(utf8("\xf7\xbf\xbf\xbf"));
    assert_false(utf8("\xf8\x88\x80\x80\x80"));
    assert_false(utf8("\xfc\x84\x80\x80\x80\x80"));
    assert_false(utf8("\xfe"));
    assert_false(utf8("\xff"));
    /* Truncated sequences, at the end and in the middle. */
    assert_false(utf8("\xc3"));
    assert_false(utf8("\xe2\x82"));
    assert_false(utf8("\xf0\x9f\x98"));
    assert_false(utf8("\xf0\x9f"));
    assert_false(utf8("a\xc3z"));
    assert_false(utf8("\xe2\x82z"));
    assert_false(utf8("\xf0\x9f\x98z"));
    /* Lone continuation bytes. */
    assert_false(utf8("\x80"));
    assert_false(utf8("a\xbf"));
    assert_false(utf8("\xc3\xa9\xa9"));
    /* A valid sequence cut by `len`. */
    assert_false(rtm_utf8_valid("\xe2\x82\xac", 2));
    assert_true(rtm_utf8_valid("\xe2\x82\xac\xff", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_event_invite),
        cmocka_unit_test(test_event_ringing_cancel),
        cmocka_unit_test(test_event_accept_refuse),
        cmocka_unit_test(test_event_failure),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_presence_json),
        cmocka_unit_test(test_presence_payload_claim),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
