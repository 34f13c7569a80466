/*
 * Attributes (rtm_attrs.h): SPEC 8.3 and 8.4.
 *
 * The broker's retained store holds every value; this file never keeps
 * one. Per owner (a user or a channel) it keeps one small record, found by
 * hash of its kind and name, with the owner's keys in a singly linked list.
 * Per key it keeps the key, the value's length and the stamp's ts: the
 * limits need the lengths and the count, the READ check of a session-
 * lifetime user attribute needs the ts. An owner record lives while it has
 * a key. Records come from the core's pool; running out of memory refuses
 * the write (logged) and changes nothing.
 *
 * Guarantees:
 * - what the broker stores and delivers under an attribute topic is the
 *   plugin's stamp {"key","value","by","ts"} of a write it accepted, or the
 *   empty message of a delete; anything else retained there is erased when
 *   it is read;
 * - a write that would take its owner past max_attr_keys keys or
 *   max_attr_bytes bytes of values is refused and changes nothing; a write
 *   that replaces a key counts its new length instead of the old;
 * - with user_attr_lifetime session a user's attributes exist only while
 *   the user is online: they are deleted (an empty retained message each)
 *   when its last session ends, a value from before a restart is erased
 *   when read back or read, and one written for an offline user by an admin
 *   is refused (invalid_state);
 * - the limits count what this process accepted plus what the registry
 *   loader read back (rtm_core_load_attr): until the read-back is done, a
 *   write is admitted against what is known so far.
 */
#include <stdlib.h>
#include <string.h>

#include "rtm_attrs.h"
#include "rtm_outbox.h"
#include "rtm_users.h"

enum owner_kind { OWNER_USER, OWNER_CHANNEL };

/* One key of an owner. 21 bytes before the key: a 6-character key takes a
 * 32-byte pool record, a 32-character one 64 bytes. */
struct attr {
    struct attr *next; /* the owner's next key */
    int64_t ts;        /* the stamp's ts: when it was written */
    uint32_t len;      /* bytes of the value */
    uint8_t key_len;
    char key[];
};

/* A user or a channel with at least one attribute. */
struct owner {
    struct rtm_hnode node; /* rtm_attrs.owners, by kind and name */
    struct attr *keys;
    uint32_t nkeys;
    uint32_t bytes; /* of all its values */
    uint8_t kind;   /* enum owner_kind */
    uint8_t name_len;
    char name[];
};

struct rtm_attrs {
    struct rtm_hash owners;
    size_t count; /* keys held, of every owner */
};

/* An attribute topic's owner and key, NUL-terminated. */
struct ref {
    enum owner_kind kind;
    char name[RTM_UID_MAX + 1]; /* a uid or a channel id: both at most 64 */
    size_t name_len;
    char key[RTM_ATTR_KEY_MAX + 1];
    size_t key_len;
};

_Static_assert(RTM_CHANNEL_ID_MAX <= RTM_UID_MAX, "struct ref.name holds a channel id");
_Static_assert(RTM_UID_MAX <= UINT8_MAX && RTM_ATTR_KEY_MAX <= UINT8_MAX, "lengths fit a byte");

/* --- references --------------------------------------------------------------- */

static void ref_of(struct ref *r, const struct rtm_topic *t)
{
    bool user = t->kind == RTM_TOPIC_USER_ATTR;
    r->kind = user ? OWNER_USER : OWNER_CHANNEL;
    r->name_len = user ? t->uid_len : t->channel_len;
    memcpy(r->name, user ? t->uid : t->channel, r->name_len);
    r->name[r->name_len] = '\0';
    r->key_len = t->key_len;
    memcpy(r->key, t->key, r->key_len);
    r->key[r->key_len] = '\0';
}

/* Does the session lifetime apply to this owner? */
static bool session_bound(const struct rtm_core *core, enum owner_kind kind)
{
    return kind == OWNER_USER && core->cfg->user_attr_lifetime == RTM_ATTR_SESSION;
}

static char *attr_topic(const struct rtm_core *core, char *buf, size_t size, enum owner_kind kind,
                        const char *name, const char *key)
{
    return rtm_out_topic(core, buf, size, "%s/%s/attr/%s", kind == OWNER_USER ? "u" : "c", name,
                         key);
}

#define TOPIC_SIZE (RTM_PREFIX_MAX + RTM_UID_MAX + RTM_ATTR_KEY_MAX + 16)

/* --- records ---------------------------------------------------------------------- */

struct owner_key {
    enum owner_kind kind;
    const char *name;
    size_t len;
};

static bool owner_eq(const struct rtm_hnode *node, const void *key)
{
    const struct owner *o = rtm_container_of(node, struct owner, node);
    const struct owner_key *k = key;
    return o->kind == k->kind && o->name_len == k->len && memcmp(o->name, k->name, k->len) == 0;
}

static uint64_t owner_hash(const struct rtm_attrs *a, enum owner_kind kind, const char *name)
{
    return rtm_hash_pair(&a->owners, kind == OWNER_USER ? "u" : "c", name);
}

static struct owner *owner_find(const struct rtm_core *core, enum owner_kind kind, const char *name,
                                size_t len)
{
    struct owner_key k = {kind, name, len};
    struct rtm_hnode *n =
        rtm_hash_find(&core->attrs->owners, owner_hash(core->attrs, kind, name), owner_eq, &k);
    return n ? rtm_container_of(n, struct owner, node) : NULL;
}

/* Finds or creates the owner of `r`; NULL when out of memory. */
static struct owner *owner_get(struct rtm_core *core, const struct ref *r)
{
    struct owner *o = owner_find(core, r->kind, r->name, r->name_len);
    if (o)
        return o;
    o = rtm_pool_alloc(&core->pool, RTM_FLEX_SIZE(struct owner, name, r->name_len + 1));
    if (!o)
        return NULL;
    o->kind = (uint8_t)r->kind;
    o->name_len = (uint8_t)r->name_len;
    memcpy(o->name, r->name, r->name_len + 1);
    rtm_hash_insert(&core->attrs->owners, &o->node, owner_hash(core->attrs, r->kind, r->name));
    return o;
}

static void owner_free_if_empty(struct rtm_core *core, struct owner *o)
{
    if (o->keys)
        return;
    rtm_hash_remove(&core->attrs->owners, &o->node);
    rtm_pool_free(&core->pool, o);
}

/* The link that points at `key` in its owner's list, or NULL. */
static struct attr **key_link(struct owner *o, const char *key, size_t len)
{
    for (struct attr **p = &o->keys; *p; p = &(*p)->next) {
        if ((*p)->key_len == len && memcmp((*p)->key, key, len) == 0)
            return p;
    }
    return NULL;
}

static const struct attr *held(const struct rtm_core *core, const struct ref *r)
{
    struct owner *o = owner_find(core, r->kind, r->name, r->name_len);
    struct attr **p = o ? key_link(o, r->key, r->key_len) : NULL;
    return p ? *p : NULL;
}

/* Unlinks and frees the key at `*p`. */
static void key_drop(struct rtm_core *core, struct owner *o, struct attr **p)
{
    struct attr *k = *p;
    *p = k->next;
    o->nkeys--;
    o->bytes -= k->len;
    core->attrs->count--;
    rtm_pool_free(&core->pool, k);
}

/* Records that `r` holds a value of `len` bytes written at `ts`; false,
 * changing nothing, when out of memory. */
static bool record(struct rtm_core *core, const struct ref *r, uint32_t len, int64_t ts)
{
    struct owner *o = owner_get(core, r);
    if (!o)
        return false;
    struct attr **p = key_link(o, r->key, r->key_len);
    struct attr *k = p ? *p : NULL;
    if (!k) {
        k = rtm_pool_alloc(&core->pool, RTM_FLEX_SIZE(struct attr, key, r->key_len + 1));
        if (!k) {
            owner_free_if_empty(core, o);
            return false;
        }
        k->key_len = (uint8_t)r->key_len;
        memcpy(k->key, r->key, r->key_len + 1);
        k->next = o->keys;
        o->keys = k;
        o->nkeys++;
        core->attrs->count++;
    }
    o->bytes = o->bytes - k->len + len;
    k->len = len;
    k->ts = ts;
    return true;
}

/* Forgets `r`, if held. */
static void forget(struct rtm_core *core, const struct ref *r)
{
    struct owner *o = owner_find(core, r->kind, r->name, r->name_len);
    struct attr **p = o ? key_link(o, r->key, r->key_len) : NULL;
    if (!p)
        return;
    key_drop(core, o, p);
    owner_free_if_empty(core, o);
}

/* --- life ---------------------------------------------------------------------------- */

int rtm_attrs_init(struct rtm_core *core)
{
    core->attrs = calloc(1, sizeof(*core->attrs));
    if (!core->attrs)
        return -1;
    if (rtm_hash_init(&core->attrs->owners, 64, &core->hash_key) != 0) {
        free(core->attrs);
        core->attrs = NULL;
        return -1;
    }
    return 0;
}

void rtm_attrs_free_all(struct rtm_core *core)
{
    struct rtm_attrs *a = core->attrs;
    if (!a)
        return;
    for (struct rtm_hnode *n; (n = rtm_hash_pop(&a->owners)) != NULL;) {
        struct owner *o = rtm_container_of(n, struct owner, node);
        while (o->keys)
            key_drop(core, o, &o->keys);
        rtm_pool_free(&core->pool, o);
    }
    rtm_hash_fini(&a->owners);
    free(a);
    core->attrs = NULL;
}

void rtm_attrs_stats(const struct rtm_core *core, size_t *attributes)
{
    *attributes = core->attrs ? core->attrs->count : 0;
}

/* --- writes ------------------------------------------------------------------------------ */

static struct rtm_message_result refuse(struct rtm_core *core, const struct rtm_client *client,
                                        const char *topic, enum rtm_err err, const char *why,
                                        int64_t now)
{
    rtm_out_refuse_topic(core, client, topic, err, why, now);
    return (struct rtm_message_result){RTM_DENY, NULL, 0};
}

/* Every write and delete draws from the writer's bucket: each rewrites the
 * broker's retained store. */
static bool within_rate(struct rtm_core *core, const struct rtm_client *client, int64_t now)
{
    struct rtm_user *writer = rtm_user_find(core, client->uid);
    return !writer || rtm_user_take(core, writer, RTM_LIMIT_ATTRS, now);
}

/* Is the owner of a session-lifetime user attribute online? */
static bool owner_online(struct rtm_core *core, const struct ref *r)
{
    struct rtm_user *user = rtm_user_find(core, r->name);
    return user && rtm_user_live(user);
}

/* Would a value of `len` bytes for `r` keep its owner within the limits? */
static bool within_limits(const struct rtm_core *core, const struct ref *r, size_t len)
{
    const struct rtm_config *cfg = core->cfg;
    if (len > cfg->max_attr_bytes)
        return false;
    struct owner *o = owner_find(core, r->kind, r->name, r->name_len);
    if (!o) /* max_attr_keys is at least 1 */
        return core->attrs->count < cfg->max_attributes;
    struct attr **p = key_link(o, r->key, r->key_len);
    if (!p && core->attrs->count >= cfg->max_attributes)
        return false;
    uint64_t keys = o->nkeys + (p ? 0u : 1u);
    uint64_t bytes = (uint64_t)o->bytes - (p ? (*p)->len : 0u) + len;
    return keys <= cfg->max_attr_keys && bytes <= cfg->max_attr_bytes;
}

static struct rtm_message_result delete_key(struct rtm_core *core, const struct rtm_client *client,
                                            const char *topic, const struct ref *r, int64_t now)
{
    if (!within_rate(core, client, now))
        return refuse(core, client, topic, RTM_ERR_RATE_LIMITED,
                      "more than attr_rate attribute writes in 5 seconds", now);
    forget(core, r);
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: attribute %s deleted by %s", topic, client->uid);
    return (struct rtm_message_result){RTM_PASS, NULL, 0};
}

struct rtm_message_result rtm_attrs_message(struct rtm_core *core, const struct rtm_client *client,
                                            const char *topic, const struct rtm_topic *t,
                                            const void *payload, size_t len, bool retain,
                                            int64_t now)
{
    struct ref r;
    ref_of(&r, t);
    if (!retain)
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST, "attributes must be retained", now);
    if (len == 0)
        return delete_key(core, client, topic, &r, now);
    if (memchr(payload, '\0', len) || !rtm_utf8_valid(payload, len))
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST,
                      "an attribute's value is UTF-8 text without NUL", now);
    if (!within_rate(core, client, now))
        return refuse(core, client, topic, RTM_ERR_RATE_LIMITED,
                      "more than attr_rate attribute writes in 5 seconds", now);
    if (session_bound(core, r.kind) && !owner_online(core, &r))
        return refuse(core, client, topic, RTM_ERR_INVALID_STATE,
                      "the user is offline: with user_attr_lifetime session its attributes live "
                      "only while it is online",
                      now);
    if (!within_limits(core, &r, len))
        return refuse(core, client, topic, RTM_ERR_LIMIT_EXCEEDED,
                      "more than max_attr_keys keys or max_attr_bytes bytes of values, or the "
                      "broker holds max_attributes attributes",
                      now);
    struct rtm_message_result res = {RTM_REPLACE, NULL, 0};
    res.payload = rtm_attr_json(r.key, payload, len, client->uid, now, &res.payload_len);
    if (!res.payload || !record(core, &r, (uint32_t)len, now)) {
        free(res.payload);
        rtm_out_log(core, RTM_LOG_ERR, "rtm: out of memory recording attribute %s", topic);
        return refuse(core, client, topic, RTM_ERR_BAD_REQUEST, "server out of memory", now);
    }
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: attribute %s set by %s (%zu bytes)", topic, client->uid,
                len);
    return res;
}

/* --- the session lifetime ------------------------------------------------------------ */

void rtm_attrs_user_offline(struct rtm_core *core, struct rtm_user *user, int64_t now)
{
    (void)now;
    if (!session_bound(core, OWNER_USER))
        return;
    struct owner *o = owner_find(core, OWNER_USER, user->uid, strlen(user->uid));
    if (!o)
        return;
    size_t n = 0;
    while (o->keys) {
        char topic[TOPIC_SIZE];
        if (attr_topic(core, topic, sizeof(topic), OWNER_USER, o->name, o->keys->key))
            rtm_out_publish(core, NULL, topic, "", 0, true);
        key_drop(core, o, &o->keys);
        n++;
    }
    owner_free_if_empty(core, o);
    rtm_out_log(core, RTM_LOG_DEBUG, "rtm: %zu attribute(s) of %s deleted: it went offline", n,
                user->uid);
}

/* --- reads ------------------------------------------------------------------------------ */

/* Is the stamp `claim` of `r` a value this process holds now? */
static bool held_now(const struct rtm_core *core, const struct ref *r,
                     const struct rtm_attr_claim *claim)
{
    const struct attr *k = held(core, r);
    return k && k->ts == claim->ts && k->len == claim->value_len;
}

bool rtm_attrs_read_ok(struct rtm_core *core, const struct rtm_client *client, const char *topic,
                       const struct rtm_topic *t, const void *payload, size_t len, bool retain,
                       int64_t now)
{
    (void)client, (void)now;
    if (len == 0)
        return true; /* a delete's fan-out */
    struct ref r;
    struct rtm_attr_claim claim;
    ref_of(&r, t);
    const char *why = NULL;
    if (!rtm_attr_payload_parse(payload, len, r.key, &claim))
        why = "not an attribute the plugin stamped";
    else if (session_bound(core, r.kind) && !held_now(core, &r, &claim))
        why = "a session attribute of a user gone offline, or from before a restart";
    if (!why)
        return true;
    if (retain)
        rtm_out_erase(core, topic, why);
    return false;
}

/* --- read-back ---------------------------------------------------------------------------- */

/* A stored attribute the loader read back: true when it is recorded. A
 * session-lifetime user attribute is erased, unless this process holds the
 * key already (its owner wrote it since the start: the store holds, or is
 * about to hold, that newer value). Any other is recorded, whatever the
 * limits say, because the store holds it; of it and what a write since the
 * start recorded, the newer ts wins. `*why` says why one is not recorded,
 * NULL when the erase has logged it. */
static bool load(struct rtm_core *core, const char *topic, const struct ref *r,
                 const struct rtm_attr_claim *claim, const char **why)
{
    const struct attr *k = held(core, r);
    if (session_bound(core, r->kind)) {
        if (k)
            return true;
        rtm_out_erase(core, topic, "a session attribute from before the restart");
        *why = NULL;
        return false;
    }
    if (k && k->ts >= claim->ts)
        return true;
    if (claim->value_len > UINT32_MAX || !record(core, r, (uint32_t)claim->value_len, claim->ts)) {
        *why = "out of memory";
        return false;
    }
    return true;
}

bool rtm_core_load_attr(struct rtm_core *core, const char *topic, const void *payload,
                        size_t payload_len)
{
    struct rtm_topic t;
    struct rtm_attr_claim claim;
    struct ref r;
    const char *why = "not an attribute topic";
    enum rtm_topic_kind kind =
        rtm_topic_parse(core->cfg->topic_prefix, core->cfg->prefix_len, topic, &t);
    if (kind == RTM_TOPIC_USER_ATTR || kind == RTM_TOPIC_CH_ATTR) {
        ref_of(&r, &t);
        if (payload_len == 0)
            return false; /* the broker stores no empty retained message */
        if (!rtm_attr_payload_parse(payload, payload_len, r.key, &claim)) {
            rtm_out_erase(core, topic, "not an attribute the plugin stamped");
            return false;
        }
        if (load(core, topic, &r, &claim, &why))
            return true;
    }
    if (why)
        rtm_out_log(core, RTM_LOG_WARNING, "rtm: stored attribute %s not loaded: %s", topic, why);
    return false;
}
