/*
 * Presence is never stale (PROTOCOL.md section 6): with persistence on, the
 * broker keeps the retained `online` of users connected when it stopped. After
 * a clean restart, and after kill -9 once an autosave has happened, nobody who
 * has not connected since may be shown online.
 */
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static struct broker *start(void)
{
    static const char *const extra[] = {"persistence true", "persistence_location @DIR@/",
                                        "autosave_interval 1", NULL};
    struct broker_opts o = {.extra_lines = extra};
    return broker_start(&o);
}

static const char *presence(const char *uid)
{
    return rt_fmt("rtm/presence/%s", uid);
}

static void expect_online_at(const char *file, int line, struct client *obs, const char *uid,
                             int sessions)
{
    cJSON *j = client_wait_json(obs, presence(uid), WAIT_MS, "online", "true", (char *)NULL);
    if (!j) {
        client_dump(obs);
        rt_fail(file, line, "%s: %s not shown online", client_id(obs), uid);
    }
    rt_expect_int(file, line, j, "sessions", sessions);
}
#define EXPECT_ONLINE(obs, uid, n) expect_online_at(__FILE__, __LINE__, (obs), (uid), (n))

/* Before: bob and carol online, dave connected and gone (offline). */
static void populate(struct broker *b, struct client **bob, struct client **carol)
{
    struct client *obs = client_open(b, "observer-0", NULL);
    CHECK_EQ_INT(client_subscribe(obs, "rtm/presence/+", 1), 1);
    struct client *dave = client_open(b, "dave", NULL);
    EXPECT_ONLINE(obs, "dave", 1);
    client_disconnect(dave);
    CHECK(client_wait_json(obs, presence("dave"), WAIT_MS, "online", "false", (char *)NULL));
    client_free(dave);
    *bob = client_open(b, "bob-phone", "bob");
    EXPECT_ONLINE(obs, "bob", 1);
    *carol = client_open(b, "carol", NULL);
    EXPECT_ONLINE(obs, "carol", 1);
    client_free(obs);
}

/* After the restart: a new subscriber to rtm/presence/+ sees bob and carol
 * offline (the stale retained online replaced), never online, until they
 * connect again. */
static void check_after_restart(struct broker *b)
{
    struct client *obs = client_open(b, "observer-1", NULL);
    CHECK_EQ_INT(client_subscribe(obs, "rtm/presence/+", 1), 1);
    CHECK(client_wait_json(obs, presence("bob"), WAIT_MS, "online", "false", (char *)NULL));
    CHECK(client_wait_json(obs, presence("carol"), WAIT_MS, "online", "false", (char *)NULL));
    /* A subscriber to bob alone, too. */
    struct client *obs2 = client_open(b, "observer-2", NULL);
    CHECK_EQ_INT(client_subscribe(obs2, "rtm/presence/bob", 1), 1);
    cJSON *j = client_wait_json(obs2, presence("bob"), WAIT_MS, (char *)NULL);
    CHECKF(j != NULL, "no presence state for bob after the restart");
    EXPECT_BOOL(j, "online", false);

    /* Sentinel: erin connects now; her online comes after anything older. */
    struct client *erin = client_open(b, "erin", NULL);
    EXPECT_ONLINE(obs, "erin", 1);
    static const char *const stale[] = {"bob", "carol", "dave"};
    for (size_t i = 0; i < 3; i++) {
        if (client_count(obs, presence(stale[i]), "online", "true", (char *)NULL) != 0 ||
            client_count(obs2, presence(stale[i]), "online", "true", (char *)NULL) != 0) {
            client_dump(obs);
            client_dump(obs2);
            FAIL("after the restart %s was shown online without connecting", stale[i]);
        }
    }
    /* Positive control: bob connecting now is shown online. */
    struct client *bob = client_open(b, "bob-phone", "bob");
    EXPECT_ONLINE(obs, "bob", 1);
    EXPECT_ONLINE(obs2, "bob", 1);
    client_free(bob);
    client_free(erin);
    client_free(obs);
    client_free(obs2);
}

static void test_clean_restart(void)
{
    struct broker *b = start();
    struct client *bob, *carol;
    populate(b, &bob, &carol);
    broker_stop(b);
    /* The clients saw the broker go; they do not reconnect by themselves. */
    CHECK(client_wait_disconnected(bob, WAIT_MS));
    client_free(bob);
    client_free(carol);
    broker_restart(b);
    check_after_restart(b);
    broker_free(b);
}

static void test_kill9_restart(void)
{
    struct broker *b = start();
    struct client *bob, *carol;
    populate(b, &bob, &carol);
    /* Wait for an autosave that includes the retained online messages: one
     * that completes from now on. The broker logs "Saving" before writing
     * and renames mosquitto.db.new over mosquitto.db when done, so a new
     * inode at mosquitto.db marks a completed save. Saves run on the broker
     * thread, so one that completes now began after the messages above were
     * stored. */
    const char *db = broker_dir_file(b, "mosquitto.db");
    struct stat st;
    ino_t before = stat(db, &st) == 0 ? st.st_ino : 0;
    long mark = broker_log_mark(b);
    CHECKF(broker_wait_log(b, mark, "Saving in-memory database", 5000),
           "no autosave within 5 s (autosave_interval 1)");
    int64_t deadline = now_mono_ms() + 5000;
    while (!(stat(db, &st) == 0 && st.st_ino != before)) {
        CHECKF(now_mono_ms() < deadline, "the autosave did not complete within 5 s");
        rt_wait_ms(10);
    }
    broker_kill9(b);
    CHECK(client_wait_disconnected(bob, WAIT_MS));
    client_free(bob);
    client_free(carol);
    broker_restart(b);
    check_after_restart(b);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"clean_restart", test_clean_restart},
        {"kill9_restart", test_kill9_restart},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
