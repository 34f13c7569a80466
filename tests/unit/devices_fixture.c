/*
 * The shared fixture of the device registration tests (test_devices_*.c):
 * the recording sink and push function, the fake clock, the clients, and
 * the helpers that register devices and read the registry back.
 * devices_fixture.h says what each one does.
 */
#include "devices_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct devices_fixture T;

/* No assertions in the callback: it would longjmp through the core. */
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
    p->why = dup_s(push->why);
    p->reason = dup_s(push->reason);
    p->expires_at = push->expires_at;
    p->now_ms = push->now_ms;
}

void rec_clear(void)
{
    recorder_clear(&T.rec);
    for (size_t i = 0; i < T.npushes; i++) {
        free(T.pushes[i].call_id);
        free(T.pushes[i].caller);
        free(T.pushes[i].callee);
        free(T.pushes[i].channel);
        free(T.pushes[i].why);
        free(T.pushes[i].reason);
    }
    T.npushes = 0;
}

int devices_setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    rtm_config_defaults(&T.cfg);
    struct rtm_option opt = {"admin_users", "root"};
    char err[256];
    if (rtm_config_parse(&T.cfg, &opt, 1, err, sizeof(err)) != 0)
        return -1;
    recorder_install(&T.rec, &T.sink);
    T.now = T0;
    return 0;
}

int devices_teardown(void **state)
{
    (void)state;
    rtm_core_free(T.core);
    T.core = NULL;
    rec_clear();
    free(T.out);
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
    rtm_core_set_push(T.core, rec_push, &T);
}

/* --- clients ------------------------------------------------------------------------ */

/* Each client's handle is its own address (recorder.h). */
const struct rtm_client alice = {&alice, "alice", "alice-phone"};
const struct rtm_client bob = {&bob, "bob", "bob-phone"};
const struct rtm_client carol = {&carol, "carol", "carol-phone"};
const struct rtm_client root = {&root, "root", "root-console"};
const struct rtm_client anon = {&anon, NULL, "no uid"};

void tick_at(int64_t t)
{
    T.now = t;
    rtm_core_tick(T.core, T.now);
}

/* Connects and confirms `c`, then forgets what that published. */
void online(const struct rtm_client *c)
{
    rtm_core_connect(T.core, c, T.now);
    tick_at(T.now);
    rec_clear();
}

void offline(const struct rtm_client *c)
{
    rtm_core_disconnect(T.core, c->handle, T.now);
    tick_at(T.now);
    rec_clear();
}

const char *dev_topic(const char *uid, const char *device)
{
    static char buf[4][200];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/u/%s/devices/%s", uid, device);
    return b;
}

/* --- publishing ------------------------------------------------------------------------ */

/* Publishes `len` bytes copied into a buffer of exactly that size (no NUL
 * after it, as an MQTT payload), so a read past the end is caught by ASan. */
enum rtm_verdict send_raw(const struct rtm_client *c, const char *topic, const char *payload,
                          size_t len, bool retain)
{
    free(T.out);
    T.out = NULL;
    T.out_len = 0;
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    if (len)
        memcpy(buf, payload, len);
    struct rtm_message_result r = rtm_core_message(T.core, c, topic, buf, len, retain, T.now);
    free(buf);
    if (r.verdict == RTM_REPLACE) {
        assert_non_null(r.payload);
        T.out = dup_n(r.payload, r.payload_len);
        T.out_len = r.payload_len;
        free(r.payload);
    } else {
        assert_null(r.payload);
    }
    return r.verdict;
}

enum rtm_verdict send_dev(const struct rtm_client *c, const char *uid, const char *device,
                          const char *payload, bool retain)
{
    return send_raw(c, dev_topic(uid, device), payload, strlen(payload), retain);
}

/* A registration accepted: replaced by exactly the normalized form, and
 * nothing published. */
void expect_registered(const struct rtm_client *c, const char *uid, const char *device,
                       const char *payload, const char *normalized)
{
    rec_clear();
    enum rtm_verdict v = send_dev(c, uid, device, payload, true);
    if (v != RTM_REPLACE)
        print_error("registration refused (%d): %s\n", v, payload);
    assert_int_equal(v, RTM_REPLACE);
    assert_int_equal(T.out_len, strlen(T.out));
    assert_string_equal(T.out, normalized);
    cJSON *j = cJSON_Parse(T.out);
    assert_non_null(j);
    assert_int_equal(cJSON_GetArraySize(j), 3);
    assert_string_equal(jstr(j, "provider"), "jpush");
    cJSON_Delete(j);
    if (T.rec.npubs)
        print_error("unexpected publish on %s: %s\n", T.rec.pubs[0].topic, T.rec.pubs[0].payload);
    assert_int_equal(T.rec.npubs, 0);
}

/* A registration refused: RTM_DENY and one error to the sender's own inbox,
 * for the sending session only, naming the device. */
void expect_refused_raw(const struct rtm_client *c, const char *uid, const char *device,
                        const char *payload, size_t len, bool retain)
{
    expect_refused_code(c, uid, device, payload, len, retain, "bad_request");
}

void expect_refused_code(const struct rtm_client *c, const char *uid, const char *device,
                         const char *payload, size_t len, bool retain, const char *code)
{
    rec_clear();
    enum rtm_verdict v = send_raw(c, dev_topic(uid, device), payload, len, retain);
    if (v != RTM_DENY)
        print_error("expected a refusal, got verdict %d: %.*s\n", v, (int)len, payload);
    assert_int_equal(v, RTM_DENY);
    if (T.rec.npubs != 1)
        print_error("expected one error publish, got %zu\n", T.rec.npubs);
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = &T.rec.pubs[0];
    assert_string_equal(p->topic, inbox(c->uid));
    assert_non_null(p->client_id);
    assert_string_equal(p->client_id, c->client_id);
    assert_false(p->retain);
    assert_true(p->qos >= 1);
    assert_non_null(p->json);
    assert_int_equal(cJSON_GetArraySize(p->json), 5);
    assert_string_equal(jstr(p->json, "type"), "error");
    assert_string_equal(jstr(p->json, "code"), code);
    assert_true(jstr(p->json, "message")[0] != '\0');
    assert_string_equal(jstr(p->json, "device"), device);
    assert_int_equal(jnum(p->json, "ts"), T.now);
    assert_int_equal(T.npushes, 0);
}

void expect_refused(const struct rtm_client *c, const char *uid, const char *device,
                    const char *payload, bool retain)
{
    expect_refused_raw(c, uid, device, payload, strlen(payload), retain);
}

/* --- the registry --------------------------------------------------------------------- */

size_t devices_of(const char *uid)
{
    return rtm_registry_devices(rtm_core_registry(T.core), uid, NULL, 0);
}

/* `uid` has `device` with `token` on `platform`. */
void expect_device(const char *uid, const char *device, enum rtm_platform platform,
                   const char *token)
{
    struct rtm_device_entry e[16];
    size_t n = rtm_registry_devices(rtm_core_registry(T.core), uid, e, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(e[i].device, device) != 0)
            continue;
        assert_string_equal(e[i].provider, "jpush");
        assert_int_equal(e[i].platform, platform);
        assert_string_equal(e[i].token, token);
        return;
    }
    print_error("%s has no device %s\n", uid, device);
    fail();
}

bool has_device(const char *uid, const char *device)
{
    struct rtm_device_entry e[16];
    size_t n = rtm_registry_devices(rtm_core_registry(T.core), uid, e, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(e[i].device, device) == 0)
            return true;
    }
    return false;
}
