/*
 * Integration test harness, the libmosquitto client: a wrapper that runs the
 * library's network thread, queues every message received, and waits (on a
 * condition variable, bounded by a deadline) for CONNACK, SUBACK, PUBACK and
 * messages; and the call protocol assertions built on it. See harness.h.
 */
#include "harness.h"
#include "harness_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

static struct timespec mono_deadline(int64_t deadline_ms)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ms / 1000);
    ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000L;
    return ts;
}

/* ------------------------------------------------------------------------ */
/* libmosquitto client                                                       */

#define MAX_ACKS 512

enum ack_kind { ACK_PUB, ACK_SUB };

struct ack {
    int mid;
    int kind;
    int rc;
};

struct client {
    struct mosquitto *mosq;
    int port;
    char host[48];
    int protocol;
    bool persistent;
    int keepalive;
    char id[128];
    char user[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool loop_running;
    bool connack;
    int connack_rc;
    int64_t connack_at;
    bool connected;
    bool closed;
    struct ack acks[MAX_ACKS];
    size_t nacks;
    struct msg *head;
    struct msg *tail;
};

static void c_lock(struct client *c)
{
    pthread_mutex_lock(&c->mu);
}

static void c_unlock(struct client *c)
{
    pthread_mutex_unlock(&c->mu);
}

/* Waits on the client's condvar until `deadline`; false on timeout. */
static bool c_wait(struct client *c, int64_t deadline)
{
    if (now_mono_ms() >= deadline)
        return false;
    struct timespec ts = mono_deadline(deadline);
    int rc = pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    return rc == 0 || rc == EINTR || now_mono_ms() < deadline;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    (void)flags;
    (void)props;
    struct client *c = obj;
    c_lock(c);
    c->connack = true;
    c->connack_rc = rc;
    c->connack_at = now_mono_ms();
    c->connected = rc == 0;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
    if (rc != 0)
        mosquitto_disconnect(mosq); /* no retry after a refusal */
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc,
                          const mosquitto_property *props)
{
    (void)mosq;
    (void)rc;
    (void)props;
    struct client *c = obj;
    c_lock(c);
    c->connected = false;
    c->closed = true;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
}

static void add_ack(struct client *c, int kind, int mid, int rc)
{
    c_lock(c);
    struct ack *a = &c->acks[c->nacks % MAX_ACKS];
    c->nacks++;
    a->kind = kind;
    a->mid = mid;
    a->rc = rc;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int rc,
                       const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    add_ack(obj, ACK_PUB, mid, rc);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                         const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    add_ack(obj, ACK_SUB, mid, count > 0 ? granted[0] : -1);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
                       const mosquitto_property *props)
{
    (void)mosq;
    (void)props;
    struct client *c = obj;
    struct msg *g = calloc(1, sizeof(*g));
    if (!g)
        return;
    g->topic = strdup(m->topic);
    g->payload = malloc((size_t)m->payloadlen + 1);
    if (!g->topic || !g->payload) {
        free(g->topic);
        free(g->payload);
        free(g);
        return;
    }
    if (m->payloadlen > 0)
        memcpy(g->payload, m->payload, (size_t)m->payloadlen);
    g->payload[m->payloadlen] = '\0';
    g->len = m->payloadlen;
    g->qos = m->qos;
    g->retain = m->retain;
    g->at_ms = now_mono_ms();
    g->json = cJSON_ParseWithLength(g->payload, (size_t)g->len);
    if (getenv("RTM_TRACE"))
        fprintf(stderr, "[%s] <- %s %s%s\n", c->id, g->topic, g->payload,
                g->retain ? " (retained)" : "");
    c_lock(c);
    if (c->tail)
        c->tail->next = g;
    else
        c->head = g;
    c->tail = g;
    pthread_cond_broadcast(&c->cv);
    c_unlock(c);
}

struct client *client_new(const struct broker *b, const struct client_opts *o)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c)
        FAIL("out of memory");
    if (!o->client_id)
        FAIL("client_new: a client id is required");
    snprintf(c->id, sizeof(c->id), "%s", o->client_id);
    if (o->username)
        snprintf(c->user, sizeof(c->user), "%s", o->username);
    c->port = b->port;
    snprintf(c->host, sizeof(c->host), "%s", b->host[0] ? b->host : "127.0.0.1");
    c->protocol = o->protocol == 5 ? 5 : 4;
    c->persistent = o->persistent;
    c->keepalive = o->keepalive > 0 ? o->keepalive : 60;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    c->mosq = mosquitto_new(c->id, !o->persistent, c);
    if (!c->mosq)
        FAIL("mosquitto_new(%s) failed", c->id);
    mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         c->protocol == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    if (o->username || o->password)
        mosquitto_username_pw_set(c->mosq, o->username, o->password);
    /* A test sees every drop: the library must not quietly reconnect. */
    mosquitto_reconnect_delay_set(c->mosq, 3600, 3600, false);
    mosquitto_connect_v5_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
    mosquitto_publish_v5_callback_set(c->mosq, on_publish);
    mosquitto_subscribe_v5_callback_set(c->mosq, on_subscribe);
    mosquitto_message_v5_callback_set(c->mosq, on_message);
    return c;
}

int client_connect(struct client *c)
{
    mosquitto_property *props = NULL;
    if (c->protocol == 5 && c->persistent) {
        /* MQTT 5 persistent session: clean start off, session kept an hour. */
        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 3600);
    }
    int rc;
    if (c->protocol == 5)
        rc = mosquitto_connect_bind_v5(c->mosq, c->host, c->port, c->keepalive, NULL, props);
    else
        rc = mosquitto_connect(c->mosq, c->host, c->port, c->keepalive);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        FAIL("client %s: mosquitto_connect: %s", c->id, mosquitto_strerror(rc));
    if (mosquitto_loop_start(c->mosq) != MOSQ_ERR_SUCCESS)
        FAIL("client %s: mosquitto_loop_start failed", c->id);
    c->loop_running = true;
    int64_t deadline = now_mono_ms() + 5000;
    c_lock(c);
    while (!c->connack && c_wait(c, deadline))
        ;
    int result = c->connack ? c->connack_rc : -1;
    c_unlock(c);
    return result;
}

int64_t client_connack_at(const struct client *c)
{
    return c->connack_at;
}

static int wait_ack(struct client *c, int kind, int mid, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    c_lock(c);
    for (;;) {
        size_t first = c->nacks > MAX_ACKS ? c->nacks - MAX_ACKS : 0;
        for (size_t i = first; i < c->nacks; i++) {
            struct ack *a = &c->acks[i % MAX_ACKS];
            if (a->kind == kind && a->mid == mid) {
                int rc = a->rc;
                a->mid = -1;
                c_unlock(c);
                return rc;
            }
        }
        if (!c_wait(c, deadline))
            break;
    }
    c_unlock(c);
    return -1;
}

int client_subscribe(struct client *c, const char *filter, int qos)
{
    int mid = 0;
    int rc = mosquitto_subscribe(c->mosq, &mid, filter, qos);
    if (rc != MOSQ_ERR_SUCCESS)
        FAIL("client %s: subscribe %s: %s", c->id, filter, mosquitto_strerror(rc));
    return wait_ack(c, ACK_SUB, mid, WAIT_MS);
}

int client_publish(struct client *c, const char *topic, const void *payload, int len, int qos,
                   bool retain)
{
    int mid = 0;
    int rc = mosquitto_publish(c->mosq, &mid, topic, len, payload, qos, retain);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "client %s: publish %s: %s\n", c->id, topic, mosquitto_strerror(rc));
        return -1;
    }
    if (qos == 0)
        return 0;
    return wait_ack(c, ACK_PUB, mid, WAIT_MS);
}

int client_publish_str(struct client *c, const char *topic, const char *payload, int qos)
{
    return client_publish(c, topic, payload, (int)strlen(payload), qos, false);
}

void rt_send(struct client *c, const char *topic, const char *json)
{
    int rc = client_publish_str(c, topic, json, 1);
    if (rc < 0)
        FAIL("client %s: publishing to %s got no PUBACK", c->id, topic);
}

void client_disconnect(struct client *c)
{
    if (!c->loop_running)
        return;
    c_lock(c);
    bool connected = c->connected;
    c_unlock(c);
    mosquitto_disconnect(c->mosq);
    mosquitto_loop_stop(c->mosq, !connected);
    c->loop_running = false;
    c_lock(c);
    c->connected = false;
    c->closed = true;
    c_unlock(c);
}

bool client_wait_disconnected(struct client *c, int timeout_ms)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    c_lock(c);
    while (!c->closed && c_wait(c, deadline))
        ;
    bool closed = c->closed;
    c_unlock(c);
    return closed;
}

void client_free(struct client *c)
{
    if (!c)
        return;
    client_disconnect(c);
    mosquitto_destroy(c->mosq);
    for (struct msg *m = c->head, *next; m; m = next) {
        next = m->next;
        cJSON_Delete(m->json);
        free(m->topic);
        free(m->payload);
        free(m);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *client_id(const struct client *c)
{
    return c->id;
}

#define MAX_PAIRS 16

struct matcher {
    int n;
    const char *key[MAX_PAIRS];
    const char *val[MAX_PAIRS];
};

static void matcher_from(struct matcher *mt, va_list ap)
{
    mt->n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k)
            break;
        const char *v = va_arg(ap, const char *);
        if (!v)
            FAIL("match list: key \"%s\" has no value", k);
        if (mt->n == MAX_PAIRS)
            FAIL("match list too long");
        mt->key[mt->n] = k;
        mt->val[mt->n] = v;
        mt->n++;
    }
}

static bool field_is(const cJSON *obj, const char *key, const char *val)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it)
        return false;
    if (cJSON_IsString(it))
        return strcmp(it->valuestring, val) == 0;
    if (cJSON_IsBool(it))
        return strcmp(cJSON_IsTrue(it) ? "true" : "false", val) == 0;
    if (cJSON_IsNumber(it)) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%lld", (long long)it->valuedouble);
        return strcmp(buf, val) == 0;
    }
    if (cJSON_IsNull(it))
        return strcmp(val, "null") == 0;
    return false;
}

static bool msg_matches(const struct msg *m, const char *topic, const struct matcher *mt)
{
    if (topic && strcmp(m->topic, topic) != 0)
        return false;
    if (mt->n == 0)
        return true;
    if (!cJSON_IsObject(m->json))
        return false;
    for (int i = 0; i < mt->n; i++) {
        if (!field_is(m->json, mt->key[i], mt->val[i]))
            return false;
    }
    return true;
}

static struct msg *wait_match(struct client *c, const char *topic, int timeout_ms,
                              const struct matcher *mt, bool need_json)
{
    int64_t deadline = now_mono_ms() + timeout_ms;
    c_lock(c);
    for (;;) {
        for (struct msg *m = c->head; m; m = m->next) {
            if (!m->consumed && (!need_json || m->json) && msg_matches(m, topic, mt)) {
                m->consumed = true;
                c_unlock(c);
                return m;
            }
        }
        if (!c_wait(c, deadline))
            break;
    }
    c_unlock(c);
    return NULL;
}

cJSON *client_wait_json(struct client *c, const char *topic, int timeout_ms, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, timeout_ms);
    matcher_from(&mt, ap);
    va_end(ap);
    struct msg *m = wait_match(c, topic, timeout_ms, &mt, true);
    return m ? m->json : NULL;
}

struct msg *client_wait_fields(struct client *c, const char *topic, int timeout_ms, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, timeout_ms);
    matcher_from(&mt, ap);
    va_end(ap);
    return wait_match(c, topic, timeout_ms, &mt, true);
}

struct msg *client_wait_msg(struct client *c, const char *topic, int timeout_ms)
{
    struct matcher mt = {0};
    return wait_match(c, topic, timeout_ms, &mt, false);
}

int client_count(struct client *c, const char *topic, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, topic);
    matcher_from(&mt, ap);
    va_end(ap);
    int n = 0;
    c_lock(c);
    for (struct msg *m = c->head; m; m = m->next)
        n += msg_matches(m, topic, &mt);
    c_unlock(c);
    return n;
}

int client_consume_all(struct client *c, const char *topic, ...)
{
    struct matcher mt;
    va_list ap;
    va_start(ap, topic);
    matcher_from(&mt, ap);
    va_end(ap);
    int n = 0;
    c_lock(c);
    for (struct msg *m = c->head; m; m = m->next) {
        if (!m->consumed && msg_matches(m, topic, &mt)) {
            m->consumed = true;
            n++;
        }
    }
    c_unlock(c);
    return n;
}

int client_count_unconsumed(struct client *c, const char *topic)
{
    int n = 0;
    c_lock(c);
    for (struct msg *m = c->head; m; m = m->next)
        n += !m->consumed && (!topic || strcmp(m->topic, topic) == 0);
    c_unlock(c);
    return n;
}

void client_foreach(struct client *c, const char *topic, void (*fn)(const struct msg *m, void *ud),
                    void *ud)
{
    /* Messages are only ever appended; walk a snapshot of the list. */
    c_lock(c);
    struct msg *head = c->head;
    struct msg *tail = c->tail;
    c_unlock(c);
    for (struct msg *m = head; m; m = m->next) {
        if (!topic || strcmp(m->topic, topic) == 0)
            fn(m, ud);
        if (m == tail)
            break;
    }
}

void client_dump(struct client *c)
{
    c_lock(c);
    fprintf(stderr, "messages received by %s:\n", c->id);
    for (struct msg *m = c->head; m; m = m->next)
        fprintf(stderr, "  %s%s %.*s%s\n", m->consumed ? "  " : "* ", m->topic,
                m->len > 600 ? 600 : m->len, m->payload, m->retain ? " (retained)" : "");
    c_unlock(c);
}

struct client *client_open_v(const struct broker *b, const struct client_opts *o)
{
    struct client *c = client_new(b, o);
    int rc = client_connect(c);
    if (rc != 0)
        FAIL("client %s: CONNACK %d, expected 0 (accepted)", o->client_id, rc);
    return c;
}

struct client *client_open(const struct broker *b, const char *id, const char *username)
{
    struct client_opts o = {.client_id = id, .username = username};
    return client_open_v(b, &o);
}

struct client *client_open_inbox(const struct broker *b, const char *id, const char *username)
{
    struct client *c = client_open(b, id, username);
    const char *uid = username ? username : id;
    int granted = client_subscribe(c, inbox(uid), 1);
    if (granted != 1)
        FAIL("client %s: subscribing to %s granted %d, expected QoS 1", id, inbox(uid), granted);
    return c;
}

/* ------------------------------------------------------------------------ */
/* call protocol helpers                                                     */

cJSON *rt_expect_event_at(const char *file, int line, struct client *c, const char *uid,
                          const char *type, const char *id, int timeout_ms)
{
    cJSON *ev = client_wait_json(c, inbox(uid), timeout_ms, "type", type, "id", id, (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no \"%s\" for id %s on %s within %d ms", c->id, type, id,
                inbox(uid), timeout_ms);
    }
    return ev;
}

void rt_check_stamp(const char *file, int line, const cJSON *ev, const char *type, const char *id,
                    const char *caller, const char *callee, const char *by)
{
    rt_expect_str(file, line, ev, "type", type);
    rt_expect_str(file, line, ev, "id", id);
    rt_expect_str(file, line, ev, "caller", caller);
    rt_expect_str(file, line, ev, "callee", callee);
    rt_expect_str(file, line, ev, "by", by);
    rt_expect_ts_now(file, line, ev);
}

cJSON *rt_expect_error_at(const char *file, int line, struct client *c, const char *uid,
                          const char *code, const char *id, const char *request)
{
    cJSON *ev = client_wait_json(c, inbox(uid), WAIT_MS, "type", "error", (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no error (expected code %s) on %s within %d ms", c->id, code,
                inbox(uid), WAIT_MS);
    }
    rt_expect_str(file, line, ev, "code", code);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "message");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0')
        fail_json(file, line, ev, "field \"message\": expected a non-empty string");
    if (!id)
        rt_expect_absent(file, line, ev, "id");
    else if (strcmp(id, "*") != 0)
        rt_expect_str(file, line, ev, "id", id);
    if (!request)
        rt_expect_absent(file, line, ev, "request");
    else if (strcmp(request, "*") != 0)
        rt_expect_str(file, line, ev, "request", request);
    rt_expect_ts_now(file, line, ev);
    static const char *const keys[] = {"type", "code", "message", "id", "request", "ts"};
    for (const cJSON *it = ev->child; it; it = it->next) {
        bool known = false;
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !known; i++)
            known = it->string && strcmp(it->string, keys[i]) == 0;
        if (!known)
            fail_json(file, line, ev, "unexpected field \"%s\" in an error",
                      it->string ? it->string : "?");
    }
    return ev;
}

void rt_expect_nothing_else_at(const char *file, int line, struct client *c, const char *topic)
{
    int n = client_count_unconsumed(c, topic);
    if (n != 0) {
        client_dump(c);
        rt_fail(file, line, "%s: %d unexpected message(s)%s%s (marked * above)", c->id, n,
                topic ? " on " : "", topic ? topic : "");
    }
}

cJSON *rt_expect_topic_error_at(const char *file, int line, struct client *c, const char *uid,
                                const char *code, const char *topic)
{
    cJSON *ev =
        client_wait_json(c, inbox(uid), WAIT_MS, "type", "error", "topic", topic, (char *)NULL);
    if (!ev) {
        client_dump(c);
        rt_fail(file, line, "%s: no error (expected code %s for topic %s) on %s within %d ms",
                c->id, code, topic, inbox(uid), WAIT_MS);
    }
    rt_expect_str(file, line, ev, "code", code);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(ev, "message");
    if (!cJSON_IsString(m) || m->valuestring[0] == '\0')
        fail_json(file, line, ev, "field \"message\": expected a non-empty string");
    rt_expect_ts_now(file, line, ev);
    rt_expect_keys(file, line, ev, "type", "code", "message", "topic", "ts", (char *)NULL);
    return ev;
}
