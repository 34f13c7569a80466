/*
 * Integration test harness, real clients with a Will: mosquitto_sub in its
 * own process, killed with SIGKILL so that the broker sees its socket close
 * with no DISCONNECT, as from a phone that lost its network. See harness.h.
 */
#include "harness.h"
#include "harness_internal.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

static const char *mosquitto_sub_path(void)
{
    const char *p = getenv("MOSQUITTO_SUB");
    return p && *p ? p : "/usr/bin/mosquitto_sub";
}

pid_t rt_will_client_start(const struct broker *b, const struct rt_will *w)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = "mosquitto_sub";
    argv[n++] = "-h";
    argv[n++] = "127.0.0.1";
    argv[n++] = "-p";
    argv[n++] = rt_fmt("%d", b->port);
    argv[n++] = "-i";
    argv[n++] = w->client_id;
    if (w->username) {
        argv[n++] = "-u";
        argv[n++] = w->username;
    }
    argv[n++] = "-V";
    argv[n++] = w->protocol == 5 ? "mqttv5" : "mqttv311";
    argv[n++] = "-t";
    argv[n++] = rt_fmt("it/idle/%s", w->client_id);
    argv[n++] = "--will-topic";
    argv[n++] = w->topic;
    argv[n++] = "--will-payload";
    argv[n++] = w->payload;
    argv[n++] = "--will-qos";
    argv[n++] = "1";
    if (w->retain)
        argv[n++] = "--will-retain";
    if (w->delay_s > 0) {
        argv[n++] = "-D";
        argv[n++] = "will";
        argv[n++] = "will-delay-interval";
        argv[n++] = rt_fmt("%d", w->delay_s);
    }
    argv[n] = NULL;
    long mark = broker_log_mark(b);
    static char *const envp[] = {NULL};
    pid_t pid = rt_spawn_logged(mosquitto_sub_path(), (char *const *)argv, envp,
                                broker_dir_file(b, rt_fmt("client-%s.log", w->client_id)));
    /* The subscription is the client's last step: once it is logged, the
     * Will has been accepted with the CONNECT. */
    CHECKF(broker_wait_log_line(b, mark, WAIT_MS, "Received SUBSCRIBE from", w->client_id,
                                (char *)NULL),
           "mosquitto_sub %s did not connect and subscribe", w->client_id);
    return pid;
}

void rt_will_client_kill(const struct broker *b, pid_t pid, const struct rt_will *w)
{
    long mark = broker_log_mark(b);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(waitpid(pid, NULL, 0) == pid);
    int wait_ms = WAIT_MS + w->delay_s * 1000 * rt_time_scale();
    CHECKF(broker_wait_log_line(b, mark, wait_ms, "rtm: refused the Will of client", w->client_id,
                                w->topic, (char *)NULL),
           "no refusal of %s's Will to %s was logged", w->client_id, w->topic);
}
