/*
 * The plugin inside a broker that already authenticates with password_file
 * and authorises with acl_file (plugin_opt_auth defer, other_topics left at
 * defer): password_file decides who gets in, acl_file decides every topic
 * outside rtm/, and the plugin alone decides rtm/, however generous the
 * acl_file is. The acl_file has no entry for rtm/ at all.
 */
#include <string.h>

#include "harness.h"

#define CONNACK_NOT_AUTHORIZED 5
#define SUBACK_FAIL_V3         0x80
#define RC_NOT_AUTHORIZED      0x87

/* No rtm/ entry anywhere: the plugin answers every rtm/ check before the
 * acl_file is asked. mallory may read and write every topic. */
static const char acl_text[] = "pattern readwrite room/%u/#\n"
                               "\n"
                               "user alice\n"
                               "topic readwrite app/alice/#\n"
                               "\n"
                               "user bob\n"
                               "topic readwrite app/bob/#\n"
                               "\n"
                               "user mallory\n"
                               "topic readwrite #\n";

static struct broker *start_broker(void)
{
    static const char *const opts[] = {"auth defer", NULL};
    static const char *const users[] = {"alice:alice-pw",     "bob:bob-pw",
                                        "carol:carol-pw",     "mallory:mallory-pw",
                                        "watcher:watcher-pw", NULL};
    static const char *const extra[] = {"acl_file @DIR@/acl", NULL};
    static const char *const files[] = {"acl", acl_text, NULL};
    struct broker_opts o = {.plugin_opts = opts,
                            .other_topics_default = true,
                            .passwd_users = users,
                            .extra_lines = extra,
                            .files = files};
    return broker_start(&o);
}

/* Logs in with the user's password from start_broker ("<user>-pw"). */
static struct client *login(const struct broker *b, const char *id, const char *user, int proto)
{
    struct client_opts o = {
        .client_id = id, .username = user, .password = rt_fmt("%s-pw", user), .protocol = proto};
    return client_open_v(b, &o);
}

static struct client *login_inbox(const struct broker *b, const char *id, const char *user)
{
    struct client *c = login(b, id, user, 4);
    CHECK_EQ_INT(client_subscribe(c, inbox(user), 1), 1);
    return c;
}

static void expect_refused(const struct broker *b, const char *id, const char *user,
                           const char *password)
{
    struct client_opts o = {.client_id = id, .username = user, .password = password};
    struct client *c = client_new(b, &o);
    int rc = client_connect(c);
    CHECKF(rc == CONNACK_NOT_AUTHORIZED, "%s (%s, password %s): CONNACK %d, expected %d", id, user,
           password ? password : "none", rc, CONNACK_NOT_AUTHORIZED);
    client_free(c);
}

static const char *presence(const char *uid)
{
    return rt_fmt("rtm/presence/%s", uid);
}

/* 1. password_file decides who gets in; a refused login never shows online. */
static void test_password_file_authenticates(void)
{
    struct broker *b = start_broker();
    struct client *w = login(b, "watcher", "watcher", 4);
    CHECK_EQ_INT(client_subscribe(w, "rtm/presence/+", 1), 1);

    expect_refused(b, "bob-1", "bob", "not-bobs-password");
    expect_refused(b, "bob-2", "bob", NULL);
    expect_refused(b, "eve-1", "eve", "eve-pw"); /* not in the password_file */

    /* Sentinel: carol's correct login is shown, later than any of those. */
    struct client *carol = login(b, "carol-1", "carol", 4);
    cJSON *p = client_wait_json(w, presence("carol"), WAIT_MS, "online", "true", (char *)NULL);
    CHECKF(p != NULL, "carol's correct login was not shown online");
    EXPECT_INT(p, "sessions", 1);
    EXPECT_NOTHING_ELSE(w, presence("bob"));
    EXPECT_NOTHING_ELSE(w, presence("eve"));

    /* bob with his password is shown online, with one session. */
    struct client *bob = login(b, "bob-3", "bob", 4);
    p = client_wait_json(w, presence("bob"), WAIT_MS, "online", "true", (char *)NULL);
    CHECKF(p != NULL, "bob's correct login was not shown online");
    EXPECT_INT(p, "sessions", 1);
    client_free(bob);
    client_free(carol);
    client_free(w);
    broker_free(b);
}

/* Publishes a message no other publish repeats to `topic` and waits for
 * `c` to receive it; earlier copies on the same topic cannot stand in. */
static void round_trip(struct client *from, struct client *c, const char *topic)
{
    const char *mark = rt_uniq("mark");
    CHECK_EQ_INT(client_publish_str(from, topic, rt_fmt("{\"mark\":\"%s\"}", mark), 1), 0);
    CHECKF(client_wait_json(c, topic, WAIT_MS, "mark", mark, (char *)NULL) != NULL,
           "%s did not receive %s", client_id(c), topic);
}

/* Publishes `spoof` from `from` (QoS 1, acknowledged even when denied in
 * MQTT 3.1.1), then a sentinel from `to`, a permitted subscriber of both
 * topics: the spoof must not arrive before the sentinel does. */
static void expect_publish_dropped(struct client *from, struct client *to, const char *spoof,
                                   const char *sentinel)
{
    CHECK_EQ_INT(client_publish_str(from, spoof, "spoof", 1), 0);
    round_trip(to, to, sentinel);
    EXPECT_NOTHING_ELSE(to, spoof);
}

/* `reader` may not read `topic`: `writer`, who may, publishes there and
 * receives it itself; then `reader` publishes a sentinel to `own`, a topic it
 * may read, and gets it without the message on `topic` coming first. */
static void expect_read_denied(struct client *reader, struct client *writer, const char *topic,
                               const char *own)
{
    round_trip(writer, writer, topic);
    round_trip(reader, reader, own);
    EXPECT_NOTHING_ELSE(reader, topic);
}

/* Mosquitto 2.0.11's acl_file grants every subscription (its subscribe
 * check is a FIXME) and decides each delivery instead; a later version may
 * refuse the SUBACK. Either way nothing may be delivered. */
static void subscribe_unreadable(struct client *c, const char *filter)
{
    int rc = client_subscribe(c, filter, 1);
    CHECKF(rc == 1 || rc == SUBACK_FAIL_V3, "%s subscribing to %s: SUBACK 0x%02x", client_id(c),
           filter, (unsigned)rc);
}

/* 2. acl_file governs every topic outside rtm/. */
static void test_acl_file_governs_other_topics(void)
{
    struct broker *b = start_broker();
    struct client *alice = login(b, "alice-1", "alice", 4);
    struct client *bob = login(b, "bob-1", "bob", 4);

    /* Her own topics: a `topic` line and a `pattern` line. */
    CHECK_EQ_INT(client_subscribe(alice, "app/alice/#", 1), 1);
    CHECK_EQ_INT(client_subscribe(alice, "room/alice/#", 1), 1);
    round_trip(alice, alice, "app/alice/note");
    round_trip(alice, alice, "room/alice/chat");

    /* bob's topics: alice can neither write nor read them. */
    CHECK_EQ_INT(client_subscribe(bob, "app/bob/#", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "room/bob/#", 1), 1);
    subscribe_unreadable(alice, "app/bob/#");
    subscribe_unreadable(alice, "room/bob/#");
    subscribe_unreadable(alice, "#");
    expect_publish_dropped(alice, bob, "app/bob/inbox", "app/bob/sentinel");
    expect_publish_dropped(alice, bob, "room/bob/chat", "room/bob/sentinel");
    expect_read_denied(alice, bob, "app/bob/private", "app/alice/sentinel");
    expect_read_denied(alice, bob, "room/bob/private", "room/alice/sentinel");

    /* carol has no acl_file entry but the pattern: nothing else outside
     * rtm/, and her inbox works all the same. */
    struct client *carol = login_inbox(b, "carol-1", "carol");
    CHECK_EQ_INT(client_subscribe(carol, "room/carol/#", 1), 1);
    subscribe_unreadable(carol, "#");
    expect_read_denied(carol, alice, "app/alice/private", "room/carol/sentinel");
    expect_publish_dropped(carol, alice, "app/alice/from-carol", "app/alice/sentinel");
    const char *id = rt_uniq("acl");
    rt_send(alice, inbox("carol"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(carol, "carol", "invite", id), "invite", id, "alice", "carol",
                "alice");
    client_free(carol);
    client_free(bob);
    client_free(alice);
    broker_free(b);
}

/* Fails when `c` received anything under rtm/ other than presence. */
static void no_rtm_but_presence(const struct msg *m, void *ud)
{
    const char *who = ud;
    if (strncmp(m->topic, "rtm/", 4) == 0 && strncmp(m->topic, "rtm/presence/", 13) != 0)
        FAIL("%s received %s: %s", who, m->topic, m->payload);
}

static void register_bob_phone(struct client *bob)
{
    const char *topic = "rtm/u/bob/devices/phone";
    const char *reg = "{\"provider\":\"jpush\",\"platform\":\"android\",\"token\":\"bob-token-1\"}";
    CHECK_EQ_INT(client_publish(bob, topic, reg, (int)strlen(reg), 1, true), 0);
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/devices/+", 1), 1);
    CHECKF(client_wait_json(bob, topic, WAIT_MS, "token", "bob-token-1", (char *)NULL) != NULL,
           "bob's registration was not stored");
}

/* One call, alice to bob, through every step mallory might overhear. */
static void call_alice_to_bob(struct client *alice, struct client *bob)
{
    const char *id = rt_uniq("spy");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "accept", id);
    EXPECT_EVENT(bob, "bob", "accept", id);
}

/* 3. `topic readwrite #` in the acl_file opens nothing under rtm/. */
static void test_generous_acl_cannot_open_rtm(void)
{
    struct broker *b = start_broker();
    struct client *alice = login_inbox(b, "alice-1", "alice");
    struct client *bob = login_inbox(b, "bob-1", "bob");
    register_bob_phone(bob);

    struct client *mallory = login(b, "mallory-1", "mallory", 4);
    CHECK_EQ_INT(client_subscribe(mallory, "rtm/u/bob/call", 1), SUBACK_FAIL_V3);
    CHECK_EQ_INT(client_subscribe(mallory, "rtm/#", 1), SUBACK_FAIL_V3);
    CHECK_EQ_INT(client_subscribe(mallory, "rtm/u/+/devices/#", 1), SUBACK_FAIL_V3);
    CHECK_EQ_INT(client_subscribe(mallory, "rtm/u/bob/devices/+", 1), SUBACK_FAIL_V3);
    /* Filters outside the prefix are the acl_file's to grant; what they
     * match under rtm/ is still checked on every delivery. */
    CHECK_EQ_INT(client_subscribe(mallory, "#", 1), 1);
    CHECK_EQ_INT(client_subscribe(mallory, "+/u/+/call", 1), 1);

    call_alice_to_bob(alice, bob);
    /* Sentinel: mallory's own message through her '#'. */
    round_trip(mallory, mallory, "app/mallory/sentinel");
    client_foreach(mallory, NULL, no_rtm_but_presence, "mallory");
    client_free(mallory);
    client_free(bob);
    client_free(alice);
    broker_free(b);
}

/* 3, continued: mallory cannot write presence or anyone's devices. */
static void test_generous_acl_cannot_write_rtm(void)
{
    struct broker *b = start_broker();
    struct client *w = login(b, "watcher", "watcher", 4);
    CHECK_EQ_INT(client_subscribe(w, "rtm/presence/bob", 1), 1);
    struct client *bob = login_inbox(b, "bob-1", "bob");
    CHECK(client_wait_json(w, presence("bob"), WAIT_MS, "online", "true", (char *)NULL));

    struct client *mallory = login(b, "mallory-5", "mallory", 5);
    const char *fake = "{\"uid\":\"bob\",\"online\":false,\"ts\":1}";
    int rc = client_publish(mallory, presence("bob"), fake, (int)strlen(fake), 1, true);
    CHECKF(rc == RC_NOT_AUTHORIZED, "mallory publishing bob's presence: reason 0x%02x",
           (unsigned)rc);
    const char *reg = "{\"provider\":\"jpush\",\"platform\":\"ios\",\"token\":\"mallory-t\"}";
    rc = client_publish(mallory, "rtm/u/bob/devices/evil", reg, (int)strlen(reg), 1, true);
    CHECKF(rc == RC_NOT_AUTHORIZED, "mallory registering a device for bob: reason 0x%02x",
           (unsigned)rc);
    /* MQTT 3.1.1 has no reason code: by the effect. */
    struct client *mallory3 = login(b, "mallory-3", "mallory", 4);
    CHECK(client_publish(mallory3, presence("bob"), fake, (int)strlen(fake), 1, true) == 0);
    /* Sentinel: bob's second session is shown (sessions 2), nothing before. */
    struct client *bob2 = login(b, "bob-2", "bob", 4);
    cJSON *p = client_wait_json(w, presence("bob"), WAIT_MS, (char *)NULL);
    CHECKF(p != NULL, "no presence change for bob's second session");
    EXPECT_BOOL(p, "online", true);
    EXPECT_INT(p, "sessions", 2);
    EXPECT_NOTHING_ELSE(w, NULL);
    /* bob's devices hold no registration of mallory's. */
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/devices/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "app/bob/#", 1), 1);
    round_trip(bob, bob, "app/bob/sentinel");
    EXPECT_NOTHING_ELSE(bob, "rtm/u/bob/devices/evil");
    client_free(bob2);
    client_free(mallory3);
    client_free(mallory);
    client_free(bob);
    client_free(w);
    broker_free(b);
}

/* 4. A whole call between two password_file users; the acl_file says
 * nothing about rtm/. */
static void test_call_between_password_users(void)
{
    struct broker *b = start_broker();
    struct client *alice = login_inbox(b, "alice-1", "alice");
    struct client *bob = login_inbox(b, "bob-1", "bob");
    const char *id = rt_uniq("pw");
    rt_send(alice, inbox("bob"),
            rt_fmt("{\"type\":\"invite\",\"id\":\"%s\",\"channel\":\"room-1\"}", id));
    cJSON *inv = EXPECT_EVENT(bob, "bob", "invite", id);
    CHECK_STAMP(inv, "invite", id, "alice", "bob", "alice");
    EXPECT_STR(inv, "channel", "room-1");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "ringing", id), "ringing", id, "alice", "bob", "bob");
    rt_send(bob, inbox("alice"),
            rt_fmt("{\"type\":\"accept\",\"id\":\"%s\",\"response\":\"hi\"}", id));
    cJSON *acc = EXPECT_EVENT(alice, "alice", "accept", id);
    CHECK_STAMP(acc, "accept", id, "alice", "bob", "bob");
    EXPECT_STR(acc, "response", "hi");
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "accept", id), "accept", id, "alice", "bob", "bob");
    EXPECT_NOTHING_ELSE(alice, inbox("alice"));
    EXPECT_NOTHING_ELSE(bob, inbox("bob"));
    client_free(bob);
    client_free(alice);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"password_file_authenticates", test_password_file_authenticates},
        {"acl_file_governs_other_topics", test_acl_file_governs_other_topics},
        {"generous_acl_cannot_open_rtm", test_generous_acl_cannot_open_rtm},
        {"generous_acl_cannot_write_rtm", test_generous_acl_cannot_write_rtm},
        {"call_between_password_users", test_call_between_password_users},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
