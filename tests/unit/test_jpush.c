/*
 * Unit tests for plugin/push/jpush.c: the JPush request body (SPEC 6.3)
 * checked field by field and against a recorded golden body, template
 * rendering, time_to_live rounding and the extra-options merge. A failing
 * cJSON allocator walks every allocation of build() so that ASan/LSan see
 * each error path. The responses are in test_jpush_response.c.
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

#include "rtm_push.h"

#define NOW      INT64_C(1700000000000)
#define EXPIRES  (NOW + 30000)
#define ENDPOINT "https://api.jpush.cn"
#define APP_KEY  "7d431e42dfa6a6d693ac2d04"
#define SECRET   "5e987ac6d2e04d95a9d8f0d1"

static const struct rtm_push_settings base_settings = {
    .endpoint = ENDPOINT,
    .app_key = APP_KEY,
    .master_secret = SECRET,
    .title = "Incoming call",
    .alert = "{caller} is calling",
    .apns_production = false,
    .extra_options = NULL,
};

static const struct rtm_push invite = {
    .kind = RTM_PUSH_CALL_INVITE,
    .call_id = "c-42",
    .caller = "alice",
    .callee = "bob",
    .channel = "room-7",
    .expires_at = EXPIRES,
    .why = "callee offline",
    .now_ms = NOW,
};

static const char *const one_token[] = {"1a0018970a2b3c4d5e6"};

/* ------------------------------------------------------------------------ */
/* Helpers */

/* Builds and parses the body; the request is freed, the tree returned. */
static cJSON *build_json(const struct rtm_push_settings *s, const struct rtm_push *push,
                         const char *const *tokens, size_t count, int64_t now)
{
    struct rtm_push_request req;
    assert_int_equal(rtm_push_jpush.build(s, push, tokens, count, now, &req), 0);
    assert_non_null(req.body);
    assert_int_equal(req.body_len, strlen(req.body));
    cJSON *root = cJSON_ParseWithLength(req.body, req.body_len);
    if (!root)
        print_error("unparsable body: %s\n", req.body);
    assert_non_null(root);
    rtm_push_request_free(&req);
    return root;
}

/* Builds with the operator's options `json` read as at start-up. */
static cJSON *build_with_options(const char *json)
{
    struct rtm_push_options opts;
    assert_int_equal(rtm_push_options_prepare(json, &opts), 0);
    struct rtm_push_settings s = base_settings;
    s.extra_options = &opts;
    cJSON *root = build_json(&s, &invite, one_token, 1, NOW);
    rtm_push_options_free(&opts);
    return root;
}

static cJSON *member(const cJSON *obj, const char *name)
{
    assert_true(cJSON_IsObject(obj));
    cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!m)
        print_error("missing \"%s\"\n", name);
    assert_non_null(m);
    return m;
}

static const char *string_at(const cJSON *obj, const char *name)
{
    cJSON *m = member(obj, name);
    assert_true(cJSON_IsString(m));
    return m->valuestring;
}

static double number_at(const cJSON *obj, const char *name)
{
    cJSON *m = member(obj, name);
    assert_true(cJSON_IsNumber(m));
    return m->valuedouble;
}

static cJSON *path(const cJSON *root, const char *a, const char *b)
{
    return member(member(root, a), b);
}

static int64_t ttl_for(int64_t expires_at, int64_t now)
{
    struct rtm_push p = invite;
    p.expires_at = expires_at;
    cJSON *root = build_json(&base_settings, &p, one_token, 1, now);
    int64_t ttl = (int64_t)number_at(member(root, "options"), "time_to_live");
    cJSON_Delete(root);
    return ttl;
}

/* A call_cancel carries its reason as well; a call_invite has none. */
static void expect_extras(const cJSON *x, const char *rtm, const struct rtm_push *p)
{
    bool cancel = p->kind == RTM_PUSH_CALL_CANCEL;
    assert_int_equal(cJSON_GetArraySize(x), cancel ? 6 : 5);
    if (cancel)
        assert_string_equal(string_at(x, "reason"), p->reason);
    assert_string_equal(string_at(x, "rtm"), rtm);
    assert_string_equal(string_at(x, "id"), p->call_id);
    assert_string_equal(string_at(x, "caller"), p->caller);
    assert_string_equal(string_at(x, "channel"), p->channel);
    assert_true(number_at(x, "expires_at") == (double)p->expires_at);
}

/* Every field of SPEC 6.3 for one push to tokens[0..count). */
static void expect_body(const cJSON *root, const struct rtm_push *p, const char *rtm,
                        const char *alert, const char *title, int64_t ttl, bool production)
{
    assert_int_equal(cJSON_GetArraySize(root), 4);
    assert_string_equal(string_at(root, "platform"), "all");
    assert_int_equal(cJSON_GetArraySize(member(root, "audience")), 1);
    assert_true(cJSON_IsArray(path(root, "audience", "registration_id")));

    cJSON *notification = member(root, "notification");
    assert_int_equal(cJSON_GetArraySize(notification), 2);
    cJSON *android = member(notification, "android");
    assert_int_equal(cJSON_GetArraySize(android), 5);
    assert_string_equal(string_at(android, "alert"), alert);
    assert_string_equal(string_at(android, "title"), title);
    assert_true(number_at(android, "priority") == 2);
    assert_string_equal(string_at(android, "category"), "call");
    expect_extras(member(android, "extras"), rtm, p);

    cJSON *ios = member(notification, "ios");
    assert_int_equal(cJSON_GetArraySize(ios), 3);
    assert_string_equal(string_at(ios, "alert"), alert);
    assert_string_equal(string_at(ios, "sound"), "default");
    expect_extras(member(ios, "extras"), rtm, p);

    cJSON *options = member(root, "options");
    assert_int_equal(cJSON_GetArraySize(options), 3);
    assert_true(number_at(options, "time_to_live") == (double)ttl);
    assert_true(cJSON_IsBool(member(options, "apns_production")));
    assert_int_equal(cJSON_IsTrue(member(options, "apns_production")), production);
    assert_string_equal(string_at(options, "apns_collapse_id"), p->call_id);
}

static void expect_tokens(const cJSON *root, const char *const *tokens, size_t count)
{
    cJSON *ids = path(root, "audience", "registration_id");
    assert_int_equal(cJSON_GetArraySize(ids), (int)count);
    size_t i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        assert_true(cJSON_IsString(id));
        assert_string_equal(id->valuestring, tokens[i]);
        i++;
    }
}

/* ------------------------------------------------------------------------ */
/* The request */

static void test_invite_body(void **state)
{
    (void)state;
    cJSON *root = build_json(&base_settings, &invite, one_token, 1, NOW);
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, false);
    expect_tokens(root, one_token, 1);
    cJSON_Delete(root);
}

/* The body equals the golden text as JSON (member order and spacing aside);
 * on a mismatch both are printed. */
static void expect_golden(const char *body, const char *golden)
{
    cJSON *want = cJSON_Parse(golden);
    cJSON *got = cJSON_Parse(body);
    assert_non_null(want);
    assert_non_null(got);
    if (!cJSON_Compare(want, got, true))
        print_error("got  %s\nwant %s\n", body, golden);
    assert_true(cJSON_Compare(want, got, true));
    cJSON_Delete(want);
    cJSON_Delete(got);
}

/* The same push against a body recorded by hand from SPEC 6.3. */
static void test_invite_golden(void **state)
{
    (void)state;
    static const char golden[] =
        "{\"platform\":\"all\","
        "\"audience\":{\"registration_id\":[\"1a0018970a2b3c4d5e6\"]},"
        "\"notification\":{"
        "\"android\":{\"alert\":\"alice is calling\",\"title\":\"Incoming call\","
        "\"priority\":2,\"category\":\"call\",\"extras\":{\"rtm\":\"call_invite\","
        "\"id\":\"c-42\",\"caller\":\"alice\",\"channel\":\"room-7\","
        "\"expires_at\":1700000030000}},"
        "\"ios\":{\"alert\":\"alice is calling\",\"sound\":\"default\","
        "\"extras\":{\"rtm\":\"call_invite\",\"id\":\"c-42\",\"caller\":\"alice\","
        "\"channel\":\"room-7\",\"expires_at\":1700000030000}}},"
        "\"options\":{\"time_to_live\":30,\"apns_production\":false,"
        "\"apns_collapse_id\":\"c-42\"}}";
    struct rtm_push_request req;
    assert_int_equal(rtm_push_jpush.build(&base_settings, &invite, one_token, 1, NOW, &req), 0);
    /* Integers stay integers in the text (no 1.7e+12). */
    assert_non_null(strstr(req.body, "\"expires_at\":1700000030000"));
    assert_non_null(strstr(req.body, "\"time_to_live\":30"));
    expect_golden(req.body, golden);
    rtm_push_request_free(&req);
}

static void test_cancel_body(void **state)
{
    (void)state;
    struct rtm_push cancel = invite;
    cancel.kind = RTM_PUSH_CALL_CANCEL;
    cancel.why = "canceled";
    cancel.reason = "canceled";
    /* Sent after the ringing deadline: still one second to live. */
    cJSON *root = build_json(&base_settings, &cancel, one_token, 1, EXPIRES + 5000);
    expect_body(root, &cancel, "call_cancel", "alice is calling", "Incoming call", 1, false);
    cJSON_Delete(root);

    /* Canceled early: the remaining ringing time. */
    root = build_json(&base_settings, &cancel, one_token, 1, NOW + 10500);
    expect_body(root, &cancel, "call_cancel", "alice is calling", "Incoming call", 20, false);
    cJSON_Delete(root);

    /* Every reason the core gives is passed through as it is. */
    static const char *const reasons[] = {"answered_elsewhere", "canceled", "no_response",
                                          "peer_offline",       "expired",  "caller_offline"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        cancel.reason = reasons[i];
        root = build_json(&base_settings, &cancel, one_token, 1, NOW);
        expect_body(root, &cancel, "call_cancel", "alice is calling", "Incoming call", 30, false);
        cJSON_Delete(root);
    }
}

/* A call_cancel after an answer on another device, against a body written
 * by hand from SPEC 6.2 and 6.3: extras.reason, on both platforms. */
static void test_cancel_golden(void **state)
{
    (void)state;
    static const char golden[] =
        "{\"platform\":\"all\","
        "\"audience\":{\"registration_id\":[\"1a0018970a2b3c4d5e6\"]},"
        "\"notification\":{"
        "\"android\":{\"alert\":\"alice is calling\",\"title\":\"Incoming call\","
        "\"priority\":2,\"category\":\"call\",\"extras\":{\"rtm\":\"call_cancel\","
        "\"id\":\"c-42\",\"caller\":\"alice\",\"channel\":\"room-7\","
        "\"expires_at\":1700000030000,\"reason\":\"answered_elsewhere\"}},"
        "\"ios\":{\"alert\":\"alice is calling\",\"sound\":\"default\","
        "\"extras\":{\"rtm\":\"call_cancel\",\"id\":\"c-42\",\"caller\":\"alice\","
        "\"channel\":\"room-7\",\"expires_at\":1700000030000,"
        "\"reason\":\"answered_elsewhere\"}}},"
        "\"options\":{\"time_to_live\":26,\"apns_production\":false,"
        "\"apns_collapse_id\":\"c-42\"}}";
    struct rtm_push cancel = invite;
    cancel.kind = RTM_PUSH_CALL_CANCEL;
    cancel.why = "answered_elsewhere";
    cancel.reason = "answered_elsewhere";
    struct rtm_push_request req;
    assert_int_equal(rtm_push_jpush.build(&base_settings, &cancel, one_token, 1, NOW + 4000, &req),
                     0);
    expect_golden(req.body, golden);
    rtm_push_request_free(&req);
}

/* An invite never carries a reason, whatever the push holds. */
static void test_invite_without_reason(void **state)
{
    (void)state;
    struct rtm_push p = invite;
    p.reason = "canceled";
    cJSON *root = build_json(&base_settings, &p, one_token, 1, NOW);
    expect_body(root, &p, "call_invite", "alice is calling", "Incoming call", 30, false);
    cJSON_Delete(root);
}

static void test_empty_channel(void **state)
{
    (void)state;
    struct rtm_push p = invite;
    p.channel = "";
    struct rtm_push_settings s = base_settings;
    s.title = "[{channel}]";
    cJSON *root = build_json(&s, &p, one_token, 1, NOW);
    expect_body(root, &p, "call_invite", "alice is calling", "[]", 30, false);
    cJSON_Delete(root);
}

static void test_1000_tokens(void **state)
{
    (void)state;
    static char names[RTM_PUSH_BATCH_MAX][24];
    static const char *tokens[RTM_PUSH_BATCH_MAX];
    for (size_t i = 0; i < RTM_PUSH_BATCH_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "18071adc%011zu", i);
        tokens[i] = names[i];
    }
    cJSON *root = build_json(&base_settings, &invite, tokens, RTM_PUSH_BATCH_MAX, NOW);
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, false);
    expect_tokens(root, tokens, RTM_PUSH_BATCH_MAX);
    cJSON_Delete(root);
}

static void test_templates_in_body(void **state)
{
    (void)state;
    struct rtm_push_settings s = base_settings;
    s.title = "{caller} on {channel}, {caller}!";
    s.alert = "Call from {caller} ({caller}) in {channel}{channel}";
    cJSON *root = build_json(&s, &invite, one_token, 1, NOW);
    expect_body(root, &invite, "call_invite", "Call from alice (alice) in room-7room-7",
                "alice on room-7, alice!", 30, false);
    cJSON_Delete(root);

    s.title = "Call";
    s.alert = "Someone is calling";
    root = build_json(&s, &invite, one_token, 1, NOW);
    expect_body(root, &invite, "call_invite", "Someone is calling", "Call", 30, false);
    cJSON_Delete(root);
}

/* Rendered text with quotes and backslashes stays valid JSON. */
static void test_text_escaped(void **state)
{
    (void)state;
    struct rtm_push p = invite;
    p.caller = "a\"b\\c";
    struct rtm_push_settings s = base_settings;
    s.title = "\"{caller}\"\n\xe2\x98\x8e";
    cJSON *root = build_json(&s, &p, one_token, 1, NOW);
    expect_body(root, &p, "call_invite", "a\"b\\c is calling", "\"a\"b\\c\"\n\xe2\x98\x8e", 30,
                false);
    cJSON_Delete(root);
}

static void test_render(void **state)
{
    (void)state;
    static const struct {
        const char *template, *want;
    } cases[] = {
        {"plain text", "plain text"},
        {"", ""},
        {"{caller}", "alice"},
        {"{channel}", "room-7"},
        {"{caller}{channel}{caller}", "aliceroom-7alice"},
        {"{caller} calls {caller} in {channel}", "alice calls alice in room-7"},
        {"{callee} {Caller} {caller {channel", "{callee} {Caller} {caller {channel"},
        {"{{caller}}", "{alice}"},
        {"{", "{"},
        {"x{channel}", "xroom-7"},
        {"\xe4\xbd\xa0\xe5\xa5\xbd {caller}", "\xe4\xbd\xa0\xe5\xa5\xbd alice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = rtm_push_render(cases[i].template, "alice", "room-7");
        assert_non_null(got);
        assert_string_equal(got, cases[i].want);
        free(got);
    }
    /* A value that looks like a placeholder is not expanded again. */
    char *got = rtm_push_render("{caller}/{channel}", "{channel}", "");
    assert_string_equal(got, "{channel}/");
    free(got);
    got = rtm_push_render(NULL, "alice", "room-7");
    assert_string_equal(got, "");
    free(got);
    got = rtm_push_render("{caller}:{channel}", NULL, NULL);
    assert_string_equal(got, ":");
    free(got);
}

static void test_ttl_rounding(void **state)
{
    (void)state;
    assert_int_equal(ttl_for(NOW + 29001, NOW), 30);
    assert_int_equal(ttl_for(NOW + 30000, NOW), 30);
    assert_int_equal(ttl_for(NOW + 30001, NOW), 31);
    assert_int_equal(ttl_for(NOW + 1000, NOW), 1);
    assert_int_equal(ttl_for(NOW + 1001, NOW), 2);
    assert_int_equal(ttl_for(NOW + 200, NOW), 1);
    assert_int_equal(ttl_for(NOW + 1, NOW), 1);
    assert_int_equal(ttl_for(NOW, NOW), 1);
    assert_int_equal(ttl_for(NOW - 1, NOW), 1);
    assert_int_equal(ttl_for(NOW - 3600000, NOW), 1);
    /* JPush's ceiling (10 days), and no overflow at the extremes. */
    assert_int_equal(ttl_for(NOW + INT64_C(864000000), NOW), 864000);
    assert_int_equal(ttl_for(NOW + INT64_C(864000001), NOW), 864000);
    assert_int_equal(ttl_for(INT64_MAX, INT64_MIN), 864000);
    assert_int_equal(ttl_for(INT64_MIN, INT64_MAX), 1);
}

static void test_apns_production(void **state)
{
    (void)state;
    struct rtm_push_settings s = base_settings;
    s.apns_production = true;
    cJSON *root = build_json(&s, &invite, one_token, 1, NOW);
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, true);
    cJSON_Delete(root);
    s.apns_production = false;
    root = build_json(&s, &invite, one_token, 1, NOW);
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, false);
    cJSON_Delete(root);
}

static void test_extra_options_merged(void **state)
{
    (void)state;
    cJSON *root =
        build_with_options("{\"third_party_channel\":{\"vivo\":{\"distribution\":\"ospush\","
                           "\"classification\":1},\"xiaomi\":{\"channel_id\":\"call\"}},"
                           "\"classification\":1,\"sendno\":7}");
    cJSON *options = member(root, "options");
    assert_int_equal(cJSON_GetArraySize(options), 6);
    assert_true(number_at(options, "time_to_live") == 30);
    assert_string_equal(string_at(options, "apns_collapse_id"), "c-42");
    assert_true(cJSON_IsFalse(member(options, "apns_production")));
    assert_true(number_at(options, "classification") == 1);
    assert_true(number_at(options, "sendno") == 7);
    cJSON *want = cJSON_Parse("{\"vivo\":{\"distribution\":\"ospush\",\"classification\":1},"
                              "\"xiaomi\":{\"channel_id\":\"call\"}}");
    assert_true(cJSON_Compare(want, member(options, "third_party_channel"), true));
    cJSON_Delete(want);
    cJSON_Delete(root);
}

/* time_to_live and apns_collapse_id are ours; apns_production is the
 * operator's to override. */
static void test_extra_options_precedence(void **state)
{
    (void)state;
    cJSON *root = build_with_options("{\"time_to_live\":86400,\"apns_collapse_id\":\"fixed\","
                                     "\"apns_production\":true,\"classification\":0}");
    cJSON *options = member(root, "options");
    assert_int_equal(cJSON_GetArraySize(options), 4);
    assert_true(number_at(options, "time_to_live") == 30);
    assert_string_equal(string_at(options, "apns_collapse_id"), "c-42");
    assert_true(cJSON_IsTrue(member(options, "apns_production")));
    assert_true(number_at(options, "classification") == 0);
    cJSON_Delete(root);

    /* Wrong types do not survive either, nor a name given twice. */
    root = build_with_options("{\"time_to_live\":\"forever\",\"apns_collapse_id\":null,"
                              "\"time_to_live\":5}");
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, false);
    cJSON_Delete(root);
    /* Nothing left of the operator's: still valid JSON. */
    root = build_with_options("{\"time_to_live\":1}");
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, false);
    cJSON_Delete(root);
}

/* Config load refuses options that are not a JSON object; reading them at
 * start-up refuses them again rather than push without what the operator
 * asked for (apns_production, vendor channels). An empty object is fine. */
static void test_extra_options_garbage(void **state)
{
    (void)state;
    static const char *const garbage[] = {
        "", "not json", "{\"a\":", "[1,2]", "42", "\"text\"", "null", "true", NULL,
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        struct rtm_push_options opts;
        memset(&opts, 0x5A, sizeof(opts));
        assert_int_equal(rtm_push_options_prepare(garbage[i], &opts), -1);
        assert_null(opts.members);
        rtm_push_options_free(&opts);
    }
    cJSON *root = build_with_options("{}");
    expect_body(root, &invite, "call_invite", "alice is calling", "Incoming call", 30, false);
    cJSON_Delete(root);
}

static void test_url_and_credentials(void **state)
{
    (void)state;
    struct rtm_push_request req;
    assert_int_equal(rtm_push_jpush.build(&base_settings, &invite, one_token, 1, NOW, &req), 0);
    assert_string_equal(req.url, "https://api.jpush.cn/v3/push");
    assert_string_equal(req.username, APP_KEY);
    assert_string_equal(req.password, SECRET);
    /* The credentials travel only as Basic auth, never in the body. */
    assert_null(strstr(req.body, APP_KEY));
    assert_null(strstr(req.body, SECRET));
    rtm_push_request_free(&req);
    assert_null(req.url);
    assert_null(req.body);
    assert_null(req.username);
    assert_null(req.password);
    assert_int_equal(req.body_len, 0);
    rtm_push_request_free(&req); /* twice is harmless */
    rtm_push_request_free(NULL);

    struct rtm_push_settings s = base_settings;
    s.endpoint = "http://127.0.0.1:8443";
    assert_int_equal(rtm_push_jpush.build(&s, &invite, one_token, 1, NOW, &req), 0);
    assert_string_equal(req.url, "http://127.0.0.1:8443/v3/push");
    rtm_push_request_free(&req);
    assert_string_equal(rtm_push_jpush.name, "jpush");
}

#define OPTIONS "{\"third_party_channel\":{\"vivo\":{\"classification\":1}},\"time_to_live\":9}"

/* Every allocation of build(): the linker sends the code's malloc() and
 * realloc() here (-Wl,--wrap, tests/unit/CMakeLists.txt) and cJSON's through
 * its hooks. The allocation numbered `fail_at` (from 0; -1: none) fails,
 * and with `fail_rest` every one after it too; `allocations` counts the
 * ones that were made. */
void *__real_malloc(size_t size);
void *__real_realloc(void *ptr, size_t size);

static long fail_at = -1;
static bool fail_rest;
static long allocations, attempts;

static bool allocation_allowed(void)
{
    long n = attempts++;
    if (fail_at >= 0 && (n == fail_at || (fail_rest && n > fail_at)))
        return false;
    allocations++;
    return true;
}

void *__wrap_malloc(size_t size);
void *__wrap_malloc(size_t size)
{
    return allocation_allowed() ? __real_malloc(size) : NULL;
}

void *__wrap_realloc(void *ptr, size_t size);
void *__wrap_realloc(void *ptr, size_t size)
{
    return allocation_allowed() ? __real_realloc(ptr, size) : NULL;
}

static int build_failing_at(const struct rtm_push_settings *s, long at, bool rest,
                            struct rtm_push_request *req)
{
    static const char *const tokens[] = {"t1", "t2", "t3"};
    fail_at = at;
    fail_rest = rest;
    attempts = allocations = 0;
    int rc = rtm_push_jpush.build(s, &invite, tokens, 3, NOW, req);
    fail_at = -1;
    return rc;
}

/* Each allocation of build() fails in turn, alone and with every one after
 * it: -1 and an empty request each time, never a request missing a part,
 * and no leak (ASan). Returns how many allocations a build makes. */
static long walk_build_failures(const struct rtm_push_settings *s, long min_allocations)
{
    struct rtm_push_request req;
    assert_int_equal(build_failing_at(s, -1, false, &req), 0);
    rtm_push_request_free(&req);
    long needed = allocations;
    assert_true(needed >= min_allocations);
    for (int rest = 0; rest <= 1; rest++) {
        for (long n = 0; n < needed; n++) {
            memset(&req, 0x5A, sizeof(req));
            assert_int_equal(build_failing_at(s, n, rest, &req), -1);
            assert_null(req.body);
            assert_null(req.url);
            assert_null(req.username);
            assert_null(req.password);
            rtm_push_request_free(&req);
        }
    }
    return needed;
}

static void test_build_out_of_memory(void **state)
{
    (void)state;
    cJSON_Hooks hooks = {.malloc_fn = __wrap_malloc, .free_fn = free};
    cJSON_InitHooks(&hooks);
    /* Without extra options: the two templates, the body, the URL and the
     * two credentials. */
    assert_int_equal(walk_build_failures(&base_settings, 6), 6);
    /* The operator's options, read at start-up, cost a build nothing more. */
    struct rtm_push_options opts;
    assert_int_equal(rtm_push_options_prepare(OPTIONS, &opts), 0);
    struct rtm_push_settings s = base_settings;
    s.extra_options = &opts;
    assert_int_equal(walk_build_failures(&s, 6), 6);
    rtm_push_options_free(&opts);
    /* Templates that expand past the body's first buffer make it grow. */
    static char long_title[1200];
    for (size_t i = 0; i + 8 < sizeof(long_title); i += 8)
        memcpy(long_title + i, "{caller}", 8);
    s = base_settings;
    s.title = long_title;
    assert_int_equal(walk_build_failures(&s, 7), 7);
    cJSON_InitHooks(NULL);
}

/* Reading the options fails each allocation in turn, alone and with every
 * one after it: -1, nothing held, no leak (ASan). */
static void test_options_out_of_memory(void **state)
{
    (void)state;
    cJSON_Hooks hooks = {.malloc_fn = __wrap_malloc, .free_fn = free};
    cJSON_InitHooks(&hooks);
    struct rtm_push_options opts;
    attempts = allocations = 0;
    assert_int_equal(rtm_push_options_prepare(OPTIONS, &opts), 0);
    rtm_push_options_free(&opts);
    long needed = allocations;
    assert_true(needed > 10); /* the tree's nodes and names, its text, the members */
    for (int rest = 0; rest <= 1; rest++) {
        for (long n = 0; n < needed; n++) {
            fail_at = n;
            fail_rest = rest;
            attempts = 0;
            memset(&opts, 0x5A, sizeof(opts));
            assert_int_equal(rtm_push_options_prepare(OPTIONS, &opts), -1);
            fail_at = -1;
            assert_null(opts.members);
            assert_int_equal(opts.len, 0);
        }
    }
    cJSON_InitHooks(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invite_body),
        cmocka_unit_test(test_invite_golden),
        cmocka_unit_test(test_cancel_body),
        cmocka_unit_test(test_cancel_golden),
        cmocka_unit_test(test_invite_without_reason),
        cmocka_unit_test(test_empty_channel),
        cmocka_unit_test(test_1000_tokens),
        cmocka_unit_test(test_templates_in_body),
        cmocka_unit_test(test_text_escaped),
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_ttl_rounding),
        cmocka_unit_test(test_apns_production),
        cmocka_unit_test(test_extra_options_merged),
        cmocka_unit_test(test_extra_options_precedence),
        cmocka_unit_test(test_extra_options_garbage),
        cmocka_unit_test(test_options_out_of_memory),
        cmocka_unit_test(test_url_and_credentials),
        cmocka_unit_test(test_build_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
