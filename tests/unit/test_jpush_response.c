/*
 * Unit tests for plugin/push/jpush.c, the response side: the verdict for
 * recorded JPush answers (SPEC 6.3): success, what is retried and after how
 * long (Retry-After, X-Rate-Limit-Reset), the registration ids JPush does not
 * know (1011), configuration errors and refusals, and the message logged.
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

#include "rtm_push.h"

struct response_case {
    long status;
    const char *body;
    const char *retry_after, *rate_limit_reset;
};

/* Classifies a response whose body sits in a buffer of exactly its length
 * (no NUL after it, as libcurl may hand it), so overreads trip ASan. */
static struct rtm_push_verdict classify(struct response_case c)
{
    size_t len = c.body ? strlen(c.body) : 0;
    char *buf = len ? malloc(len) : NULL;
    if (len) {
        assert_non_null(buf);
        memcpy(buf, c.body, len);
    }
    struct rtm_push_response r = {
        .status = c.status,
        .body = buf,
        .body_len = len,
        .retry_after = c.retry_after,
        .rate_limit_reset = c.rate_limit_reset,
    };
    struct rtm_push_verdict v;
    memset(&v, 0x5A, sizeof(v));
    rtm_push_jpush.classify(&r, &v);
    free(buf);
    assert_non_null(memchr(v.message, '\0', sizeof(v.message)));
    assert_true(v.message[0] != '\0');
    return v;
}

static void expect_verdict(struct response_case c, enum rtm_push_outcome outcome, int64_t retry_ms,
                           long code)
{
    struct rtm_push_verdict v = classify(c);
    if (v.outcome != outcome || v.retry_after_ms != retry_ms || v.provider_code != code)
        print_error("HTTP %ld %s: got %d/%lld/%ld (%s)\n", c.status, c.body ? c.body : "-",
                    v.outcome, (long long)v.retry_after_ms, v.provider_code, v.message);
    assert_int_equal(v.outcome, outcome);
    assert_int_equal(v.retry_after_ms, retry_ms);
    assert_int_equal(v.provider_code, code);
}

static void test_classify_ok(void **state)
{
    (void)state;
    expect_verdict(
        (struct response_case){.status = 200,
                               .body = "{\"sendno\":\"0\",\"msg_id\":\"54043195528452983\"}"},
        RTM_PUSH_OK, -1, 0);
    expect_verdict((struct response_case){.status = 200, .body = NULL}, RTM_PUSH_OK, -1, 0);
    /* JPush's quota headers come on every answer; a success ignores them. */
    expect_verdict(
        (struct response_case){
            .status = 200, .body = "{}", .retry_after = NULL, .rate_limit_reset = "60"},
        RTM_PUSH_OK, -1, 0);
}

static void test_classify_retry(void **state)
{
    (void)state;
    struct rtm_push_verdict v = classify((struct response_case){.status = 0, .body = NULL});
    assert_int_equal(v.outcome, RTM_PUSH_RETRY);
    assert_int_equal(v.retry_after_ms, -1);
    assert_int_equal(v.provider_code, 0);

    expect_verdict(
        (struct response_case){.status = 500, .body = "<html>Internal Server Error</html>"},
        RTM_PUSH_RETRY, -1, 0);
    expect_verdict((struct response_case){.status = 503, .body = NULL}, RTM_PUSH_RETRY, -1, 0);
    expect_verdict((struct response_case){.status = 503, .body = NULL, .retry_after = "2"},
                   RTM_PUSH_RETRY, 2000, 0);
    expect_verdict((struct response_case){.status = 502,
                                          .body = "{\"error\":{\"code\":1000,\"message\":\"x\"}}"},
                   RTM_PUSH_RETRY, -1, 1000);
    /* A 5xx has nothing to do with the quota: its reset time is ignored. */
    expect_verdict(
        (struct response_case){
            .status = 500, .body = NULL, .retry_after = NULL, .rate_limit_reset = "50"},
        RTM_PUSH_RETRY, -1, 0);
}

static void test_classify_rate_limited(void **state)
{
    (void)state;
    static const char limited[] =
        "{\"error\":{\"code\":2002,\"message\":\"Rate limit exceeded\"},\"msg_id\":\"1\"}";
    expect_verdict(
        (struct response_case){
            .status = 429, .body = limited, .retry_after = "7", .rate_limit_reset = "3"},
        RTM_PUSH_RETRY, 7000, 2002);
    expect_verdict(
        (struct response_case){
            .status = 429, .body = limited, .retry_after = NULL, .rate_limit_reset = "3"},
        RTM_PUSH_RETRY, 3000, 2002);
    expect_verdict((struct response_case){.status = 429, .body = limited}, RTM_PUSH_RETRY, -1,
                   2002);
    expect_verdict((struct response_case){.status = 429, .body = NULL}, RTM_PUSH_RETRY, -1, 0);
    /* 2002 under another status is still the quota. */
    expect_verdict(
        (struct response_case){
            .status = 403, .body = limited, .retry_after = NULL, .rate_limit_reset = "12"},
        RTM_PUSH_RETRY, 12000, 2002);
    /* An HTTP date, a fraction or junk counts as absent. */
    expect_verdict((struct response_case){.status = 429,
                                          .body = NULL,
                                          .retry_after = "Wed, 21 Oct 2015 07:28:00 GMT",
                                          .rate_limit_reset = "3"},
                   RTM_PUSH_RETRY, 3000, 0);
    expect_verdict(
        (struct response_case){
            .status = 429, .body = NULL, .retry_after = "1.5", .rate_limit_reset = "x"},
        RTM_PUSH_RETRY, -1, 0);
    expect_verdict(
        (struct response_case){
            .status = 429, .body = NULL, .retry_after = "-4", .rate_limit_reset = ""},
        RTM_PUSH_RETRY, -1, 0);
    expect_verdict((struct response_case){.status = 429, .body = NULL, .retry_after = " 0 "},
                   RTM_PUSH_RETRY, 0, 0);
    expect_verdict(
        (struct response_case){.status = 429, .body = NULL, .retry_after = "99999999999999999999"},
        RTM_PUSH_RETRY, -1, 0);
}

static void test_classify_invalid_tokens(void **state)
{
    (void)state;
    struct rtm_push_verdict v = classify((struct response_case){
        .status = 400,
        .body = "{\"error\":{\"code\":1011,\"message\":\"cannot find user by this audience\"},"
                "\"msg_id\":\"2814749770251111\"}"});
    assert_int_equal(v.outcome, RTM_PUSH_INVALID_TOKENS);
    assert_int_equal(v.provider_code, 1011);
    assert_int_equal(v.retry_after_ms, -1);
    assert_non_null(strstr(v.message, "1011"));
    assert_non_null(strstr(v.message, "cannot find user by this audience"));
}

static void test_classify_config_errors(void **state)
{
    (void)state;
    static const struct {
        long status, code;
    } cases[] = {
        {401, 1004}, {400, 1002}, {400, 1003}, {400, 1008}, {403, 2003}, {403, 2004}, {403, 2005},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char body[96];
        snprintf(body, sizeof(body), "{\"error\":{\"code\":%ld,\"message\":\"refused\"}}",
                 cases[i].code);
        expect_verdict((struct response_case){.status = cases[i].status, .body = body},
                       RTM_PUSH_CONFIG_ERROR, -1, cases[i].code);
    }
    /* A 401 whose body got lost is still about the credentials. */
    expect_verdict((struct response_case){.status = 401, .body = NULL}, RTM_PUSH_CONFIG_ERROR, -1,
                   0);
}

static void test_classify_rejected(void **state)
{
    (void)state;
    expect_verdict((struct response_case){.status = 403, .body = NULL}, RTM_PUSH_REJECTED, -1, 0);
    expect_verdict((struct response_case){.status = 400, .body = "garbage{{"}, RTM_PUSH_REJECTED,
                   -1, 0);
    expect_verdict((struct response_case){.status = 400, .body = "{\"error\":{\"code\":1011"},
                   RTM_PUSH_REJECTED, -1, 0);
    expect_verdict((struct response_case){.status = 400, .body = "{\"error\":\"1011\"}"},
                   RTM_PUSH_REJECTED, -1, 0);
    expect_verdict((struct response_case){.status = 400, .body = "{\"error\":{\"code\":\"1011\"}}"},
                   RTM_PUSH_REJECTED, -1, 0);
    expect_verdict((struct response_case){.status = 400, .body = "[1011]"}, RTM_PUSH_REJECTED, -1,
                   0);
    expect_verdict(
        (struct response_case){.status = 400,
                               .body = "{\"error\":{\"code\":1005,\"message\":\"too big\"}}"},
        RTM_PUSH_REJECTED, -1, 1005);
    expect_verdict((struct response_case){.status = 404, .body = "Not Found"}, RTM_PUSH_REJECTED,
                   -1, 0);
    expect_verdict((struct response_case){.status = 302, .body = NULL}, RTM_PUSH_REJECTED, -1, 0);
    /* A code with no HTTP error is ignored: 1011 needs a 4xx. A 2xx body is
     * not even read. */
    expect_verdict((struct response_case){.status = 200, .body = "{\"error\":{\"code\":1011}}"},
                   RTM_PUSH_OK, -1, 0);
}

/* The log text: one line, bounded, never a cut UTF-8 character. */
static void test_classify_message(void **state)
{
    (void)state;
    char body[1024];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":1003,\"message\":\"bad\\nline\\r");
    for (; n < 900; n += 3)
        memcpy(body + n, "\xe4\xbd\xa0", 3);
    strcpy(body + n, "\"}}");
    struct rtm_push_verdict v = classify((struct response_case){.status = 400, .body = body});
    assert_int_equal(v.outcome, RTM_PUSH_CONFIG_ERROR);
    assert_int_equal(v.provider_code, 1003);
    assert_true(strlen(v.message) < sizeof(v.message));
    assert_non_null(strstr(v.message, "1003"));
    assert_non_null(strstr(v.message, "bad line"));
    for (const char *p = v.message; *p; p++)
        assert_true((unsigned char)*p >= 0x20);
    /* Whole characters only: the last one is a complete 3-byte sequence. */
    size_t len = strlen(v.message);
    size_t i = len;
    while (i > 0 && ((unsigned char)v.message[i - 1] & 0xC0) == 0x80)
        i--;
    assert_true(i > 0 && (unsigned char)v.message[i - 1] == 0xe4);
    assert_int_equal(len - (i - 1), 3);

    v = classify((struct response_case){.status = 400, .body = "{\"error\":{\"code\":1003}}"});
    assert_non_null(strstr(v.message, "1003"));
    v = classify((struct response_case){.status = 403, .body = NULL});
    assert_non_null(strstr(v.message, "403"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_ok),
        cmocka_unit_test(test_classify_retry),
        cmocka_unit_test(test_classify_rate_limited),
        cmocka_unit_test(test_classify_invalid_tokens),
        cmocka_unit_test(test_classify_config_errors),
        cmocka_unit_test(test_classify_rejected),
        cmocka_unit_test(test_classify_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
