/*
 * rtm-session: one MQTT connection as one user, for trying channels by hand
 * (README walkthrough). A channel membership belongs to the connection that
 * joined, so the connection that joins must be the one that listens and
 * speaks: mosquitto_pub and mosquitto_sub each open their own.
 *
 *   rtm-session [-h HOST] [-p PORT] [-P PASSWORD] UID [FILTER...]
 *
 * Connects as UID (username and client id UID-<pid>), subscribes to every
 * FILTER at QoS 1, prints each message that arrives as "TOPIC PAYLOAD"
 * ("(empty)" for an empty payload), and publishes each line read from
 * standard input: "TOPIC MESSAGE", or "-r TOPIC MESSAGE" for a retained
 * one, at QoS 1. End of input disconnects cleanly.
 */
#include <mosquitto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct session {
    const char *uid;
    char **filters;
    int nfilters;
};

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    struct session *s = ud;
    if (rc != 0) {
        fprintf(stderr, "rtm-session: refused: %s\n", mosquitto_connack_string(rc));
        return;
    }
    printf("connected as %s\n", s->uid);
    fflush(stdout);
    for (int i = 0; i < s->nfilters; i++)
        mosquitto_subscribe(m, NULL, s->filters[i], 1);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int count, const int *granted)
{
    (void)m, (void)ud, (void)mid;
    for (int i = 0; i < count; i++) {
        if (granted[i] >= 0x80)
            printf("a subscription was refused\n");
    }
    fflush(stdout);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m, (void)ud;
    if (msg->payloadlen == 0)
        printf("%s (empty)\n", msg->topic);
    else
        printf("%s %.*s\n", msg->topic, msg->payloadlen, (const char *)msg->payload);
    fflush(stdout);
}

/* "TOPIC MESSAGE" or "-r TOPIC MESSAGE": publishes it; blank lines are skipped. */
static void publish_line(struct mosquitto *m, char *line)
{
    line[strcspn(line, "\r\n")] = '\0';
    bool retain = strncmp(line, "-r ", 3) == 0;
    char *topic = line + (retain ? 3 : 0);
    topic += strspn(topic, " ");
    if (*topic == '\0')
        return;
    char *message = topic + strcspn(topic, " ");
    if (*message)
        *message++ = '\0';
    int rc = mosquitto_publish(m, NULL, topic, (int)strlen(message), message, 1, retain);
    if (rc != MOSQ_ERR_SUCCESS)
        fprintf(stderr, "rtm-session: publish to %s: %s\n", topic, mosquitto_strerror(rc));
}

static int usage(void)
{
    fprintf(stderr, "usage: rtm-session [-h HOST] [-p PORT] [-P PASSWORD] UID [FILTER...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *password = NULL;
    int port = 1883, opt;
    while ((opt = getopt(argc, argv, "h:p:P:")) != -1) {
        if (opt == 'h')
            host = optarg;
        else if (opt == 'p')
            port = atoi(optarg);
        else if (opt == 'P')
            password = optarg;
        else
            return usage();
    }
    if (optind >= argc)
        return usage();
    struct session s = {argv[optind], argv + optind + 1, argc - optind - 1};
    char client_id[128];
    snprintf(client_id, sizeof(client_id), "%s-%ld", s.uid, (long)getpid());

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new(client_id, true, &s);
    int rc = m ? mosquitto_username_pw_set(m, s.uid, password) : MOSQ_ERR_NOMEM;
    if (rc == MOSQ_ERR_SUCCESS) {
        mosquitto_connect_callback_set(m, on_connect);
        mosquitto_subscribe_callback_set(m, on_subscribe);
        mosquitto_message_callback_set(m, on_message);
        rc = mosquitto_connect(m, host, port, 60);
    }
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_loop_start(m);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "rtm-session: %s:%d: %s\n", host, port, mosquitto_strerror(rc));
        mosquitto_destroy(m);
        mosquitto_lib_cleanup();
        return 1;
    }
    char line[4096];
    while (fgets(line, sizeof(line), stdin))
        publish_line(m, line);
    mosquitto_disconnect(m);
    mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return 0;
}
