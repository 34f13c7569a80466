/*
 * The shared fixture of the push dispatcher's tests: the recording sender,
 * sink and call state, the fake clock, the registry helpers, and the
 * assertions on requests, publishes and counters the test_pusher_*.c
 * programs share. pusher_fixture.h says what each one does.
 */
#include "pusher_fixture.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pusher_fixture P;

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

static bool rec_pending(void *ud, const char *caller, const char *call_id)
{
    if (ud != &P || !caller || !call_id)
        abort();
    P.pending_asked++;
    snprintf(P.pending_caller, sizeof(P.pending_caller), "%s", caller);
    snprintf(P.pending_last, sizeof(P.pending_last), "%s", call_id);
    return P.pending;
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
bool secret_kept(void)
{
    bool ok = true;
    for (size_t i = 0; i < P.rec.nlogs; i++) {
        if (strstr(P.rec.logs[i].text, SECRET)) {
            print_error("the master secret is in a log line: %s\n", P.rec.logs[i].text);
            ok = false;
        }
    }
    for (size_t i = 0; i < P.rec.npubs; i++) {
        if (strstr(P.rec.pubs[i].topic, SECRET) || strstr(P.rec.pubs[i].payload, SECRET)) {
            print_error("the master secret is in a publish on %s\n", P.rec.pubs[i].topic);
            ok = false;
        }
    }
    return ok;
}

static void rec_clear(void)
{
    recorder_clear(&P.rec);
    subs_clear();
}

/* Checks the secret before forgetting what was recorded. */
void clear(void)
{
    assert_true(secret_kept());
    rec_clear();
}

int pusher_setup(void **state)
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
    recorder_install(&P.rec, &P.sink);
    P.now = T0;
    P.pending = true;
    return 0;
}

int pusher_teardown(void **state)
{
    (void)state;
    rtm_pusher_free(P.pusher);
    P.pusher = NULL;
    rtm_registry_free(P.registry);
    P.registry = NULL;
    bool ok = secret_kept();
    rec_clear();
    free(P.subs);
    recorder_free(&P.rec);
    rtm_config_free(&P.cfg);
    return ok ? 0 : -1;
}

void boot_seed(uint64_t seed)
{
    if (!P.registry) {
        P.registry = rtm_registry_new(P.cfg.max_devices, NULL);
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
        .registry_loading = P.loading,
    };
    P.pusher = rtm_pusher_new(&env);
    assert_non_null(P.pusher);
}

void boot(void)
{
    boot_seed(42);
}

/* --- the registry ------------------------------------------------------------------ */

void reg(const char *uid, const char *device, const char *token)
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

size_t devices_of(const char *uid)
{
    return rtm_registry_devices(P.registry, uid, NULL, 0);
}

/* Does `uid` hold a device called `device` with `token`? */
bool has_device(const char *uid, const char *device, const char *token)
{
    struct rtm_device_entry e[16];
    size_t n = rtm_registry_devices(P.registry, uid, e, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(e[i].device, device) == 0 && strcmp(e[i].token, token) == 0)
            return true;
    }
    return false;
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
        .reason = kind == RTM_PUSH_CALL_INVITE ? NULL : "canceled",
        .now_ms = P.now,
    };
    rtm_pusher_on_push(P.pusher, &p);
}

void invite(const char *id, const char *callee, int64_t expires_at)
{
    push_kind(RTM_PUSH_CALL_INVITE, id, callee, expires_at);
}

void cancel(const char *id, const char *callee, int64_t expires_at)
{
    push_kind(RTM_PUSH_CALL_CANCEL, id, callee, expires_at);
}

void respond_full(uint64_t tag, long status, const char *body, const char *retry_after,
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

void respond(uint64_t tag, long status, const char *body)
{
    respond_full(tag, status, body, NULL, NULL);
}

static void tick(void)
{
    rtm_pusher_tick(P.pusher, P.now);
}

void tick_at(int64_t t)
{
    P.now = t;
    tick();
}

struct rtm_pusher_stats stats(void)
{
    struct rtm_pusher_stats s;
    memset(&s, 0xA5, sizeof(s));
    rtm_pusher_stats(P.pusher, &s);
    return s;
}

void expect_stats(size_t jobs, size_t calls, uint64_t sent, uint64_t ok, uint64_t retried,
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
void expect_sender(size_t jobs, uint64_t sent, uint64_t retried, uint64_t dropped)
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
int64_t tick_until_submitted(int64_t from, int64_t until)
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

const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!m)
        print_error("missing \"%s\"\n", name);
    assert_non_null(m);
    return m;
}

const char *str_field(const cJSON *obj, const char *name)
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

const cJSON *audience(const struct sub *s)
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
void expect_audience(const struct sub *s, const char *const *tokens, size_t n)
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
void expect_request(const struct sub *s, const char *rtm, const char *id)
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

int64_t ttl_of(const struct sub *s)
{
    return num_field(field(s->body, "options"), "time_to_live");
}

/* --- publishes ------------------------------------------------------------------------ */

size_t count_topic(const char *topic)
{
    size_t n = 0;
    for (size_t i = 0; i < P.rec.npubs; i++)
        n += strcmp(P.rec.pubs[i].topic, topic) == 0;
    return n;
}

/* The one `pushed` event published since the last clear. */
void expect_pushed(const char *id, const char *callee, size_t devices)
{
    if (P.rec.npubs != 1)
        print_error("%zu publishes, expected one pushed event\n", P.rec.npubs);
    assert_int_equal(P.rec.npubs, 1);
    const struct pub *p = &P.rec.pubs[0];
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
void expect_cleared(const char *uid, const char *device)
{
    char topic[200];
    snprintf(topic, sizeof(topic), "rtm/u/%s/devices/%s", uid, device);
    if (count_topic(topic) != 1)
        print_error("%zu publishes on %s, expected one\n", count_topic(topic), topic);
    assert_int_equal(count_topic(topic), 1);
    for (size_t i = 0; i < P.rec.npubs; i++) {
        if (strcmp(P.rec.pubs[i].topic, topic) != 0)
            continue;
        assert_int_equal(P.rec.pubs[i].payload_len, 0);
        assert_true(P.rec.pubs[i].retain);
        assert_null(P.rec.pubs[i].client_id);
    }
}

size_t count_logs_at(enum rtm_log_level level)
{
    size_t n = 0;
    for (size_t i = 0; i < P.rec.nlogs; i++)
        n += P.rec.logs[i].level == level;
    return n;
}
