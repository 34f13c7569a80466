/*
 * Unit tests for plugin/lib/message.c: validating client requests (PROTOCOL.md
 * section 3). test_message_events.c tests what the plugin writes.
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

static struct rtm_config cfg;

static int setup(void **state)
{
    (void)state;
    rtm_config_defaults(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rtm_config_free(&cfg);
    return 0;
}

/* Parses `len` bytes copied into a buffer of exactly that size (no NUL after
 * it, as an MQTT payload), so reading past `len` is caught by ASan. */
static enum rtm_err parse_n(const char *payload, size_t len, struct rtm_request *req,
                            const char **why)
{
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, payload, len);
    memset(req, 0x5A, sizeof(*req));
    *why = NULL;
    enum rtm_err err = rtm_request_parse(buf, len, &cfg, req, why);
    /* String fields point into the request's own JSON, not into `buf`. */
    free(buf);
    return err;
}

static enum rtm_err parse(const char *payload, struct rtm_request *req, const char **why)
{
    return parse_n(payload, strlen(payload), req, why);
}

static void expect_ok(const char *payload, struct rtm_request *req)
{
    const char *why = NULL;
    enum rtm_err err = parse(payload, req, &why);
    if (err != RTM_OK)
        print_error("refused (%s): %s\n", why ? why : "?", payload);
    assert_int_equal(err, RTM_OK);
}

/* Expects bad_request, with `type` and `id` kept when they were valid. */
static void expect_bad_n(const char *payload, size_t len, enum rtm_msg_type type, const char *id)
{
    struct rtm_request req;
    const char *why = NULL;
    enum rtm_err err = parse_n(payload, len, &req, &why);
    if (err != RTM_ERR_BAD_REQUEST)
        print_error("got %d, expected bad_request: %.*s\n", err, (int)(len > 200 ? 200 : len),
                    payload);
    assert_int_equal(err, RTM_ERR_BAD_REQUEST);
    assert_non_null(why);
    assert_true(why[0] != '\0');
    assert_int_equal(req.type, type);
    assert_string_equal(req.id, id);
    rtm_request_free(&req);
}

static void expect_bad(const char *payload, enum rtm_msg_type type, const char *id)
{
    expect_bad_n(payload, strlen(payload), type, id);
}

/* --- names ---------------------------------------------------------------- */

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(rtm_msg_type_name(RTM_MSG_INVITE), "invite");
    assert_string_equal(rtm_msg_type_name(RTM_MSG_RINGING), "ringing");
    assert_string_equal(rtm_msg_type_name(RTM_MSG_ACCEPT), "accept");
    assert_string_equal(rtm_msg_type_name(RTM_MSG_REFUSE), "refuse");
    assert_string_equal(rtm_msg_type_name(RTM_MSG_CANCEL), "cancel");
    assert_string_equal(rtm_msg_type_name(RTM_MSG_FAILURE), "failure");

    assert_string_equal(rtm_err_code(RTM_ERR_BAD_REQUEST), "bad_request");
    assert_string_equal(rtm_err_code(RTM_ERR_UNKNOWN_INVITATION), "unknown_invitation");
    assert_string_equal(rtm_err_code(RTM_ERR_NOT_PARTY), "not_party");
    assert_string_equal(rtm_err_code(RTM_ERR_INVALID_STATE), "invalid_state");
    assert_string_equal(rtm_err_code(RTM_ERR_DUPLICATE_ID), "duplicate_id");
    assert_string_equal(rtm_err_code(RTM_ERR_SELF_CALL), "self_call");
    assert_string_equal(rtm_err_code(RTM_ERR_RATE_LIMITED), "rate_limited");
    assert_string_equal(rtm_err_code(RTM_ERR_BUSY_LIMIT), "busy_limit");

    assert_string_equal(rtm_fail_reason_name(RTM_FAIL_PEER_OFFLINE), "peer_offline");
    assert_string_equal(rtm_fail_reason_name(RTM_FAIL_NO_RESPONSE), "no_response");
    assert_string_equal(rtm_fail_reason_name(RTM_FAIL_EXPIRED), "expired");
    assert_string_equal(rtm_fail_reason_name(RTM_FAIL_CALLER_OFFLINE), "caller_offline");
}

/* --- valid requests --------------------------------------------------------- */

static void test_parse_invite(void **state)
{
    (void)state;
    struct rtm_request req;

    expect_ok("{\"type\":\"invite\",\"id\":\"c-7f3a\"}", &req);
    assert_int_equal(req.type, RTM_MSG_INVITE);
    assert_string_equal(req.id, "c-7f3a");
    assert_null(req.content);
    assert_null(req.channel);
    assert_null(req.response);
    assert_int_equal(req.timeout_s, 0);
    rtm_request_free(&req);

    expect_ok("{\"type\":\"invite\",\"id\":\"c-7f3a\",\"content\":\"{\\\"video\\\":true}\","
              "\"channel\":\"room-42\",\"timeout\":30}",
              &req);
    assert_int_equal(req.type, RTM_MSG_INVITE);
    assert_string_equal(req.id, "c-7f3a");
    assert_string_equal(req.content, "{\"video\":true}");
    assert_string_equal(req.channel, "room-42");
    assert_int_equal(req.timeout_s, 30);
    rtm_request_free(&req);

    expect_ok("{\"type\":\"invite\",\"id\":\"x\",\"content\":\"\"}", &req);
    assert_string_equal(req.content, "");
    assert_null(req.channel);
    rtm_request_free(&req);

    expect_ok("{\"type\":\"invite\",\"id\":\"x\",\"channel\":\"c\"}", &req);
    assert_null(req.content);
    assert_string_equal(req.channel, "c");
    rtm_request_free(&req);

    expect_ok("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":1}", &req);
    assert_int_equal(req.timeout_s, 1);
    rtm_request_free(&req);

    expect_ok("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":120}", &req);
    assert_int_equal(req.timeout_s, 120);
    rtm_request_free(&req);

    /* Key order does not matter; whitespace is JSON's. */
    expect_ok(" {\n \"timeout\" : 5 , \"id\" : \"x\" , \"type\" : \"invite\" }\n", &req);
    assert_int_equal(req.type, RTM_MSG_INVITE);
    assert_int_equal(req.timeout_s, 5);
    rtm_request_free(&req);

    /* Unicode content is fine. */
    expect_ok("{\"type\":\"invite\",\"id\":\"x\",\"content\":\"h\xc3\xa9llo \xe2\x82\xac "
              "\xf0\x9f\x98\x80\"}",
              &req);
    assert_string_equal(req.content, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    rtm_request_free(&req);
}

static void test_parse_other_types(void **state)
{
    (void)state;
    struct rtm_request req;

    expect_ok("{\"type\":\"ringing\",\"id\":\"a\"}", &req);
    assert_int_equal(req.type, RTM_MSG_RINGING);
    assert_string_equal(req.id, "a");
    rtm_request_free(&req);

    expect_ok("{\"type\":\"accept\",\"id\":\"a\"}", &req);
    assert_int_equal(req.type, RTM_MSG_ACCEPT);
    assert_null(req.response);
    rtm_request_free(&req);

    expect_ok("{\"type\":\"accept\",\"id\":\"a\",\"response\":\"ok\"}", &req);
    assert_int_equal(req.type, RTM_MSG_ACCEPT);
    assert_string_equal(req.response, "ok");
    rtm_request_free(&req);

    expect_ok("{\"type\":\"refuse\",\"id\":\"a\"}", &req);
    assert_int_equal(req.type, RTM_MSG_REFUSE);
    assert_null(req.response);
    rtm_request_free(&req);

    expect_ok("{\"type\":\"refuse\",\"id\":\"a\",\"response\":\"busy\"}", &req);
    assert_int_equal(req.type, RTM_MSG_REFUSE);
    assert_string_equal(req.response, "busy");
    rtm_request_free(&req);

    expect_ok("{\"type\":\"cancel\",\"id\":\"a\"}", &req);
    assert_int_equal(req.type, RTM_MSG_CANCEL);
    assert_string_equal(req.id, "a");
    rtm_request_free(&req);
}

static void test_parse_ignores_other_fields(void **state)
{
    (void)state;
    struct rtm_request req;
    expect_ok("{\"type\":\"cancel\",\"id\":\"a\",\"caller\":\"mallory\",\"callee\":\"x\","
              "\"by\":\"y\",\"ts\":1,\"expires_at\":2,\"foo\":{\"bar\":[1,2]},\"reason\":5}",
              &req);
    assert_int_equal(req.type, RTM_MSG_CANCEL);
    assert_string_equal(req.id, "a");
    rtm_request_free(&req);
}

static void test_parse_limits_exact(void **state)
{
    (void)state;
    /* At the limits: accepted. */
    static char buf[16384];
    char field[RTM_CONTENT_MAX + 2];
    struct rtm_request req;

    memset(field, 'c', RTM_CONTENT_MAX);
    field[RTM_CONTENT_MAX] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"invite\",\"id\":\"x\",\"content\":\"%s\"}", field);
    expect_ok(buf, &req);
    assert_int_equal(strlen(req.content), RTM_CONTENT_MAX);
    rtm_request_free(&req);

    snprintf(buf, sizeof(buf), "{\"type\":\"accept\",\"id\":\"x\",\"response\":\"%s\"}", field);
    expect_ok(buf, &req);
    assert_int_equal(strlen(req.response), RTM_RESPONSE_MAX);
    rtm_request_free(&req);

    memset(field, 'h', RTM_CHANNEL_MAX);
    field[RTM_CHANNEL_MAX] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"invite\",\"id\":\"x\",\"channel\":\"%s\"}", field);
    expect_ok(buf, &req);
    assert_int_equal(strlen(req.channel), RTM_CHANNEL_MAX);
    rtm_request_free(&req);

    /* The limits are bytes, not characters: 2048 two-byte characters fit. */
    for (int i = 0; i < RTM_CONTENT_MAX / 2; i++) {
        field[2 * i] = '\xc3';
        field[2 * i + 1] = '\xa9';
    }
    field[RTM_CONTENT_MAX] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"invite\",\"id\":\"x\",\"content\":\"%s\"}", field);
    expect_ok(buf, &req);
    rtm_request_free(&req);

    char id[RTM_ID_MAX + 1];
    memset(id, 'i', RTM_ID_MAX);
    id[RTM_ID_MAX] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"cancel\",\"id\":\"%s\"}", id);
    expect_ok(buf, &req);
    assert_string_equal(req.id, id);
    rtm_request_free(&req);
}

static void test_parse_not_nul_terminated(void **state)
{
    (void)state;
    /* Only `len` bytes are the payload: what follows is not part of it. */
    const char *text = "{\"type\":\"cancel\",\"id\":\"abc\"}GARBAGE";
    size_t len = strlen("{\"type\":\"cancel\",\"id\":\"abc\"}");
    struct rtm_request req;
    const char *why = NULL;
    assert_int_equal(parse_n(text, len, &req, &why), RTM_OK);
    assert_int_equal(req.type, RTM_MSG_CANCEL);
    assert_string_equal(req.id, "abc");
    rtm_request_free(&req);
}

static void test_payload_size_limit(void **state)
{
    (void)state;
    struct rtm_request req;
    const char *why = NULL;
    char buf[256];
    /* Exactly max_payload bytes: accepted; one more: refused. */
    cfg.max_payload = 100;
    const char *head = "{\"type\":\"invite\",\"id\":\"big\",\"content\":\"";
    size_t fill = 100 - strlen(head) - 2;
    memcpy(buf, head, strlen(head));
    memset(buf + strlen(head), 'x', fill);
    memcpy(buf + strlen(head) + fill, "\"}", 3);
    assert_int_equal(strlen(buf), 100);
    assert_int_equal(parse(buf, &req, &why), RTM_OK);
    rtm_request_free(&req);

    memcpy(buf, head, strlen(head));
    memset(buf + strlen(head), 'x', fill + 1);
    memcpy(buf + strlen(head) + fill + 1, "\"}", 3);
    assert_int_equal(strlen(buf), 101);
    assert_int_equal(parse(buf, &req, &why), RTM_ERR_BAD_REQUEST);
    assert_non_null(why);
    rtm_request_free(&req);

    /* Too large, whatever else is wrong with it: a 9000-byte non-JSON blob. */
    cfg.max_payload = 8192;
    char *blob = malloc(9000);
    assert_non_null(blob);
    memset(blob, '[', 9000);
    expect_bad_n(blob, 9000, RTM_MSG_NONE, "");
    free(blob);
}

static void test_max_invite_timeout_from_config(void **state)
{
    (void)state;
    struct rtm_request req;
    cfg.max_invite_timeout_s = 10;
    expect_ok("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":10}", &req);
    assert_int_equal(req.timeout_s, 10);
    rtm_request_free(&req);
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":11}", RTM_MSG_INVITE, "x");
    cfg.max_invite_timeout_s = 120;
}

/* --- bad requests ----------------------------------------------------------- */

static void test_bad_not_json(void **state)
{
    (void)state;
    expect_bad("", RTM_MSG_NONE, "");
    expect_bad("hello", RTM_MSG_NONE, "");
    expect_bad("{", RTM_MSG_NONE, "");
    expect_bad("{\"type\":\"cancel\",\"id\":\"a\"", RTM_MSG_NONE, "");
    expect_bad("{'type':'cancel','id':'a'}", RTM_MSG_NONE, "");
    expect_bad("{\"type\":\"cancel\",\"id\":\"a\",}", RTM_MSG_NONE, "");
    /* Trailing data after the object is not JSON. */
    expect_bad("{\"type\":\"cancel\",\"id\":\"a\"} x", RTM_MSG_NONE, "");
    expect_bad("{\"type\":\"cancel\",\"id\":\"a\"}{}", RTM_MSG_NONE, "");
}

static void test_bad_not_object(void **state)
{
    (void)state;
    expect_bad("42", RTM_MSG_NONE, "");
    expect_bad("\"invite\"", RTM_MSG_NONE, "");
    expect_bad("null", RTM_MSG_NONE, "");
    expect_bad("true", RTM_MSG_NONE, "");
    expect_bad("[]", RTM_MSG_NONE, "");
    expect_bad("[{\"type\":\"cancel\",\"id\":\"a\"}]", RTM_MSG_NONE, "");
}

/* Expects bad_request, whatever the parser kept of type and id. */
static void expect_bad_any(const char *payload)
{
    struct rtm_request req;
    const char *why = NULL;
    enum rtm_err err = parse(payload, &req, &why);
    if (err != RTM_ERR_BAD_REQUEST)
        print_error("got %d, expected bad_request: %s\n", err, payload);
    assert_int_equal(err, RTM_ERR_BAD_REQUEST);
    assert_non_null(why);
    rtm_request_free(&req);
}

static void test_bad_utf8(void **state)
{
    (void)state;
    /* cJSON does not check UTF-8: the parser must. */
    expect_bad_any("{\"type\":\"invite\",\"id\":\"a\",\"content\":\"\xff\"}");
    expect_bad_any("{\"type\":\"invite\",\"id\":\"a\",\"channel\":\"\xc0\x80\"}");
    expect_bad_any("{\"type\":\"accept\",\"id\":\"a\",\"response\":\"\xed\xa0\x80\"}");
    expect_bad_any("{\"type\":\"cancel\",\"id\":\"a\",\"x\":\"\xe2\x82\"}");
    expect_bad_any("{\"type\":\"cancel\",\"id\":\"a\",\"\xf4\x90\x80\x80\":1}");
    expect_bad_any("{\"type\":\"cancel\",\"id\":\"a\"}\xff");
}

static void test_bad_type(void **state)
{
    (void)state;
    /* Missing or mistyped: the id is kept when it was valid. */
    expect_bad("{\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":5,\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":null,\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":[\"invite\"],\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":{},\"id\":\"a\"}", RTM_MSG_NONE, "a");
    /* Unknown, including the types only the plugin generates. */
    expect_bad("{\"type\":\"hello\",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":\"\",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":\"INVITE\",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":\"invite \",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":\"failure\",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":\"error\",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{\"type\":\"pushed\",\"id\":\"a\"}", RTM_MSG_NONE, "a");
    expect_bad("{}", RTM_MSG_NONE, "");
}

static void test_bad_id(void **state)
{
    (void)state;
    char buf[256], id[80];
    /* Missing or invalid: the type is kept. */
    expect_bad("{\"type\":\"cancel\"}", RTM_MSG_CANCEL, "");
    expect_bad("{\"type\":\"invite\",\"id\":\"\"}", RTM_MSG_INVITE, "");
    expect_bad("{\"type\":\"accept\",\"id\":\"a b\"}", RTM_MSG_ACCEPT, "");
    expect_bad("{\"type\":\"ringing\",\"id\":\"a.b\"}", RTM_MSG_RINGING, "");
    expect_bad("{\"type\":\"refuse\",\"id\":\"a@b\"}", RTM_MSG_REFUSE, "");
    expect_bad("{\"type\":\"cancel\",\"id\":\"a/b\"}", RTM_MSG_CANCEL, "");
    expect_bad("{\"type\":\"cancel\",\"id\":5}", RTM_MSG_CANCEL, "");
    expect_bad("{\"type\":\"cancel\",\"id\":null}", RTM_MSG_CANCEL, "");
    expect_bad("{\"type\":\"cancel\",\"id\":[\"a\"]}", RTM_MSG_CANCEL, "");
    memset(id, 'i', 65);
    id[65] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"invite\",\"id\":\"%s\"}", id);
    expect_bad(buf, RTM_MSG_INVITE, "");
}

/* cJSON would cut a string at an escaped NUL, so "ab\u0000cd" would pass
 * as the id "ab": any escaped NUL is refused, an escaped backslash is not. */
static void test_escaped_nul(void **state)
{
    (void)state;
    expect_bad("{\"type\":\"invite\",\"id\":\"ab\\u0000cd\"}", RTM_MSG_NONE, "");
    expect_bad("{\"type\":\"invite\",\"id\":\"ab\",\"content\":\"x\\u0000\"}", RTM_MSG_NONE, "");
    struct rtm_request req;
    const char *why = NULL;
    const char *ok = "{\"type\":\"invite\",\"id\":\"ab\",\"content\":\"\\\\u0000\"}";
    assert_int_equal(parse_n(ok, strlen(ok), &req, &why), RTM_OK);
    assert_string_equal(req.content, "\\u0000");
    rtm_request_free(&req);
}

/* Expects bad_request, nothing kept, and `why` mentioning `words`. */
static void expect_refused_because(const char *payload, const char *words)
{
    struct rtm_request req;
    const char *why = NULL;
    assert_int_equal(parse_n(payload, strlen(payload), &req, &why), RTM_ERR_BAD_REQUEST);
    if (!why || !strstr(why, words))
        fail_msg("why \"%s\" does not mention \"%s\"", why ? why : "(null)", words);
    assert_int_equal(req.type, RTM_MSG_NONE);
    rtm_request_free(&req);
}

static void test_nesting_depth(void **state)
{
    (void)state;
    char buf[4096];
    /* 8 levels in an extra field are fine; 9 are not. */
    const char *ok = "{\"type\":\"cancel\",\"id\":\"a\",\"x\":[[[[[[[1]]]]]]]}";
    struct rtm_request req;
    const char *why = NULL;
    expect_ok(ok, &req);
    rtm_request_free(&req);
    expect_refused_because("{\"type\":\"cancel\",\"id\":\"a\",\"x\":[[[[[[[[1]]]]]]]]}", "deeper");
    /* Brackets inside strings do not count, escaped quotes included. */
    const char *strings = "{\"type\":\"cancel\",\"id\":\"a\",\"x\":\"\\\"[[[[[[[[[[[{{{{{{\"}";
    assert_int_equal(parse_n(strings, strlen(strings), &req, &why), RTM_OK);
    rtm_request_free(&req);
    /* Thousands of levels are refused before cJSON recurses into them. */
    size_t n = 0;
    n += (size_t)snprintf(buf, sizeof(buf), "{\"type\":\"cancel\",\"id\":\"a\",\"x\":");
    while (n < sizeof(buf) - 2)
        buf[n++] = '[';
    buf[n] = '\0';
    expect_refused_because(buf, "deeper");
}

static void test_members(void **state)
{
    (void)state;
    expect_refused_because("{\"type\":\"cancel\",\"id\":\"a\",\"id\":\"b\"}", "twice");
    expect_refused_because("{\"type\":\"cancel\",\"type\":\"invite\",\"id\":\"a\"}", "twice");
    expect_refused_because("{\"type\":\"cancel\",\"id\":\"a\",\"x\":1,\"x\":2}", "twice");
    char buf[2048];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "{\"type\":\"cancel\",\"id\":\"a\"");
    for (int i = 0; i < 30; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"f%d\":%d", i, i);
    snprintf(buf + n, sizeof(buf) - n, "}");
    struct rtm_request req;
    const char *why = NULL;
    assert_int_equal(parse_n(buf, strlen(buf), &req, &why), RTM_OK); /* 32 members */
    rtm_request_free(&req);
    snprintf(buf + n, sizeof(buf) - n, ",\"f99\":1}");
    expect_refused_because(buf, "more than 32");
}

static void test_channel_control_chars(void **state)
{
    (void)state;
    expect_bad("{\"type\":\"invite\",\"id\":\"a\",\"channel\":\"room\\n1\"}", RTM_MSG_INVITE, "a");
    expect_bad("{\"type\":\"invite\",\"id\":\"a\",\"channel\":\"room\\u007f\"}", RTM_MSG_INVITE,
               "a");
    struct rtm_request req;
    expect_ok("{\"type\":\"invite\",\"id\":\"a\",\"channel\":\"r\u00f6\u00f6m 1\"}", &req);
    rtm_request_free(&req);
}

static void test_bad_fields(void **state)
{
    (void)state;
    static char buf[16384];
    char field[RTM_CONTENT_MAX + 2];

    memset(field, 'c', RTM_CONTENT_MAX + 1);
    field[RTM_CONTENT_MAX + 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"invite\",\"id\":\"x\",\"content\":\"%s\"}", field);
    expect_bad(buf, RTM_MSG_INVITE, "x");
    snprintf(buf, sizeof(buf), "{\"type\":\"accept\",\"id\":\"x\",\"response\":\"%s\"}", field);
    expect_bad(buf, RTM_MSG_ACCEPT, "x");
    snprintf(buf, sizeof(buf), "{\"type\":\"refuse\",\"id\":\"x\",\"response\":\"%s\"}", field);
    expect_bad(buf, RTM_MSG_REFUSE, "x");

    memset(field, 'h', RTM_CHANNEL_MAX + 1);
    field[RTM_CHANNEL_MAX + 1] = '\0';
    snprintf(buf, sizeof(buf), "{\"type\":\"invite\",\"id\":\"x\",\"channel\":\"%s\"}", field);
    expect_bad(buf, RTM_MSG_INVITE, "x");

    /* Mistyped optional fields. */
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"content\":5}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"content\":{\"a\":1}}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"channel\":true}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"accept\",\"id\":\"x\",\"response\":{}}", RTM_MSG_ACCEPT, "x");
    expect_bad("{\"type\":\"refuse\",\"id\":\"x\",\"response\":[\"no\"]}", RTM_MSG_REFUSE, "x");

    /* Timeout out of range or not an integer. */
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":0}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":-1}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":121}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":1.5}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":\"30\"}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":true}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":null}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":1e300}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":4294967326}", RTM_MSG_INVITE, "x");
    expect_bad("{\"type\":\"invite\",\"id\":\"x\",\"timeout\":-4294967266}", RTM_MSG_INVITE, "x");
}

/* --- output ----------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_parse_invite),
        cmocka_unit_test(test_parse_other_types),
        cmocka_unit_test(test_parse_ignores_other_fields),
        cmocka_unit_test(test_parse_limits_exact),
        cmocka_unit_test(test_parse_not_nul_terminated),
        cmocka_unit_test(test_payload_size_limit),
        cmocka_unit_test(test_max_invite_timeout_from_config),
        cmocka_unit_test(test_bad_not_json),
        cmocka_unit_test(test_bad_not_object),
        cmocka_unit_test(test_bad_utf8),
        cmocka_unit_test(test_bad_type),
        cmocka_unit_test(test_bad_id),
        cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_escaped_nul),
        cmocka_unit_test(test_nesting_depth),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_channel_control_chars),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
