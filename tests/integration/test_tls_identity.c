/*
 * Clients authenticated by their TLS certificate (use_identity_as_username)
 * never pass through the BASIC_AUTH event. Mosquitto 2.1 reports them with
 * its CONNECT event, so the plugin shows them online and offline like any
 * other client; Mosquitto 2.0 has no such event, and they stay offline (the
 * README's "Limits"). Either way they may use their inbox.
 *
 * The certificates (a throwaway CA, the broker's, carol's) are made with the
 * openssl CLI in the broker's temp dir; carol is a real mosquitto_sub.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "jpush_mock.h"

static void openssl(const struct broker *b, const char *args)
{
    const char *cmd = rt_fmt("cd '%s' && openssl %s >> openssl.log 2>&1", b->dir, args);
    CHECKF(system(cmd) == 0, "openssl failed: %s (see %s/openssl.log)", args, b->dir);
}

/* A CA, a certificate for the broker at 127.0.0.1 and one for carol. */
static void make_certificates(const struct broker *b, void *ud)
{
    (void)ud;
    static const char *const ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(b, rt_fmt("req -x509 %s -keyout ca.key -out ca.crt -days 1 -subj /CN=rtm-test-ca", ec));
    openssl(b, rt_fmt("req %s -keyout server.key -out server.csr -subj /CN=127.0.0.1", ec));
    CHECK(system(rt_fmt("echo subjectAltName=IP:127.0.0.1 > '%s/san.ext'", b->dir)) == 0);
    openssl(b, "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
               "-out server.crt -days 1 -extfile san.ext");
    openssl(b, rt_fmt("req %s -keyout carol.key -out carol.csr -subj /CN=carol", ec));
    openssl(b, "x509 -req -in carol.csr -CA ca.crt -CAkey ca.key -CAcreateserial "
               "-out carol.crt -days 1");
}

static pid_t start_carol(const struct broker *b)
{
    const char *argv[] = {"mosquitto_sub",
                          "-h",
                          "127.0.0.1",
                          "-p",
                          rt_fmt("%d", b->port2),
                          "--cafile",
                          broker_dir_file(b, "ca.crt"),
                          "--cert",
                          broker_dir_file(b, "carol.crt"),
                          "--key",
                          broker_dir_file(b, "carol.key"),
                          "-i",
                          "carol-phone",
                          "-t",
                          "rtm/u/carol/call",
                          NULL};
    long mark = broker_log_mark(b);
    static char *const envp[] = {NULL};
    const char *bin = getenv("MOSQUITTO_SUB");
    pid_t pid = rt_spawn_logged(bin && *bin ? bin : "/usr/bin/mosquitto_sub", (char *const *)argv,
                                envp, broker_dir_file(b, "carol.log"));
    CHECKF(
        broker_wait_log_line(b, mark, WAIT_MS, "Received SUBSCRIBE from carol-phone", (char *)NULL),
        "carol did not connect with her certificate (see %s/carol.log)", b->dir);
    return pid;
}

static void test_certificate_client_presence(void)
{
    static const char *const listeners[] = {
        "listener @PORT@ 127.0.0.1",     "listener @PORT2@ 127.0.0.1",
        "cafile @DIR@/ca.crt",           "certfile @DIR@/server.crt",
        "keyfile @DIR@/server.key",      "require_certificate true",
        "use_identity_as_username true", NULL};
    struct broker_opts o = {.listeners = listeners, .prepare = make_certificates};
    struct broker *b = broker_start(&o);
    bool has_connect = rt_broker_at_least(2, 1);
    struct client *watch = client_open(b, "watcher", NULL);
    CHECK_EQ_INT(client_subscribe(watch, "rtm/presence/carol", 1), 1);
    pid_t carol = start_carol(b);

    /* Her inbox works either way: an invite reaches her subscriber. */
    struct client *alice = client_open_inbox(b, "alice-phone", "alice");
    const char *id = rt_uniq("cert");
    rt_send(alice, inbox("carol"), rt_fmt("{\"type\":\"invite\",\"id\":\"%s\"}", id));
    CHECKF(broker_wait_log_line(b, 0, WAIT_MS, "Sending PUBLISH to carol-phone", "rtm/u/carol/call",
                                (char *)NULL),
           "the invite did not reach carol's certificate-authenticated subscriber");

    if (has_connect) {
        CHECKF(client_wait_json(watch, "rtm/presence/carol", WAIT_MS, "online", "true", NULL),
               "carol, logged in by certificate, is not shown online on a broker with CONNECT");
    }
    long mark = broker_log_mark(b);
    CHECK(kill(carol, SIGKILL) == 0);
    CHECK(waitpid(carol, NULL, 0) == carol);
    if (has_connect) {
        CHECKF(client_wait_json(watch, "rtm/presence/carol", WAIT_MS, "online", "false", NULL),
               "carol is not shown offline after she dropped");
    } else {
        /* Mosquitto 2.0: she was never seen, so never shown. */
        CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "carol-phone", (char *)NULL),
               "the broker did not notice carol's drop");
        client_flush(watch);
        EXPECT_NOTHING_ELSE(watch, "rtm/presence/carol");
    }
    client_free(alice);
    client_free(watch);
    broker_free(b);
}

int main(int argc, char **argv)
{
    static const struct test_case cases[] = {
        {"certificate_client_presence", test_certificate_client_presence},
    };
    return run_tests(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}
