/*
 * Tests of the whole core (plugin/core.c, invite.c, presence.c, users.c)
 * through rtm_core.h only, as the adapter drives it: a recording sink keeps
 * every publish (parsed with cJSON) and every log line, and a fake clock
 * (T.now) moves only when a test says so. PROTOCOL.md is the contract.
 *
 * The last test is a property test: thousands of random connects,
 * disconnects, requests, clock advances and ticks, checked after every step
 * against a model of the protocol. Set RTM_SEED to replay a run.
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
#include <time.h>

#include <cJSON.h>

#include "rtm_config.h"
#include "rtm_core.h"

#define T0          INT64_C(1764100000000)
#define INVITE_MS   2000
#define RING_MS     4000
#define GRACE_MS    1000
#define REMEMBER_MS 60000 /* max(ring_timeout, 60 s) with RING_MS */

/* --- the recording sink and the fake clock ---------------------------------- */

struct pub {
    char *client_id; /* NULL: to every subscriber */
    char *topic;
    char *payload;
    cJSON *json; /* NULL when the payload was not JSON */
    int qos;
    bool retain;
};

struct pushed {
    enum rtm_push_kind kind;
    char *call_id, *caller, *callee, *channel;
    int64_t expires_at;
    int64_t now_ms;
    bool has_why; /* a non-empty reason for the log line */
};

static struct {
    struct rtm_config cfg;
    struct rtm_sink sink;
    struct rtm_core *core;
    int64_t now;
    struct pub *pubs;
    size_t npubs, cap;
    char **logs;
    size_t nlogs, logcap;
    struct pushed *pushes;
    size_t npushes, pushcap;
    char *out; /* the payload of the last RTM_REPLACE, NUL-terminated */
    cJSON *out_json;
} T;

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
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

/* No assertions in here: a failed assertion would longjmp through the core. */
static void rec_publish(void *ud, const struct rtm_publish *msg)
{
    if (ud != &T)
        abort();
    T.pubs = grow(T.pubs, &T.cap, T.npubs, sizeof(*T.pubs));
    struct pub *p = &T.pubs[T.npubs++];
    p->client_id = dup_s(msg->client_id);
    p->topic = dup_s(msg->topic);
    p->payload = dup_n(msg->payload, msg->payload_len);
    p->json = cJSON_ParseWithLength(msg->payload, msg->payload_len);
    p->qos = msg->qos;
    p->retain = msg->retain;
}

static void rec_log(void *ud, enum rtm_log_level level, const char *line)
{
    (void)level;
    if (ud != &T)
        abort();
    T.logs = grow(T.logs, &T.logcap, T.nlogs, sizeof(*T.logs));
    T.logs[T.nlogs++] = dup_s(line);
}

static void rec_push(void *ud, const struct rtm_push *push)
{
    if (ud != &T)
        abort();
    T.pushes = grow(T.pushes, &T.pushcap, T.npushes, sizeof(*T.pushes));
    struct pushed *p = &T.pushes[T.npushes++];
    p->kind = push->kind;
    p->call_id = dup_s(push->call_id);
    p->caller = dup_s(push->caller);
    p->callee = dup_s(push->callee);
    p->channel = dup_s(push->channel);
    p->expires_at = push->expires_at;
    p->now_ms = push->now_ms;
    p->has_why = push->why && push->why[0];
}

static void rec_clear(void)
{
    for (size_t i = 0; i < T.npubs; i++) {
        free(T.pubs[i].client_id);
        free(T.pubs[i].topic);
        free(T.pubs[i].payload);
        cJSON_Delete(T.pubs[i].json);
    }
    T.npubs = 0;
    for (size_t i = 0; i < T.nlogs; i++)
        free(T.logs[i]);
    T.nlogs = 0;
    for (size_t i = 0; i < T.npushes; i++) {
        free(T.pushes[i].call_id);
        free(T.pushes[i].caller);
        free(T.pushes[i].callee);
        free(T.pushes[i].channel);
    }
    T.npushes = 0;
}

static void out_clear(void)
{
    free(T.out);
    T.out = NULL;
    cJSON_Delete(T.out_json);
    T.out_json = NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    rtm_config_defaults(&T.cfg);
    T.cfg.invite_timeout_ms = INVITE_MS;
    T.cfg.ring_timeout_ms = RING_MS;
    T.cfg.caller_grace_ms = GRACE_MS;
    /* The fallback push has its own tests (test_push_*); elsewhere it would
     * only add a silent timer firing. */
    T.cfg.push_fallback_ms = 0;
    T.sink.ud = &T;
    T.sink.publish = rec_publish;
    T.sink.log = rec_log;
    T.now = T0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rtm_core_free(T.core);
    T.core = NULL;
    rec_clear();
    out_clear();
    free(T.pubs);
    free(T.logs);
    free(T.pushes);
    rtm_config_free(&T.cfg);
    return 0;
}

/* Creates the core once the test has set the configuration it wants. */
static void boot(void)
{
    T.core = rtm_core_new(&T.cfg, &T.sink);
    assert_non_null(T.core);
}

/* --- clients ------------------------------------------------------------------ */

static char handles[16]; /* each client's handle is the address of one byte */

static const struct rtm_client alice = {&handles[0], "alice", "alice-phone"};
static const struct rtm_client alice2 = {&handles[1], "alice", "alice-web"};
static const struct rtm_client bob = {&handles[2], "bob", "bob-phone"};
static const struct rtm_client bob2 = {&handles[3], "bob", "bob-tablet"};
static const struct rtm_client carol = {&handles[4], "carol", "carol-phone"};
static const struct rtm_client dave = {&handles[5], "dave", "dave-phone"};
static const struct rtm_client root = {&handles[6], "root", "root-console"};
static const struct rtm_client anon = {&handles[7], NULL, "no uid"};
/* A new connection with alice's client id: a takeover. */
static const struct rtm_client alice_again = {&handles[8], "alice", "alice-phone"};

static void tick(void)
{
    rtm_core_tick(T.core, T.now);
}

static void tick_at(int64_t t)
{
    T.now = t;
    tick();
}

static void conn(const struct rtm_client *c)
{
    rtm_core_connect(T.core, c, T.now);
}

static void disc(const struct rtm_client *c)
{
    rtm_core_disconnect(T.core, c->handle, T.now);
}

/* Connects and confirms `c`, then forgets what that published. */
static void online(const struct rtm_client *c)
{
    conn(c);
    tick();
    rec_clear();
}

static void offline(const struct rtm_client *c)
{
    disc(c);
    tick();
    rec_clear();
}

static const char *inbox(const char *uid)
{
    static char buf[8][160];
    static unsigned next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof(buf[0]), "rtm/u/%s/call", uid);
    return b;
}

static const char *presence_topic(const char *uid)
{
    static char buf[4][160];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/presence/%s", uid);
    return b;
}

static struct rtm_core_stats stats(void)
{
    struct rtm_core_stats s;
    memset(&s, 0xA5, sizeof(s));
    rtm_core_stats(T.core, &s);
    return s;
}

/* --- JSON helpers ----------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it))
        print_error("no string field %s\n", key);
    assert_true(cJSON_IsString(it));
    return it->valuestring;
}

static int64_t jnum(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it))
        print_error("no number field %s\n", key);
    assert_true(cJSON_IsNumber(it));
    return (int64_t)it->valuedouble;
}

static bool jhas(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

/* Asserts that `o` has exactly the keys listed (NULL-terminated), no more. */
static void assert_keys(const cJSON *o, ...)
{
    const char *keys[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, o);
    for (const char *k = va_arg(ap, const char *); k && n < 16; k = va_arg(ap, const char *))
        keys[n++] = k;
    va_end(ap);
    assert_non_null(o);
    assert_true(cJSON_IsObject(o));
    for (size_t i = 0; i < n; i++) {
        if (!jhas(o, keys[i]))
            print_error("missing key %s\n", keys[i]);
        assert_true(jhas(o, keys[i]));
    }
    if ((size_t)cJSON_GetArraySize(o) != n) {
        char *text = cJSON_PrintUnformatted(o);
        print_error("expected %zu keys: %s\n", n, text ? text : "?");
        free(text);
    }
    assert_int_equal(cJSON_GetArraySize(o), n);
}

static void assert_event(const cJSON *j, const char *type, const char *id, const char *caller,
                         const char *callee, const char *by, int64_t ts)
{
    assert_non_null(j);
    assert_string_equal(jstr(j, "type"), type);
    assert_string_equal(jstr(j, "id"), id);
    assert_string_equal(jstr(j, "caller"), caller);
    assert_string_equal(jstr(j, "callee"), callee);
    assert_string_equal(jstr(j, "by"), by);
    assert_int_equal(jnum(j, "ts"), ts);
}

/* --- publishes ---------------------------------------------------------------------- */

static size_t count_on(const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < T.npubs; i++)
        n += strcmp(T.pubs[i].topic, topic) == 0;
    return n;
}

/* The only publish on `topic`. */
static const struct pub *only_on(const char *topic)
{
    assert_int_equal(count_on(topic), 1);
    for (size_t i = 0; i < T.npubs; i++) {
        if (strcmp(T.pubs[i].topic, topic) == 0) {
            assert_non_null(T.pubs[i].json);
            return &T.pubs[i];
        }
    }
    return NULL;
}

static size_t count_type(const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < T.npubs; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(T.pubs[i].json, "type");
        n += cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
    }
    return n;
}

/* The only publish of `type` on `topic`. */
static const struct pub *only_type_on(const char *topic, const char *type)
{
    const struct pub *found = NULL;
    size_t n = 0;
    for (size_t i = 0; i < T.npubs; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(T.pubs[i].json, "type");
        if (strcmp(T.pubs[i].topic, topic) == 0 && cJSON_IsString(t) &&
            strcmp(t->valuestring, type) == 0) {
            found = &T.pubs[i];
            n++;
        }
    }
    if (n != 1)
        print_error("%zu %s publishes on %s\n", n, type, topic);
    assert_int_equal(n, 1);
    return found;
}

static void expect_quiet(void)
{
    if (T.npubs)
        print_error("unexpected publish on %s: %s\n", T.pubs[0].topic, T.pubs[0].payload);
    assert_int_equal(T.npubs, 0);
}

/* --- requests ------------------------------------------------------------------------- */

/* Publishes `len` bytes copied into a buffer of exactly that size (no NUL
 * after it, as an MQTT payload), so a read past the end is caught by ASan. */
static enum rtm_verdict send_raw(const struct rtm_client *c, const char *topic, const char *payload,
                                 size_t len, bool retain)
{
    out_clear();
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    memcpy(buf, payload, len);
    struct rtm_message_result r = rtm_core_message(T.core, c, topic, buf, len, retain, T.now);
    free(buf);
    if (r.verdict == RTM_REPLACE) {
        assert_non_null(r.payload);
        T.out = dup_n(r.payload, r.payload_len);
        free(r.payload);
        T.out_json = cJSON_Parse(T.out);
        assert_non_null(T.out_json);
    } else {
        assert_null(r.payload);
        assert_int_equal(r.payload_len, 0);
    }
    return r.verdict;
}

static enum rtm_verdict send_to(const struct rtm_client *c, const char *peer, const char *json)
{
    return send_raw(c, inbox(peer), json, strlen(json), false);
}

/* Expects `json` from `c` to `peer`'s inbox to be let through, stamped. */
static const cJSON *expect_replace(const struct rtm_client *c, const char *peer, const char *json)
{
    rec_clear();
    enum rtm_verdict v = send_to(c, peer, json);
    if (v != RTM_REPLACE) {
        print_error("not let through (%d): %s\n", v, json);
        if (T.npubs)
            print_error("  %s\n", T.pubs[0].payload);
    }
    assert_int_equal(v, RTM_REPLACE);
    return T.out_json;
}

/* An ending was let through: the same event was also published, once, to
 * the sender's own inbox, for every subscriber. */
static void expect_own_copy(const struct rtm_client *c)
{
    assert_int_equal(T.npubs, 1);
    const struct pub *p = only_on(inbox(c->uid));
    assert_null(p->client_id);
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_string_equal(p->payload, T.out);
}

/* Expects the request to be refused: RTM_DENY, and exactly one publish, an
 * error to the sender's own inbox for the sending session only. `id` and
 * `request` NULL: the error must not carry that field. */
static void expect_error_raw(const struct rtm_client *c, const char *topic, const char *payload,
                             size_t len, bool retain, const char *code, const char *id,
                             const char *request)
{
    rec_clear();
    enum rtm_verdict v = send_raw(c, topic, payload, len, retain);
    if (v != RTM_DENY)
        print_error("expected %s, got verdict %d: %.*s\n", code, v, (int)len, payload);
    assert_int_equal(v, RTM_DENY);
    if (T.npubs != 1)
        print_error("expected one error publish, got %zu\n", T.npubs);
    assert_int_equal(T.npubs, 1);
    const struct pub *p = &T.pubs[0];
    assert_string_equal(p->topic, inbox(c->uid));
    assert_non_null(p->client_id);
    assert_string_equal(p->client_id, c->client_id);
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    const cJSON *j = p->json;
    assert_non_null(j);
    assert_string_equal(jstr(j, "type"), "error");
    if (strcmp(jstr(j, "code"), code) != 0)
        print_error("error: %s\n", p->payload);
    assert_string_equal(jstr(j, "code"), code);
    assert_true(jstr(j, "message")[0] != '\0');
    assert_int_equal(jnum(j, "ts"), T.now);
    if (id)
        assert_string_equal(jstr(j, "id"), id);
    else
        assert_false(jhas(j, "id"));
    if (request)
        assert_string_equal(jstr(j, "request"), request);
    else
        assert_false(jhas(j, "request"));
    assert_int_equal(cJSON_GetArraySize(j), 4 + (id != NULL) + (request != NULL));
}

static void expect_error(const struct rtm_client *c, const char *peer, const char *json,
                         const char *code, const char *id, const char *request)
{
    expect_error_raw(c, inbox(peer), json, strlen(json), false, code, id, request);
}

/* A failure was published in this tick: once to each inbox, to every
 * subscriber, by the server, at T.now. */
static void expect_failure(const char *id, const char *caller, const char *callee,
                           const char *reason)
{
    assert_int_equal(count_type("failure"), 2);
    const char *uids[2] = {caller, callee};
    for (int i = 0; i < 2; i++) {
        const struct pub *p = only_type_on(inbox(uids[i]), "failure");
        assert_null(p->client_id);
        assert_int_equal(p->qos, 1);
        assert_false(p->retain);
        assert_keys(p->json, "type", "id", "caller", "callee", "by", "ts", "reason", NULL);
        assert_event(p->json, "failure", id, caller, callee, "server", T.now);
        assert_string_equal(jstr(p->json, "reason"), reason);
    }
}

/* Ticks at every millisecond-exact boundary: nothing at due - 1, the
 * failure at due. */
static void expect_failure_at(int64_t due, const char *id, const char *caller, const char *callee,
                              const char *reason)
{
    rec_clear();
    tick_at(due - 1);
    expect_quiet();
    tick_at(due);
    expect_failure(id, caller, callee, reason);
    rec_clear();
}

static void expect_presence(const struct pub *p, const char *uid, bool online, int sessions)
{
    assert_non_null(p);
    assert_null(p->client_id);
    assert_int_equal(p->qos, 1);
    assert_true(p->retain);
    assert_string_equal(p->topic, presence_topic(uid));
    assert_string_equal(jstr(p->json, "uid"), uid);
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(p->json, "online");
    assert_true(cJSON_IsBool(on));
    assert_int_equal(cJSON_IsTrue(on), online);
    assert_int_equal(jnum(p->json, "ts"), T.now);
    if (online) {
        assert_keys(p->json, "uid", "online", "sessions", "ts", NULL);
        assert_int_equal(jnum(p->json, "sessions"), sessions);
    } else {
        assert_keys(p->json, "uid", "online", "ts", NULL);
    }
}

#define INVITE(id)       "{\"type\":\"invite\",\"id\":\"" id "\"}"
#define INVITE_T(id, s)  "{\"type\":\"invite\",\"id\":\"" id "\",\"timeout\":" #s "}"
#define ANSWER(type, id) "{\"type\":\"" type "\",\"id\":\"" id "\"}"

/* ================================================================================
 * Happy paths
 * ================================================================================ */

static void test_invite_is_stamped(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    T.now += 1234;
    const cJSON *j = expect_replace(
        &alice, "bob",
        "{\"type\":\"invite\",\"id\":\"c-7f3a\",\"content\":\"{\\\"video\\\":true}\","
        "\"channel\":\"room-42\",\"caller\":\"mallory\",\"callee\":\"zed\",\"by\":\"mallory\","
        "\"ts\":5,\"expires_at\":7,\"reason\":\"x\",\"response\":\"r\",\"extra\":{\"a\":1}}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "content", "channel", "expires_at",
                NULL);
    assert_event(j, "invite", "c-7f3a", "alice", "bob", "alice", T.now);
    assert_string_equal(jstr(j, "content"), "{\"video\":true}");
    assert_string_equal(jstr(j, "channel"), "room-42");
    assert_int_equal(jnum(j, "expires_at"), T.now + INVITE_MS);
    expect_quiet(); /* an invite is delivered as the broker's own copy only */

    /* content and channel absent: ""; the invite's own timeout sets expires_at. */
    j = expect_replace(&alice, "bob", INVITE_T("c-2", 5));
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "content", "channel", "expires_at",
                NULL);
    assert_event(j, "invite", "c-2", "alice", "bob", "alice", T.now);
    assert_string_equal(jstr(j, "content"), "");
    assert_string_equal(jstr(j, "channel"), "");
    assert_int_equal(jnum(j, "expires_at"), T.now + 5000);
    expect_quiet();

    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 2);
    assert_int_equal(s.calls_remembered, 0);
}

static void test_ringing_is_stamped(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 300;
    const cJSON *j = expect_replace(&bob, "alice",
                                    "{\"type\":\"ringing\",\"id\":\"c-1\",\"caller\":\"bob\","
                                    "\"by\":\"alice\",\"ts\":1,\"content\":\"x\","
                                    "\"expires_at\":3,\"extra\":true}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_event(j, "ringing", "c-1", "alice", "bob", "bob", t0 + 300);
    expect_quiet(); /* ringing goes to the caller's inbox only */
    assert_int_equal(stats().calls_live, 1);
}

static void test_accept_reaches_both_inboxes(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 100;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    T.now += 400;
    const cJSON *j = expect_replace(&bob, "alice",
                                    "{\"type\":\"accept\",\"id\":\"c-1\",\"response\":\"ok\","
                                    "\"caller\":\"x\",\"callee\":\"y\",\"by\":\"alice\","
                                    "\"ts\":9,\"expires_at\":9,\"reason\":\"no\",\"more\":[1]}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "response", NULL);
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", T.now);
    assert_string_equal(jstr(j, "response"), "ok");
    expect_own_copy(&bob);

    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.calls_remembered, 1);
}

static void test_refuse_before_ringing(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 700;
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_event(j, "refuse", "c-1", "alice", "bob", "bob", T.now);
    expect_own_copy(&bob);

    expect_replace(&alice, "bob", INVITE("c-2"));
    j = expect_replace(&bob, "alice", "{\"type\":\"refuse\",\"id\":\"c-2\",\"response\":\"busy\"}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "response", NULL);
    assert_string_equal(jstr(j, "response"), "busy");
    expect_own_copy(&bob);
    assert_int_equal(stats().calls_live, 0);
}

static void test_cancel_reaches_both_inboxes(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 50;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    T.now += 50;
    const cJSON *j = expect_replace(
        &alice, "bob", "{\"type\":\"cancel\",\"id\":\"c-1\",\"by\":\"bob\",\"response\":\"r\"}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_event(j, "cancel", "c-1", "alice", "bob", "alice", T.now);
    expect_own_copy(&alice);
    assert_int_equal(stats().calls_live, 0);
    assert_int_equal(stats().calls_remembered, 1);
}

/* ================================================================================
 * Errors
 * ================================================================================ */

static void test_error_bad_request(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);

    /* Not JSON, not an object, empty: neither id nor request is known. */
    expect_error(&alice, "bob", "hello", "bad_request", NULL, NULL);
    expect_error(&alice, "bob", "[1,2]", "bad_request", NULL, NULL);
    expect_error_raw(&alice, inbox("bob"), "", 0, false, "bad_request", NULL, NULL);
    /* Retained: refused, and nothing was created. */
    expect_error_raw(&alice, inbox("bob"), INVITE("c-1"), strlen(INVITE("c-1")), true,
                     "bad_request", "c-1", "invite");
    assert_int_equal(stats().calls_live, 0);
    /* An unknown type keeps the id but names no request. */
    expect_error(&alice, "bob", ANSWER("hangup", "c-1"), "bad_request", "c-1", NULL);
    /* A missing id names the request only. */
    expect_error(&bob, "alice", "{\"type\":\"accept\"}", "bad_request", NULL, "accept");
    /* A value out of range. */
    expect_error(&alice, "bob", "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":0}", "bad_request",
                 "c-1", "invite");
    assert_int_equal(stats().calls_live, 0);

    /* The wrong inbox: the callee sends accept to its own inbox. */
    T.now += 10;
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_error(&bob, "bob", ANSWER("accept", "c-1"), "bad_request", "c-1", "accept");
    expect_error(&alice, "alice", ANSWER("cancel", "c-1"), "bad_request", "c-1", "cancel");
    /* Nothing changed: the real answer still works. */
    assert_int_equal(stats().calls_live, 1);
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("accept", "c-1"));
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", T.now);
}

static void test_error_unknown_invitation(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_error(&bob, "alice", ANSWER("accept", "nope"), "unknown_invitation", "nope", "accept");
    expect_error(&bob, "alice", ANSWER("ringing", "nope"), "unknown_invitation", "nope", "ringing");
    expect_error(&bob, "alice", ANSWER("refuse", "nope"), "unknown_invitation", "nope", "refuse");
    expect_error(&alice, "bob", ANSWER("cancel", "nope"), "unknown_invitation", "nope", "cancel");
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live + s.calls_remembered, 0);
}

static void test_error_not_party(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    expect_replace(&alice, "bob", INVITE("c-1"));
    /* Only the callee answers; only the caller cancels. */
    expect_error(&alice, "bob", ANSWER("accept", "c-1"), "not_party", "c-1", "accept");
    expect_error(&alice, "alice", ANSWER("refuse", "c-1"), "not_party", "c-1", "refuse");
    expect_error(&carol, "alice", ANSWER("ringing", "c-1"), "not_party", "c-1", "ringing");
    expect_error(&carol, "alice", ANSWER("accept", "c-1"), "not_party", "c-1", "accept");
    expect_error(&bob, "alice", ANSWER("cancel", "c-1"), "not_party", "c-1", "cancel");
    expect_error(&carol, "bob", ANSWER("cancel", "c-1"), "not_party", "c-1", "cancel");
    assert_int_equal(stats().calls_live, 1);
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
}

static void test_error_invalid_state(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);

    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    T.now += 10;
    expect_error(&bob, "alice", ANSWER("accept", "c-1"), "invalid_state", "c-1", "accept");
    expect_error(&bob, "alice", ANSWER("ringing", "c-1"), "invalid_state", "c-1", "ringing");

    expect_replace(&alice, "bob", INVITE("c-2"));
    expect_replace(&bob, "alice", ANSWER("refuse", "c-2"));
    expect_error(&bob, "alice", ANSWER("ringing", "c-2"), "invalid_state", "c-2", "ringing");
    expect_error(&alice, "bob", ANSWER("cancel", "c-2"), "invalid_state", "c-2", "cancel");

    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-3"));
    expect_failure_at(t0 + INVITE_MS, "c-3", "alice", "bob", "no_response");
    expect_error(&alice, "bob", ANSWER("cancel", "c-3"), "invalid_state", "c-3", "cancel");
    expect_error(&bob, "alice", ANSWER("accept", "c-3"), "invalid_state", "c-3", "accept");
    /* The same caller re-using the id of an ended invitation. */
    expect_error(&alice, "bob", INVITE("c-3"), "invalid_state", "c-3", "invite");
    expect_error(&alice, "carol", INVITE("c-3"), "invalid_state", "c-3", "invite");
    assert_int_equal(stats().calls_live, 0);
    assert_int_equal(stats().calls_remembered, 3);
}

static void test_error_duplicate_id(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 100;
    /* Another caller, to the same or another callee. */
    expect_error(&carol, "bob", INVITE("c-1"), "duplicate_id", "c-1", "invite");
    expect_error(&carol, "dave", INVITE("c-1"), "duplicate_id", "c-1", "invite");
    /* The same caller, to a different callee, while the first is live. */
    expect_error(&alice, "carol", INVITE("c-1"), "duplicate_id", "c-1", "invite");
    /* The original is untouched. */
    const cJSON *j = expect_replace(&alice, "bob", INVITE("c-1"));
    assert_event(j, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_int_equal(stats().calls_live, 1);
    /* Remembered after its end: still someone else's id. */
    expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    expect_error(&carol, "bob", INVITE("c-1"), "duplicate_id", "c-1", "invite");
}

static void test_error_self_call(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    expect_error(&alice, "alice", INVITE("c-1"), "self_call", "c-1", "invite");
    expect_error(&alice2, "alice", INVITE("c-1"), "self_call", "c-1", "invite");
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live + s.calls_remembered, 0);
}

static void test_error_busy_limit(void **state)
{
    (void)state;
    T.cfg.busy_limit = 2;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    online(&dave);
    expect_replace(&alice, "bob", INVITE("b-1"));
    expect_replace(&alice, "carol", INVITE("b-2"));
    expect_error(&alice, "dave", INVITE("b-3"), "busy_limit", "b-3", "invite");
    expect_error(&alice, "bob", INVITE("b-3"), "busy_limit", "b-3", "invite");
    /* A re-send is not a new invitation. */
    expect_replace(&alice, "carol", INVITE("b-2"));
    /* Other callers are not limited by alice's calls. */
    expect_replace(&bob, "carol", INVITE("b-4"));
    /* One ends: room for one more. */
    expect_replace(&bob, "alice", ANSWER("refuse", "b-1"));
    expect_replace(&alice, "dave", INVITE("b-3"));
    expect_error(&alice, "dave", INVITE("b-5"), "busy_limit", "b-5", "invite");
}

static void test_error_rate_limited(void **state)
{
    (void)state;
    T.cfg.invite_rate = 3; /* refills 1 per 20 s */
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("r-1"));
    expect_replace(&alice, "bob", INVITE("r-2"));
    expect_replace(&alice, "bob", INVITE("r-3"));
    expect_error(&alice, "bob", INVITE("r-4"), "rate_limited", "r-4", "invite");
    /* A re-send takes no token, and refusals do not drain the bucket. */
    expect_replace(&alice, "bob", INVITE("r-1"));
    expect_replace(&bob, "alice", INVITE("r-9")); /* per caller */
    T.now = t0 + 19999;
    expect_error(&alice, "bob", INVITE("r-4"), "rate_limited", "r-4", "invite");
    T.now = t0 + 20000;
    const cJSON *j = expect_replace(&alice, "bob", INVITE("r-4"));
    assert_event(j, "invite", "r-4", "alice", "bob", "alice", T.now);
    expect_error(&alice, "bob", INVITE("r-5"), "rate_limited", "r-5", "invite");
    T.now = t0 + 40000;
    expect_replace(&alice, "bob", INVITE("r-5"));
    expect_error(&alice, "bob", INVITE("r-6"), "rate_limited", "r-6", "invite");
}

static void test_client_without_uid(void **state)
{
    (void)state;
    boot();
    online(&bob);
    conn(&anon); /* not tracked */
    assert_int_equal(stats().sessions, 1);
    rec_clear();
    assert_int_equal(send_to(&anon, "bob", INVITE("c-1")), RTM_DENY);
    expect_quiet();
    assert_true(T.nlogs > 0);
    assert_int_equal(send_to(&anon, "bob", "junk"), RTM_DENY);
    expect_quiet();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.users, 1);
    /* Topics outside the prefix are not the core's. */
    assert_int_equal(send_raw(&anon, "other/topic", "x", 1, false), RTM_PASS);
    assert_int_equal(send_raw(&bob, "other/topic", "x", 1, true), RTM_PASS);
    expect_quiet();
}

/* ================================================================================
 * Re-sends
 * ================================================================================ */

static void test_resend_invite(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"content\":\"x\","
                   "\"channel\":\"ch\"}");
    T.now += 700;
    const cJSON *j = expect_replace(&alice, "bob",
                                    "{\"type\":\"invite\",\"id\":\"c-1\",\"content\":\"x\","
                                    "\"channel\":\"ch\"}");
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", "content", "channel", "expires_at",
                NULL);
    assert_event(j, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_string_equal(jstr(j, "content"), "x");
    assert_string_equal(jstr(j, "channel"), "ch");
    assert_int_equal(jnum(j, "expires_at"), t0 + INVITE_MS);
    expect_quiet();
    /* From alice's other device too. */
    j = expect_replace(&alice2, "bob", INVITE("c-1"));
    assert_event(j, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_int_equal(stats().calls_live, 1);
    /* The deadline is still counted from the first. */
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "no_response");
}

static void test_resend_ringing(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&bob2);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now = t0 + 500;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    T.now = t0 + 3000;
    const cJSON *j = expect_replace(&bob2, "alice", ANSWER("ringing", "c-1"));
    assert_keys(j, "type", "id", "caller", "callee", "by", "ts", NULL);
    assert_string_equal(jstr(j, "type"), "ringing");
    assert_string_equal(jstr(j, "by"), "bob");
    expect_quiet();
    /* A second ringing does not move the ring deadline. */
    expect_failure_at(t0 + RING_MS, "c-1", "alice", "bob", "expired");
}

static void test_resend_accept(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&bob2);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 100;
    int64_t t1 = T.now;
    expect_replace(&bob, "alice", "{\"type\":\"accept\",\"id\":\"c-1\",\"response\":\"ok\"}");
    char *first = dup_s(T.out);
    T.now += 400;
    /* The same accept again, e.g. a QoS 1 retry: let through with the first
     * ts, and copied to both inboxes again. */
    const cJSON *j =
        expect_replace(&bob, "alice", "{\"type\":\"accept\",\"id\":\"c-1\",\"response\":\"ok\"}");
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", t1);
    assert_string_equal(T.out, first);
    free(first);
    expect_own_copy(&bob);
    /* From bob's other device. */
    j = expect_replace(&bob2, "alice", ANSWER("accept", "c-1"));
    assert_event(j, "accept", "c-1", "alice", "bob", "bob", t1);
    expect_own_copy(&bob2);
    /* A different answer is not a re-send. */
    expect_error(&bob, "alice", ANSWER("refuse", "c-1"), "invalid_state", "c-1", "refuse");
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
    expect_error(&bob, "alice", ANSWER("ringing", "c-1"), "invalid_state", "c-1", "ringing");
    assert_int_equal(stats().calls_remembered, 1);
}

static void test_resend_cancel(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    int64_t t1 = T.now;
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    T.now += 900;
    const cJSON *j = expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_event(j, "cancel", "c-1", "alice", "bob", "alice", t1);
    expect_own_copy(&alice);
    expect_error(&bob, "alice", ANSWER("refuse", "c-1"), "invalid_state", "c-1", "refuse");
}

/* ================================================================================
 * Remembered and forgotten ids
 * ================================================================================ */

static void test_remembered_then_forgotten(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    online(&carol);
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 10;
    int64_t t1 = T.now;
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_int_equal(stats().calls_remembered, 1);

    rec_clear();
    tick_at(t1 + REMEMBER_MS - 1);
    expect_quiet();
    expect_error(&bob, "alice", ANSWER("accept", "c-1"), "invalid_state", "c-1", "accept");
    assert_int_equal(stats().calls_remembered, 1);

    tick_at(t1 + REMEMBER_MS);
    struct rtm_core_stats s = stats();
    assert_int_equal(s.calls_remembered, 0);
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.timers, 0);
    expect_error(&bob, "alice", ANSWER("accept", "c-1"), "unknown_invitation", "c-1", "accept");
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "unknown_invitation", "c-1", "cancel");
    /* Anyone may use the id again. */
    const cJSON *j = expect_replace(&carol, "alice", INVITE("c-1"));
    assert_event(j, "invite", "c-1", "carol", "alice", "carol", T.now);
    assert_int_equal(stats().calls_live, 1);
}

static void test_remembered_for_a_long_ring_timeout(void **state)
{
    (void)state;
    T.cfg.ring_timeout_ms = 90000;
    boot();
    online(&alice);
    online(&bob);
    expect_replace(&alice, "bob", INVITE("c-1"));
    int64_t t1 = T.now;
    expect_replace(&bob, "alice", ANSWER("refuse", "c-1"));
    tick_at(t1 + 60000);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
    tick_at(t1 + 89999);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
    tick_at(t1 + 90000);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "unknown_invitation", "c-1", "cancel");
    expect_replace(&alice, "bob", INVITE("c-1"));
}

/* ================================================================================
 * Timers
 * ================================================================================ */

static void test_timer_peer_offline(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1")); /* bob has never connected */
    assert_int_equal(rtm_core_next_due(T.core, T.now), INVITE_MS);
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "peer_offline");
    assert_int_equal(stats().calls_live, 0);
    expect_error(&alice, "bob", ANSWER("cancel", "c-1"), "invalid_state", "c-1", "cancel");
}

static void test_timer_peer_offline_after_refused_connection(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    offline(&bob); /* seen before the invite, not while it waits */
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now += 500;
    conn(&bob); /* refused by a later authentication source */
    disc(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "peer_offline");

    /* Connecting, not yet confirmed, at the invite; then refused. */
    t0 = T.now;
    conn(&bob);
    expect_replace(&alice, "bob", INVITE("c-2"));
    disc(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-2", "alice", "bob", "peer_offline");
}

static void test_timer_no_response(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    /* Online at the invite, and still online. */
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_failure_at(t0 + INVITE_MS, "c-1", "alice", "bob", "no_response");

    /* Online at the invite, gone before the deadline. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-2"));
    T.now += 100;
    offline(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-2", "alice", "bob", "no_response");

    /* Offline at the invite, then online (confirmed) for a while. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-3"));
    T.now += 300;
    online(&bob);
    T.now += 300;
    offline(&bob);
    expect_failure_at(t0 + INVITE_MS, "c-3", "alice", "bob", "no_response");

    /* Offline at the invite; connects at the deadline's own tick: that tick
     * confirms it (and delivers the invite) before the timer fires. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-4"));
    rec_clear();
    T.now = t0 + INVITE_MS;
    conn(&bob);
    tick();
    assert_string_equal(only_type_on(inbox("bob"), "invite")->client_id, "bob-phone");
    expect_failure("c-4", "alice", "bob", "no_response");
}

static void test_timer_ring_expired(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    T.now = t0 + 1000;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    /* Rung: the invite deadline no longer applies. */
    rec_clear();
    tick_at(t0 + INVITE_MS);
    expect_quiet();
    assert_int_equal(rtm_core_next_due(T.core, T.now), RING_MS - INVITE_MS);
    /* ring_timeout counts from the invite, not from ringing. */
    expect_failure_at(t0 + RING_MS, "c-1", "alice", "bob", "expired");
}

static void test_timer_invite_own_timeout(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    const cJSON *j = expect_replace(&alice, "bob", INVITE_T("c-1", 3));
    assert_int_equal(jnum(j, "expires_at"), t0 + 3000);
    rec_clear();
    tick_at(t0 + INVITE_MS);
    expect_quiet();
    expect_failure_at(t0 + 3000, "c-1", "alice", "bob", "no_response");

    /* Shorter than invite_timeout too. */
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-2", 1));
    expect_failure_at(t0 + 1000, "c-2", "alice", "bob", "no_response");
}

static void test_timer_ring_not_before_invite_timeout(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    const cJSON *j = expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    assert_int_equal(jnum(j, "expires_at"), t0 + 10000);
    T.now = t0 + 1000;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    rec_clear();
    tick_at(t0 + RING_MS);
    expect_quiet();
    expect_failure_at(t0 + 10000, "c-1", "alice", "bob", "expired");
}

static void test_timer_fires_on_first_late_tick(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    rec_clear();
    tick_at(t0 + INVITE_MS + 777); /* the broker's loop was late */
    expect_failure("c-1", "alice", "bob", "peer_offline");
    rec_clear();
    tick();
    expect_quiet();
}

static void test_caller_grace(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    T.now = t0 + 100;
    expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    disc(&alice);
    tick(); /* alice's offline presence */
    assert_int_equal(count_type("failure"), 0);
    assert_int_equal(rtm_core_next_due(T.core, T.now), GRACE_MS);
    expect_failure_at(t0 + 100 + GRACE_MS, "c-1", "alice", "bob", "caller_offline");
    assert_int_equal(stats().calls_live, 0);
}

static void test_caller_grace_counts_from_last_session(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&alice2);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    expect_replace(&alice, "bob", INVITE_T("c-2", 10));
    T.now = t0 + 100;
    offline(&alice);
    rec_clear();
    tick_at(t0 + 100 + GRACE_MS);
    expect_quiet();
    T.now = t0 + 2000;
    offline(&alice2);
    rec_clear();
    tick_at(t0 + 2000 + GRACE_MS - 1);
    expect_quiet();
    tick_at(t0 + 2000 + GRACE_MS);
    /* Every live call alice placed fails. */
    assert_int_equal(count_type("failure"), 4);
    assert_int_equal(count_on(inbox("alice")), 2);
    assert_int_equal(count_on(inbox("bob")), 2);
    for (size_t i = 0; i < T.npubs; i++) {
        assert_string_equal(jstr(T.pubs[i].json, "reason"), "caller_offline");
        assert_int_equal(jnum(T.pubs[i].json, "ts"), T.now);
    }
    assert_int_equal(stats().calls_live, 0);
}

static void test_caller_grace_reconnect(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    T.now = t0 + 100;
    offline(&alice);
    T.now = t0 + 600;
    online(&alice2); /* back, confirmed within grace */
    rec_clear();
    tick_at(t0 + 100 + GRACE_MS);
    expect_quiet();
    tick_at(t0 + 5000);
    expect_quiet();
    assert_int_equal(stats().calls_live, 1);
    assert_int_equal(stats().timers, 1);
    expect_failure_at(t0 + 10000, "c-1", "alice", "bob", "no_response");
}

static void test_caller_grace_refused_reconnect(void **state)
{
    (void)state;
    boot();
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    T.now = t0 + 100;
    offline(&alice);
    T.now = t0 + 600;
    conn(&alice2); /* refused: never confirmed */
    disc(&alice2);
    expect_failure_at(t0 + 100 + GRACE_MS, "c-1", "alice", "bob", "caller_offline");
}

/* ================================================================================
 * Presence
 * ================================================================================ */

static void test_presence_sessions(void **state)
{
    (void)state;
    boot();
    conn(&alice);
    expect_quiet(); /* nothing until the tick */
    T.now += 40;
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "alice", true, 1);
    rec_clear();
    tick();
    expect_quiet();

    T.now += 100;
    conn(&alice2);
    expect_quiet();
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "alice", true, 2);
    rec_clear();

    T.now += 100;
    disc(&alice);
    expect_quiet();
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "alice", true, 1);
    rec_clear();

    T.now += 100;
    disc(&alice2);
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "alice", false, 0);
    rec_clear();
    T.now += 100;
    tick();
    expect_quiet();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.users, 0);
    assert_int_equal(s.sessions, 0);
}

static void test_presence_takeover(void **state)
{
    (void)state;
    boot();
    online(&alice);
    /* The new connection authenticates before the old one is dropped. */
    T.now += 100;
    conn(&alice_again);
    disc(&alice);
    tick();
    expect_quiet();
    assert_int_equal(stats().sessions, 1);
    tick();
    expect_quiet();
    /* The old handle is gone for good; the new session is the live one. */
    disc(&alice);
    tick();
    expect_quiet();
    T.now += 100;
    disc(&alice_again);
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "alice", false, 0);
}

static void test_presence_refused_connection(void **state)
{
    (void)state;
    boot();
    conn(&bob);
    disc(&bob);
    tick();
    expect_quiet();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.users, 0);
    assert_int_equal(s.sessions, 0);
    /* A refused second session does not change an online user's count. */
    online(&bob);
    conn(&bob2);
    disc(&bob2);
    tick();
    expect_quiet();
}

/* A session that lives less than one tick (accepted, publishes, gone) never
 * shows the user online, so there is nothing to publish: the user was
 * offline before and is offline after. */
static void test_presence_short_session_is_not_a_change(void **state)
{
    (void)state;
    boot();
    /* bob has placed a live call, so the core keeps his record. */
    online(&bob);
    expect_replace(&bob, "dave", INVITE_T("c-1", 60));
    offline(&bob);
    conn(&bob);
    expect_error(&bob, "alice", ANSWER("accept", "nope"), "unknown_invitation", "nope", "accept");
    disc(&bob);
    rec_clear();
    tick();
    expect_quiet();

    /* carol is named by nothing: the core frees her record once her
     * offline presence is out. The same short session must stay quiet. */
    online(&carol);
    offline(&carol);
    assert_int_equal(stats().users, 2);
    conn(&carol);
    expect_error(&carol, "alice", ANSWER("accept", "nope"), "unknown_invitation", "nope", "accept");
    disc(&carol);
    rec_clear();
    tick();
    expect_quiet();
}

static void test_presence_confirmed_by_publish(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":60,"
                   "\"channel\":\"room\"}");
    T.now += 30;
    conn(&bob);
    expect_quiet();
    /* bob publishes before any tick: confirmed at once, its pending invite
     * delivered to it, then its request handled. */
    rec_clear();
    const cJSON *j = expect_replace(&bob, "alice", ANSWER("ringing", "c-1"));
    assert_event(j, "ringing", "c-1", "alice", "bob", "bob", T.now);
    const struct pub *p = only_on(inbox("bob"));
    assert_string_equal(p->client_id, "bob-phone");
    assert_event(p->json, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_int_equal(T.npubs, 1);
    /* Presence waits for the tick; the invite is not delivered twice. */
    rec_clear();
    T.now += 20;
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(only_on(presence_topic("bob")), "bob", true, 1);
}

static void test_presence_confirmed_by_subscribe(void **state)
{
    (void)state;
    boot();
    online(&alice);
    expect_replace(&alice, "bob", INVITE_T("c-1", 60));
    conn(&bob);
    rec_clear();
    /* Subscribing confirms it: the invite is delivered once, not twice. */
    assert_int_equal(rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL, 0, T.now),
                     RTM_ACL_ALLOW);
    assert_int_equal(T.npubs, 1);
    assert_string_equal(only_on(inbox("bob"))->client_id, "bob-phone");
    rec_clear();
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "bob", true, 1);
}

/* ================================================================================
 * Pending delivery
 * ================================================================================ */

static void test_pending_delivery(void **state)
{
    (void)state;
    boot();
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":60,"
                   "\"content\":\"hi\",\"channel\":\"room\"}");
    T.now += 100;
    conn(&bob);
    expect_quiet();
    T.now += 50;
    tick();
    assert_int_equal(T.npubs, 2); /* the invite, and bob's presence */
    const struct pub *p = only_on(inbox("bob"));
    assert_string_equal(p->client_id, "bob-phone");
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_keys(p->json, "type", "id", "caller", "callee", "by", "ts", "content", "channel",
                "expires_at", NULL);
    assert_event(p->json, "invite", "c-1", "alice", "bob", "alice", t0);
    assert_string_equal(jstr(p->json, "content"), "hi");
    assert_string_equal(jstr(p->json, "channel"), "room");
    assert_int_equal(jnum(p->json, "expires_at"), t0 + 60000);
    expect_presence(only_on(presence_topic("bob")), "bob", true, 1);
    rec_clear();
    tick();
    expect_quiet();

    /* Subscribing to its inbox again (a confirmed session) re-delivers. */
    assert_int_equal(rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL, 0, T.now),
                     RTM_ACL_ALLOW);
    p = only_on(inbox("bob"));
    assert_int_equal(T.npubs, 1);
    assert_string_equal(p->client_id, "bob-phone");
    assert_event(p->json, "invite", "c-1", "alice", "bob", "alice", t0);
    rec_clear();
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, "rtm/u/bob/#", NULL, 0, T.now),
        RTM_ACL_ALLOW);
    assert_int_equal(T.npubs, 1);
    assert_string_equal(only_on(inbox("bob"))->client_id, "bob-phone");
    rec_clear();
    /* A filter that does not cover the inbox: nothing. */
    assert_int_equal(
        rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, "rtm/presence/+", NULL, 0, T.now),
        RTM_ACL_ALLOW);
    expect_quiet();

    /* A second device gets it on its own. */
    conn(&bob2);
    tick();
    assert_int_equal(count_on(inbox("bob")), 1);
    assert_string_equal(only_on(inbox("bob"))->client_id, "bob-tablet");
    expect_presence(only_on(presence_topic("bob")), "bob", true, 2);

    /* Ended invitations are not delivered. */
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    rec_clear();
    assert_int_equal(rtm_core_acl(T.core, &bob, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL, 0, T.now),
                     RTM_ACL_ALLOW);
    expect_quiet();
    offline(&bob2);
    conn(&bob2);
    tick();
    assert_int_equal(count_on(inbox("bob")), 0);
}

/* ================================================================================
 * ACL
 * ================================================================================ */

static enum rtm_acl acl(const struct rtm_client *c, enum rtm_access access, const char *topic,
                        const char *payload)
{
    return rtm_core_acl(T.core, c, access, topic, payload, payload ? strlen(payload) : 0, T.now);
}

static void test_acl_presence_read(void **state)
{
    (void)state;
    boot();
    online(&alice);
    const char *stale = "{\"uid\":\"bob\",\"online\":true,\"sessions\":1,\"ts\":1}";
    const char *gone = "{\"uid\":\"bob\",\"online\":false,\"ts\":1}";

    /* A retained online left over from before a restart. */
    T.now += 5;
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, presence_topic("bob"), stale), RTM_ACL_DENY);
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "bob", false, 0);
    rec_clear();
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, presence_topic("bob"), gone), RTM_ACL_ALLOW);
    expect_quiet();

    /* bob online: true. */
    online(&bob);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, presence_topic("bob"), stale), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, presence_topic("bob"), gone), RTM_ACL_ALLOW);
    expect_quiet();

    /* bob gone, its offline not yet published: refused, and exactly one
     * offline follows. */
    disc(&bob);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, presence_topic("bob"), stale), RTM_ACL_DENY);
    tick();
    assert_int_equal(T.npubs, 1);
    expect_presence(&T.pubs[0], "bob", false, 0);
    rec_clear();

    /* Nobody may publish presence. */
    assert_int_equal(acl(&bob, RTM_ACCESS_WRITE, presence_topic("bob"), gone), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, presence_topic("bob"), gone), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, presence_topic("alice"), stale), RTM_ACL_DENY);
    expect_quiet();
}

static void test_acl_topics(void **state)
{
    (void)state;
    struct rtm_option opt = {"admin_users", "root"};
    char err[256];
    assert_int_equal(rtm_config_parse(&T.cfg, &opt, 1, err, sizeof(err)), 0);
    T.cfg.invite_timeout_ms = INVITE_MS;
    T.cfg.ring_timeout_ms = RING_MS;
    T.cfg.caller_grace_ms = GRACE_MS;
    T.cfg.push_fallback_ms = 0;
    boot();

    /* Inboxes: anyone may write; only the owner (or an admin) may read. */
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, inbox("bob"), "{}"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, inbox("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&bob, RTM_ACCESS_READ, inbox("bob"), "{}"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_READ, inbox("bob"), "{}"), RTM_ACL_ALLOW);
    /* Devices: the owner or an admin. */
    assert_int_equal(acl(&bob, RTM_ACCESS_WRITE, "rtm/u/bob/devices/phone", "{}"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtm/u/bob/devices/phone", "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "rtm/u/bob/devices/phone", "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&root, RTM_ACCESS_READ, "rtm/u/bob/devices/phone", "{}"), RTM_ACL_ALLOW);
    /* Anything else under the prefix. */
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtm/other", "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "rtm/u/alice/x", "{}"), RTM_ACL_DENY);

    /* Subscriptions. */
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/#", NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/u/+/call", NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/u/#", NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/+/bob/call", NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, inbox("bob"), NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/presence/+", NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/presence/#", NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/presence/bob", NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, inbox("alice"), NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/u/alice/#", NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/u/alice/devices/+", NULL),
                     RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_SUBSCRIBE, "rtm/#", NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_SUBSCRIBE, "rtm/u/+/call", NULL), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_UNSUBSCRIBE, "rtm/#", NULL), RTM_ACL_ALLOW);

    /* Outside the prefix: other_topics decides. */
    assert_false(rtm_core_owns_topic(T.core, "other/topic"));
    assert_false(rtm_core_owns_topic(T.core, "rtmx/u/bob/call"));
    assert_true(rtm_core_owns_topic(T.core, "rtm/u/bob/call"));
    assert_true(rtm_core_owns_topic(T.core, "rtm"));
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "other/topic", "x"), RTM_ACL_DEFER);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtmx/u/bob/call", "x"), RTM_ACL_DEFER);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, "other/topic", "x"), RTM_ACL_DEFER);
    T.cfg.other_topics = RTM_OTHER_ALLOW;
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "other/topic", "x"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtmx/u/bob/call", "x"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, "other/topic", "x"), RTM_ACL_ALLOW);

    /* No valid uid: nothing under the prefix. */
    assert_int_equal(acl(&anon, RTM_ACCESS_READ, presence_topic("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, inbox("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_READ, inbox("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, "rtm/u/bob/devices/phone", "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_SUBSCRIBE, "rtm/presence/+", NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_SUBSCRIBE, "rtm/presence/bob", NULL), RTM_ACL_DENY);
    expect_quiet();
}

static void test_identity_uid(void **state)
{
    (void)state;
    struct rtm_config *cfg = &T.cfg;
    const char *uid;

    cfg->identity = RTM_IDENTITY_AUTO;
    assert_string_equal(rtm_identity_uid(cfg, "bob", "cid-1"), "bob");
    assert_string_equal(rtm_identity_uid(cfg, NULL, "cid-1"), "cid-1");
    /* A username is used when there is one, even when it is invalid. */
    assert_null(rtm_identity_uid(cfg, "bad uid", "cid-1"));
    assert_null(rtm_identity_uid(cfg, NULL, NULL));

    cfg->identity = RTM_IDENTITY_USERNAME;
    assert_string_equal(rtm_identity_uid(cfg, "bob", "cid-1"), "bob");
    assert_null(rtm_identity_uid(cfg, NULL, "cid-1"));

    cfg->identity = RTM_IDENTITY_CLIENTID;
    assert_string_equal(rtm_identity_uid(cfg, "bob", "cid-1"), "cid-1");
    assert_null(rtm_identity_uid(cfg, "bob", NULL));

    cfg->identity = RTM_IDENTITY_AUTO;
    uid = rtm_identity_uid(cfg, "A-z.0_9@x", NULL);
    assert_non_null(uid);
    assert_string_equal(uid, "A-z.0_9@x");
    char name[80];
    memset(name, 'a', sizeof(name));
    name[64] = '\0';
    assert_non_null(rtm_identity_uid(cfg, name, NULL)); /* 64: the longest */
    name[64] = 'a';
    name[65] = '\0';
    assert_null(rtm_identity_uid(cfg, name, NULL));
    assert_null(rtm_identity_uid(cfg, "", NULL));
    assert_null(rtm_identity_uid(cfg, "a/b", NULL));
    assert_null(rtm_identity_uid(cfg, "a+", NULL));
    assert_null(rtm_identity_uid(cfg, "#", NULL));
    assert_null(rtm_identity_uid(cfg, "caf\xc3\xa9", NULL));
    assert_null(rtm_identity_uid(cfg, NULL, "has space"));
}

/* ================================================================================
 * Stats and next_due
 * ================================================================================ */

static void test_stats_and_next_due(void **state)
{
    (void)state;
    boot();
    struct rtm_core_stats s = stats();
    assert_int_equal(s.users, 0);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.calls_remembered, 0);
    assert_int_equal(s.timers, 0);
    assert_int_equal(rtm_core_next_due(T.core, T.now), -1);

    conn(&alice);
    conn(&alice2);
    s = stats();
    assert_int_equal(s.users, 1);
    assert_int_equal(s.sessions, 2); /* unconfirmed count too */
    tick();

    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE("c-1"));
    expect_replace(&alice, "carol", INVITE_T("c-2", 1));
    s = stats();
    assert_int_equal(s.users, 3);
    assert_int_equal(s.calls_live, 2);
    assert_int_equal(s.timers, 2);
    assert_int_equal(rtm_core_next_due(T.core, t0), 1000);
    assert_int_equal(rtm_core_next_due(T.core, t0 + 400), 600);
    assert_int_equal(rtm_core_next_due(T.core, t0 + 5000), 0);

    tick_at(t0 + 1000); /* c-2 fails */
    s = stats();
    assert_int_equal(s.calls_live, 1);
    assert_int_equal(s.calls_remembered, 1);
    assert_int_equal(s.timers, 2);
    assert_int_equal(rtm_core_next_due(T.core, T.now), INVITE_MS - 1000);

    /* alice's sessions end: the grace timer joins. */
    T.now = t0 + 1200;
    disc(&alice);
    disc(&alice2);
    tick();
    s = stats();
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.timers, 3);
    assert_int_equal(rtm_core_next_due(T.core, T.now), INVITE_MS - 1200);

    tick_at(t0 + INVITE_MS); /* c-1 fails; the grace timer goes with it */
    s = stats();
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.calls_remembered, 2);
    assert_int_equal(s.timers, 2);
    assert_int_equal(s.users, 3); /* named by remembered calls */
    assert_int_equal(rtm_core_next_due(T.core, T.now), REMEMBER_MS - 1000);

    tick_at(t0 + 1000 + REMEMBER_MS);
    assert_int_equal(stats().calls_remembered, 1);
    tick_at(t0 + INVITE_MS + REMEMBER_MS);
    s = stats();
    assert_int_equal(s.users, 0);
    assert_int_equal(s.sessions, 0);
    assert_int_equal(s.calls_live, 0);
    assert_int_equal(s.calls_remembered, 0);
    assert_int_equal(s.timers, 0);
    assert_int_equal(rtm_core_next_due(T.core, T.now), -1);
}

/* ================================================================================
 * Push seam
 * ================================================================================ */

static void expect_push(const struct pushed *p, enum rtm_push_kind kind, const char *id,
                        const char *caller, const char *callee, const char *channel,
                        int64_t expires_at)
{
    assert_int_equal(p->kind, kind);
    assert_string_equal(p->call_id, id);
    assert_string_equal(p->caller, caller);
    assert_string_equal(p->callee, callee);
    assert_string_equal(p->channel, channel);
    assert_int_equal(p->expires_at, expires_at);
    assert_int_equal(p->now_ms, T.now);
    assert_true(p->has_why);
}

/* An offline callee is pushed once, at the invite; the fallback (for an
 * online callee that has not rung) does not push it again. */
static void test_push_offline_callee(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 5000;
    boot();
    rtm_core_set_push(T.core, rec_push, &T);
    online(&alice);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob",
                   "{\"type\":\"invite\",\"id\":\"c-1\",\"timeout\":10,\"channel\":\"room\"}");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "alice", "bob", "room", t0 + 10000);
    rec_clear();
    for (T.now = t0 + 100; T.now < t0 + 10000; T.now += 100)
        tick();
    if (T.npushes)
        print_error("pushed again at %" PRId64 " ms after the invite\n", T.pushes[0].now_ms - t0);
    assert_int_equal(T.npushes, 0);
    expect_quiet();
    /* Unanswered: the devices are told to stop ringing. */
    tick_at(t0 + 10000);
    expect_failure("c-1", "alice", "bob", "peer_offline");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "alice", "bob", "room", t0 + 10000);
}

static void test_push_fallback_online_callee(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 5000;
    boot();
    rtm_core_set_push(T.core, rec_push, &T);
    online(&alice);
    online(&bob);
    int64_t t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    assert_int_equal(T.npushes, 0);
    tick_at(t0 + 4999);
    assert_int_equal(T.npushes, 0);
    tick_at(t0 + 5000);
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "alice", "bob", "", t0 + 10000);
    expect_quiet(); /* the push does not end the call */
    assert_int_equal(stats().calls_live, 1);
    assert_int_equal(rtm_core_next_due(T.core, T.now), 5000);
    rec_clear();
    expect_failure_at(t0 + 10000, "c-1", "alice", "bob", "no_response");

    /* Rung in time: no fallback; accepted: no cancel push. */
    rec_clear();
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-2", 10));
    expect_replace(&bob, "alice", ANSWER("ringing", "c-2"));
    tick_at(t0 + 5000);
    assert_int_equal(T.npushes, 0);
    expect_replace(&bob, "alice", ANSWER("accept", "c-2"));
    assert_int_equal(T.npushes, 0);

    /* A fallback shorter than the invite timeout only. */
    rec_clear();
    t0 = T.now;
    expect_replace(&alice, "bob", INVITE_T("c-3", 5));
    tick_at(t0 + 5000);
    expect_failure("c-3", "alice", "bob", "no_response");
    assert_int_equal(T.npushes, 0);
}

static void test_push_cancel_only_when_pushed(void **state)
{
    (void)state;
    boot();
    rtm_core_set_push(T.core, rec_push, &T);
    online(&alice);
    expect_replace(&alice, "bob", INVITE_T("c-1", 10));
    assert_int_equal(T.npushes, 1);
    rec_clear();
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "alice", "bob", "", T.now + 10000);
    /* A re-sent cancel does not push again. */
    rec_clear();
    T.now += 10;
    expect_replace(&alice, "bob", ANSWER("cancel", "c-1"));
    assert_int_equal(T.npushes, 0);

    /* Accepted: no cancel push. */
    expect_replace(&alice, "bob", INVITE_T("c-2", 10));
    online(&bob);
    rec_clear();
    expect_replace(&bob, "alice", ANSWER("accept", "c-2"));
    assert_int_equal(T.npushes, 0);

    /* push_on_cancel off. */
    T.cfg.push_on_cancel = false;
    expect_replace(&alice, "carol", INVITE_T("c-3", 10));
    assert_int_equal(T.npushes, 1);
    rec_clear();
    expect_replace(&alice, "carol", ANSWER("cancel", "c-3"));
    assert_int_equal(T.npushes, 0);
}

/* ================================================================================
 * Property test
 * ================================================================================ */

#define P_UIDS    6
#define P_HANDLES 2
#define P_IDS     12
#define P_STEPS   20000

enum { TY_INVITE, TY_RINGING, TY_ACCEPT, TY_REFUSE, TY_CANCEL, TY_FAILURE };
static const char *const ty_names[] = {"invite", "ringing", "accept",
                                       "refuse", "cancel",  "failure"};

enum { E_BAD, E_UNKNOWN, E_NOT_PARTY, E_STATE, E_DUP, E_SELF, E_RATE, E_BUSY, E_COUNT };
static const char *const err_names[] = {"bad_request",   "unknown_invitation", "not_party",
                                        "invalid_state", "duplicate_id",       "self_call",
                                        "rate_limited",  "busy_limit"};

enum { R_PEER_OFFLINE, R_NO_RESPONSE, R_EXPIRED, R_CALLER_OFFLINE, R_COUNT };
static const char *const reason_names[] = {"peer_offline", "no_response", "expired",
                                           "caller_offline"};

enum mstate { M_FREE, M_PENDING, M_RINGING, M_ENDED };

struct mcall {
    enum mstate st;
    unsigned gen; /* how many invitations have used this id */
    int caller, callee;
    int64_t created, invite_due, ring_due, forget_due;
    bool seen; /* the callee had a confirmed session while pending */
    char content[16], channel[16];
    int ending;   /* TY_* of the ending */
    int ended_by; /* uid index, -1: the server */
    int reason;   /* R_* when failed */
    int64_t ended_ts;
    int fail_pubs[2]; /* failure publishes in this step: to the caller, the callee */
};

struct muser {
    bool connected[P_HANDLES];
    bool confirmed[P_HANDLES];
    int64_t grace_due; /* -1: not armed */
    bool shown;        /* presence published */
    bool shown_online;
    int64_t shown_sessions;
};

static struct {
    uint64_t seed, rng;
    size_t step;
    char uid[P_UIDS][8];
    char cid[P_UIDS][P_HANDLES][16];
    char id[P_IDS][8];
    char handle[P_UIDS][P_HANDLES];
    struct rtm_client cl[P_UIDS][P_HANDLES];
    struct muser u[P_UIDS];
    struct mcall c[P_IDS];
    int deliveries[P_IDS][P_UIDS][P_HANDLES]; /* invites due to each session in this step */
    /* what the run covered */
    size_t replaced[5], errors[E_COUNT], failures[R_COUNT], reused, resends, redelivered, presence;
    size_t unchanged; /* presence published though the last one said the same */
    char unchanged_example[256];
} M;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("seed %" PRIu64 ", step %zu, now T0+%" PRId64 ": ", M.seed, M.step,        \
                        T.now - T0);                                                               \
            print_error(__VA_ARGS__);                                                              \
            print_error("\n");                                                                     \
            fail();                                                                                \
        }                                                                                          \
    } while (0)

static uint64_t rnd(void)
{
    uint64_t z = (M.rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int rnd_below(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

static int p_uid_index(const char *uid)
{
    for (int u = 0; u < P_UIDS; u++) {
        if (strcmp(M.uid[u], uid) == 0)
            return u;
    }
    return -1;
}

static int p_id_index(const char *id)
{
    for (int k = 0; k < P_IDS; k++) {
        if (strcmp(M.id[k], id) == 0)
            return k;
    }
    return -1;
}

static int p_handle_index(int u, const char *cid)
{
    for (int h = 0; h < P_HANDLES; h++) {
        if (cid && strcmp(M.cid[u][h], cid) == 0)
            return h;
    }
    return -1;
}

/* The uid whose inbox `topic` is, or -1. */
static int p_inbox_owner(const char *topic)
{
    for (int u = 0; u < P_UIDS; u++) {
        if (strcmp(inbox(M.uid[u]), topic) == 0)
            return u;
    }
    return -1;
}

static int p_connected(int u)
{
    int n = 0;
    for (int h = 0; h < P_HANDLES; h++)
        n += M.u[u].connected[h];
    return n;
}

static bool p_any_confirmed(int u)
{
    for (int h = 0; h < P_HANDLES; h++) {
        if (M.u[u].confirmed[h])
            return true;
    }
    return false;
}

static bool p_live(const struct mcall *c)
{
    return c->st == M_PENDING || c->st == M_RINGING;
}

static bool p_has_live_out(int u)
{
    for (int k = 0; k < P_IDS; k++) {
        if (p_live(&M.c[k]) && M.c[k].caller == u)
            return true;
    }
    return false;
}

static const char *p_str(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(it) ? it->valuestring : "(missing)";
}

static int64_t p_num(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(it) ? (int64_t)it->valuedouble : INT64_MIN;
}

/* A session is confirmed: grace is off, its live incoming calls are seen
 * and each is delivered to it. */
static void p_confirm(int u, int h)
{
    M.u[u].confirmed[h] = true;
    M.u[u].grace_due = -1;
    for (int k = 0; k < P_IDS; k++) {
        if (p_live(&M.c[k]) && M.c[k].callee == u) {
            M.c[k].seen = true;
            M.deliveries[k][u][h]++;
        }
    }
}

static void p_end(int k, int ending, int by, int reason)
{
    struct mcall *c = &M.c[k];
    c->st = M_ENDED;
    c->ending = ending;
    c->ended_by = by;
    c->reason = reason;
    c->ended_ts = T.now;
    c->forget_due = T.now + (RING_MS > REMEMBER_MS ? RING_MS : REMEMBER_MS);
    if (!p_has_live_out(c->caller))
        M.u[c->caller].grace_due = -1;
}

/* Fields every call event carries. */
static void p_check_event(const char *raw, const cJSON *j, int k, const char *type, const char *by,
                          int64_t ts)
{
    const struct mcall *c = &M.c[k];
    CHECK(j && strcmp(p_str(j, "type"), type) == 0 && strcmp(p_str(j, "id"), M.id[k]) == 0 &&
              strcmp(p_str(j, "caller"), M.uid[c->caller]) == 0 &&
              strcmp(p_str(j, "callee"), M.uid[c->callee]) == 0 &&
              strcmp(p_str(j, "by"), by) == 0 && p_num(j, "ts") == ts,
          "expected %s of %s (gen %u) %s -> %s by %s at T0+%" PRId64 ", got %s", type, M.id[k],
          c->gen, M.uid[c->caller], M.uid[c->callee], by, ts - T0, raw);
}

static void p_check_invite_fields(const char *raw, const cJSON *j, int k)
{
    const struct mcall *c = &M.c[k];
    p_check_event(raw, j, k, "invite", M.uid[c->caller], c->created);
    CHECK(cJSON_GetArraySize(j) == 9 && p_num(j, "expires_at") == c->invite_due &&
              strcmp(p_str(j, "content"), c->content) == 0 &&
              strcmp(p_str(j, "channel"), c->channel) == 0,
          "invite fields: %s", raw);
}

/* An invite published by the core itself: a delivery to a confirmed session. */
static void p_delivery(const struct pub *p, int u)
{
    int k = p_id_index(p_str(p->json, "id"));
    int h = p_handle_index(u, p->client_id);
    CHECK(k >= 0 && h >= 0, "invite delivered to an unknown session: %s %s", p->topic, p->payload);
    CHECK(p_live(&M.c[k]) && M.c[k].callee == u,
          "invite of %s delivered, but it is not live for %s: %s", M.id[k], M.uid[u], p->payload);
    CHECK(M.deliveries[k][u][h] > 0, "invite of %s delivered to %s unasked (or twice)", M.id[k],
          p->client_id);
    M.deliveries[k][u][h]--;
    p_check_invite_fields(p->payload, p->json, k);
    M.redelivered++;
}

static void p_deliveries_done(void)
{
    for (int k = 0; k < P_IDS; k++) {
        for (int u = 0; u < P_UIDS; u++) {
            for (int h = 0; h < P_HANDLES; h++) {
                CHECK(M.deliveries[k][u][h] == 0, "invite %s was not delivered to %s", M.id[k],
                      M.cid[u][h]);
            }
        }
    }
}

/* A failure published to inbox `u`. */
static void p_failure(const struct pub *p, int u)
{
    int k = p_id_index(p_str(p->json, "id"));
    CHECK(k >= 0, "failure of an unknown id: %s", p->payload);
    struct mcall *c = &M.c[k];
    CHECK(!p->client_id && p->qos == 1 && !p->retain, "failure not to every subscriber: %s",
          p->payload);
    int r = -1;
    for (int i = 0; i < R_COUNT; i++) {
        if (strcmp(p_str(p->json, "reason"), reason_names[i]) == 0)
            r = i;
    }
    CHECK(r >= 0, "failure without a known reason: %s", p->payload);
    if (p_live(c)) {
        bool due = false;
        switch (r) {
        case R_PEER_OFFLINE:
        case R_NO_RESPONSE:
            due = c->st == M_PENDING && c->invite_due <= T.now && c->seen == (r == R_NO_RESPONSE);
            break;
        case R_EXPIRED:
            due = c->st == M_RINGING && c->ring_due <= T.now;
            break;
        case R_CALLER_OFFLINE:
            due = p_connected(c->caller) == 0 && M.u[c->caller].grace_due >= 0 &&
                  M.u[c->caller].grace_due <= T.now;
            break;
        }
        CHECK(due,
              "%s of %s (%s, created T0+%" PRId64 ", invite due T0+%" PRId64
              ", ring due T0+%" PRId64 ", seen %d, caller sessions %d, grace due %" PRId64
              ") is not due",
              reason_names[r], M.id[k], c->st == M_PENDING ? "pending" : "ringing", c->created - T0,
              c->invite_due - T0, c->ring_due - T0, c->seen, p_connected(c->caller),
              M.u[c->caller].grace_due);
        p_end(k, TY_FAILURE, -1, r);
        M.failures[r]++;
    }
    CHECK(c->st == M_ENDED && c->ending == TY_FAILURE && c->reason == r && c->ended_ts == T.now,
          "a second, different ending of %s: %s", M.id[k], p->payload);
    p_check_event(p->payload, p->json, k, "failure", "server", T.now);
    CHECK(cJSON_GetArraySize(p->json) == 7, "failure fields: %s", p->payload);
    CHECK(u == c->caller || u == c->callee, "failure of %s to a third inbox", M.id[k]);
    c->fail_pubs[u == c->caller ? 0 : 1]++;
}

static void p_presence(const struct pub *p)
{
    int u = p_uid_index(p->topic + strlen("rtm/presence/"));
    CHECK(u >= 0 && p->retain && p->qos == 1 && !p->client_id, "bad presence publish %s %s",
          p->topic, p->payload);
    int n = p_connected(u);
    const cJSON *on = cJSON_GetObjectItemCaseSensitive(p->json, "online");
    CHECK(cJSON_IsBool(on) && cJSON_IsTrue(on) == (n > 0) &&
              strcmp(p_str(p->json, "uid"), M.uid[u]) == 0 && p_num(p->json, "ts") == T.now &&
              cJSON_GetArraySize(p->json) == (n > 0 ? 4 : 3) &&
              (n == 0 || p_num(p->json, "sessions") == n),
          "presence of %s with %d sessions: %s", M.uid[u], n, p->payload);
    struct muser *mu = &M.u[u];
    /* Checked at the end of the run, so that one known kind of failure does
     * not hide the others. */
    if (mu->shown && mu->shown_online == (n > 0) && (n == 0 || mu->shown_sessions == n) &&
        M.unchanged++ == 0)
        snprintf(M.unchanged_example, sizeof(M.unchanged_example),
                 "step %zu: %s on %s, as already shown", M.step, p->payload, p->topic);
    mu->shown = true;
    mu->shown_online = n > 0;
    mu->shown_sessions = n;
    M.presence++;
}

/* Counters that must agree with the model after every step. */
static void p_check_stats(bool after_tick)
{
    struct rtm_core_stats s = stats();
    size_t sessions = 0, live = 0, ended = 0, graces = 0, users = 0;
    int64_t due = INT64_MAX;
    for (int u = 0; u < P_UIDS; u++) {
        sessions += (size_t)p_connected(u);
        if (M.u[u].grace_due >= 0) {
            graces++;
            due = M.u[u].grace_due < due ? M.u[u].grace_due : due;
        }
        bool needed = p_connected(u) > 0;
        for (int k = 0; k < P_IDS; k++)
            needed |= M.c[k].st != M_FREE && (M.c[k].caller == u || M.c[k].callee == u);
        users += needed;
    }
    for (int k = 0; k < P_IDS; k++) {
        const struct mcall *c = &M.c[k];
        int64_t d = INT64_MAX;
        if (c->st == M_PENDING)
            d = c->invite_due;
        else if (c->st == M_RINGING)
            d = c->ring_due;
        else if (c->st == M_ENDED)
            d = c->forget_due;
        due = d < due ? d : due;
        live += p_live(c);
        ended += c->st == M_ENDED;
    }
    CHECK(s.sessions == sessions, "sessions %zu, expected %zu", s.sessions, sessions);
    CHECK(s.calls_live == live, "calls_live %zu, expected %zu", s.calls_live, live);
    CHECK(s.calls_remembered == ended, "calls_remembered %zu, expected %zu", s.calls_remembered,
          ended);
    CHECK(s.timers == live + ended + graces, "timers %zu, expected %zu calls + %zu graces",
          s.timers, live + ended, graces);
    int64_t next = rtm_core_next_due(T.core, T.now);
    int64_t expect = due == INT64_MAX ? -1 : due > T.now ? due - T.now : 0;
    CHECK(next == expect, "next_due %" PRId64 ", expected %" PRId64, next, expect);
    if (after_tick)
        CHECK(s.users == users, "users %zu, expected %zu", s.users, users);
}

static void p_tick(void)
{
    for (int u = 0; u < P_UIDS; u++) {
        for (int h = 0; h < P_HANDLES; h++) {
            if (M.u[u].connected[h] && !M.u[u].confirmed[h])
                p_confirm(u, h);
        }
    }
    for (int k = 0; k < P_IDS; k++)
        M.c[k].fail_pubs[0] = M.c[k].fail_pubs[1] = 0;
    rec_clear();
    tick();
    for (size_t i = 0; i < T.npubs; i++) {
        const struct pub *p = &T.pubs[i];
        CHECK(p->json, "not JSON: %s", p->payload);
        if (strncmp(p->topic, "rtm/presence/", 13) == 0) {
            p_presence(p);
            continue;
        }
        int u = p_inbox_owner(p->topic);
        CHECK(u >= 0, "publish to %s", p->topic);
        const char *type = p_str(p->json, "type");
        if (strcmp(type, "invite") == 0)
            p_delivery(p, u);
        else if (strcmp(type, "failure") == 0)
            p_failure(p, u);
        else
            CHECK(false, "unexpected publish in a tick: %s %s", p->topic, p->payload);
    }
    p_deliveries_done();
    for (int k = 0; k < P_IDS; k++) {
        struct mcall *c = &M.c[k];
        CHECK(c->fail_pubs[0] == c->fail_pubs[1] && c->fail_pubs[0] <= 1,
              "failure of %s published %d times to the caller, %d to the callee", M.id[k],
              c->fail_pubs[0], c->fail_pubs[1]);
        if (c->st == M_ENDED && c->forget_due <= T.now)
            c->st = M_FREE;
        CHECK(!(c->st == M_PENDING && c->invite_due <= T.now),
              "%s still pending after its invite deadline", M.id[k]);
        CHECK(!(c->st == M_RINGING && c->ring_due <= T.now),
              "%s still ringing after its ring deadline", M.id[k]);
    }
    for (int u = 0; u < P_UIDS; u++) {
        struct muser *mu = &M.u[u];
        CHECK(mu->grace_due < 0 || mu->grace_due > T.now, "caller_grace of %s did not fire",
              M.uid[u]);
        int n = p_connected(u);
        CHECK(n > 0 ? mu->shown && mu->shown_online && mu->shown_sessions == n
                    : !mu->shown || !mu->shown_online,
              "presence of %s (%d sessions) not published", M.uid[u], n);
    }
    p_check_stats(true);
}

static void p_connect(int u, int h)
{
    M.u[u].connected[h] = true;
    M.u[u].confirmed[h] = false;
    rec_clear();
    conn(&M.cl[u][h]);
    CHECK(T.npubs == 0, "connect published %s", T.npubs ? T.pubs[0].payload : "");
}

static void p_disconnect(int u, int h)
{
    M.u[u].connected[h] = false;
    M.u[u].confirmed[h] = false;
    if (p_connected(u) == 0 && p_has_live_out(u) && M.u[u].grace_due < 0)
        M.u[u].grace_due = T.now + GRACE_MS;
    rec_clear();
    disc(&M.cl[u][h]);
    CHECK(T.npubs == 0, "disconnect published %s", T.npubs ? T.pubs[0].payload : "");
}

static bool p_pick_handle(int u, int *h)
{
    int n = p_connected(u);
    if (n == 0)
        return false;
    int pick = rnd_below(n);
    for (int i = 0; i < P_HANDLES; i++) {
        if (M.u[u].connected[i] && pick-- == 0) {
            *h = i;
            return true;
        }
    }
    return false;
}

static bool p_pick_any(int *u, int *h)
{
    int start = rnd_below(P_UIDS);
    for (int i = 0; i < P_UIDS; i++) {
        *u = (start + i) % P_UIDS;
        if (p_pick_handle(*u, h))
            return true;
    }
    return false;
}

/* The errors the protocol allows for this request (any of them when several
 * apply); 0 when it must be let through. */
static unsigned p_predict(int type, int k, int s, int t)
{
    const struct mcall *c = &M.c[k];
    unsigned e = 0;
    if (type == TY_INVITE) {
        if (s == t)
            e |= 1u << E_SELF;
        if (p_live(c) && !(c->caller == s && c->callee == t))
            e |= 1u << E_DUP;
        if (c->st == M_ENDED)
            e |= 1u << (c->caller == s ? E_STATE : E_DUP);
        return e;
    }
    if (c->st == M_FREE)
        return 1u << E_UNKNOWN;
    int party = type == TY_CANCEL ? c->caller : c->callee;
    int other = type == TY_CANCEL ? c->callee : c->caller;
    if (s != party)
        e |= 1u << E_NOT_PARTY;
    if (t != other)
        e |= 1u << E_BAD;
    if (c->st == M_ENDED && !(type == c->ending && s == c->ended_by))
        e |= 1u << E_STATE;
    return e;
}

/* The request was let through: check the stamped event, update the model. */
static void p_replaced(int type, int k, int s, int t, int timeout, const char *content,
                       const char *channel, const char *response)
{
    struct mcall *c = &M.c[k];
    const cJSON *j = T.out_json;
    M.replaced[type]++;
    switch (type) {
    case TY_INVITE:
        if (c->st == M_FREE) {
            M.reused += c->gen > 0;
            c->gen++;
            c->st = M_PENDING;
            c->caller = s;
            c->callee = t;
            c->created = T.now;
            c->invite_due = T.now + (timeout ? timeout * 1000 : INVITE_MS);
            c->ring_due = T.now + RING_MS > c->invite_due ? T.now + RING_MS : c->invite_due;
            c->seen = p_any_confirmed(t);
            snprintf(c->content, sizeof(c->content), "%s", content ? content : "");
            snprintf(c->channel, sizeof(c->channel), "%s", channel ? channel : "");
        } else {
            M.resends++;
        }
        p_check_invite_fields(T.out, j, k);
        break;
    case TY_RINGING:
        if (c->st == M_PENDING)
            c->st = M_RINGING;
        p_check_event(T.out, j, k, "ringing", M.uid[s], T.now);
        CHECK(cJSON_GetArraySize(j) == 6, "ringing fields: %s", T.out);
        break;
    default:
        if (p_live(c))
            p_end(k, type, s, -1);
        else
            M.resends++;
        p_check_event(T.out, j, k, ty_names[type], M.uid[s], c->ended_ts);
        CHECK(cJSON_GetArraySize(j) == (response ? 7 : 6) &&
                  (!response || strcmp(p_str(j, "response"), response) == 0),
              "%s fields: %s", ty_names[type], T.out);
        break;
    }
}

static void p_request(void)
{
    int type = rnd_below(5), k = rnd_below(P_IDS);
    const struct mcall *c = &M.c[k];
    int s = -1, h = -1, t = -1;
    /* Mostly requests that make sense, so calls get somewhere. */
    if (type != TY_INVITE && c->st != M_FREE && rnd_below(10) < 7) {
        int party = type == TY_CANCEL ? c->caller : c->callee;
        if (p_pick_handle(party, &h)) {
            s = party;
            t = type == TY_CANCEL ? c->callee : c->caller;
        }
    } else if (type == TY_INVITE && p_live(c) && rnd_below(10) < 3) {
        if (p_pick_handle(c->caller, &h)) {
            s = c->caller;
            t = c->callee;
        }
    }
    if (s < 0) {
        if (!p_pick_any(&s, &h))
            return;
        t = rnd_below(P_UIDS);
        if (type == TY_INVITE && t == s && rnd_below(10) < 8)
            t = (s + 1 + rnd_below(P_UIDS - 1)) % P_UIDS;
    }

    char json[256];
    int timeout = 0;
    const char *content = NULL, *channel = NULL, *response = NULL;
    int n = snprintf(json, sizeof(json), "{\"type\":\"%s\",\"id\":\"%s\"", ty_names[type], M.id[k]);
    if (type == TY_INVITE) {
        if (rnd_below(3) == 0)
            timeout = 1 + rnd_below(6);
        if (rnd_below(3) == 0)
            content = rnd_below(2) ? "hello" : "{\\\"v\\\":1}";
        if (rnd_below(3) == 0)
            channel = rnd_below(2) ? "room-1" : "room-2";
        if (timeout)
            n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"timeout\":%d", timeout);
        if (content)
            n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"content\":\"%s\"", content);
        if (channel)
            n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"channel\":\"%s\"", channel);
        if (content && content[0] == '{')
            content = "{\"v\":1}";
    }
    if ((type == TY_ACCEPT || type == TY_REFUSE) && rnd_below(2)) {
        response = rnd_below(2) ? "ok" : "busy";
        n += snprintf(json + n, sizeof(json) - (size_t)n, ",\"response\":\"%s\"", response);
    }
    if (rnd_below(4) == 0) /* forged and unknown fields are dropped */
        n += snprintf(json + n, sizeof(json) - (size_t)n,
                      ",\"caller\":\"x\",\"by\":\"server\",\"ts\":1,\"junk\":[1]");
    snprintf(json + n, sizeof(json) - (size_t)n, "}");

    unsigned allowed = p_predict(type, k, s, t);
    if (!M.u[s].confirmed[h])
        p_confirm(s, h); /* publishing confirms the session first */
    rec_clear();
    enum rtm_verdict v = send_to(&M.cl[s][h], M.uid[t], json);

    size_t errors = 0, copies = 0;
    for (size_t i = 0; i < T.npubs; i++) {
        const struct pub *p = &T.pubs[i];
        CHECK(p->json && strcmp(p->topic, inbox(M.uid[s])) == 0, "%s from %s published %s on %s",
              json, M.cid[s][h], p->payload, p->topic);
        const char *ptype = p_str(p->json, "type");
        if (strcmp(ptype, "invite") == 0) {
            p_delivery(p, s);
        } else if (strcmp(ptype, "error") == 0) {
            const char *code = p_str(p->json, "code");
            int e = -1;
            for (int i2 = 0; i2 < E_COUNT; i2++) {
                if (strcmp(code, err_names[i2]) == 0)
                    e = i2;
            }
            CHECK(e >= 0 && (allowed & (1u << e)), "%s from %s to %s (id state %d): got %s", json,
                  M.uid[s], M.uid[t], c->st, p->payload);
            CHECK(p->client_id && strcmp(p->client_id, M.cid[s][h]) == 0 && p->qos == 1 &&
                      !p->retain && strcmp(p_str(p->json, "id"), M.id[k]) == 0 &&
                      strcmp(p_str(p->json, "request"), ty_names[type]) == 0 &&
                      p_num(p->json, "ts") == T.now,
                  "error publish: %s to %s", p->payload, p->client_id ? p->client_id : "all");
            M.errors[e]++;
            errors++;
        } else {
            CHECK(type >= TY_ACCEPT && strcmp(ptype, ty_names[type]) == 0 && !p->client_id &&
                      p->qos == 1 && !p->retain && T.out && strcmp(p->payload, T.out) == 0,
                  "%s from %s: unexpected publish %s", json, M.uid[s], p->payload);
            copies++;
        }
    }
    p_deliveries_done();
    if (allowed) {
        CHECK(v == RTM_DENY && errors == 1 && copies == 0,
              "%s from %s to %s (id %s, state %d): verdict %d, %zu errors, expected one of 0x%x",
              json, M.uid[s], M.uid[t], M.id[k], c->st, v, errors, allowed);
    } else {
        CHECK(v == RTM_REPLACE && errors == 0,
              "%s from %s to %s (state %d): verdict %d, %zu errors%s%s", json, M.uid[s], M.uid[t],
              c->st, v, errors, T.npubs ? ": " : "", T.npubs ? T.pubs[T.npubs - 1].payload : "");
        CHECK(copies == (type >= TY_ACCEPT ? 1u : 0u), "%s: %zu copies to the sender's inbox", json,
              copies);
        p_replaced(type, k, s, t, timeout, content, channel, response);
    }
}

static void p_init(void)
{
    memset(&M, 0, sizeof(M));
    const char *env = getenv("RTM_SEED");
    M.seed =
        env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
    M.rng = M.seed;
    print_message("property test seed %" PRIu64 " (set RTM_SEED to replay)\n", M.seed);
    for (int u = 0; u < P_UIDS; u++) {
        snprintf(M.uid[u], sizeof(M.uid[u]), "u%d", u);
        M.u[u].grace_due = -1;
        for (int h = 0; h < P_HANDLES; h++) {
            snprintf(M.cid[u][h], sizeof(M.cid[u][h]), "u%d-dev%d", u, h);
            M.cl[u][h].handle = &M.handle[u][h];
            M.cl[u][h].uid = M.uid[u];
            M.cl[u][h].client_id = M.cid[u][h];
        }
    }
    for (int k = 0; k < P_IDS; k++)
        snprintf(M.id[k], sizeof(M.id[k]), "k%d", k);
}

static void test_property_random_traffic(void **state)
{
    (void)state;
    boot();
    p_init();
    for (M.step = 1; M.step <= P_STEPS; M.step++) {
        int r = rnd_below(100);
        int u = rnd_below(P_UIDS), h = rnd_below(P_HANDLES);
        if (r < 12) {
            if (!M.u[u].connected[h])
                p_connect(u, h);
        } else if (r < 20) {
            if (M.u[u].connected[h])
                p_disconnect(u, h);
        } else if (r < 62) {
            p_request();
        } else if (r < 80) {
            T.now += rnd_below(3001);
        } else {
            p_tick();
        }
        p_check_stats(false);
    }

    /* Everyone leaves; every timer runs out; nothing is left. */
    for (int u = 0; u < P_UIDS; u++) {
        for (int h = 0; h < P_HANDLES; h++) {
            if (M.u[u].connected[h])
                p_disconnect(u, h);
        }
    }
    p_tick();
    for (int i = 0; i < 1000; i++) {
        int64_t due = rtm_core_next_due(T.core, T.now);
        if (due < 0)
            break;
        T.now += due;
        p_tick();
    }
    struct rtm_core_stats s = stats();
    CHECK(s.users == 0 && s.sessions == 0 && s.calls_live == 0 && s.calls_remembered == 0 &&
              s.timers == 0,
          "left over: %zu users, %zu sessions, %zu live, %zu remembered, %zu timers", s.users,
          s.sessions, s.calls_live, s.calls_remembered, s.timers);

    print_message("replaced: %zu invite, %zu ringing, %zu accept, %zu refuse, %zu cancel; "
                  "%zu re-sends; %zu ids reused; %zu deliveries; %zu presence\n",
                  M.replaced[0], M.replaced[1], M.replaced[2], M.replaced[3], M.replaced[4],
                  M.resends, M.reused, M.redelivered, M.presence);
    print_message("errors: bad_request %zu, unknown %zu, not_party %zu, invalid_state %zu, "
                  "duplicate %zu, self_call %zu; failures: peer_offline %zu, no_response %zu, "
                  "expired %zu, caller_offline %zu\n",
                  M.errors[E_BAD], M.errors[E_UNKNOWN], M.errors[E_NOT_PARTY], M.errors[E_STATE],
                  M.errors[E_DUP], M.errors[E_SELF], M.failures[0], M.failures[1], M.failures[2],
                  M.failures[3]);
    /* The run must have gone everywhere the checks look. */
    for (int i = 0; i < 5; i++)
        CHECK(M.replaced[i] > 0, "no %s was let through", ty_names[i]);
    for (int e = E_BAD; e <= E_SELF; e++)
        CHECK(M.errors[e] > 0, "no %s error", err_names[e]);
    for (int r = 0; r < R_COUNT; r++)
        CHECK(M.failures[r] > 0, "no %s failure", reason_names[r]);
    CHECK(M.reused > 0 && M.resends > 0 && M.redelivered > 0 && M.presence > 0,
          "the run never reused an id, re-sent, delivered a pending invite or changed presence");
    CHECK(M.unchanged == 0, "presence published %zu times without a change, first at %s",
          M.unchanged, M.unchanged_example);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_invite_is_stamped),
        T_(test_ringing_is_stamped),
        T_(test_accept_reaches_both_inboxes),
        T_(test_refuse_before_ringing),
        T_(test_cancel_reaches_both_inboxes),
        T_(test_error_bad_request),
        T_(test_error_unknown_invitation),
        T_(test_error_not_party),
        T_(test_error_invalid_state),
        T_(test_error_duplicate_id),
        T_(test_error_self_call),
        T_(test_error_busy_limit),
        T_(test_error_rate_limited),
        T_(test_client_without_uid),
        T_(test_resend_invite),
        T_(test_resend_ringing),
        T_(test_resend_accept),
        T_(test_resend_cancel),
        T_(test_remembered_then_forgotten),
        T_(test_remembered_for_a_long_ring_timeout),
        T_(test_timer_peer_offline),
        T_(test_timer_peer_offline_after_refused_connection),
        T_(test_timer_no_response),
        T_(test_timer_ring_expired),
        T_(test_timer_invite_own_timeout),
        T_(test_timer_ring_not_before_invite_timeout),
        T_(test_timer_fires_on_first_late_tick),
        T_(test_caller_grace),
        T_(test_caller_grace_counts_from_last_session),
        T_(test_caller_grace_reconnect),
        T_(test_caller_grace_refused_reconnect),
        T_(test_presence_sessions),
        T_(test_presence_takeover),
        T_(test_presence_refused_connection),
        T_(test_presence_short_session_is_not_a_change),
        T_(test_presence_confirmed_by_publish),
        T_(test_presence_confirmed_by_subscribe),
        T_(test_pending_delivery),
        T_(test_acl_presence_read),
        T_(test_acl_topics),
        T_(test_identity_uid),
        T_(test_stats_and_next_due),
        T_(test_push_offline_callee),
        T_(test_push_fallback_online_callee),
        T_(test_push_cancel_only_when_pushed),
        T_(test_property_random_traffic),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
