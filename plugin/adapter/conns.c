/*
 * Client ids and the messages held for one connection (see rtm_conns.h).
 * One table entry per connection that logged in, freed when it leaves; the
 * held messages live for one loop iteration at most.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_conns.h"
#include "rtm_list.h"

/* A connection and the client id it holds; in both tables. */
struct conn {
    struct rtm_hnode by_id;     /* rtm_conns.ids, keyed by the client id's digest */
    struct rtm_hnode by_handle; /* rtm_conns.handles: the broker may have cleared the id
                                   of a refused connection by the time it reports it gone */
    const void *handle;
};

/* A message for one connection; its strings follow it in one allocation. */
struct held {
    const void *handle;
    uint64_t id;
    const char *client_id;
    const char *topic;
    const char *payload;
    size_t len;
    int qos;
    bool retain;
};

struct rtm_conns {
    struct rtm_hash ids;
    struct rtm_hash handles;
    struct held **held;
    size_t nheld;
    size_t cap;
};

struct rtm_conns *rtm_conns_new(const struct rtm_hash_key *key)
{
    struct rtm_conns *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    if (rtm_hash_init(&c->ids, 1024, key) != 0 || rtm_hash_init(&c->handles, 1024, NULL) != 0) {
        rtm_conns_free(c);
        return NULL;
    }
    return c;
}

static void drop_held(struct rtm_conns *c)
{
    for (size_t i = 0; i < c->nheld; i++)
        free(c->held[i]);
    c->nheld = 0;
}

void rtm_conns_free(struct rtm_conns *c)
{
    if (!c)
        return;
    struct rtm_hnode *n;
    while ((n = rtm_hash_pop(&c->ids)) != NULL)
        free(rtm_container_of(n, struct conn, by_id));
    rtm_hash_fini(&c->ids);
    rtm_hash_fini(&c->handles);
    drop_held(c);
    free(c->held);
    free(c);
}

static uint64_t digest(const struct rtm_conns *c, const char *client_id)
{
    return rtm_hash_bytes(&c->ids, client_id, strlen(client_id));
}

static bool same_digest(const struct rtm_hnode *node, const void *key)
{
    return node->hash == *(const uint64_t *)key;
}

static struct conn *find(const struct rtm_conns *c, uint64_t id)
{
    struct rtm_hnode *n = rtm_hash_find(&c->ids, id, same_digest, &id);
    return n ? rtm_container_of(n, struct conn, by_id) : NULL;
}

static bool same_handle(const struct rtm_hnode *node, const void *key)
{
    return rtm_container_of(node, struct conn, by_handle)->handle == key;
}

static struct conn *find_handle(const struct rtm_conns *c, const void *handle)
{
    struct rtm_hnode *n = rtm_hash_find(&c->handles, rtm_hash_ptr(handle), same_handle, handle);
    return n ? rtm_container_of(n, struct conn, by_handle) : NULL;
}

static void forget(struct rtm_conns *c, struct conn *cn)
{
    rtm_hash_remove(&c->ids, &cn->by_id);
    rtm_hash_remove(&c->handles, &cn->by_handle);
    free(cn);
}

/* Makes `handle` the holder of the id whose digest is `id`. */
static int hold_id(struct rtm_conns *c, uint64_t id, const void *handle)
{
    struct conn *mine = find_handle(c, handle);
    if (mine && mine->by_id.hash == id)
        return 0;
    struct conn *cn = malloc(sizeof(*cn));
    if (!cn)
        return -1;
    if (mine) /* the same connection logged in again, with another id */
        forget(c, mine);
    struct conn *held_by = find(c, id);
    if (held_by) /* taken over: the older connection holds it no more */
        forget(c, held_by);
    cn->handle = handle;
    rtm_hash_insert(&c->ids, &cn->by_id, id);
    rtm_hash_insert(&c->handles, &cn->by_handle, rtm_hash_ptr(handle));
    return 0;
}

int rtm_conns_login(struct rtm_conns *c, const void *handle, const char *client_id)
{
    return client_id ? hold_id(c, digest(c, client_id), handle) : 0;
}

void rtm_conns_logout(struct rtm_conns *c, const void *handle)
{
    struct conn *cn = find_handle(c, handle);
    if (cn)
        forget(c, cn);
}

bool rtm_conns_superseded(const struct rtm_conns *c, const void *handle, const char *client_id)
{
    const struct conn *cn = client_id ? find(c, digest(c, client_id)) : NULL;
    return cn && cn->handle != handle;
}

static struct held *copy_message(const char *client_id, const struct rtm_publish *msg)
{
    size_t id_len = strlen(client_id) + 1, topic_len = strlen(msg->topic) + 1;
    struct held *h = malloc(sizeof(*h) + id_len + topic_len + msg->payload_len);
    if (!h)
        return NULL;
    char *p = (char *)(h + 1);
    h->client_id = memcpy(p, client_id, id_len);
    h->topic = memcpy(p + id_len, msg->topic, topic_len);
    h->payload = memcpy(p + id_len + topic_len, msg->payload, msg->payload_len);
    h->len = msg->payload_len;
    h->handle = msg->handle;
    h->qos = msg->qos;
    h->retain = msg->retain;
    return h;
}

static int grow(struct rtm_conns *c)
{
    if (c->nheld < c->cap)
        return 0;
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct held **v = realloc(c->held, cap * sizeof(*v));
    if (!v)
        return -1;
    c->held = v;
    c->cap = cap;
    return 0;
}

int rtm_conns_post(struct rtm_conns *c, const char *client_id, const struct rtm_publish *msg)
{
    if (grow(c) != 0)
        return -1;
    struct held *h = copy_message(client_id, msg);
    if (!h)
        return -1;
    h->id = digest(c, client_id);
    /* A connection that never logged in through the plugin (a TLS
     * certificate login on 2.0) holds its id from its first message on. */
    if (!find(c, h->id) && hold_id(c, h->id, msg->handle) != 0) {
        free(h);
        return -1;
    }
    c->held[c->nheld++] = h;
    return 0;
}

size_t rtm_conns_flush(struct rtm_conns *c,
                       void (*send)(void *ud, const char *client_id, const struct rtm_publish *msg),
                       void *ud)
{
    size_t dropped = 0;
    for (size_t i = 0; i < c->nheld; i++) {
        const struct held *h = c->held[i];
        const struct conn *cn = find(c, h->id);
        if (cn && cn->handle != h->handle) {
            dropped++;
            continue;
        }
        struct rtm_publish msg = {h->handle, h->topic, h->payload, h->len, h->qos, h->retain};
        send(ud, h->client_id, &msg);
    }
    drop_held(c);
    /* A burst grows the array; give the memory back once it is drained. */
    if (c->cap > 1024) {
        free(c->held);
        c->held = NULL;
        c->cap = 0;
    }
    return dropped;
}

size_t rtm_conns_count(const struct rtm_conns *c)
{
    return c->ids.count;
}

size_t rtm_conns_held(const struct rtm_conns *c)
{
    return c->nheld;
}
