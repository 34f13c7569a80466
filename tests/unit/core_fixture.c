/*
 * The shared fixture of the core's tests: the recording sink, the fake
 * clock, the configuration every test starts from, the clients, and the
 * helpers and assertions the test_core_*.c programs share. core_fixture.h
 * says what each one does.
 */
#include "core_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct core_fixture T;

/* No assertions in here: a failed assertion would longjmp through the core. */
void rec_push(void *ud, const struct rtm_push *push)
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
    p->reason = dup_s(push->reason);
    p->expires_at = push->expires_at;
    p->now_ms = push->now_ms;
    p->has_why = push->why && push->why[0];
}

void rec_clear(void)
{
    recorder_clear(&T.rec);
    for (size_t i = 0; i < T.npushes; i++) {
        free(T.pushes[i].call_id);
        free(T.pushes[i].caller);
        free(T.pushes[i].callee);
        free(T.pushes[i].channel);
        free(T.pushes[i].reason);
    }
    T.npushes = 0;
}

void out_clear(void)
{
    free(T.out);
    T.out = NULL;
    cJSON_Delete(T.out_json);
    T.out_json = NULL;
}

int core_setup(void **state)
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
    recorder_install(&T.rec, &T.sink);
    T.now = T0;
    return 0;
}

int core_teardown(void **state)
{
    (void)state;
    rtm_core_free(T.core);
    T.core = NULL;
    rec_clear();
    out_clear();
    recorder_free(&T.rec);
    free(T.pushes);
    rtm_config_free(&T.cfg);
    return 0;
}

/* Creates the core once the test has set the configuration it wants. */
void boot(void)
{
    T.core = rtm_core_new(&T.cfg, &T.sink, NULL);
    assert_non_null(T.core);
}

/* --- clients ------------------------------------------------------------------ */

/* Each client's handle is its own address (recorder.h). */
const struct rtm_client alice = {&alice, "alice", "alice-phone"};
const struct rtm_client alice2 = {&alice2, "alice", "alice-web"};
const struct rtm_client bob = {&bob, "bob", "bob-phone"};
const struct rtm_client bob2 = {&bob2, "bob", "bob-tablet"};
const struct rtm_client carol = {&carol, "carol", "carol-phone"};
const struct rtm_client dave = {&dave, "dave", "dave-phone"};
const struct rtm_client root = {&root, "root", "root-console"};
const struct rtm_client anon = {&anon, NULL, "no uid"};
/* A new connection with alice's client id: a takeover. */
const struct rtm_client alice_again = {&alice_again, "alice", "alice-phone"};

void tick(void)
{
    rtm_core_tick(T.core, T.now);
}

void tick_at(int64_t t)
{
    T.now = t;
    tick();
}

void conn(const struct rtm_client *c)
{
    rtm_core_connect(T.core, c, T.now);
}

void disc(const struct rtm_client *c)
{
    rtm_core_disconnect(T.core, c->handle, T.now);
}

/* Connects and confirms `c`, then forgets what that published. */
void online(const struct rtm_client *c)
{
    conn(c);
    tick();
    rec_clear();
}

void offline(const struct rtm_client *c)
{
    disc(c);
    tick();
    rec_clear();
}

const char *presence_topic(const char *uid)
{
    static char buf[4][160];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/presence/%s", uid);
    return b;
}

struct rtm_core_stats stats(void)
{
    struct rtm_core_stats s;
    memset(&s, 0xA5, sizeof(s));
    rtm_core_stats(T.core, &s);
    return s;
}

/* Asserts that `o` has exactly the keys listed (NULL-terminated), no more. */
void assert_keys(const cJSON *o, ...)
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

void assert_event(const cJSON *j, const char *type, const char *id, const char *caller,
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

size_t count_on(const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < T.rec.npubs; i++)
        n += strcmp(T.rec.pubs[i].topic, topic) == 0;
    return n;
}

/* The only publish on `topic`. */
const struct pub *only_on(const char *topic)
{
    assert_int_equal(count_on(topic), 1);
    for (size_t i = 0; i < T.rec.npubs; i++) {
        if (strcmp(T.rec.pubs[i].topic, topic) == 0) {
            assert_non_null(T.rec.pubs[i].json);
            return &T.rec.pubs[i];
        }
    }
    return NULL;
}

size_t count_type(const char *type)
{
    size_t n = 0;
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(T.rec.pubs[i].json, "type");
        n += cJSON_IsString(t) && strcmp(t->valuestring, type) == 0;
    }
    return n;
}

/* The only publish of `type` on `topic`. */
const struct pub *only_type_on(const char *topic, const char *type)
{
    const struct pub *found = NULL;
    size_t n = 0;
    for (size_t i = 0; i < T.rec.npubs; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(T.rec.pubs[i].json, "type");
        if (strcmp(T.rec.pubs[i].topic, topic) == 0 && cJSON_IsString(t) &&
            strcmp(t->valuestring, type) == 0) {
            found = &T.rec.pubs[i];
            n++;
        }
    }
    if (n != 1)
        print_error("%zu %s publishes on %s\n", n, type, topic);
    assert_int_equal(n, 1);
    return found;
}

void expect_quiet(void)
{
    if (T.rec.npubs)
        print_error("unexpected publish on %s: %s\n", T.rec.pubs[0].topic, T.rec.pubs[0].payload);
    assert_int_equal(T.rec.npubs, 0);
}

/* --- requests ------------------------------------------------------------------------- */

/* Publishes `len` bytes copied into a buffer of exactly that size (no NUL
 * after it, as an MQTT payload), so a read past the end is caught by ASan. */
enum rtm_verdict send_raw(const struct rtm_client *c, const char *topic, const char *payload,
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

enum rtm_verdict send_to(const struct rtm_client *c, const char *peer, const char *json)
{
    return send_raw(c, inbox(peer), json, strlen(json), false);
}

/* Expects `json` from `c` to `peer`'s inbox to be let through, stamped. */
const cJSON *expect_replace(const struct rtm_client *c, const char *peer, const char *json)
{
    rec_clear();
    enum rtm_verdict v = send_to(c, peer, json);
    if (v != RTM_REPLACE) {
        print_error("not let through (%d): %s\n", v, json);
        if (T.rec.npubs)
            print_error("  %s\n", T.rec.pubs[0].payload);
    }
    assert_int_equal(v, RTM_REPLACE);
    return T.out_json;
}

/* An ending was let through: the same event was also published, once, to
 * the sender's own inbox, for every subscriber. */
void expect_own_copy(const struct rtm_client *c)
{
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = only_on(inbox(c->uid));
    assert_null(p->client_id);
    assert_int_equal(p->qos, 1);
    assert_false(p->retain);
    assert_string_equal(p->payload, T.out);
}

/* The only publish recorded is an error with `code` to c's own inbox, for
 * c's session only, at QoS 1, not retained, stamped now: its JSON. */
static const cJSON *only_error(const struct rtm_client *c, const char *code)
{
    if (T.rec.npubs != 1)
        print_error("expected one error publish, got %zu\n", T.rec.npubs);
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = &T.rec.pubs[0];
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
    return j;
}

/* Expects the request to be refused: RTM_DENY, and exactly one publish, an
 * error to the sender's own inbox for the sending session only. `id` and
 * `request` NULL: the error must not carry that field. */
void expect_error_raw(const struct rtm_client *c, const char *topic, const char *payload,
                      size_t len, bool retain, const char *code, const char *id,
                      const char *request)
{
    rec_clear();
    enum rtm_verdict v = send_raw(c, topic, payload, len, retain);
    if (v != RTM_DENY)
        print_error("expected %s, got verdict %d: %.*s\n", code, v, (int)len, payload);
    assert_int_equal(v, RTM_DENY);
    const cJSON *j = only_error(c, code);
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

void expect_error(const struct rtm_client *c, const char *peer, const char *json, const char *code,
                  const char *id, const char *request)
{
    expect_error_raw(c, inbox(peer), json, strlen(json), false, code, id, request);
}

/* A failure was published in this tick: once to each inbox, to every
 * subscriber, by the server, at T.now. */
void expect_failure(const char *id, const char *caller, const char *callee, const char *reason)
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
void expect_failure_at(int64_t due, const char *id, const char *caller, const char *callee,
                       const char *reason)
{
    rec_clear();
    tick_at(due - 1);
    expect_quiet();
    tick_at(due);
    expect_failure(id, caller, callee, reason);
    rec_clear();
}

void expect_presence(const struct pub *p, const char *uid, bool online, int sessions)
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

void expect_topic_error(const struct rtm_client *c, const char *topic, const char *code)
{
    const cJSON *j = only_error(c, code);
    assert_string_equal(jstr(j, "topic"), topic);
    assert_keys(j, "type", "code", "message", "topic", "ts", NULL);
}

enum rtm_acl write_check(const struct rtm_client *c, const char *topic, const char *payload,
                         bool retain)
{
    return rtm_core_acl(T.core, c, RTM_ACCESS_WRITE, topic, payload, payload ? strlen(payload) : 0,
                        retain, T.now);
}

enum rtm_acl read_check(const struct rtm_client *c, const char *topic, const char *payload,
                        bool retain)
{
    return rtm_core_acl(T.core, c, RTM_ACCESS_READ, topic, payload, payload ? strlen(payload) : 0,
                        retain, T.now);
}

void expect_erased(const char *topic)
{
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(T.rec.pubs[0].topic, topic);
    assert_true(T.rec.pubs[0].retain);
    assert_int_equal(T.rec.pubs[0].payload_len, 0);
    assert_null(T.rec.pubs[0].client_id);
    rec_clear();
}
