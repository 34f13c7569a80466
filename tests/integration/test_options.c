/*
 * Plugin options as a broker operator meets them: a bad option stops the
 * broker with a log line naming it; topic_prefix, identity, admin_users and
 * other_topics change what clients may do.
 */
#include <string.h>

#include "harness.h"

#define RC_NOT_AUTHORIZED 0x87

static void expect_refused_option(const char *line, const char *name)
{
    const char *opts[] = {line, NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start_refused(&o);
    CHECKF(broker_log_contains(b, 0, name), "the log does not name the bad option %s (%s)", name,
           line);
    broker_free(b);
}

static void test_bad_options_stop_the_broker(void)
{
    expect_refused_option("no_such_option 1", "no_such_option");
    expect_refused_option("invite_timeout abc", "invite_timeout");
    expect_refused_option("invite_timeout 0", "invite_timeout");
    expect_refused_option("ring_timeout -1", "ring_timeout");
    expect_refused_option("busy_limit 1.5", "busy_limit");
    expect_refused_option("identity nobody", "identity");
    expect_refused_option("auth maybe", "auth");
    expect_refused_option("other_topics sometimes", "other_topics");
    expect_refused_option("topic_prefix rtm/#", "topic_prefix");
    expect_refused_option("admin_users ops,bad uid", "admin_users");
    expect_refused_option("auth token", "token_secret");
    expect_refused_option("token_secret 0123456789abcdef", "token_secret");
    expect_refused_option("device_rate 0", "device_rate");
    expect_refused_option("stats_interval never", "stats_interval");
}

static struct client *open5(const struct broker *b, const char *id, const char *user)
{
    struct client_opts o = {.client_id = id, .username = user, .protocol = 5};
    return client_open_v(b, &o);
}

/* A multi-level prefix given with a trailing slash. */
static void test_topic_prefix(void)
{
    static const char *const opts[] = {"topic_prefix app/rtm/", NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start(&o);
    struct client *obs = client_open(b, "observer", NULL);
    CHECK_EQ_INT(client_subscribe(obs, "app/rtm/presence/+", 1), 1);
    struct client *alice = client_open(b, "alice", NULL);
    CHECK_EQ_INT(client_subscribe(alice, "app/rtm/u/alice/call", 1), 1);
    struct client *bob = open5(b, "bob", NULL);
    CHECK_EQ_INT(client_subscribe(bob, "app/rtm/u/bob/call", 1), 1);
    CHECK_EQ_INT(client_subscribe(bob, "app/rtm/u/alice/call", 1), RC_NOT_AUTHORIZED);
    cJSON *p =
        client_wait_json(obs, "app/rtm/presence/bob", WAIT_MS, "online", "true", (char *)NULL);
    CHECKF(p != NULL, "no presence on app/rtm/presence/bob");

    rt_send(alice, "app/rtm/u/bob/call", "{\"type\":\"invite\",\"id\":\"px1\"}");
    cJSON *inv = client_wait_json(bob, "app/rtm/u/bob/call", WAIT_MS, "type", "invite", "id", "px1",
                                  (char *)NULL);
    CHECKF(inv != NULL, "no invite on app/rtm/u/bob/call");
    CHECK_STAMP(inv, "invite", "px1", "alice", "bob", "alice");
    CHECK_EQ_INT(client_publish_str(bob, "app/rtm/u/alice/call", "oops", 1), RC_NOT_AUTHORIZED);
    cJSON *err =
        client_wait_json(bob, "app/rtm/u/bob/call", WAIT_MS, "type", "error", (char *)NULL);
    CHECKF(err != NULL, "no error on app/rtm/u/bob/call");
    EXPECT_STR(err, "code", "bad_request");

    /* The default prefix is an ordinary topic now. */
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/alice/call", 1), 1);
    CHECK_EQ_INT(client_publish_str(alice, "rtm/u/alice/call", "plain", 1), 0);
    struct msg *m = client_wait_msg(bob, "rtm/u/alice/call", WAIT_MS);
    CHECKF(m != NULL && strcmp(m->payload, "plain") == 0,
           "rtm/u/alice/call outside the prefix was not passed through as is");
    client_free(obs);
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

static void test_identity_username(void)
{
    static const char *const opts[] = {"identity username", NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start(&o);
    /* No username: no uid, although the client id would be a valid one. */
    struct client *anon = open5(b, "carol", NULL);
    CHECK_EQ_INT(client_subscribe(anon, "rtm/u/carol/call", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(anon, "rtm/presence/+", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(anon, "other/+", 1), 1);
    /* The username is the uid, whatever the client id. */
    struct client *bob = open5(b, "device 7", "bob");
    CHECK_EQ_INT(client_subscribe(bob, "rtm/u/bob/call", 1), 1);
    CHECK_EQ_INT(client_publish_str(anon, inbox("bob"), "{\"type\":\"invite\",\"id\":\"iu1\"}", 1),
                 RC_NOT_AUTHORIZED);
    struct client *alice = open5(b, "a-1", "alice");
    rt_send(alice, inbox("bob"), "{\"type\":\"invite\",\"id\":\"iu2\"}");
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "invite", "iu2"), "invite", "iu2", "alice", "bob",
                "alice");
    EXPECT_NOTHING_ELSE(bob, NULL);
    client_free(anon);
    client_free(bob);
    client_free(alice);
    broker_free(b);
}

static void test_identity_clientid(void)
{
    static const char *const opts[] = {"identity clientid", NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start(&o);
    struct client *c = open5(b, "carol", "bob");
    CHECK_EQ_INT(client_subscribe(c, "rtm/u/carol/call", 1), 1);
    CHECK_EQ_INT(client_subscribe(c, "rtm/u/bob/call", 1), RC_NOT_AUTHORIZED);
    struct client *alice = open5(b, "alice", "whoever");
    CHECK_EQ_INT(client_subscribe(alice, "rtm/u/alice/call", 1), 1);
    rt_send(alice, inbox("carol"), "{\"type\":\"invite\",\"id\":\"ic1\"}");
    CHECK_STAMP(EXPECT_EVENT(c, "carol", "invite", "ic1"), "invite", "ic1", "alice", "carol",
                "alice");
    client_free(c);
    client_free(alice);
    broker_free(b);
}

static void test_admin_users(void)
{
    static const char *const opts[] = {"admin_users ops, root-2", NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start(&o);
    struct client *ops = open5(b, "ops", NULL);
    CHECK_EQ_INT(client_subscribe(ops, "rtm/u/+/call", 1), 1);
    struct client *root2 = open5(b, "root-2", NULL);
    CHECK_EQ_INT(client_subscribe(root2, "rtm/#", 1), 1);
    struct client *eve = open5(b, "eve", NULL);
    CHECK_EQ_INT(client_subscribe(eve, "rtm/u/+/call", 1), RC_NOT_AUTHORIZED);
    struct client *alice = client_open_inbox(b, "alice", NULL);
    rt_send(alice, inbox("bob"), "{\"type\":\"invite\",\"id\":\"adm1\"}");
    CHECK_STAMP(EXPECT_EVENT(ops, "bob", "invite", "adm1"), "invite", "adm1", "alice", "bob",
                "alice");
    EXPECT_EVENT(root2, "bob", "invite", "adm1");
    client_free(ops);
    client_free(root2);
    client_free(eve);
    client_free(alice);
    /* With auth none anyone may claim an admin uid: the log says so. */
    CHECK(broker_log_contains(b, 0, "plugin_opt_admin_users is set with plugin_opt_auth none"));
    broker_free(b);
}

/* other_topics defer (the default) with no other ACL source: the broker
 * denies everything outside the prefix; the prefix itself still works. */
static void test_other_topics_defer(void)
{
    struct broker_opts o = {.other_topics_default = true};
    struct broker *b = broker_start(&o);
    struct client *c = open5(b, "carol", NULL);
    CHECK_EQ_INT(client_subscribe(c, "other/topic", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_publish_str(c, "other/topic", "x", 1), RC_NOT_AUTHORIZED);
    CHECK_EQ_INT(client_subscribe(c, "rtm/presence/+", 1), 1);
    CHECK_EQ_INT(client_subscribe(c, "rtm/u/carol/call", 1), 1);
    struct client *alice = open5(b, "alice", NULL);
    rt_send(alice, inbox("carol"), "{\"type\":\"invite\",\"id\":\"od1\"}");
    EXPECT_EVENT(c, "carol", "invite", "od1");
    client_free(c);
    client_free(alice);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"bad_options_stop_the_broker", test_bad_options_stop_the_broker},
        {"topic_prefix", test_topic_prefix},
        {"identity_username", test_identity_username},
        {"identity_clientid", test_identity_clientid},
        {"admin_users", test_admin_users},
        {"other_topics_defer", test_other_topics_defer},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
