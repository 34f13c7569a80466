/*
 * Unit tests for plugin/push.c, the push dispatcher (rtm_pusher.h, SPEC 6.2
 * and 6.3), driven as the plugin drives it: a real device registry, the real
 * JPush provider, a recording `submit` that keeps every request (its body
 * parsed with cJSON) and frees it, a `call_pending` the test controls, a
 * recording sink (publishes and log lines) and a fake clock that moves only
 * when a test says so.
 *
 * Every test ends by checking that no log line and no publish ever carried
 * the master secret (teardown fails the test otherwise).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "rtm_config.h"
#include "rtm_core.h"
#include "rtm_push.h"
#include "rtm_pusher.h"
#include "rtm_registry.h"

#define T0       INT64_C(1764100000000)
#define ENDPOINT "https://api.jpush.example"
#define APP_KEY  "7d431e42dfa6a6d693ac2d04"
#define SECRET   "Sup3rS3cretMasterKey9f8e7d"
#define FAR      (T0 + 600000) /* an expires_at no retry schedule reaches */

/* --- the recording sender, sink and call state -------------------------------- */

struct sub {
    uint64_t tag;
    int64_t at; /* the fake clock when it was submitted */
    char *url, *username, *password;
    cJSON *body; /* NULL when the body was not JSON */
};

struct pub {
    char *client_id;
    char *topic;
    char *payload;
    size_t payload_len;
    cJSON *json;
    int qos;
    bool retain;
};

struct logline {
    enum rtm_log_level level;
    char *text;
};

static struct {
    struct rtm_config cfg;
    struct rtm_push_settings settings;
    struct rtm_sink sink;
    struct rtm_registry *registry;
    struct rtm_pusher *pusher;
    int64_t now;
    bool dry_run; /* boot without a submit function */
    bool full;    /* submit refuses (-1) */
    bool pending; /* what call_pending answers */
    size_t pending_asked;
    char pending_last[RTM_ID_MAX + 1];
    size_t submit_calls; /* including refused ones */
    struct sub *subs;
    size_t nsubs, subcap;
    struct pub *pubs;
    size_t npubs, pubcap;
    struct logline *logs;
    size_t nlogs, logcap;
} P;

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *dup_s(const char *s)
{
    return s ? dup_n(s, strlen(s)) : NULL;
}

static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 64;
    void *p = realloc(arr, *cap * size);
    if (!p)
        abort();
    return p;
}

/* No assertions in the callbacks: a failed assertion would longjmp through
 * the pusher. */
static int rec_submit(void *ud, uint64_t tag, struct rtm_push_request *req)
{
    if (ud != &P || !req)
        abort();
    P.submit_calls++;
    if (P.full)
        return -1; /* the request stays the caller's */
    P.subs = grow(P.subs, &P.subcap, P.nsubs, sizeof(*P.subs));
    struct sub *s = &P.subs[P.nsubs++];
    s->tag = tag;
    s->at = P.now;
    s->url = dup_s(req->url);
    s->username = dup_s(req->username);
    s->password = dup_s(req->password);
    s->body = req->body ? cJSON_ParseWithLength(req->body, req->body_len) : NULL;
    rtm_push_request_free(req); /* ownership moved to us */
    return 0;
}

static bool rec_pending(void *ud, const char *call_id)
{
    if (ud != &P || !call_id)
        abort();
    P.pending_asked++;
    snprintf(P.pending_last, sizeof(P.pending_last), "%s", call_id);
    return P.pending;
}

static void rec_publish(void *ud, const struct rtm_publish *msg)
{
    if (ud != &P)
        abort();
    P.pubs = grow(P.pubs, &P.pubcap, P.npubs, sizeof(*P.pubs));
    struct pub *p = &P.pubs[P.npubs++];
    p->client_id = dup_s(msg->client_id);
    p->topic = dup_s(msg->topic);
    p->payload = dup_n(msg->payload ? msg->payload : "", msg->payload_len);
    p->payload_len = msg->payload_len;
    p->json = msg->payload_len ? cJSON_ParseWithLength(msg->payload, msg->payload_len) : NULL;
    p->qos = msg->qos;
    p->retain = msg->retain;
}

static void rec_log(void *ud, enum rtm_log_level level, const char *line)
{
    if (ud != &P)
        abort();
    P.logs = grow(P.logs, &P.logcap, P.nlogs, sizeof(*P.logs));
    P.logs[P.nlogs].level = level;
    P.logs[P.nlogs].text = dup_s(line);
    P.nlogs++;
}

static void subs_clear(void)
{
    for (size_t i = 0; i < P.nsubs; i++) {
        free(P.subs[i].url);
        free(P.subs[i].username);
        free(P.subs[i].password);
        cJSON_Delete(P.subs[i].body);
    }
    P.nsubs = 0;
    P.submit_calls = 0;
}

/* True when no log line and no publish so far carries the master secret. */
static bool secret_kept(void)
{
    bool ok = true;
    for (size_t i = 0; i < P.nlogs; i++) {
        if (strstr(P.logs[i].text, SECRET)) {
            print_error("the master secret is in a log line: %s\n", P.logs[i].text);
            ok = false;
        }
    }
    for (size_t i = 0; i < P.npubs; i++) {
        if (strstr(P.pubs[i].topic, SECRET) || strstr(P.pubs[i].payload, SECRET)) {
            print_error("the master secret is in a publish on %s\n", P.pubs[i].topic);
            ok = false;
        }
    }
    return ok;
}

static void rec_clear(void)
{
    for (size_t i = 0; i < P.npubs; i++) {
        free(P.pubs[i].client_id);
        free(P.pubs[i].topic);
        free(P.pubs[i].payload);
        cJSON_Delete(P.pubs[i].json);
    }
    P.npubs = 0;
    for (size_t i = 0; i < P.nlogs; i++)
        free(P.logs[i].text);
    P.nlogs = 0;
    subs_clear();
}

/* Checks the secret before forgetting what was recorded. */
static void clear(void)
{
    assert_true(secret_kept());
    rec_clear();
}

static int setup(void **state)
{
    (void)state;
    memset(&P, 0, sizeof(P));
    rtm_config_defaults(&P.cfg);
    P.cfg.max_devices = 2000;
    P.settings = (struct rtm_push_settings){
        .endpoint = ENDPOINT,
        .app_key = APP_KEY,
        .master_secret = SECRET,
        .title = "Incoming call",
        .alert = "{caller} is calling",
        .apns_production = false,
        .extra_options = NULL,
    };
    P.sink.ud = &P;
    P.sink.publish = rec_publish;
    P.sink.log = rec_log;
    P.now = T0;
    P.pending = true;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rtm_pusher_free(P.pusher);
    P.pusher = NULL;
    rtm_registry_free(P.registry);
    P.registry = NULL;
    bool ok = secret_kept();
    rec_clear();
    free(P.subs);
    free(P.pubs);
    free(P.logs);
    rtm_config_free(&P.cfg);
    return ok ? 0 : -1;
}

static void boot_seed(uint64_t seed)
{
    if (!P.registry) {
        P.registry = rtm_registry_new(P.cfg.max_devices);
        assert_non_null(P.registry);
    }
    rtm_pusher_free(P.pusher);
    struct rtm_pusher_env env = {
        .cfg = &P.cfg,
        .sink = &P.sink,
        .registry = P.registry,
        .provider = &rtm_push_jpush,
        .settings = &P.settings,
        .submit = P.dry_run ? NULL : rec_submit,
        .call_pending = rec_pending,
        .ud = &P,
        .seed = seed,
    };
    P.pusher = rtm_pusher_new(&env);
    assert_non_null(P.pusher);
}

static void boot(void)
{
    boot_seed(42);
}

/* --- the registry ------------------------------------------------------------------ */

static void reg(const char *uid, const char *device, const char *token)
{
    struct rtm_registration r;
    memset(&r, 0, sizeof(r));
    strcpy(r.provider, "jpush");
    r.platform = RTM_PLATFORM_ANDROID;
    snprintf(r.token, sizeof(r.token), "%s", token);
    struct rtm_device_ref from;
    bool moved = false;
    assert_int_equal(rtm_registry_set(P.registry, uid, device, &r, &from, &moved), RTM_REG_OK);
}

static size_t devices_of(const char *uid)
{
    return rtm_registry_devices(P.registry, uid, NULL, 0);
}

/* Does `uid` hold a device called `device` with `token`? */
static bool has_device(const char *uid, const char *device, const char *token)
{
    struct rtm_device_entry e[16];
    size_t n = rtm_registry_devices(P.registry, uid, e, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(e[i].device, device) == 0 && strcmp(e[i].token, token) == 0)
            return true;
    }
    return false;
}

/* Registers `n` devices "d0000".. with tokens "tok-0000".. for `uid`. */
static void reg_many(const char *uid, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char device[16], token[16];
        snprintf(device, sizeof(device), "d%04zu", i);
        snprintf(token, sizeof(token), "tok-%04zu", i);
        reg(uid, device, token);
    }
}

/* --- pushes and results ---------------------------------------------------------- */

static void push_kind(enum rtm_push_kind kind, const char *id, const char *callee,
                      int64_t expires_at)
{
    struct rtm_push p = {
        .kind = kind,
        .call_id = id,
        .caller = "alice",
        .callee = callee,
        .channel = "room-7",
        .expires_at = expires_at,
        .why = kind == RTM_PUSH_CALL_INVITE ? "callee offline" : "canceled",
        .now_ms = P.now,
    };
    rtm_pusher_on_push(P.pusher, &p);
}

static void invite(const char *id, const char *callee, int64_t expires_at)
{
    push_kind(RTM_PUSH_CALL_INVITE, id, callee, expires_at);
}

static void cancel(const char *id, const char *callee, int64_t expires_at)
{
    push_kind(RTM_PUSH_CALL_CANCEL, id, callee, expires_at);
}

static void respond_full(uint64_t tag, long status, const char *body, const char *retry_after,
                         const char *reset)
{
    struct rtm_push_response r = {
        .status = status,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .retry_after = retry_after,
        .rate_limit_reset = reset,
    };
    rtm_pusher_result(P.pusher, tag, &r, P.now);
}

static void respond(uint64_t tag, long status, const char *body)
{
    respond_full(tag, status, body, NULL, NULL);
}

#define OK_BODY    "{\"sendno\":\"0\",\"msg_id\":\"54043195528445178\"}"
#define ERR_500    "{\"error\":{\"code\":1000,\"message\":\"Server Internal Error\"}}"
#define ERR_AUTH   "{\"error\":{\"code\":1004,\"message\":\"Authen failed\"}}"
#define ERR_APPKEY "{\"error\":{\"code\":1008,\"message\":\"app_key is not a valid appkey\"}}"
#define ERR_1011   "{\"error\":{\"code\":1011,\"message\":\"cannot find user by this audience\"}}"

static void tick(void)
{
    rtm_pusher_tick(P.pusher, P.now);
}

static void tick_at(int64_t t)
{
    P.now = t;
    tick();
}

static struct rtm_pusher_stats stats(void)
{
    struct rtm_pusher_stats s;
    memset(&s, 0xA5, sizeof(s));
    rtm_pusher_stats(P.pusher, &s);
    return s;
}

static void expect_stats(size_t jobs, size_t calls, uint64_t sent, uint64_t ok, uint64_t retried,
                         uint64_t failed, uint64_t dropped, uint64_t removed)
{
    struct rtm_pusher_stats s = stats();
    if (s.jobs != jobs || s.calls != calls || s.sent != sent || s.ok != ok ||
        s.retried != retried || s.failed != failed || s.dropped != dropped ||
        s.tokens_removed != removed)
        print_error("stats: jobs %zu calls %zu sent %" PRIu64 " ok %" PRIu64 " retried %" PRIu64
                    " failed %" PRIu64 " dropped %" PRIu64 " tokens_removed %" PRIu64 "\n",
                    s.jobs, s.calls, s.sent, s.ok, s.retried, s.failed, s.dropped,
                    s.tokens_removed);
    assert_int_equal(s.jobs, jobs);
    assert_int_equal(s.calls, calls);
    assert_int_equal(s.sent, sent);
    assert_int_equal(s.ok, ok);
    assert_int_equal(s.retried, retried);
    assert_int_equal(s.failed, failed);
    assert_int_equal(s.dropped, dropped);
    assert_int_equal(s.tokens_removed, removed);
}

/* The counters a full sender moves (what is remembered for a cancel is left
 * open: the header does not say). */
static void expect_sender(size_t jobs, uint64_t sent, uint64_t retried, uint64_t dropped)
{
    struct rtm_pusher_stats s = stats();
    assert_int_equal(s.jobs, jobs);
    assert_int_equal(s.sent, sent);
    assert_int_equal(s.retried, retried);
    assert_int_equal(s.dropped, dropped);
    assert_int_equal(s.ok, 0);
    assert_int_equal(s.tokens_removed, 0);
}

/* Ticks every millisecond from now+1 until something is submitted or `until`
 * has been ticked; returns the delay from `from`, or -1 when nothing came. */
static int64_t tick_until_submitted(int64_t from, int64_t until)
{
    size_t before = P.submit_calls;
    for (int64_t t = P.now + 1; t <= until; t++) {
        tick_at(t);
        if (P.submit_calls != before)
            return t - from;
    }
    return -1;
}

/* --- request bodies ------------------------------------------------------------------ */

static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!m)
        print_error("missing \"%s\"\n", name);
    assert_non_null(m);
    return m;
}

static const char *str_field(const cJSON *obj, const char *name)
{
    const cJSON *m = field(obj, name);
    assert_true(cJSON_IsString(m));
    return m->valuestring;
}

static int64_t num_field(const cJSON *obj, const char *name)
{
    const cJSON *m = field(obj, name);
    assert_true(cJSON_IsNumber(m));
    return (int64_t)m->valuedouble;
}

static const cJSON *audience(const struct sub *s)
{
    assert_non_null(s->body);
    const cJSON *ids = field(field(s->body, "audience"), "registration_id");
    assert_true(cJSON_IsArray(ids));
    return ids;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The request's audience is exactly tokens[0..n), in any order, each once. */
static void expect_audience(const struct sub *s, const char *const *tokens, size_t n)
{
    const cJSON *ids = audience(s);
    if ((size_t)cJSON_GetArraySize(ids) != n)
        print_error("audience of %d tokens, expected %zu\n", cJSON_GetArraySize(ids), n);
    assert_int_equal(cJSON_GetArraySize(ids), n);
    const char **got = calloc(n ? n : 1, sizeof(*got));
    const char **want = calloc(n ? n : 1, sizeof(*want));
    assert_non_null(got);
    assert_non_null(want);
    size_t i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids)
    {
        assert_true(cJSON_IsString(id));
        got[i++] = id->valuestring;
    }
    memcpy(want, tokens, n * sizeof(*want));
    qsort(got, n, sizeof(*got), cmp_str);
    qsort(want, n, sizeof(*want), cmp_str);
    for (i = 0; i < n; i++) {
        if (strcmp(got[i], want[i]) != 0)
            print_error("audience differs at %zu: %s, expected %s\n", i, got[i], want[i]);
        assert_string_equal(got[i], want[i]);
    }
    free(got);
    free(want);
}

/* The request was made for call `id` of kind `rtm` (JPush v3, Basic auth
 * with the app key and the master secret as given, never elsewhere). */
static void expect_request(const struct sub *s, const char *rtm, const char *id)
{
    assert_string_equal(s->url, ENDPOINT "/v3/push");
    assert_string_equal(s->username, APP_KEY);
    assert_string_equal(s->password, SECRET);
    assert_non_null(s->body);
    assert_string_equal(str_field(s->body, "platform"), "all");
    const cJSON *android = field(field(s->body, "notification"), "android");
    const cJSON *extras = field(android, "extras");
    assert_string_equal(str_field(extras, "rtm"), rtm);
    assert_string_equal(str_field(extras, "id"), id);
    assert_string_equal(str_field(extras, "caller"), "alice");
    char *text = cJSON_PrintUnformatted(s->body);
    assert_non_null(text);
    assert_null(strstr(text, SECRET));
    free(text);
}

static int64_t ttl_of(const struct sub *s)
{
    return num_field(field(s->body, "options"), "time_to_live");
}

/* --- publishes ------------------------------------------------------------------------ */

static size_t count_topic(const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < P.npubs; i++)
        n += strcmp(P.pubs[i].topic, topic) == 0;
    return n;
}

/* The one `pushed` event published since the last clear. */
static void expect_pushed(const char *id, const char *callee, size_t devices)
{
    if (P.npubs != 1)
        print_error("%zu publishes, expected one pushed event\n", P.npubs);
    assert_int_equal(P.npubs, 1);
    const struct pub *p = &P.pubs[0];
    assert_string_equal(p->topic, "rtm/u/alice/call");
    assert_null(p->client_id);
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_non_null(p->json);
    assert_int_equal(cJSON_GetArraySize(p->json), 7);
    assert_string_equal(str_field(p->json, "type"), "pushed");
    assert_string_equal(str_field(p->json, "id"), id);
    assert_string_equal(str_field(p->json, "caller"), "alice");
    assert_string_equal(str_field(p->json, "callee"), callee);
    assert_string_equal(str_field(p->json, "by"), "server");
    assert_int_equal(num_field(p->json, "ts"), P.now);
    assert_int_equal(num_field(p->json, "devices"), devices);
}

/* An empty retained publish on {prefix}/u/{uid}/devices/{device}. */
static void expect_cleared(const char *uid, const char *device)
{
    char topic[200];
    snprintf(topic, sizeof(topic), "rtm/u/%s/devices/%s", uid, device);
    if (count_topic(topic) != 1)
        print_error("%zu publishes on %s, expected one\n", count_topic(topic), topic);
    assert_int_equal(count_topic(topic), 1);
    for (size_t i = 0; i < P.npubs; i++) {
        if (strcmp(P.pubs[i].topic, topic) != 0)
            continue;
        assert_int_equal(P.pubs[i].payload_len, 0);
        assert_true(P.pubs[i].retain);
        assert_null(P.pubs[i].client_id);
    }
}

static size_t count_logs_at(enum rtm_log_level level)
{
    size_t n = 0;
    for (size_t i = 0; i < P.nlogs; i++)
        n += P.logs[i].level == level;
    return n;
}

/* ==================================================================================
 * Targets and batches
 * ================================================================================== */

static void test_no_devices(void **state)
{
    (void)state;
    boot();
    invite("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.npubs, 0);
    if (P.nlogs != 1)
        print_error("%zu log lines, expected one\n", P.nlogs);
    assert_int_equal(P.nlogs, 1);
    assert_non_null(strstr(P.logs[0].text, "bob"));
    expect_stats(0, 0, 0, 0, 0, 0, 0, 0);
    /* Nothing was woken, so nothing is told to stop ringing. */
    clear();
    cancel("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.npubs, 0);
}

static void test_one_device_ok(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "1a0018970a2b3c4d5e6");
    reg("carol", "phone", "carol-token");
    invite("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 1);
    const struct sub *s = &P.subs[0];
    expect_request(s, "call_invite", "c-1");
    static const char *const want[] = {"1a0018970a2b3c4d5e6"};
    expect_audience(s, want, 1);
    assert_int_equal(ttl_of(s), 30);
    assert_int_equal(P.npubs, 0); /* nothing is told before the provider answers */
    expect_stats(1, 1, 1, 0, 0, 0, 0, 0);

    uint64_t tag = s->tag;
    clear();
    P.now += 120;
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 1);
    assert_int_equal(P.submit_calls, 0);
    expect_stats(0, 1, 1, 1, 0, 0, 0, 0);

    /* The same answer again (a duplicate from the worker) changes nothing. */
    clear();
    respond(tag, 200, OK_BODY);
    assert_int_equal(P.npubs, 0);
    expect_stats(0, 1, 1, 1, 0, 0, 0, 0);
    tick_at(P.now + 60000);
    assert_int_equal(P.submit_calls, 0);
}

static void test_1500_devices_two_batches(void **state)
{
    (void)state;
    boot();
    reg_many("bob", 1500);
    assert_int_equal(devices_of("bob"), 1500);
    invite("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 2);
    expect_request(&P.subs[0], "call_invite", "c-1");
    expect_request(&P.subs[1], "call_invite", "c-1");
    assert_true(P.subs[0].tag != P.subs[1].tag);

    /* 1000 + 500, together every token exactly once. */
    const cJSON *a = audience(&P.subs[0]), *b = audience(&P.subs[1]);
    size_t na = (size_t)cJSON_GetArraySize(a), nb = (size_t)cJSON_GetArraySize(b);
    assert_true((na == 1000 && nb == 500) || (na == 500 && nb == 1000));
    const char **all = calloc(1500, sizeof(*all));
    char(*names)[16] = calloc(1500, sizeof(*names));
    assert_non_null(all);
    assert_non_null(names);
    for (size_t i = 0; i < 1500; i++) {
        snprintf(names[i], sizeof(names[i]), "tok-%04zu", i);
        all[i] = names[i];
    }
    cJSON *both = cJSON_CreateObject();
    assert_non_null(both);
    struct sub merged = {0};
    merged.body = both;
    cJSON *aud = cJSON_AddObjectToObject(both, "audience");
    cJSON *ids = cJSON_AddArrayToObject(aud, "registration_id");
    assert_non_null(ids);
    const cJSON *id;
    cJSON_ArrayForEach(id, a)
    {
        cJSON_AddItemToArray(ids, cJSON_CreateString(id->valuestring));
    }
    cJSON_ArrayForEach(id, b)
    {
        cJSON_AddItemToArray(ids, cJSON_CreateString(id->valuestring));
    }
    expect_audience(&merged, all, 1500);
    cJSON_Delete(both);
    free(all);
    free(names);
    expect_stats(2, 1, 2, 0, 0, 0, 0, 0);

    /* One pushed event per accepted request, counting that request's devices. */
    uint64_t tag_a = P.subs[0].tag, tag_b = P.subs[1].tag;
    clear();
    P.now += 100;
    respond(tag_b, 200, OK_BODY);
    expect_pushed("c-1", "bob", nb);
    clear();
    P.now += 100;
    respond(tag_a, 200, OK_BODY);
    expect_pushed("c-1", "bob", na);
    expect_stats(0, 1, 2, 2, 0, 0, 0, 0);

    /* The cancel goes to the same 1500 in batches of at most 1000. */
    clear();
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 2);
    assert_int_equal(
        cJSON_GetArraySize(audience(&P.subs[0])) + cJSON_GetArraySize(audience(&P.subs[1])), 1500);
    assert_true(cJSON_GetArraySize(audience(&P.subs[0])) <= RTM_PUSH_BATCH_MAX);
    assert_true(cJSON_GetArraySize(audience(&P.subs[1])) <= RTM_PUSH_BATCH_MAX);
    expect_request(&P.subs[0], "call_cancel", "c-1");
}

/* ==================================================================================
 * Retries
 * ================================================================================== */

/* The backoff: retry k (from 0) comes no sooner than half its cap and no later
 * than the cap, which doubles from 500 ms and stops at 30 s. Several seeds,
 * so the jitter is exercised; never before the minimum. */
static void test_retry_backoff(void **state)
{
    (void)state;
    int64_t first_delays[24];
    size_t nseeds = sizeof(first_delays) / sizeof(first_delays[0]);
    for (size_t seed = 1; seed <= nseeds; seed++) {
        clear();
        rtm_pusher_free(P.pusher);
        P.pusher = NULL;
        rtm_registry_free(P.registry);
        P.registry = NULL;
        P.now = T0;
        boot_seed(seed * 0x9E3779B97F4A7C15ULL);
        reg("bob", "phone", "tok-1");
        invite("c-1", "bob", FAR);
        assert_int_equal(P.nsubs, 1);
        int64_t cap = 500;
        for (unsigned attempt = 0; attempt + 1 < RTM_PUSH_MAX_ATTEMPTS; attempt++) {
            uint64_t tag = P.subs[P.nsubs - 1].tag;
            size_t before = P.submit_calls;
            int64_t at = P.now;
            size_t asked = P.pending_asked;
            respond(tag, 500, ERR_500);
            assert_int_equal(P.submit_calls, before); /* only a tick resends */
            assert_true(P.pending_asked > asked);
            assert_string_equal(P.pending_last, "c-1");
            int64_t max = cap < 30000 ? cap : 30000;
            int64_t d = tick_until_submitted(at, at + max + 1000);
            if (d < max / 2 || d > max)
                print_error("seed %zu retry %u after %" PRId64 " ms, expected [%" PRId64
                            ", %" PRId64 "]\n",
                            seed, attempt + 1, d, max / 2, max);
            assert_true(d >= max / 2 && d <= max);
            if (attempt == 0)
                first_delays[seed - 1] = d;
            assert_int_equal(P.nsubs, attempt + 2);
            const struct sub *s = &P.subs[P.nsubs - 1];
            expect_request(s, "call_invite", "c-1");
            static const char *const want[] = {"tok-1"};
            expect_audience(s, want, 1);
            /* time_to_live counts from the retry, not from the first try. */
            int64_t left = FAR - P.now;
            assert_int_equal(ttl_of(s), (left + 999) / 1000);
            cap *= 2;
        }
        /* The last allowed attempt fails too: given up, no further send. */
        assert_int_equal(P.nsubs, RTM_PUSH_MAX_ATTEMPTS);
        P.now += 5;
        respond(P.subs[P.nsubs - 1].tag, 500, ERR_500);
        assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
        assert_int_equal(P.nsubs, RTM_PUSH_MAX_ATTEMPTS);
        assert_int_equal(P.npubs, 0);
        expect_stats(0, 1, RTM_PUSH_MAX_ATTEMPTS, 0, RTM_PUSH_MAX_ATTEMPTS - 1, 1, 0, 0);
        assert_true(count_logs_at(RTM_LOG_WARNING) >= 1);
    }
    /* Jittered: the seeds do not all wait the same time. */
    bool varied = false;
    for (size_t i = 1; i < nseeds; i++)
        varied = varied || first_delays[i] != first_delays[0];
    assert_true(varied);
}

/* A retry that succeeds tells the caller once, like a first try. */
static void test_retry_then_ok(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    invite("c-1", "bob", FAR);
    respond(P.subs[0].tag, 503, NULL);
    assert_int_equal(P.npubs, 0);
    assert_true(tick_until_submitted(P.now, P.now + 1000) > 0);
    assert_int_equal(P.nsubs, 2);
    uint64_t tag = P.subs[1].tag;
    clear();
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 2);
    expect_stats(0, 1, 2, 1, 1, 0, 0, 0);
}

static void test_retry_after_header(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");

    /* 500 with Retry-After: 2 -> not before 2000 ms. */
    invite("c-1", "bob", FAR);
    int64_t at = P.now;
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL);
    assert_int_equal(tick_until_submitted(at, at + 1999), -1);
    tick_at(at + 2000);
    assert_int_equal(P.nsubs, 2);

    /* 429 (JPush 2002) with only X-Rate-Limit-Reset: 3 -> not before 3000 ms. */
    clear();
    invite("c-2", "bob", FAR);
    at = P.now;
    respond_full(P.subs[0].tag, 429,
                 "{\"error\":{\"code\":2002,\"message\":\"Request times exceeds the limit\"}}",
                 NULL, "3");
    assert_int_equal(tick_until_submitted(at, at + 2999), -1);
    tick_at(at + 3000);
    assert_int_equal(P.nsubs, 2);

    /* No HTTP response at all (DNS, connect, TLS, timeout): backoff. */
    clear();
    invite("c-3", "bob", FAR);
    at = P.now;
    respond(P.subs[0].tag, 0, NULL);
    int64_t d = tick_until_submitted(at, at + 1000);
    assert_true(d >= 250 && d <= 500);
    expect_stats(3, 3, 6, 0, 3, 0, 0, 0);
}

/* call_pending false when the answer comes: no retry. */
static void test_retry_stops_when_call_not_pending(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    P.pending = false;
    respond_full(P.subs[0].tag, 500, ERR_500, "1", NULL);
    assert_true(P.pending_asked >= 1);
    assert_string_equal(P.pending_last, "c-1");
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    assert_int_equal(P.nsubs, 1);
    assert_int_equal(P.npubs, 0);
    expect_stats(0, 1, 1, 0, 0, 1, 0, 0);
}

/* The call ends while a retry waits: SPEC 6.3 retries only "while the
 * invitation is pending", so the armed retry must not ring the phone again
 * (it would arrive after the call_cancel push and, on iOS, replace it). */
static void test_retry_not_sent_after_call_ended(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL);
    assert_int_equal(stats().retried, 1);
    /* The caller cancels before the retry is due. */
    P.now += 500;
    P.pending = false;
    clear();
    cancel("c-1", "bob", FAR);
    assert_int_equal(P.nsubs, 1);
    expect_request(&P.subs[0], "call_cancel", "c-1");
    respond(P.subs[0].tag, 200, OK_BODY);
    clear();
    tick_at(T0 + 2000);
    tick_at(T0 + 60000);
    size_t invites = 0;
    for (size_t i = 0; i < P.nsubs; i++) {
        const cJSON *x = field(field(field(P.subs[i].body, "notification"), "android"), "extras");
        invites += strcmp(str_field(x, "rtm"), "call_invite") == 0;
    }
    if (invites)
        print_error("a call_invite retry was sent at %" PRId64
                    " ms for a call that was no longer pending\n",
                    P.subs[0].at - T0);
    assert_int_equal(invites, 0);
    assert_int_equal(stats().jobs, 0);
}

/* The next attempt would be at or after expires_at: given up at once. */
static void test_retry_stops_at_expiry(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");

    invite("c-1", "bob", T0 + 2000);
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL); /* due == expires_at */
    assert_int_equal(tick_until_submitted(P.now, T0 + 70000), -1);
    expect_stats(0, 1, 1, 0, 0, 1, 0, 0);

    clear();
    P.now = T0 + 100000;
    invite("c-2", "bob", P.now + 2001);
    int64_t at = P.now;
    respond_full(P.subs[0].tag, 500, ERR_500, "2", NULL); /* due just before it */
    assert_int_equal(tick_until_submitted(at, at + 1999), -1);
    tick_at(at + 2000);
    assert_int_equal(P.nsubs, 2);
    assert_int_equal(ttl_of(&P.subs[1]), 1);
    /* Backoff of at least 250 ms cannot fit into 250 ms: given up. */
    clear();
    P.now = T0 + 200000;
    invite("c-3", "bob", P.now + 250);
    respond(P.subs[0].tag, 502, NULL);
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    /* A Retry-After past the deadline: given up too. */
    clear();
    P.now = T0 + 300000;
    invite("c-4", "bob", P.now + 30000);
    respond_full(P.subs[0].tag, 503, NULL, "120", NULL);
    assert_int_equal(tick_until_submitted(P.now, P.now + 130000), -1);
    /* c-2 was retried once and still waits for its answer. */
    struct rtm_pusher_stats s = stats();
    assert_int_equal(s.jobs, 1);
    assert_int_equal(s.failed, 3);
    assert_int_equal(s.retried, 1);
}

/* ==================================================================================
 * Refusals
 * ================================================================================== */

static void test_invalid_tokens_removed(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    reg("carol", "phone", "tok-3");
    invite("c-1", "bob", FAR);
    assert_int_equal(P.nsubs, 1);
    clear();
    respond(P.subs[0].tag, 400, ERR_1011);
    /* Both of the request's registrations are gone, with their retained messages. */
    assert_int_equal(devices_of("bob"), 0);
    assert_int_equal(devices_of("carol"), 1);
    assert_true(has_device("carol", "phone", "tok-3"));
    assert_int_equal(P.npubs, 2);
    expect_cleared("bob", "phone");
    expect_cleared("bob", "tablet");
    assert_int_equal(count_topic("rtm/u/alice/call"), 0); /* no pushed event */
    expect_stats(0, 1, 1, 0, 0, 1, 0, 2);
    /* Never retried. */
    clear();
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    /* A token already unregistered meanwhile is not cleared twice. */
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    P.now += 1000;
    invite("c-2", "bob", P.now + 30000);
    uint64_t tag = P.subs[0].tag;
    rtm_registry_remove(P.registry, "bob", "tablet");
    clear();
    respond(tag, 400, ERR_1011);
    assert_int_equal(P.npubs, 1);
    expect_cleared("bob", "phone");
    assert_int_equal(devices_of("bob"), 0);
    assert_int_equal(stats().tokens_removed, 3);
}

static void test_config_error_not_retried(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    static const struct {
        long status;
        const char *body;
    } cases[] = {
        {401, ERR_AUTH},
        {401, NULL},
        {400, ERR_APPKEY},
        {400, "{\"error\":{\"code\":1003,\"message\":\"Parameter value is invalid\"}}"},
        {403, "{\"error\":{\"code\":2003,\"message\":\"The appKey is blocked\"}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        clear();
        char id[16];
        snprintf(id, sizeof(id), "c-%zu", i);
        invite(id, "bob", FAR);
        assert_int_equal(P.nsubs, 1);
        uint64_t tag = P.subs[0].tag;
        clear();
        respond(tag, cases[i].status, cases[i].body);
        if (count_logs_at(RTM_LOG_ERR) != 1)
            print_error("case %zu: %zu error lines\n", i, count_logs_at(RTM_LOG_ERR));
        assert_int_equal(count_logs_at(RTM_LOG_ERR), 1);
        assert_true(secret_kept());
        assert_int_equal(P.npubs, 0);
        assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
        assert_int_equal(devices_of("bob"), 1); /* not the tokens' fault */
        struct rtm_pusher_stats s = stats();
        assert_int_equal(s.failed, i + 1);
        assert_int_equal(s.retried, 0);
        assert_int_equal(s.jobs, 0);
    }
}

static void test_other_refusal_not_retried(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    uint64_t tag = P.subs[0].tag;
    clear();
    respond(tag, 400, "{\"error\":{\"code\":1030,\"message\":\"internal service timeout\"}}");
    assert_int_equal(P.npubs, 0);
    assert_true(P.nlogs >= 1);
    assert_int_equal(tick_until_submitted(P.now, P.now + 70000), -1);
    assert_int_equal(devices_of("bob"), 1);
    expect_stats(0, 1, 1, 0, 0, 1, 0, 0);
}

/* ==================================================================================
 * call_cancel
 * ================================================================================== */

static void test_cancel_goes_to_the_woken_tokens(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    invite("c-1", "bob", T0 + 30000);
    respond(P.subs[0].tag, 200, OK_BODY);
    /* The registry changes after the invite went out. */
    rtm_registry_remove(P.registry, "bob", "tablet");
    reg("bob", "laptop", "tok-9");
    reg("carol", "phone", "tok-1"); /* tok-1 moved to carol */
    clear();
    P.now += 3000;
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nsubs, 1);
    expect_request(&P.subs[0], "call_cancel", "c-1");
    static const char *const want[] = {"tok-1", "tok-2"};
    expect_audience(&P.subs[0], want, 2);
    assert_int_equal(ttl_of(&P.subs[0]), 27);
    expect_stats(1, 0, 2, 1, 0, 0, 0, 0);
    /* Its success tells the caller nothing: `pushed` is about invitations. */
    uint64_t tag = P.subs[0].tag;
    clear();
    respond(tag, 200, OK_BODY);
    assert_int_equal(P.npubs, 0);
    expect_stats(0, 0, 2, 2, 0, 0, 0, 0);
    /* The cancel was the call's last push: a second one sends nothing. */
    clear();
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
}

static void test_cancel_without_invite_push(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(P.npubs, 0);
    expect_stats(0, 0, 0, 0, 0, 0, 0, 0);
    /* Another call's invite does not make this call's cancel go anywhere. */
    invite("c-2", "bob", T0 + 30000);
    clear();
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
    assert_int_equal(stats().calls, 1);
}

/* Remembering which tokens an invite woke does not last for ever. */
static void test_call_records_are_forgotten(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof(id), "c-%d", i);
        invite(id, "bob", P.now + 30000);
        respond(P.subs[P.nsubs - 1].tag, 200, OK_BODY);
    }
    assert_int_equal(stats().calls, 50);
    tick_at(P.now + 3600 * 1000);
    assert_int_equal(stats().calls, 0);
    clear();
    cancel("c-0", "bob", T0 + 30000);
    assert_int_equal(P.submit_calls, 0);
}

/* ==================================================================================
 * Dry run, a full sender, stray results, teardown
 * ================================================================================== */

static void test_dry_run(void **state)
{
    (void)state;
    P.dry_run = true;
    boot();
    reg("bob", "phone", "tok-1");
    reg("bob", "tablet", "tok-2");
    invite("c-1", "bob", T0 + 30000);
    if (P.nlogs != 1)
        print_error("%zu log lines, expected one\n", P.nlogs);
    assert_int_equal(P.nlogs, 1);
    assert_non_null(strstr(P.logs[0].text, "phone"));
    assert_non_null(strstr(P.logs[0].text, "tablet"));
    assert_non_null(strstr(P.logs[0].text, "c-1"));
    assert_int_equal(P.npubs, 0);
    assert_int_equal(P.submit_calls, 0);
    struct rtm_pusher_stats s = stats();
    assert_int_equal(s.sent, 0);
    assert_int_equal(s.jobs, 0);
    assert_int_equal(s.dropped, 0);
    /* Nothing to tick, nothing to answer. */
    clear();
    tick_at(P.now + 10000);
    assert_int_equal(P.npubs, 0);
    /* Its cancel is logged the same way. */
    cancel("c-1", "bob", T0 + 30000);
    assert_int_equal(P.nlogs, 1);
    assert_non_null(strstr(P.logs[0].text, "c-1"));
    assert_int_equal(P.submit_calls, 0);
    /* No devices: one line saying so, as when sending. */
    clear();
    invite("c-2", "dave", T0 + 30000);
    assert_int_equal(P.nlogs, 1);
}

static void test_queue_full(void **state)
{
    (void)state;
    boot();
    reg("bob", "phone", "tok-1");
    P.full = true;
    invite("c-1", "bob", FAR);
    assert_int_equal(P.submit_calls, 1);
    assert_int_equal(P.nsubs, 0);
    assert_int_equal(P.npubs, 0);
    assert_true(count_logs_at(RTM_LOG_WARNING) >= 1);
    expect_sender(0, 0, 0, 1);

    /* Full when a retry is due: the retry is dropped, the job freed. */
    P.full = false;
    clear();
    invite("c-2", "bob", FAR);
    respond(P.subs[0].tag, 500, ERR_500);
    P.full = true;
    assert_true(tick_until_submitted(P.now, P.now + 1000) > 0);
    assert_int_equal(P.nsubs, 1);
    expect_sender(0, 1, 1, 2);
    /* Both batches of a big push refused: two drops. */
    reg_many("dave", 1200);
    clear();
    invite("c-3", "dave", FAR);
    assert_int_equal(P.submit_calls, 2);
    expect_sender(0, 1, 1, 4);
}

static void test_unknown_tags_ignored(void **state)
{
    (void)state;
    boot();
    respond(0, 200, OK_BODY);
    respond(1, 500, ERR_500);
    respond(UINT64_MAX, 400, ERR_1011);
    assert_int_equal(P.npubs, 0);
    assert_int_equal(P.submit_calls, 0);
    expect_stats(0, 0, 0, 0, 0, 0, 0, 0);

    reg("bob", "phone", "tok-1");
    invite("c-1", "bob", FAR);
    uint64_t tag = P.subs[0].tag;
    clear();
    respond(tag + 1, 400, ERR_1011);
    respond(tag ^ 0x8000000000000000ULL, 200, OK_BODY);
    assert_int_equal(P.npubs, 0);
    assert_int_equal(devices_of("bob"), 1);
    expect_stats(1, 1, 1, 0, 0, 0, 0, 0);
    respond(tag, 200, OK_BODY);
    expect_pushed("c-1", "bob", 1);
    /* A late answer for a finished request is unknown too. */
    clear();
    respond(tag, 400, ERR_1011);
    assert_int_equal(P.npubs, 0);
    assert_int_equal(devices_of("bob"), 1);
    expect_stats(0, 1, 1, 1, 0, 0, 0, 0);
}

/* Freed with requests in flight, a retry armed and call records kept: the
 * sanitizer build checks that nothing leaks (the teardown frees it). */
static void test_free_with_work_pending(void **state)
{
    (void)state;
    boot();
    reg_many("bob", 1500);
    reg("carol", "phone", "carol-1");
    invite("c-1", "bob", FAR);
    invite("c-2", "carol", FAR);
    respond(P.subs[2].tag, 500, ERR_500); /* a retry armed */
    invite("c-3", "carol", FAR);
    respond(P.subs[3].tag, 200, OK_BODY); /* remembered for its cancel */
    expect_stats(3, 3, 4, 1, 1, 0, 0, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_no_devices),
        T_(test_one_device_ok),
        T_(test_1500_devices_two_batches),
        T_(test_retry_backoff),
        T_(test_retry_then_ok),
        T_(test_retry_after_header),
        T_(test_retry_stops_when_call_not_pending),
        T_(test_retry_not_sent_after_call_ended),
        T_(test_retry_stops_at_expiry),
        T_(test_invalid_tokens_removed),
        T_(test_config_error_not_retried),
        T_(test_other_refusal_not_retried),
        T_(test_cancel_goes_to_the_woken_tokens),
        T_(test_cancel_without_invite_push),
        T_(test_call_records_are_forgotten),
        T_(test_dry_run),
        T_(test_queue_full),
        T_(test_unknown_tags_ignored),
        T_(test_free_with_work_pending),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
