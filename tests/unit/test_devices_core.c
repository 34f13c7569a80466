/*
 * Unit tests for device registration (plugin/devices.c, SPEC 6.1) and the
 * core's push hook (SPEC 6.2), through rtm_core.h only: registrations are
 * published with rtm_core_message on {prefix}/u/{uid}/devices/{device}, the
 * registry is read back with rtm_core_registry, and a recording push
 * function stands in for the dispatcher. A recording sink keeps every
 * publish and log line; the clock is fake.
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
#include "rtm_registry.h"

#define T0 INT64_C(1764100000000)

/* --- the recording sink, push function and fake clock -------------------------- */

struct pub {
    char *client_id;
    char *topic;
    char *payload;
    size_t payload_len;
    cJSON *json;
    int qos;
    bool retain;
};

struct pushed {
    enum rtm_push_kind kind;
    char *call_id, *caller, *callee, *channel, *why;
    int64_t expires_at;
    int64_t now_ms;
};

static struct {
    struct rtm_config cfg;
    struct rtm_sink sink;
    struct rtm_core *core;
    int64_t now;
    struct pub *pubs;
    size_t npubs, pubcap;
    char **logs;
    size_t nlogs, logcap;
    struct pushed *pushes;
    size_t npushes, pushcap;
    char *out; /* the payload of the last RTM_REPLACE */
    size_t out_len;
} T;

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

/* No assertions in the callbacks: they would longjmp through the core. */
static void rec_publish(void *ud, const struct rtm_publish *msg)
{
    if (ud != &T)
        abort();
    T.pubs = grow(T.pubs, &T.pubcap, T.npubs, sizeof(*T.pubs));
    struct pub *p = &T.pubs[T.npubs++];
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
    p->why = dup_s(push->why);
    p->expires_at = push->expires_at;
    p->now_ms = push->now_ms;
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
        free(T.pushes[i].why);
    }
    T.npushes = 0;
}

static int setup(void **state)
{
    (void)state;
    memset(&T, 0, sizeof(T));
    rtm_config_defaults(&T.cfg);
    struct rtm_option opt = {"admin_users", "root"};
    char err[256];
    if (rtm_config_parse(&T.cfg, &opt, 1, err, sizeof(err)) != 0)
        return -1;
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
    free(T.out);
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
    rtm_core_set_push(T.core, rec_push, &T);
}

/* --- clients ------------------------------------------------------------------------ */

static char handles[8]; /* each client's handle is the address of one byte */

static const struct rtm_client alice = {&handles[0], "alice", "alice-phone"};
static const struct rtm_client bob = {&handles[1], "bob", "bob-phone"};
static const struct rtm_client carol = {&handles[2], "carol", "carol-phone"};
static const struct rtm_client root = {&handles[3], "root", "root-console"};
static const struct rtm_client anon = {&handles[4], NULL, "no uid"};

static void tick_at(int64_t t)
{
    T.now = t;
    rtm_core_tick(T.core, T.now);
}

/* Connects and confirms `c`, then forgets what that published. */
static void online(const struct rtm_client *c)
{
    rtm_core_connect(T.core, c, T.now);
    tick_at(T.now);
    rec_clear();
}

static void offline(const struct rtm_client *c)
{
    rtm_core_disconnect(T.core, c->handle, T.now);
    tick_at(T.now);
    rec_clear();
}

static const char *dev_topic(const char *uid, const char *device)
{
    static char buf[4][200];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/u/%s/devices/%s", uid, device);
    return b;
}

static const char *inbox(const char *uid)
{
    static char buf[4][160];
    static unsigned next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "rtm/u/%s/call", uid);
    return b;
}

/* --- JSON ------------------------------------------------------------------------------ */

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

/* --- publishing ------------------------------------------------------------------------ */

/* Publishes `len` bytes copied into a buffer of exactly that size (no NUL
 * after it, as an MQTT payload), so a read past the end is caught by ASan. */
static enum rtm_verdict send_raw(const struct rtm_client *c, const char *topic, const char *payload,
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

static enum rtm_verdict send_dev(const struct rtm_client *c, const char *uid, const char *device,
                                 const char *payload, bool retain)
{
    return send_raw(c, dev_topic(uid, device), payload, strlen(payload), retain);
}

#define REG(platform, token)                                                                       \
    "{\"provider\":\"jpush\",\"platform\":\"" platform "\",\"token\":\"" token "\"}"

/* A registration accepted: replaced by exactly the normalized form, and
 * nothing published. */
static void expect_registered(const struct rtm_client *c, const char *uid, const char *device,
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
    if (T.npubs)
        print_error("unexpected publish on %s: %s\n", T.pubs[0].topic, T.pubs[0].payload);
    assert_int_equal(T.npubs, 0);
}

/* A registration refused: RTM_DENY and one error to the sender's own inbox,
 * for the sending session only, naming the device. */
static void expect_refused_raw(const struct rtm_client *c, const char *uid, const char *device,
                               const char *payload, size_t len, bool retain)
{
    rec_clear();
    enum rtm_verdict v = send_raw(c, dev_topic(uid, device), payload, len, retain);
    if (v != RTM_DENY)
        print_error("expected a refusal, got verdict %d: %.*s\n", v, (int)len, payload);
    assert_int_equal(v, RTM_DENY);
    if (T.npubs != 1)
        print_error("expected one error publish, got %zu\n", T.npubs);
    assert_int_equal(T.npubs, 1);
    const struct pub *p = &T.pubs[0];
    assert_string_equal(p->topic, inbox(c->uid));
    assert_non_null(p->client_id);
    assert_string_equal(p->client_id, c->client_id);
    assert_false(p->retain);
    assert_true(p->qos >= 1);
    assert_non_null(p->json);
    assert_int_equal(cJSON_GetArraySize(p->json), 5);
    assert_string_equal(jstr(p->json, "type"), "error");
    assert_string_equal(jstr(p->json, "code"), "bad_request");
    assert_true(jstr(p->json, "message")[0] != '\0');
    assert_string_equal(jstr(p->json, "device"), device);
    assert_int_equal(jnum(p->json, "ts"), T.now);
    assert_int_equal(T.npushes, 0);
}

static void expect_refused(const struct rtm_client *c, const char *uid, const char *device,
                           const char *payload, bool retain)
{
    expect_refused_raw(c, uid, device, payload, strlen(payload), retain);
}

/* --- the registry --------------------------------------------------------------------- */

static size_t devices_of(const char *uid)
{
    return rtm_registry_devices(rtm_core_registry(T.core), uid, NULL, 0);
}

/* `uid` has `device` with `token` on `platform`. */
static void expect_device(const char *uid, const char *device, enum rtm_platform platform,
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

static bool has_device(const char *uid, const char *device)
{
    struct rtm_device_entry e[16];
    size_t n = rtm_registry_devices(rtm_core_registry(T.core), uid, e, 16);
    for (size_t i = 0; i < n && i < 16; i++) {
        if (strcmp(e[i].device, device) == 0)
            return true;
    }
    return false;
}

/* ==================================================================================
 * Registering
 * ================================================================================== */

static void test_register_valid(void **state)
{
    (void)state;
    boot();
    online(&bob);
    /* Extra fields are dropped; field order does not matter. */
    expect_registered(&bob, "bob", "phone",
                      "{\"token\":\"1a0018970a0f4cd7b5e\",\"extra\":\"x\",\"platform\":\"android\","
                      "\"v\":2,\"provider\":\"jpush\",\"nested\":{\"a\":[1,2]}}",
                      REG("android", "1a0018970a0f4cd7b5e"));
    assert_int_equal(devices_of("bob"), 1);
    expect_device("bob", "phone", RTM_PLATFORM_ANDROID, "1a0018970a0f4cd7b5e");
    expect_registered(&bob, "bob", "ipad", REG("ios", "ios:token-2.a_b"),
                      REG("ios", "ios:token-2.a_b"));
    expect_registered(&bob, "bob", "mate", REG("hmos", "hm-3"), REG("hmos", "hm-3"));
    assert_int_equal(devices_of("bob"), 3);
    expect_device("bob", "ipad", RTM_PLATFORM_IOS, "ios:token-2.a_b");
    expect_device("bob", "mate", RTM_PLATFORM_HMOS, "hm-3");
    assert_int_equal(rtm_registry_count(rtm_core_registry(T.core)), 3);

    /* An update replaces what the device had. */
    expect_registered(&bob, "bob", "phone", REG("ios", "new-token"), REG("ios", "new-token"));
    assert_int_equal(devices_of("bob"), 3);
    expect_device("bob", "phone", RTM_PLATFORM_IOS, "new-token");
    /* The old token is free: carol taking it clears nothing of bob's. */
    online(&carol);
    expect_registered(&carol, "carol", "phone", REG("android", "1a0018970a0f4cd7b5e"),
                      REG("android", "1a0018970a0f4cd7b5e"));
    assert_int_equal(devices_of("bob"), 3);
    /* A 256-character token is the longest accepted. */
    char payload[400], token[257];
    memset(token, 'k', 256);
    token[256] = '\0';
    snprintf(payload, sizeof(payload), REG("android", "%s"), token);
    expect_registered(&carol, "carol", "tab", payload, payload);
}

static void test_register_not_retained(void **state)
{
    (void)state;
    boot();
    online(&bob);
    expect_refused(&bob, "bob", "phone", REG("android", "tok-1"), false);
    assert_int_equal(devices_of("bob"), 0);
    /* An existing registration is not touched by a non-retained update. */
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    T.now += 10;
    expect_refused(&bob, "bob", "phone", REG("ios", "tok-2"), false);
    expect_device("bob", "phone", RTM_PLATFORM_ANDROID, "tok-1");
}

static void test_register_malformed(void **state)
{
    (void)state;
    boot();
    online(&bob);
    static const char *const bad[] = {
        "not json",
        "[]",
        "\"jpush\"",
        "{}",
        "{\"provider\":\"jpush\",\"platform\":\"android\"}",
        "{\"provider\":\"jpush\",\"token\":\"tok-1\"}",
        "{\"platform\":\"android\",\"token\":\"tok-1\"}",
        REG("windows", "tok-1"),
        REG("Android", "tok-1"),
        "{\"provider\":\"fcm\",\"platform\":\"android\",\"token\":\"tok-1\"}",
        "{\"provider\":\"JPUSH\",\"platform\":\"android\",\"token\":\"tok-1\"}",
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":12345}",
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":null}",
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":[\"a\"]}",
        REG("android", ""),
        REG("android", "has space"),
        REG("android", "slash/no"),
        REG("android", "quote\\\"no"),
        "{\"provider\":\"jpush\\u0000x\",\"platform\":\"android\",\"token\":\"tok-1\"}",
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"tok-1\"} trailing",
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"tok-1\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T.now += 1;
        expect_refused(&bob, "bob", "phone", bad[i], true);
    }
    /* Too long a token, too long a payload, bytes that are not UTF-8. */
    char payload[2000], token[258];
    memset(token, 'k', 257);
    token[257] = '\0';
    snprintf(payload, sizeof(payload), REG("android", "%s"), token);
    expect_refused(&bob, "bob", "phone", payload, true);
    snprintf(
        payload, sizeof(payload),
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"tok-1\",\"pad\":\"%0*d\"}",
        1100, 0);
    expect_refused(&bob, "bob", "phone", payload, true);
    static const char not_utf8[] =
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"tok-1\",\"x\":\"\xff\xfe\"}";
    expect_refused_raw(&bob, "bob", "phone", not_utf8, sizeof(not_utf8) - 1, true);
    /* A NUL inside the payload. */
    static const char nul[] =
        "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"t\"}\0x";
    expect_refused_raw(&bob, "bob", "phone", nul, sizeof(nul) - 1, true);
    assert_int_equal(devices_of("bob"), 0);

    /* Malformed input changes nothing that was registered. */
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(&bob, "bob", "phone", bad[i], true);
    assert_int_equal(devices_of("bob"), 1);
    expect_device("bob", "phone", RTM_PLATFORM_ANDROID, "tok-1");
}

static void test_unregister(void **state)
{
    (void)state;
    boot();
    online(&bob);
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    expect_registered(&bob, "bob", "tablet", REG("android", "tok-2"), REG("android", "tok-2"));
    rec_clear();
    assert_int_equal(send_dev(&bob, "bob", "phone", "", true), RTM_PASS);
    assert_int_equal(T.npubs, 0);
    assert_false(has_device("bob", "phone"));
    assert_true(has_device("bob", "tablet"));
    assert_int_equal(devices_of("bob"), 1);
    /* Its token is free again: nothing to clear when another device takes it. */
    expect_registered(&bob, "bob", "laptop", REG("ios", "tok-1"), REG("ios", "tok-1"));
    /* Unregistering a device that does not exist is fine too. */
    assert_int_equal(send_dev(&bob, "bob", "ghost", "", true), RTM_PASS);
    assert_int_equal(T.npubs, 0);
    assert_int_equal(devices_of("bob"), 2);
}

static void test_max_devices(void **state)
{
    (void)state;
    T.cfg.max_devices = 2;
    boot();
    online(&bob);
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    expect_registered(&bob, "bob", "tablet", REG("ios", "tok-2"), REG("ios", "tok-2"));
    expect_refused(&bob, "bob", "laptop", REG("android", "tok-3"), true);
    assert_int_equal(devices_of("bob"), 2);
    assert_false(has_device("bob", "laptop"));
    /* At the limit, an existing device id is an update. */
    expect_registered(&bob, "bob", "tablet", REG("ios", "tok-22"), REG("ios", "tok-22"));
    expect_device("bob", "tablet", RTM_PLATFORM_IOS, "tok-22");
    assert_int_equal(devices_of("bob"), 2);
    /* The limit is per user. */
    online(&carol);
    expect_registered(&carol, "carol", "a", REG("android", "c-1"), REG("android", "c-1"));
    expect_registered(&carol, "carol", "b", REG("android", "c-2"), REG("android", "c-2"));
    /* Room again once one is unregistered. */
    assert_int_equal(send_dev(&bob, "bob", "phone", "", true), RTM_PASS);
    expect_registered(&bob, "bob", "laptop", REG("android", "tok-3"), REG("android", "tok-3"));
    assert_int_equal(devices_of("bob"), 2);
}

static void test_token_moves(void **state)
{
    (void)state;
    boot();
    online(&bob);
    online(&carol);
    expect_registered(&bob, "bob", "phone", REG("android", "shared-tok"),
                      REG("android", "shared-tok"));
    expect_registered(&bob, "bob", "tablet", REG("android", "bob-tab"), REG("android", "bob-tab"));

    /* carol logs in on bob's phone. */
    rec_clear();
    assert_int_equal(send_dev(&carol, "carol", "cphone", REG("android", "shared-tok"), true),
                     RTM_REPLACE);
    assert_string_equal(T.out, REG("android", "shared-tok"));
    if (T.npubs != 1)
        print_error("%zu publishes, expected bob's registration cleared\n", T.npubs);
    assert_int_equal(T.npubs, 1);
    assert_string_equal(T.pubs[0].topic, "rtm/u/bob/devices/phone");
    assert_int_equal(T.pubs[0].payload_len, 0);
    assert_true(T.pubs[0].retain);
    assert_null(T.pubs[0].client_id);
    assert_false(has_device("bob", "phone"));
    assert_true(has_device("bob", "tablet"));
    expect_device("carol", "cphone", RTM_PLATFORM_ANDROID, "shared-tok");
    assert_int_equal(rtm_registry_count(rtm_core_registry(T.core)), 2);

    /* Re-registering the same token on the same device moves nothing. */
    expect_registered(&carol, "carol", "cphone", REG("ios", "shared-tok"),
                      REG("ios", "shared-tok"));
    /* The same token under a new device id of the same user: the old id goes. */
    rec_clear();
    assert_int_equal(send_dev(&carol, "carol", "reinstalled", REG("ios", "shared-tok"), true),
                     RTM_REPLACE);
    assert_int_equal(T.npubs, 1);
    assert_string_equal(T.pubs[0].topic, "rtm/u/carol/devices/cphone");
    assert_int_equal(T.pubs[0].payload_len, 0);
    assert_true(T.pubs[0].retain);
    assert_int_equal(devices_of("carol"), 1);
    expect_device("carol", "reinstalled", RTM_PLATFORM_IOS, "shared-tok");
}

/* ==================================================================================
 * Who may register
 * ================================================================================== */

static enum rtm_acl acl(const struct rtm_client *c, enum rtm_access access, const char *topic)
{
    static const char payload[] = REG("android", "tok-1");
    return rtm_core_acl(T.core, c, access, topic, payload, sizeof(payload) - 1, T.now);
}

static void test_acl_device_topics(void **state)
{
    (void)state;
    boot();
    const char *t = dev_topic("bob", "phone");
    assert_int_equal(acl(&bob, RTM_ACCESS_WRITE, t), RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_WRITE, t), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, t), RTM_ACL_DENY);
    assert_int_equal(acl(&carol, RTM_ACCESS_WRITE, t), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, t), RTM_ACL_DENY);
    /* A uid that merely starts like the owner's is someone else. */
    const struct rtm_client bobby = {&handles[5], "bobby", "bobby-phone"};
    const struct rtm_client bo = {&handles[6], "bo", "bo-phone"};
    assert_int_equal(acl(&bobby, RTM_ACCESS_WRITE, t), RTM_ACL_DENY);
    assert_int_equal(acl(&bo, RTM_ACCESS_WRITE, t), RTM_ACL_DENY);
    /* Reading: the same rule. */
    assert_int_equal(acl(&bob, RTM_ACCESS_READ, t), RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_READ, t), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, t), RTM_ACL_DENY);
    /* Listing one's own devices; nobody else's, except an admin. */
    assert_int_equal(acl(&bob, RTM_ACCESS_SUBSCRIBE, "rtm/u/bob/devices/+"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_SUBSCRIBE, "rtm/u/bob/devices/+"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&root, RTM_ACCESS_SUBSCRIBE, "rtm/u/+/devices/#"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/u/bob/devices/+"), RTM_ACL_DENY);
    assert_int_equal(acl(&alice, RTM_ACCESS_SUBSCRIBE, "rtm/u/+/devices/#"), RTM_ACL_DENY);
    /* Bad device ids are not device topics. */
    assert_int_equal(acl(&bob, RTM_ACCESS_WRITE, "rtm/u/bob/devices/a.b"), RTM_ACL_DENY);
    assert_int_equal(acl(&bob, RTM_ACCESS_WRITE, "rtm/u/bob/devices/"), RTM_ACL_DENY);
    assert_int_equal(devices_of("bob"), 0);
}

static void test_admin_registers_for_other(void **state)
{
    (void)state;
    boot();
    online(&root);
    assert_int_equal(acl(&root, RTM_ACCESS_WRITE, dev_topic("bob", "phone")), RTM_ACL_ALLOW);
    expect_registered(&root, "bob", "phone", REG("ios", "tok-1"), REG("ios", "tok-1"));
    expect_device("bob", "phone", RTM_PLATFORM_IOS, "tok-1");
    assert_int_equal(devices_of("root"), 0);
    /* ... and unregisters it. */
    assert_int_equal(send_dev(&root, "bob", "phone", "", true), RTM_PASS);
    assert_int_equal(devices_of("bob"), 0);
    /* An admin's refused registration is told to the admin's own session. */
    expect_refused(&root, "bob", "phone", "not json", true);
    expect_refused(&root, "bob", "phone", REG("android", "tok-1"), false);
    assert_int_equal(devices_of("bob"), 0);
}

/* SPEC 6.1: "A non-retained or malformed registration, or one for another
 * uid, is refused: nothing is stored or forwarded, ... and the session gets
 * an `error` (section 4.1) with `device` set." The broker never hands a
 * publish the ACL check denied to the MESSAGE event, so for another uid the
 * only place the session can be told is the ACL check itself. */
static void test_other_uid_refused_with_error(void **state)
{
    (void)state;
    boot();
    online(&alice);
    rec_clear();
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, dev_topic("bob", "phone")), RTM_ACL_DENY);
    assert_int_equal(devices_of("bob"), 0);
    if (T.npubs != 1)
        print_error("alice's refused registration for bob published %zu message(s), expected "
                    "one error to alice's session\n",
                    T.npubs);
    assert_int_equal(T.npubs, 1);
    const struct pub *p = &T.pubs[0];
    assert_string_equal(p->topic, inbox("alice"));
    assert_string_equal(p->client_id, alice.client_id);
    assert_non_null(p->json);
    assert_string_equal(jstr(p->json, "type"), "error");
    assert_string_equal(jstr(p->json, "code"), "bad_request");
    assert_string_equal(jstr(p->json, "device"), "phone");
}

/* ==================================================================================
 * Registrations read back at start-up
 * ================================================================================== */

static bool load(const char *topic, const char *payload)
{
    size_t len = strlen(payload);
    char *buf = malloc(len ? len : 1);
    assert_non_null(buf);
    if (len)
        memcpy(buf, payload, len);
    bool ok = rtm_core_load_device(T.core, topic, buf, len);
    free(buf);
    return ok;
}

static void test_load_device(void **state)
{
    (void)state;
    T.cfg.max_devices = 2;
    boot();
    assert_true(load(dev_topic("bob", "phone"), REG("android", "tok-1")));
    assert_true(load(dev_topic("bob", "ipad"), REG("ios", "tok-2")));
    expect_device("bob", "phone", RTM_PLATFORM_ANDROID, "tok-1");
    expect_device("bob", "ipad", RTM_PLATFORM_IOS, "tok-2");
    assert_int_equal(T.npubs, 0);
    assert_int_equal(T.nlogs, 0);

    /* Invalid: each refused with a log line, nothing stored or published. */
    static const struct {
        const char *topic, *payload;
    } bad[] = {
        {"rtm/u/carol/devices/phone", "not json"},
        {"rtm/u/carol/devices/phone", ""},
        {"rtm/u/carol/devices/phone", REG("windows", "tok-3")},
        {"rtm/u/carol/devices/phone",
         "{\"provider\":\"fcm\",\"platform\":\"ios\",\"token\":\"t\"}"},
        {"rtm/u/carol/devices/phone", REG("android", "bad token")},
        {"rtm/u/carol/call", REG("android", "tok-3")},
        {"rtm/presence/carol", REG("android", "tok-3")},
        {"rtm/u/carol/devices/bad.id", REG("android", "tok-3")},
        {"other/u/carol/devices/phone", REG("android", "tok-3")},
        {"rtm/u/bob/devices/laptop", REG("android", "tok-3")}, /* over max_devices */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rec_clear();
        bool ok = load(bad[i].topic, bad[i].payload);
        if (ok)
            print_error("loaded %s: %s\n", bad[i].topic, bad[i].payload);
        assert_false(ok);
        assert_int_equal(T.nlogs, 1);
        assert_int_equal(T.npubs, 0);
    }
    assert_int_equal(devices_of("carol"), 0);
    assert_int_equal(devices_of("bob"), 2);
    assert_int_equal(rtm_registry_count(rtm_core_registry(T.core)), 2);
    /* A loaded registration is pushed to like a live one. */
    rec_clear();
    online(&alice);
    rec_clear();
    assert_int_equal(send_raw(&alice, inbox("bob"), "{\"type\":\"invite\",\"id\":\"c-1\"}",
                              strlen("{\"type\":\"invite\",\"id\":\"c-1\"}"), false),
                     RTM_REPLACE);
    assert_int_equal(T.npushes, 1);
}

/* ==================================================================================
 * The push hook
 * ================================================================================== */

static void invite(const char *id, const char *extra)
{
    char json[256];
    snprintf(json, sizeof(json), "{\"type\":\"invite\",\"id\":\"%s\"%s}", id, extra);
    enum rtm_verdict v = send_raw(&alice, inbox("bob"), json, strlen(json), false);
    if (v != RTM_REPLACE && T.npubs)
        print_error("invite refused: %s\n", T.pubs[0].payload);
    assert_int_equal(v, RTM_REPLACE);
}

static void answer(const struct rtm_client *from, const char *to, const char *type, const char *id)
{
    char json[160];
    snprintf(json, sizeof(json), "{\"type\":\"%s\",\"id\":\"%s\"}", type, id);
    assert_int_equal(send_raw(from, inbox(to), json, strlen(json), false), RTM_REPLACE);
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

static void expect_push(const struct pushed *p, enum rtm_push_kind kind, const char *id,
                        const char *channel, int64_t expires_at)
{
    assert_int_equal(p->kind, kind);
    assert_string_equal(p->call_id, id);
    assert_string_equal(p->caller, "alice");
    assert_string_equal(p->callee, "bob");
    assert_string_equal(p->channel, channel);
    assert_int_equal(p->expires_at, expires_at);
    assert_int_equal(p->now_ms, T.now);
    assert_non_null(p->why);
    assert_true(p->why[0] != '\0');
}

/* bob has a registered device and no live session. */
static void bob_registered_and_away(void)
{
    online(&bob);
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    offline(&bob);
}

static void test_push_offline_callee(void **state)
{
    (void)state;
    boot();
    bob_registered_and_away();
    online(&alice);
    int64_t t0 = T.now;
    invite("c-1", ",\"channel\":\"room-7\",\"timeout\":20");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "room-7", t0 + 20000);
    assert_string_equal(T.pushes[0].why, "callee offline");
    /* Once: the fallback for an online callee does not push it again. */
    rec_clear();
    for (T.now = t0 + 100; T.now < t0 + 20000; T.now += 100)
        tick_at(T.now);
    assert_int_equal(T.npushes, 0);
    assert_int_equal(count_type("failure"), 0);
}

static void test_push_fallback_online_callee(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 1000;
    boot();
    online(&bob);
    expect_registered(&bob, "bob", "phone", REG("android", "tok-1"), REG("android", "tok-1"));
    online(&alice);
    int64_t created = T.now;
    int64_t deadline = created + T.cfg.invite_timeout_ms;
    invite("c-1", "");
    assert_int_equal(T.npushes, 0);
    for (int64_t t = created + 1; t < created + 1000; t += 37)
        tick_at(t);
    tick_at(created + 999);
    assert_int_equal(T.npushes, 0);
    tick_at(created + 1000);
    if (T.npushes != 1)
        print_error("%zu pushes at push_fallback_ms\n", T.npushes);
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_INVITE, "c-1", "", deadline);
    assert_non_null(strstr(T.pushes[0].why, "push_fallback_ms"));
    /* The push does not end the call: still pending until invite_timeout. */
    assert_int_equal(count_type("failure"), 0);
    assert_true(rtm_core_call_pending(T.core, "c-1"));
    rec_clear();
    for (int64_t t = created + 1100; t < deadline; t += 100)
        tick_at(t);
    tick_at(deadline - 1);
    assert_int_equal(T.npushes, 0);
    assert_int_equal(count_type("failure"), 0);
    assert_true(rtm_core_call_pending(T.core, "c-1"));
    /* Unanswered at invite_timeout: the failure, and the phone stops ringing. */
    tick_at(deadline);
    assert_int_equal(count_type("failure"), 2);
    assert_false(rtm_core_call_pending(T.core, "c-1"));
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "", deadline);
}

static void test_push_no_fallback_after_ringing(void **state)
{
    (void)state;
    T.cfg.push_fallback_ms = 1000;
    boot();
    online(&bob);
    online(&alice);
    int64_t created = T.now;
    invite("c-1", "");
    T.now = created + 999;
    answer(&bob, "alice", "ringing", "c-1");
    for (int64_t t = created + 1000; t <= created + 5000; t += 50)
        tick_at(t);
    assert_int_equal(T.npushes, 0);
    /* Refused after ringing: never pushed, so no cancel push either. */
    answer(&bob, "alice", "refuse", "c-1");
    assert_int_equal(T.npushes, 0);
    /* push_fallback_ms 0 turns the fallback off. */
    rtm_core_free(T.core);
    T.core = NULL;
    T.cfg.push_fallback_ms = 0;
    rec_clear();
    boot();
    online(&bob);
    online(&alice);
    created = T.now;
    invite("c-2", "");
    for (int64_t t = created + 100; t <= created + T.cfg.invite_timeout_ms; t += 100)
        tick_at(t);
    assert_int_equal(count_type("failure"), 2);
    assert_int_equal(T.npushes, 0);
}

static void test_push_cancel_when_pushed_call_ends(void **state)
{
    (void)state;
    boot();
    bob_registered_and_away();
    online(&alice);

    /* Canceled by the caller. */
    int64_t t0 = T.now;
    invite("c-1", ",\"channel\":\"room\"");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    T.now += 1500;
    answer(&alice, "bob", "cancel", "c-1");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-1", "room", t0 + T.cfg.invite_timeout_ms);
    /* A re-sent cancel pushes nothing more. */
    rec_clear();
    T.now += 10;
    answer(&alice, "bob", "cancel", "c-1");
    assert_int_equal(T.npushes, 0);

    /* Refused by the woken callee. */
    t0 = T.now;
    invite("c-2", "");
    rec_clear();
    online(&bob);
    T.now += 200;
    answer(&bob, "alice", "refuse", "c-2");
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-2", "", t0 + T.cfg.invite_timeout_ms);
    offline(&bob);

    /* Failed (nobody answered). */
    t0 = T.now;
    invite("c-3", ",\"timeout\":5");
    rec_clear();
    tick_at(t0 + 5000);
    assert_int_equal(count_type("failure"), 2);
    assert_int_equal(T.npushes, 1);
    expect_push(&T.pushes[0], RTM_PUSH_CALL_CANCEL, "c-3", "", t0 + 5000);
}

static void test_push_none_when_accepted(void **state)
{
    (void)state;
    boot();
    bob_registered_and_away();
    online(&alice);
    invite("c-1", "");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    online(&bob); /* woken by the push */
    T.now += 300;
    answer(&bob, "alice", "ringing", "c-1");
    T.now += 300;
    answer(&bob, "alice", "accept", "c-1");
    assert_int_equal(T.npushes, 0);
    int64_t end = T.now + 120000;
    for (int64_t t = T.now; t < end; t += 1000)
        tick_at(t);
    assert_int_equal(T.npushes, 0);
}

static void test_push_on_cancel_off(void **state)
{
    (void)state;
    T.cfg.push_on_cancel = false;
    boot();
    bob_registered_and_away();
    online(&alice);
    int64_t t0 = T.now;
    invite("c-1", "");
    assert_int_equal(T.npushes, 1); /* the invite is still pushed */
    rec_clear();
    answer(&alice, "bob", "cancel", "c-1");
    assert_int_equal(T.npushes, 0);
    invite("c-2", ",\"timeout\":3");
    assert_int_equal(T.npushes, 1);
    rec_clear();
    tick_at(t0 + 3000);
    assert_int_equal(count_type("failure"), 2);
    assert_int_equal(T.npushes, 0);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_register_valid),
        T_(test_register_not_retained),
        T_(test_register_malformed),
        T_(test_unregister),
        T_(test_max_devices),
        T_(test_token_moves),
        T_(test_acl_device_topics),
        T_(test_admin_registers_for_other),
        T_(test_other_uid_refused_with_error),
        T_(test_load_device),
        T_(test_push_offline_callee),
        T_(test_push_fallback_online_callee),
        T_(test_push_no_fallback_after_ringing),
        T_(test_push_cancel_when_pushed_call_ends),
        T_(test_push_none_when_accepted),
        T_(test_push_on_cancel_off),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
