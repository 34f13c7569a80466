/*
 * The plugin next to Mosquitto's dynamic-security plugin, which is loaded
 * after it (plugin_opt_auth defer, other_topics left at defer). The dynsec config
 * starts as `mosquitto_ctrl dynsec init` makes it (one admin); every client
 * and role is then created through the real control API, $CONTROL. Dynsec
 * decides who gets in and every topic outside rtm/; the plugin alone decides
 * rtm/, whatever a dynsec role grants. No role mentions rtm/ at all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define CONNACK_NOT_AUTHORIZED 5
#define SUBACK_FAIL_V3         0x80
#define RC_NOT_AUTHORIZED      0x87

#define CONTROL          "$CONTROL/dynamic-security/v1"
#define CONTROL_RESPONSE "$CONTROL/dynamic-security/v1/response"
#define ADMIN            "dynsec-admin"

extern char **environ;

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* The dynamic-security plugin of the broker under test: RTM_DYNSEC_PLUGIN
 * (or its older name MOSQUITTO_DYNSEC); else, when the broker is not
 * Debian's, mosquitto_dynamic_security.so next to its binary, as
 * tools/brokers.sh lays out build-brokers/<version>/ (a plugin of another
 * Mosquitto version may not load: 2.0.11's into 2.1, for one); else where
 * Debian's mosquitto package puts it. Printed, so the log says what ran. */
static const char *dynsec_plugin(void)
{
    static const char *const candidates[] = {
        "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
        "/usr/lib/mosquitto_dynamic_security.so",
    };
    const char *found = NULL, *why = NULL;
    const char *set = env_or("RTM_DYNSEC_PLUGIN", env_or("MOSQUITTO_DYNSEC", NULL));
    const char *bin = rt_broker_bin();
    const char *slash = strrchr(bin, '/');
    if (set) {
        found = set;
        why = "RTM_DYNSEC_PLUGIN";
    } else if (slash && strcmp(bin, "/usr/sbin/mosquitto") != 0) {
        const char *beside = rt_fmt("%.*s/mosquitto_dynamic_security.so", (int)(slash - bin), bin);
        if (access(beside, R_OK) == 0) {
            found = beside;
            why = "beside the broker";
        }
    }
    for (size_t i = 0; !found && i < sizeof(candidates) / sizeof(candidates[0]); i++) {
        if (access(candidates[i], R_OK) == 0) {
            found = candidates[i];
            why = "Debian's package";
        }
    }
    if (!found)
        FAIL("mosquitto_dynamic_security.so not found (beside %s, nor Debian's mosquitto "
             "package); set RTM_DYNSEC_PLUGIN to its path",
             bin);
    if (access(found, R_OK) != 0)
        FAIL("dynamic-security plugin %s (%s): %s", found, why, strerror(errno));
    printf("dynamic-security plugin: %s (%s)\n", found, why);
    return found;
}

/* broker_opts.prepare: the config file with its one admin, as an operator
 * makes it. */
static void dynsec_init(const struct broker *b, void *ud)
{
    (void)ud;
    const char *tool = env_or("MOSQUITTO_CTRL", "/usr/bin/mosquitto_ctrl");
    const char *log = broker_dir_file(b, "mosquitto_ctrl.log");
    char *argv[] = {(char *)tool, "dynsec",    "init", (char *)broker_dir_file(b, "dynsec.json"),
                    ADMIN,        ADMIN "-pw", NULL};
    pid_t pid = rt_spawn_logged(tool, argv, environ, log);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0,
           "%s dynsec init failed (status 0x%x), see %s", tool, (unsigned)status, log);
}

static struct client *login(const struct broker *b, const char *id, const char *user, int proto)
{
    struct client_opts o = {
        .client_id = id, .username = user, .password = rt_fmt("%s-pw", user), .protocol = proto};
    return client_open_v(b, &o);
}

/* Sends one command to dynsec and fails unless it succeeded. */
static void dynsec(struct client *admin, const char *command)
{
    const char *body = rt_fmt("{\"commands\":[%s]}", command);
    CHECK_EQ_INT(client_publish_str(admin, CONTROL, body, 1), 0);
    struct msg *m = client_wait_msg(admin, CONTROL_RESPONSE, WAIT_MS);
    CHECKF(m != NULL && m->json != NULL, "no dynsec response to %s", body);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(m->json, "responses");
    const cJSON *r = cJSON_GetArrayItem(rs, 0);
    CHECKF(cJSON_GetArraySize(rs) == 1 && r && !cJSON_GetObjectItemCaseSensitive(r, "error"),
           "dynsec refused %s: %s", body, m->payload);
}

static void add_acl(struct client *admin, const char *role, const char *type, const char *topic)
{
    dynsec(admin, rt_fmt("{\"command\":\"addRoleACL\",\"rolename\":\"%s\",\"acltype\":\"%s\","
                         "\"topic\":\"%s\",\"allow\":true}",
                         role, type, topic));
}

/* A role that may publish, subscribe to and receive `filter`. */
static void add_role(struct client *admin, const char *role, const char *filter)
{
    dynsec(admin, rt_fmt("{\"command\":\"createRole\",\"rolename\":\"%s\"}", role));
    add_acl(admin, role, "publishClientSend", filter);
    add_acl(admin, role, "publishClientReceive", filter);
    add_acl(admin, role, "subscribePattern", filter);
}

/* A client whose password is "<user>-pw", with `role` unless NULL. */
static void add_user(struct client *admin, const char *user, const char *role)
{
    dynsec(admin,
           rt_fmt("{\"command\":\"createClient\",\"username\":\"%s\",\"password\":\"%s-pw\"}", user,
                  user));
    if (role)
        dynsec(admin, rt_fmt("{\"command\":\"addClientRole\",\"username\":\"%s\","
                             "\"rolename\":\"%s\"}",
                             user, role));
}

/* alice and bob each own app/<uid>/#, mallory's role allows every topic,
 * carol and the watcher have no role. */
static void configure(const struct broker *b)
{
    struct client *admin = login(b, "admin-1", ADMIN, 4);
    CHECK_EQ_INT(client_subscribe(admin, CONTROL_RESPONSE, 1), 1);
    add_role(admin, "alice-app", "app/alice/#");
    add_role(admin, "bob-app", "app/bob/#");
    add_role(admin, "everything", "#");
    add_user(admin, "alice", "alice-app");
    add_user(admin, "bob", "bob-app");
    add_user(admin, "mallory", "everything");
    add_user(admin, "carol", NULL);
    add_user(admin, "watcher", NULL);
    client_free(admin);
}

/* The plugin first, then dynsec: its plugin_opt_ lines follow its own
 * `plugin` line, after every line of the plugin's. */
static struct broker *start_broker(void)
{
    static const char *const opts[] = {"auth defer", NULL};
    const char *extra[] = {rt_fmt("plugin %s", dynsec_plugin()),
                           "plugin_opt_config_file @DIR@/dynsec.json", NULL};
    struct broker_opts o = {.plugin_opts = opts,
                            .other_topics_default = true,
                            .extra_lines = extra,
                            .prepare = dynsec_init};
    struct broker *b = broker_start(&o);
    configure(b);
    return b;
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

/* Publishes a message no other publish repeats to `topic` and waits for
 * `c` to receive it; earlier copies on the same topic cannot stand in. */
static void round_trip(struct client *from, struct client *c, const char *topic)
{
    const char *mark = rt_uniq("mark");
    CHECK_EQ_INT(client_publish_str(from, topic, rt_fmt("{\"mark\":\"%s\"}", mark), 1), 0);
    CHECKF(client_wait_json(c, topic, WAIT_MS, "mark", mark, (char *)NULL) != NULL,
           "%s did not receive %s", client_id(c), topic);
}

/* 1. dynsec decides who gets in; a refused login never shows online. */
static void test_dynsec_authenticates(void)
{
    struct broker *b = start_broker();
    struct client *w = login(b, "watcher", "watcher", 4);
    CHECK_EQ_INT(client_subscribe(w, "rtm/presence/+", 1), 1);

    expect_refused(b, "bob-1", "bob", "not-bobs-password");
    expect_refused(b, "bob-2", "bob", NULL);
    expect_refused(b, "eve-1", "eve", "eve-pw"); /* no such dynsec client */

    /* Sentinel: carol's correct login is shown, later than any of those. */
    struct client *carol = login(b, "carol-1", "carol", 4);
    cJSON *p = client_wait_json(w, presence("carol"), WAIT_MS, "online", "true", (char *)NULL);
    CHECKF(p != NULL, "carol's correct login was not shown online");
    EXPECT_INT(p, "sessions", 1);
    EXPECT_NOTHING_ELSE(w, presence("bob"));
    EXPECT_NOTHING_ELSE(w, presence("eve"));

    struct client *bob = login(b, "bob-3", "bob", 4);
    p = client_wait_json(w, presence("bob"), WAIT_MS, "online", "true", (char *)NULL);
    CHECKF(p != NULL, "bob's correct login was not shown online");
    EXPECT_INT(p, "sessions", 1);
    client_free(bob);
    client_free(carol);
    client_free(w);
    broker_free(b);
}

/* 2. dynsec governs every topic outside rtm/. */
static void test_dynsec_governs_other_topics(void)
{
    struct broker *b = start_broker();
    struct client *alice = login(b, "alice-1", "alice", 4);
    struct client *bob = login(b, "bob-1", "bob", 4);

    CHECK_EQ_INT(client_subscribe(alice, "app/alice/#", 1), 1);
    round_trip(alice, alice, "app/alice/note");

    /* bob's topic is not in alice's role: no subscription, no publish. */
    CHECK_EQ_INT(client_subscribe(alice, "app/bob/#", 1), SUBACK_FAIL_V3);
    CHECK_EQ_INT(client_subscribe(alice, "#", 1), SUBACK_FAIL_V3);
    CHECK_EQ_INT(client_subscribe(bob, "app/bob/#", 1), 1);
    CHECK_EQ_INT(client_publish_str(alice, "app/bob/inbox", "spoof", 1), 0);
    round_trip(bob, bob, "app/bob/sentinel");
    EXPECT_NOTHING_ELSE(bob, "app/bob/inbox");

    /* carol has no role: nothing outside rtm/, her inbox all the same. */
    struct client *carol = login_inbox(b, "carol-1", "carol");
    CHECK_EQ_INT(client_subscribe(carol, "app/carol/#", 1), SUBACK_FAIL_V3);
    CHECK_EQ_INT(client_publish_str(carol, "app/bob/from-carol", "spoof", 1), 0);
    round_trip(bob, bob, "app/bob/sentinel");
    EXPECT_NOTHING_ELSE(bob, "app/bob/from-carol");
    const char *id = rt_uniq("ds");
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

/* A whole call, alice to bob, both inboxes checked. */
static void call_alice_to_bob(struct client *alice, struct client *bob)
{
    const char *id = rt_uniq("ds");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "invite", id), "invite", id, "alice", "bob", "alice");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "ringing", id), "ringing", id, "alice", "bob", "bob");
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    CHECK_STAMP(EXPECT_EVENT(alice, "alice", "accept", id), "accept", id, "alice", "bob", "bob");
    CHECK_STAMP(EXPECT_EVENT(bob, "bob", "accept", id), "accept", id, "alice", "bob", "bob");
}

/* 3. A role allowing `#` opens nothing under rtm/ to read. */
static void test_role_with_everything_cannot_read_rtm(void)
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
    /* Granted by her role; every delivery under rtm/ is still checked. */
    CHECK_EQ_INT(client_subscribe(mallory, "#", 1), 1);
    CHECK_EQ_INT(client_subscribe(mallory, "+/u/+/call", 1), 1);

    call_alice_to_bob(alice, bob);
    round_trip(mallory, mallory, "app/mallory/sentinel");
    client_foreach(mallory, NULL, no_rtm_but_presence, "mallory");
    client_free(mallory);
    client_free(bob);
    client_free(alice);
    broker_free(b);
}

/* 3, continued: nor anything under rtm/ to write but inboxes. */
static void test_role_with_everything_cannot_write_rtm(void)
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
    client_free(mallory);
    client_free(bob);
    client_free(w);
    broker_free(b);
}

/* 3, the rest: a call between two dynsec users whose roles say nothing of
 * rtm/. */
static void test_call_between_dynsec_users(void)
{
    struct broker *b = start_broker();
    struct client *alice = login_inbox(b, "alice-1", "alice");
    struct client *bob = login_inbox(b, "bob-1", "bob");
    call_alice_to_bob(alice, bob);
    EXPECT_NOTHING_ELSE(alice, inbox("alice"));
    EXPECT_NOTHING_ELSE(bob, inbox("bob"));
    client_free(bob);
    client_free(alice);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"dynsec_authenticates", test_dynsec_authenticates},
        {"dynsec_governs_other_topics", test_dynsec_governs_other_topics},
        {"role_with_everything_cannot_read_rtm", test_role_with_everything_cannot_read_rtm},
        {"role_with_everything_cannot_write_rtm", test_role_with_everything_cannot_write_rtm},
        {"call_between_dynsec_users", test_call_between_dynsec_users},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
