/*
 * Unit tests for device registration (plugin/features/devices.c, SPEC 6.1) through
 * rtm_core.h: registering, updating and unregistering a device, what is
 * refused and how the session is told, max_devices, a token moving between
 * devices and users, who may register for whom (the ACL), and the
 * registrations read back at start-up. The fixture (recording sink and push
 * function, fake clock, clients) is devices_fixture.h.
 */
#include "devices_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    assert_int_equal(T.rec.npubs, 0);
    assert_false(has_device("bob", "phone"));
    assert_true(has_device("bob", "tablet"));
    assert_int_equal(devices_of("bob"), 1);
    /* Its token is free again: nothing to clear when another device takes it. */
    expect_registered(&bob, "bob", "laptop", REG("ios", "tok-1"), REG("ios", "tok-1"));
    /* Unregistering a device that does not exist is fine too. */
    assert_int_equal(send_dev(&bob, "bob", "ghost", "", true), RTM_PASS);
    assert_int_equal(T.rec.npubs, 0);
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

static void expect_rate_limited(const struct rtm_client *c, const char *device, const char *payload)
{
    expect_refused_code(c, c->uid, device, payload, strlen(payload), true, "rate_limited");
}

/* device_rate bounds every valid write, removals included; invalid ones
 * are refused before they draw. */
static void test_device_rate(void **state)
{
    (void)state;
    T.cfg.device_rate = 3; /* one more every 20 s */
    boot();
    online(&bob);
    int64_t t0 = T.now;
    expect_registered(&bob, "bob", "d1", REG("android", "t-1"), REG("android", "t-1"));
    expect_refused(&bob, "bob", "d2", "{\"provider\":\"jpush\"}", true);
    expect_registered(&bob, "bob", "d2", REG("android", "t-2"), REG("android", "t-2"));
    assert_int_equal(send_dev(&bob, "bob", "d2", "", true), RTM_PASS);
    expect_rate_limited(&bob, "d3", REG("ios", "t-3"));
    expect_rate_limited(&bob, "d1", "");
    assert_true(has_device("bob", "d1"));
    assert_false(has_device("bob", "d3"));
    /* Per uid: carol still may. */
    online(&carol);
    expect_registered(&carol, "carol", "c1", REG("ios", "c-1"), REG("ios", "c-1"));
    tick_at(t0 + 19999);
    expect_rate_limited(&bob, "d3", REG("ios", "t-3"));
    tick_at(t0 + 20000);
    expect_registered(&bob, "bob", "d3", REG("ios", "t-3"), REG("ios", "t-3"));
}

/* Reconnecting does not refill a bucket: the user record lingers until its
 * buckets are full, then goes. */
static void test_rate_survives_reconnect(void **state)
{
    (void)state;
    T.cfg.device_rate = 2; /* one more every 30 s */
    boot();
    online(&bob);
    int64_t t0 = T.now;
    expect_registered(&bob, "bob", "d1", REG("android", "t-1"), REG("android", "t-1"));
    expect_registered(&bob, "bob", "d2", REG("android", "t-2"), REG("android", "t-2"));
    offline(&bob);
    struct rtm_core_stats s;
    rtm_core_stats(T.core, &s);
    assert_int_equal(s.users, 1);
    assert_int_equal(s.timers, 1);
    online(&bob);
    expect_rate_limited(&bob, "d3", REG("ios", "t-3"));
    offline(&bob);
    tick_at(t0 + 59999);
    rtm_core_stats(T.core, &s);
    assert_int_equal(s.users, 1);
    tick_at(t0 + 60000); /* both tokens back: nothing left to remember */
    rtm_core_stats(T.core, &s);
    assert_int_equal(s.users, 0);
    assert_int_equal(s.timers, 0);
    online(&bob);
    expect_registered(&bob, "bob", "d3", REG("ios", "t-3"), REG("ios", "t-3"));
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
    if (T.rec.npubs != 1)
        print_error("%zu publishes, expected bob's registration cleared\n", T.rec.npubs);
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(T.rec.pubs[0].topic, "rtm/u/bob/devices/phone");
    assert_int_equal(T.rec.pubs[0].payload_len, 0);
    assert_true(T.rec.pubs[0].retain);
    assert_null(T.rec.pubs[0].client_id);
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
    assert_int_equal(T.rec.npubs, 1);
    assert_string_equal(T.rec.pubs[0].topic, "rtm/u/carol/devices/cphone");
    assert_int_equal(T.rec.pubs[0].payload_len, 0);
    assert_true(T.rec.pubs[0].retain);
    assert_int_equal(devices_of("carol"), 1);
    expect_device("carol", "reinstalled", RTM_PLATFORM_IOS, "shared-tok");
}

/* ==================================================================================
 * Who may register
 * ================================================================================== */

static enum rtm_acl acl(const struct rtm_client *c, enum rtm_access access, const char *topic)
{
    static const char payload[] = REG("android", "tok-1");
    return rtm_core_acl(T.core, c, access, topic, payload, sizeof(payload) - 1, true, T.now);
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
    const struct rtm_client bobby = {&bobby, "bobby", "bobby-phone"};
    const struct rtm_client bo = {&bo, "bo", "bo-phone"};
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
    if (T.rec.npubs != 1)
        print_error("alice's refused registration for bob published %zu message(s), expected "
                    "one error to alice's session\n",
                    T.rec.npubs);
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = &T.rec.pubs[0];
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
    assert_int_equal(T.rec.npubs, 0);
    assert_int_equal(T.rec.nlogs, 0);

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
        assert_int_equal(T.rec.nlogs, 1);
        assert_int_equal(T.rec.npubs, 0);
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

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, devices_setup, devices_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_register_valid),
        T_(test_register_not_retained),
        T_(test_register_malformed),
        T_(test_unregister),
        T_(test_max_devices),
        T_(test_device_rate),
        T_(test_rate_survives_reconnect),
        T_(test_token_moves),
        T_(test_acl_device_topics),
        T_(test_admin_registers_for_other),
        T_(test_other_uid_refused_with_error),
        T_(test_load_device),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
