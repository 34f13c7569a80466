/*
 * Token login against the real broker (SPEC 7, plugin_opt_auth token): the
 * tokens are minted by the shipped CLI (build/rtm-token, RTM_TOKEN_TOOL), so
 * these tests also show that the CLI and the plugin agree. A valid token
 * logs in and calls work; an expired, forged, malformed or another uid's
 * token, or none, is refused with "not authorized", logged once without the
 * token, and never shown online. A valid token on a client id that is not the
 * uid's own is refused before Mosquitto looks the id up, so it takes over
 * nobody's connection. The registry loader still gets in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jpush_mock.h"

#define SECRET "token-secret-for-integration"

static const char *mint(const char *secret, const char *uid, long long expiry_s)
{
    return rt_mint_token(secret, uid, expiry_s);
}

static struct broker *start_token_broker(const char *const *extra_opts)
{
    static const char *opts[16];
    size_t n = 0;
    opts[n++] = "auth token";
    opts[n++] = "token_secret " SECRET;
    for (; extra_opts && *extra_opts && n + 1 < 16; extra_opts++)
        opts[n++] = *extra_opts;
    opts[n] = NULL;
    struct broker_opts o = {.plugin_opts = opts};
    return broker_start(&o);
}

/* Connects `uid` (username = uid) with `password`; returns the CONNACK code. */
static int try_login(const struct broker *b, const char *uid, const char *password)
{
    struct client_opts o = {
        .client_id = rt_fmt("%s-try", uid), .username = uid, .password = password};
    struct client *c = client_new(b, &o);
    int rc = client_connect(c);
    client_free(c);
    return rc;
}

static struct client *login(const struct broker *b, const char *uid)
{
    struct client_opts o = {
        .client_id = rt_fmt("%s-phone", uid), .username = uid, .password = mint(SECRET, uid, 0)};
    struct client *c = client_open_v(b, &o);
    CHECK_EQ_INT(client_subscribe(c, inbox(uid), 1), 1);
    return c;
}

static void test_valid_tokens_call(void)
{
    struct broker *b = start_token_broker(NULL);
    struct client *alice = login(b, "alice");
    struct client *bob = login(b, "bob");
    const char *id = rt_uniq("tok");
    rt_send(alice, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"ringing\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(alice, "alice", "ringing", id);
    rt_send(bob, inbox("alice"), rt_fmt("{\"type\":\"accept\",\"id\":\"%s\"}", id));
    cJSON *ev = EXPECT_EVENT(alice, "alice", "accept", id);
    CHECK_STAMP(ev, "accept", id, "alice", "bob", "bob");
    client_free(alice);
    client_free(bob);
    broker_free(b);
}

/* Every bad credential: CONNACK 5, one log line naming why, and the token
 * never in the log. */
static void test_bad_tokens_refused(void)
{
    struct broker *b = start_token_broker(NULL);
    const char *expired = mint(SECRET, "mallory", (long long)time(NULL) - 120);
    const char *forged = mint("some-other-secret-16+", "mallory", 0);
    const char *bobs = mint(SECRET, "bob", 0);
    const struct {
        const char *password, *why;
    } cases[] = {
        {expired, "token expired"},    {forged, "token bad signature"},
        {bobs, "token bad signature"}, {"hunter2", "token malformed"},
        {NULL, "token missing"},       {rt_fmt("%s ", bobs), "token malformed"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long mark = broker_log_mark(b);
        CHECK_EQ_INT(try_login(b, "mallory", cases[i].password), 5);
        CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "refused login of mallory", cases[i].why,
                                    (char *)NULL),
               "no log line saying \"%s\" for case %zu", cases[i].why, i);
        CHECK_EQ_INT(broker_log_lines(b, mark, "refused login of mallory", (char *)NULL), 1);
        if (cases[i].password && strlen(cases[i].password) > 20)
            expect_secret_not_logged(b, cases[i].password);
    }
    broker_free(b);
}

/* A refused login is never shown online, while an accepted one is. */
static void test_refused_never_online(void)
{
    struct broker *b = start_token_broker(NULL);
    struct client *watcher = login(b, "watcher");
    CHECK_EQ_INT(client_subscribe(watcher, "rtm/presence/+", 1), 1);
    CHECK_EQ_INT(try_login(b, "mallory", mint(SECRET, "bob", 0)), 5);
    struct client *carol = login(b, "carol");
    CHECK(client_wait_json(watcher, "rtm/presence/carol", WAIT_MS, "online", "true", NULL));
    CHECK_EQ_INT(client_count(watcher, "rtm/presence/mallory", NULL), 0);
    client_free(carol);
    client_free(watcher);
    broker_free(b);
}

/* Connects uid (username = uid) with a valid token of its own on client id
 * `id`, at MQTT `protocol`; returns the CONNACK code. */
static int try_client_id(const struct broker *b, const char *uid, const char *id, int protocol)
{
    struct client_opts o = {
        .client_id = id, .username = uid, .password = mint(SECRET, uid, 0), .protocol = protocol};
    struct client *c = client_new(b, &o);
    int rc = client_connect(c);
    client_free(c);
    return rc;
}

/* Issue 13: mallory, with a valid token of her own, reuses bob's client id.
 * She is refused at CONNECT (one log line naming her and the id), and bob's
 * connection is not touched: it stays up, receives calls, and bob is never
 * shown offline. Her own ids (mallory-1, mallory/x) work, and so does bob on
 * his own id. */
static void test_foreign_client_id_refused(void)
{
    struct broker *b = start_token_broker(NULL);
    struct client *watcher = login(b, "watcher");
    CHECK_EQ_INT(client_subscribe(watcher, "rtm/presence/+", 1), 1);
    struct client *bob = login(b, "bob"); /* client id bob-phone */
    CHECK(client_wait_json(watcher, "rtm/presence/bob", WAIT_MS, "online", "true", NULL));

    long mark = broker_log_mark(b);
    CHECK_EQ_INT(try_client_id(b, "mallory", "bob-phone", 4), 5);
    CHECK_EQ_INT(try_client_id(b, "mallory", "bob-phone", 5), 0x87);
    CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "refused login of mallory (client bob-phone)",
                                "client id not mallory's own", (char *)NULL),
           "no log line for mallory's login on bob-phone");
    CHECK_EQ_INT(broker_log_lines(b, mark, "refused login of mallory", (char *)NULL), 2);
    CHECK_EQ_INT(broker_log_lines(b, mark, "already connected", (char *)NULL), 0);

    /* Bob's connection is the same one: it still gets calls. */
    const char *id = rt_uniq("still");
    rt_send(watcher, inbox("bob"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    EXPECT_EVENT(bob, "bob", "invite", id);
    CHECKF(!client_wait_disconnected(bob, 0), "bob's connection was closed");

    /* Her own ids work (she stays connected until shown online). */
    struct client_opts m1 = {
        .client_id = "mallory-1", .username = "mallory", .password = mint(SECRET, "mallory", 0)};
    struct client *mallory1 = client_open_v(b, &m1);
    CHECK(client_wait_json(watcher, "rtm/presence/mallory", WAIT_MS, "sessions", "1", NULL));
    struct client_opts m2 = m1;
    m2.client_id = "mallory/x";
    m2.protocol = 5;
    struct client *mallory2 = client_open_v(b, &m2);
    CHECK(client_wait_json(watcher, "rtm/presence/mallory", WAIT_MS, "sessions", "2", NULL));
    /* Sentinel: carol comes online after everything above. */
    struct client *carol = login(b, "carol");
    CHECK(client_wait_json(watcher, "rtm/presence/carol", WAIT_MS, "online", "true", NULL));
    CHECKF(client_count(watcher, "rtm/presence/bob", "online", "false", NULL) == 0,
           "bob was shown offline");
    CHECKF(!client_wait_disconnected(bob, 0), "bob's connection was closed");

    /* Bob himself may take his own id over (a reconnecting phone). */
    CHECK_EQ_INT(try_client_id(b, "bob", "bob-phone", 4), 0);
    client_free(mallory1);
    client_free(mallory2);
    client_free(carol);
    client_free(bob);
    client_free(watcher);
    broker_free(b);
}

static void remove_file(void *path, bool failed)
{
    (void)failed;
    unlink(path);
}

static void test_secret_file(void)
{
    static char path[] = "/tmp/rtm-it-secret-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    rt_at_end(remove_file, path);
    const char line[] = SECRET "\n";
    CHECK_EQ_INT(write(fd, line, sizeof(line) - 1), (long long)sizeof(line) - 1);
    close(fd);
    const char *opts[] = {"auth token", rt_fmt("token_secret_file %s", path), NULL};
    struct broker_opts o = {.plugin_opts = opts};
    struct broker *b = broker_start(&o);
    struct client *alice = login(b, "alice");
    CHECK_EQ_INT(try_login(b, "alice", mint("not-the-secret-1234", "alice", 0)), 5);
    client_free(alice);
    broker_free(b);
}

/* The registry loader authenticates with its own secret, not a token. */
static void test_loader_still_reads_registry(void)
{
    const char *extra[] = {"persistence true", "persistence_location @DIR@/", NULL};
    const char *opts[] = {"auth token", "token_secret " SECRET, NULL};
    struct broker_opts o = {.plugin_opts = opts, .extra_lines = extra};
    struct broker *b = broker_start(&o);
    struct client *bob = login(b, "bob");
    device_register(bob, "bob", "d1", "android", "tok-token-mode");
    client_free(bob);
    broker_stop(b);
    long mark = broker_log_mark(b);
    broker_restart(b);
    CHECKF(broker_wait_log(b, mark,
                           "device registry read back from the retained store: 1 device(s)", 5000),
           "the registry loader did not read back bob's device in token mode");
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"valid_tokens_call", test_valid_tokens_call},
        {"bad_tokens_refused", test_bad_tokens_refused},
        {"refused_never_online", test_refused_never_online},
        {"foreign_client_id_refused", test_foreign_client_id_refused},
        {"secret_file", test_secret_file},
        {"loader_still_reads_registry", test_loader_still_reads_registry},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
