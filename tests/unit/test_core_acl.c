/*
 * The core's ACL and identity rules, its stats and rtm_core_next_due()
 * (core_fixture.h has the fixture).
 */
#include "core_fixture.h"

#include <stdio.h>
#include <string.h>

/* ================================================================================
 * ACL
 * ================================================================================ */

static enum rtm_acl acl(const struct rtm_client *c, enum rtm_access access, const char *topic,
                        const char *payload)
{
    return rtm_core_acl(T.core, c, access, topic, payload, payload ? strlen(payload) : 0, false,
                        T.now);
}

static enum rtm_acl read_retained(const struct rtm_client *c, const char *topic,
                                  const char *payload)
{
    return rtm_core_acl(T.core, c, RTM_ACCESS_READ, topic, payload, strlen(payload), true, T.now);
}

#define REG "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"tok-1\"}"

/* A publish the topic table forbids is refused, and only the publishing
 * session is told why: one error on its own inbox, naming the device for a
 * device topic. */
static void expect_write_refused(const struct rtm_client *c, const char *topic, const char *payload,
                                 const char *code, const char *device)
{
    rec_clear();
    assert_int_equal(acl(c, RTM_ACCESS_WRITE, topic, payload), RTM_ACL_DENY);
    assert_int_equal(T.rec.npubs, 1);
    const struct pub *p = &T.rec.pubs[0];
    assert_string_equal(p->topic, inbox(c->uid));
    assert_non_null(p->client_id);
    assert_string_equal(p->client_id, c->client_id);
    assert_false(p->retain);
    assert_non_null(p->json);
    assert_string_equal(jstr(p->json, "type"), "error");
    assert_string_equal(jstr(p->json, "code"), code);
    if (device)
        assert_string_equal(jstr(p->json, "device"), device);
    else
        assert_null(cJSON_GetObjectItemCaseSensitive(p->json, "device"));
    rec_clear();
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
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "bob", false, 0);
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
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "bob", false, 0);
    rec_clear();

    /* Nobody may publish presence. */
    expect_write_refused(&bob, presence_topic("bob"), gone, "not_party", NULL);
    expect_write_refused(&alice, presence_topic("bob"), gone, "not_party", NULL);
    expect_write_refused(&alice, presence_topic("alice"), stale, "not_party", NULL);
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
    expect_write_refused(&alice, "rtm/u/bob/devices/phone", "{}", "bad_request", "phone");
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "rtm/u/bob/devices/phone", REG), RTM_ACL_DENY);
    assert_int_equal(acl(&root, RTM_ACCESS_READ, "rtm/u/bob/devices/phone", REG), RTM_ACL_ALLOW);
    /* Anything else under the prefix. */
    expect_write_refused(&alice, "rtm/other", "{}", "not_party", NULL);
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
    assert_true(rtm_core_owns_topic(T.core, "rtm/"));
    assert_true(rtm_core_owns_topic(T.core, "rtm/#"));
    /* The bare prefix is outside too (issue 13). */
    assert_false(rtm_core_owns_topic(T.core, "rtm"));
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtm", "x"), RTM_ACL_DEFER);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "rtm", "x"), RTM_ACL_DEFER);
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "other/topic", "x"), RTM_ACL_DEFER);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtmx/u/bob/call", "x"), RTM_ACL_DEFER);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, "other/topic", "x"), RTM_ACL_DEFER);
    T.cfg.other_topics = RTM_OTHER_ALLOW;
    assert_int_equal(acl(&alice, RTM_ACCESS_READ, "other/topic", "x"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtmx/u/bob/call", "x"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, "other/topic", "x"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&alice, RTM_ACCESS_WRITE, "rtm", "x"), RTM_ACL_ALLOW);
    assert_int_equal(acl(&anon, RTM_ACCESS_READ, "rtm", "x"), RTM_ACL_ALLOW);

    /* No valid uid: nothing under the prefix. */
    assert_int_equal(acl(&anon, RTM_ACCESS_READ, presence_topic("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, inbox("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_READ, inbox("bob"), "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_WRITE, "rtm/u/bob/devices/phone", "{}"), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_SUBSCRIBE, "rtm/presence/+", NULL), RTM_ACL_DENY);
    assert_int_equal(acl(&anon, RTM_ACCESS_SUBSCRIBE, "rtm/presence/bob", NULL), RTM_ACL_DENY);
    expect_quiet();
}

/* What the plugin never writes under its prefix is never delivered, and a
 * retained copy of it (left by a broker that ran without the plugin, or a
 * Will the broker stored before the guard found it) is erased on sight. */
static void test_acl_read_only_what_the_plugin_wrote(void **state)
{
    (void)state;
    boot();
    online(&bob);
    rec_clear();

    /* Call messages are never retained; the erasure's own fan-out (empty)
     * is not delivered, nor erased again. */
    const char *stamped = "{\"type\":\"invite\",\"id\":\"x1\",\"caller\":\"alice\"}";
    assert_int_equal(acl(&bob, RTM_ACCESS_READ, inbox("bob"), stamped), RTM_ACL_ALLOW);
    expect_quiet();
    assert_int_equal(read_retained(&bob, inbox("bob"), stamped), RTM_ACL_DENY);
    expect_erased(inbox("bob"));
    assert_int_equal(read_retained(&alice, inbox("bob"), stamped), RTM_ACL_DENY);
    expect_erased(inbox("bob"));
    assert_int_equal(read_retained(&bob, inbox("bob"), ""), RTM_ACL_DENY);
    assert_int_equal(acl(&bob, RTM_ACCESS_READ, inbox("bob"), ""), RTM_ACL_DENY);
    expect_quiet();

    /* Devices: a registration, or the empty message that unregisters one. */
    const char *dev = "rtm/u/bob/devices/d1";
    assert_int_equal(read_retained(&bob, dev, REG), RTM_ACL_ALLOW);
    assert_int_equal(read_retained(&bob, dev, ""), RTM_ACL_ALLOW);
    assert_int_equal(acl(&bob, RTM_ACCESS_READ, dev, "not a registration"), RTM_ACL_DENY);
    expect_quiet();
    assert_int_equal(read_retained(&bob, dev, "not a registration"), RTM_ACL_DENY);
    expect_erased(dev);
    assert_int_equal(
        read_retained(&bob, dev, "{\"provider\":\"fcm\",\"platform\":\"ios\",\"token\":\"t\"}"),
        RTM_ACL_DENY);
    expect_erased(dev);

    /* Presence: an object naming the uid with a boolean online. */
    assert_int_equal(read_retained(&alice, presence_topic("carol"), "junk"), RTM_ACL_DENY);
    expect_erased(presence_topic("carol"));
    assert_int_equal(read_retained(&alice, presence_topic("carol"),
                                   "{\"uid\":\"bob\",\"online\":false,\"ts\":1}"),
                     RTM_ACL_DENY);
    expect_erased(presence_topic("carol"));
    assert_int_equal(read_retained(&alice, presence_topic("carol"), ""), RTM_ACL_DENY);
    expect_quiet();
    /* bob is online: the junk is replaced by what he is. */
    assert_int_equal(read_retained(&alice, presence_topic("bob"), "{\"online\":\"yes\"}"),
                     RTM_ACL_DENY);
    assert_int_equal(T.rec.npubs, 1);
    expect_presence(&T.rec.pubs[0], "bob", true, 1);
    rec_clear();
    expect_quiet();
}

/* bob's devices topic with device id `id` (which may hold anything). */
static const char *devices_of_bob(const char *id)
{
    static char topic[256];
    snprintf(topic, sizeof(topic), "rtm/u/bob/devices/%s", id);
    return topic;
}

/* Issue 13: a malformed device id on one's own devices topic (or, for an
 * admin, anyone's) is a bad registration: bad_request naming the device id,
 * never not_party. On someone else's devices topic nothing changes. */
static void test_acl_malformed_device_id(void **state)
{
    (void)state;
    struct rtm_option opt = {"admin_users", "root"};
    char err[256];
    assert_int_equal(rtm_config_parse(&T.cfg, &opt, 1, err, sizeof(err)), 0);
    boot();
    char long_id[RTM_ID_MAX + 2];
    memset(long_id, 'd', RTM_ID_MAX + 1);
    long_id[RTM_ID_MAX + 1] = '\0';
    const struct {
        const char *id, *reported;
    } cases[] = {
        {"a.b", "a.b"},   {"ph@ne", "ph@ne"},     {"", ""}, {"a/b", "a/b"},
        {"q\"x", "q\"x"}, {long_id, long_id + 1}, /* the first 64 of the 65 (all 'd') */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *topic = devices_of_bob(cases[i].id);
        expect_write_refused(&bob, topic, "{}", "bad_request", cases[i].reported);
        expect_write_refused(&root, topic, "{}", "bad_request", cases[i].reported);
        expect_write_refused(&alice, topic, "{}", "not_party", NULL);
    }
    /* Cut between UTF-8 characters: 63 'e' and a 2-byte character. */
    char utf8[RTM_ID_MAX + 8];
    memset(utf8, 'e', RTM_ID_MAX - 1);
    strcpy(utf8 + RTM_ID_MAX - 1, "\xc3\xa9x");
    char cut[RTM_ID_MAX];
    memcpy(cut, utf8, RTM_ID_MAX - 1);
    cut[RTM_ID_MAX - 1] = '\0';
    expect_write_refused(&bob, devices_of_bob(utf8), "{}", "bad_request", cut);
    /* Not UTF-8 (the broker refuses such topics; the error stays JSON). */
    expect_write_refused(&bob, devices_of_bob("a\xfe\xff"), "{}", "bad_request", "a??");
    /* Not a devices topic at all, or no valid uid: as before. */
    expect_write_refused(&bob, "rtm/u/bob/devices", "{}", "not_party", NULL);
    expect_write_refused(&bob, "rtm/u/b b/devices/a.b", "{}", "not_party", NULL);
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

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, core_setup, core_teardown)
    const struct CMUnitTest tests[] = {
        T_(test_acl_presence_read),
        T_(test_acl_topics),
        T_(test_acl_read_only_what_the_plugin_wrote),
        T_(test_acl_malformed_device_id),
        T_(test_identity_uid),
        T_(test_stats_and_next_due),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
