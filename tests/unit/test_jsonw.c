/*
 * The one-pass JSON writer: what it writes must read back as the same
 * values, escaped byte for byte as cJSON escapes them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtm_jsonw.h"

static char *one_string(const char *value, size_t *len)
{
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 16);
    rtm_jsonw_string(&w, "s", value);
    return rtm_jsonw_end(&w, len);
}

/* cJSON's own printing of {"s": value}. */
static char *cjson_string(const char *value)
{
    cJSON *o = cJSON_CreateObject();
    assert_non_null(cJSON_AddStringToObject(o, "s", value));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void test_members(void **state)
{
    (void)state;
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 4);
    rtm_jsonw_string(&w, "a", "x");
    rtm_jsonw_int(&w, "b", INT64_MIN);
    rtm_jsonw_int(&w, "c", 1764100000123);
    rtm_jsonw_bool(&w, "d", true);
    rtm_jsonw_bool(&w, "e", false);
    size_t len = 0;
    char *text = rtm_jsonw_end(&w, &len);
    assert_string_equal(text, "{\"a\":\"x\",\"b\":-9223372036854775808,\"c\":1764100000123,"
                              "\"d\":true,\"e\":false}");
    assert_int_equal(len, strlen(text));
    free(text);
}

static void test_empty_object(void **state)
{
    (void)state;
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 0);
    size_t len = 0;
    char *text = rtm_jsonw_end(&w, &len);
    assert_string_equal(text, "{}");
    assert_int_equal(len, 2);
    free(text);
}

static void test_escapes(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = one_string("q\"b\\\b\f\n\r\t\x01\x1f\x7f é", &len);
    assert_string_equal(text, "{\"s\":\"q\\\"b\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f é\"}");
    free(text);
}

/* Random strings of every byte but NUL, short and long enough to grow the
 * buffer several times: the same text as cJSON's, and the same value back. */
static void test_same_as_cjson(void **state)
{
    (void)state;
    srand(7);
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(round % 50 == 0 ? 5000 + rand() % 5000 : rand() % 64);
        char *value = malloc(n + 1);
        assert_non_null(value);
        for (size_t i = 0; i < n; i++)
            value[i] = (char)(1 + rand() % 255);
        value[n] = '\0';
        size_t len = 0;
        char *ours = one_string(value, &len);
        char *theirs = cjson_string(value);
        assert_string_equal(ours, theirs);
        assert_int_equal(len, strlen(theirs));
        cJSON *back = cJSON_Parse(ours);
        assert_non_null(back);
        assert_string_equal(cJSON_GetObjectItem(back, "s")->valuestring, value);
        cJSON_Delete(back);
        cJSON_free(theirs);
        free(ours);
        free(value);
    }
}

/* Integers at the edges of each digit count, against printf's. */
static void test_integers(void **state)
{
    (void)state;
    int64_t values[] = {0, -1, 9, 10, -10, 99, 100, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        struct rtm_jsonw w;
        rtm_jsonw_begin(&w, 2);
        rtm_jsonw_int(&w, "n", values[i]);
        size_t len = 0;
        char *text = rtm_jsonw_end(&w, &len);
        char want[64];
        snprintf(want, sizeof(want), "{\"n\":%" PRId64 "}", values[i]);
        assert_string_equal(text, want);
        free(text);
    }
    for (int64_t v = 1; v < INT64_MAX / 10; v = v * 10 + 7) {
        struct rtm_jsonw w;
        rtm_jsonw_begin(&w, 2);
        rtm_jsonw_int(&w, "n", -v);
        size_t len = 0;
        char *text = rtm_jsonw_end(&w, &len);
        char want[64];
        snprintf(want, sizeof(want), "{\"n\":%" PRId64 "}", -v);
        assert_string_equal(text, want);
        free(text);
    }
}

/* Objects inside objects, string arrays: commas only between
 * members of the same object, and the whole reads back as cJSON builds it. */
static void test_nested(void **state)
{
    (void)state;
    static const char *const tokens[] = {"t1", "q\"t"};
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 1);
    rtm_jsonw_string(&w, "a", "x");
    rtm_jsonw_object(&w, "o");
    rtm_jsonw_object(&w, "empty");
    rtm_jsonw_close(&w);
    rtm_jsonw_strings(&w, "none", tokens, 0);
    rtm_jsonw_strings(&w, "two", tokens, 2);
    rtm_jsonw_close(&w);
    rtm_jsonw_int(&w, "z", 3);
    size_t len = 0;
    char *text = rtm_jsonw_end(&w, &len);
    assert_string_equal(text, "{\"a\":\"x\",\"o\":{\"empty\":{},\"none\":[],"
                              "\"two\":[\"t1\",\"q\\\"t\"]},\"z\":3}");
    assert_int_equal(len, strlen(text));
    cJSON *back = cJSON_Parse(text);
    assert_non_null(back);
    cJSON *two = cJSON_GetObjectItem(cJSON_GetObjectItem(back, "o"), "two");
    assert_int_equal(cJSON_GetArraySize(two), 2);
    assert_string_equal(cJSON_GetArrayItem(two, 1)->valuestring, "q\"t");
    cJSON_Delete(back);
    free(text);
}

/* Members serialized elsewhere, spliced first and last into objects. */
static void test_members_spliced(void **state)
{
    (void)state;
    static const char members[] = "\"k\":[1,2],\"s\":\"v\"";
    struct rtm_jsonw w;
    rtm_jsonw_begin(&w, 1);
    rtm_jsonw_object(&w, "first");
    rtm_jsonw_members(&w, members, strlen(members));
    rtm_jsonw_int(&w, "n", 1);
    rtm_jsonw_close(&w);
    rtm_jsonw_bool(&w, "b", true);
    rtm_jsonw_members(&w, members, strlen(members));
    size_t len = 0;
    char *text = rtm_jsonw_end(&w, &len);
    assert_string_equal(text, "{\"first\":{\"k\":[1,2],\"s\":\"v\",\"n\":1},\"b\":true,"
                              "\"k\":[1,2],\"s\":\"v\"}");
    assert_int_equal(len, strlen(text));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),         cmocka_unit_test(test_empty_object),
        cmocka_unit_test(test_escapes),         cmocka_unit_test(test_same_as_cjson),
        cmocka_unit_test(test_integers),        cmocka_unit_test(test_nested),
        cmocka_unit_test(test_members_spliced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
