/*
 * libFuzzer target: topic names, subscription filters and the uid and id
 * syntax (plugin/lib/topic.c). The input is one topic or filter, tried under
 * the default prefix and a multi-level one, for a few uids.
 *
 * Invariants checked:
 * - rtm_uid_valid, rtm_id_valid, rtm_channel_valid and rtm_attr_key_valid
 *   agree with the documented character sets;
 * - rtm_topic_parse points inside the topic, every part it names is valid,
 *   and the topic is exactly the canonical spelling of what it parsed to;
 * - a non-admin uid U may subscribe only to filters whose every match U may
 *   read (presence, anyone's attributes, one channel's topics, U's own
 *   inbox, devices and messages: checked on the filter itself when it has no
 *   wildcard, and on instances of it when it has some), and never to a
 *   filter that lists users or channels (a wildcard in the uid or channel
 *   level, or above it), except presence;
 * - rtm_topic_filter_covers_inbox agrees with a plain MQTT matcher.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "rtm_config.h"
#include "rtm_topic.h"

#define TOPIC_MAX 1024 /* longer inputs add nothing the parser has not seen */

struct prefix {
    const char *s;
    size_t len;
};

static const struct prefix prefixes[] = {{"rtm", 3}, {"app/rtm", 7}};

/* Uids a filter is tried for, besides the one the topic itself names. */
static const char *const uids[] = {"alice", "bob", "a.b@c-d_e"};

/* --- uid and id syntax ---------------------------------------------------- */

static bool ref_uid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.' || c == '@';
}

static bool ref_valid(const char *s, size_t len, bool id)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!ref_uid_char(s[i]) || (id && (s[i] == '.' || s[i] == '@')))
            return false;
    }
    return true;
}

/* An attribute key: 1-32 of A-Z a-z 0-9 _ . - */
static bool ref_key_valid(const char *s, size_t len)
{
    if (len == 0 || len > 32)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!ref_uid_char(s[i]) || s[i] == '@')
            return false;
    }
    return true;
}

static void check_syntax(const uint8_t *data, size_t size)
{
    char *buf = fuzz_bytes(data, size);
    bool uid = rtm_uid_valid(buf, size), id = rtm_id_valid(buf, size);
    FUZZ_CHECK(uid == ref_valid(buf, size, false));
    FUZZ_CHECK(id == ref_valid(buf, size, true));
    FUZZ_CHECK(!id || uid);
    FUZZ_CHECK(rtm_channel_valid(buf, size) == uid); /* a channel id is spelled like a uid */
    FUZZ_CHECK(rtm_attr_key_valid(buf, size) == ref_key_valid(buf, size));
    free(buf);
}

/* --- parsing ---------------------------------------------------------------- */

static bool inside(const char *p, size_t len, const char *topic, size_t topic_len)
{
    return p >= topic && len <= topic_len && (size_t)(p - topic) <= topic_len - len;
}

static void canonical_devices(const struct prefix *px, const struct rtm_topic *t, char *buf,
                              size_t size)
{
    snprintf(buf, size, "%s/u/%.*s/devices/%.*s", px->s, (int)t->uid_len, t->uid,
             (int)t->device_len, t->device);
}

/* The last level of a channel request topic. */
static const char *channel_word(enum rtm_topic_kind kind)
{
    switch (kind) {
    case RTM_TOPIC_CH_JOIN:
        return "join";
    case RTM_TOPIC_CH_LEAVE:
        return "leave";
    case RTM_TOPIC_CH_MEMBERS:
        return "members";
    case RTM_TOPIC_CH_EVENTS:
        return "events";
    default:
        return "count";
    }
}

/* The one spelling of what `t` says the topic is. */
static void canonical(const struct prefix *px, const struct rtm_topic *t, char *buf, size_t size)
{
    int uid_len = (int)t->uid_len, ch_len = (int)t->channel_len;
    switch (t->kind) {
    case RTM_TOPIC_CALL:
        snprintf(buf, size, "%s/u/%.*s/call", px->s, uid_len, t->uid);
        break;
    case RTM_TOPIC_PRESENCE:
        snprintf(buf, size, "%s/presence/%.*s", px->s, uid_len, t->uid);
        break;
    case RTM_TOPIC_DEVICE:
        canonical_devices(px, t, buf, size);
        break;
    case RTM_TOPIC_MSG:
        snprintf(buf, size, "%s/u/%.*s/msg/%.*s", px->s, uid_len, t->uid, (int)t->sender_len,
                 t->sender);
        break;
    case RTM_TOPIC_USER_ATTR:
        snprintf(buf, size, "%s/u/%.*s/attr/%.*s", px->s, uid_len, t->uid, (int)t->key_len, t->key);
        break;
    case RTM_TOPIC_CH_MSG:
        snprintf(buf, size, "%s/c/%.*s/msg/%.*s", px->s, ch_len, t->channel, (int)t->sender_len,
                 t->sender);
        break;
    case RTM_TOPIC_CH_ATTR:
        snprintf(buf, size, "%s/c/%.*s/attr/%.*s", px->s, ch_len, t->channel, (int)t->key_len,
                 t->key);
        break;
    default:
        snprintf(buf, size, "%s/c/%.*s/%s", px->s, ch_len, t->channel, channel_word(t->kind));
        break;
    }
}

static bool is_user_kind(enum rtm_topic_kind kind)
{
    return kind == RTM_TOPIC_CALL || kind == RTM_TOPIC_PRESENCE || kind == RTM_TOPIC_DEVICE ||
           kind == RTM_TOPIC_MSG || kind == RTM_TOPIC_USER_ATTR;
}

/* Every part the parse names lies inside the topic and is valid. */
static void check_parts(const struct rtm_topic *t, const char *topic, size_t len)
{
    bool user = is_user_kind(t->kind);
    FUZZ_CHECK(user == (t->uid != NULL) && user == (t->channel == NULL));
    if (user)
        FUZZ_CHECK(inside(t->uid, t->uid_len, topic, len) && rtm_uid_valid(t->uid, t->uid_len));
    else
        FUZZ_CHECK(inside(t->channel, t->channel_len, topic, len) &&
                   rtm_channel_valid(t->channel, t->channel_len));
    bool msg = t->kind == RTM_TOPIC_MSG || t->kind == RTM_TOPIC_CH_MSG;
    FUZZ_CHECK(msg == (t->sender != NULL));
    if (msg)
        FUZZ_CHECK(inside(t->sender, t->sender_len, topic, len) &&
                   rtm_uid_valid(t->sender, t->sender_len));
    bool attr = t->kind == RTM_TOPIC_USER_ATTR || t->kind == RTM_TOPIC_CH_ATTR;
    FUZZ_CHECK(attr == (t->key != NULL));
    if (attr)
        FUZZ_CHECK(inside(t->key, t->key_len, topic, len) &&
                   rtm_attr_key_valid(t->key, t->key_len));
    FUZZ_CHECK((t->kind == RTM_TOPIC_DEVICE) == (t->device != NULL));
    if (t->device)
        FUZZ_CHECK(inside(t->device, t->device_len, topic, len) &&
                   rtm_id_valid(t->device, t->device_len));
}

static enum rtm_topic_kind check_parse(const struct prefix *px, const char *topic)
{
    struct rtm_topic t;
    size_t len = strlen(topic);
    enum rtm_topic_kind kind = rtm_topic_parse(px->s, px->len, topic, &t);
    FUZZ_CHECK(t.kind == kind);
    FUZZ_CHECK((kind == RTM_TOPIC_OUTSIDE) == !rtm_topic_under_prefix(px->s, px->len, topic));
    if (kind == RTM_TOPIC_INVALID && t.device) {
        /* A devices topic of a valid uid whose device id (the rest of the
         * topic) is malformed: exactly that spelling, and not a valid id. */
        FUZZ_CHECK(inside(t.uid, t.uid_len, topic, len) && rtm_uid_valid(t.uid, t.uid_len));
        FUZZ_CHECK(inside(t.device, t.device_len, topic, len) &&
                   t.device + t.device_len == topic + len);
        FUZZ_CHECK(!rtm_id_valid(t.device, t.device_len) ||
                   memchr(t.device, '/', t.device_len) != NULL);
        char buf[TOPIC_MAX + 256];
        canonical_devices(px, &t, buf, sizeof(buf));
        FUZZ_CHECK(strcmp(buf, topic) == 0);
        return kind;
    }
    if (kind == RTM_TOPIC_OUTSIDE || kind == RTM_TOPIC_INVALID) {
        FUZZ_CHECK(t.uid == NULL && t.device == NULL && t.channel == NULL && t.sender == NULL &&
                   t.key == NULL);
        return kind;
    }
    check_parts(&t, topic, len);
    char buf[TOPIC_MAX + 256];
    canonical(px, &t, buf, sizeof(buf));
    FUZZ_CHECK(strcmp(buf, topic) == 0);
    return kind;
}

/* --- filters ---------------------------------------------------------------- */

/* May `uid` subscribe to concrete topic `topic`? The topic table:
 * presence, attributes and one channel's messages, events and count are
 * everybody's (channel deliveries then go to members only); an inbox, a
 * device or a peer message only its owner's; channel requests nobody's. */
static bool readable_by(const struct prefix *px, const char *topic, const char *uid)
{
    struct rtm_topic t;
    enum rtm_topic_kind kind = rtm_topic_parse(px->s, px->len, topic, &t);
    switch (kind) {
    case RTM_TOPIC_PRESENCE:
    case RTM_TOPIC_USER_ATTR:
    case RTM_TOPIC_CH_MSG:
    case RTM_TOPIC_CH_EVENTS:
    case RTM_TOPIC_CH_COUNT:
    case RTM_TOPIC_CH_ATTR:
        return true;
    case RTM_TOPIC_CALL:
    case RTM_TOPIC_DEVICE:
    case RTM_TOPIC_MSG:
        return strlen(uid) == t.uid_len && memcmp(uid, t.uid, t.uid_len) == 0;
    default:
        return false;
    }
}

/* A filter that lists users or channels: a wildcard at or above the uid or
 * channel level, outside presence. */
static bool lists(const struct prefix *px, const char *filter)
{
    const char *rest = filter + px->len + 1;
    if (strncmp(rest, "presence/", 9) == 0)
        return false;
    size_t first = strcspn(rest, "/");
    if (memchr(rest, '+', first) || memchr(rest, '#', first) || rest[first] != '/')
        return true;
    const char *second = rest + first + 1;
    size_t len = strcspn(second, "/");
    return memchr(second, '+', len) || memchr(second, '#', len);
}

/* What each instance puts for '+' and for '#' ("" drops "/#": '#' also
 * matches the parent level). Other users, the own uid and the words of the
 * topic table, so that an instance lands on a topic someone else owns. */
static const char *const plus_words[] = {"bob",  "alice", "u", "call",     "devices", "msg",
                                         "attr", "join",  "c", "presence", "d1"};
static const char *const hash_tails[] = {"",       "call",     "devices/d1", "bob/call",
                                         "x/call", "u",        "alice/call", "msg/bob",
                                         "join",   "attr/k.1", "u/bob/msg/x"};
#define INSTANCES (sizeof(plus_words) / sizeof(plus_words[0]))

/* One concrete topic the filter matches; false when it has no wildcard. */
static bool instance(const char *filter, size_t k, char *buf, size_t size)
{
    size_t used = 0;
    bool wild = false;
    buf[0] = '\0';
    for (const char *p = filter;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 1 && *p == '#') {
            const char *tail = hash_tails[k];
            if (*tail)
                fuzz_append(buf, size, &used, tail, strlen(tail));
            else if (used > 0)
                buf[--used] = '\0'; /* the '/' before '#' */
            return true;
        }
        wild |= len == 1 && *p == '+';
        if (len == 1 && *p == '+')
            fuzz_append(buf, size, &used, plus_words[k], strlen(plus_words[k]));
        else
            fuzz_append(buf, size, &used, p, len);
        if (!slash)
            return wild;
        fuzz_append(buf, size, &used, "/", 1);
        p = slash + 1;
    }
}

static void check_filter(const struct prefix *px, const char *filter, const char *uid)
{
    FUZZ_CHECK(rtm_topic_filter_allowed(px->s, px->len, filter, uid, true));
    if (!rtm_topic_filter_allowed(px->s, px->len, filter, uid, false))
        return;
    FUZZ_CHECK(rtm_uid_valid(uid, strlen(uid)));
    FUZZ_CHECK(rtm_topic_under_prefix(px->s, px->len, filter));
    FUZZ_CHECK(!lists(px, filter));
    if (!strpbrk(filter, "+#")) {
        FUZZ_CHECK(readable_by(px, filter, uid));
        return;
    }
    char buf[TOPIC_MAX + 64];
    for (size_t k = 0; k < INSTANCES; k++) {
        if (!instance(filter, k, buf, sizeof(buf)))
            continue;
        struct rtm_topic t;
        enum rtm_topic_kind kind = rtm_topic_parse(px->s, px->len, buf, &t);
        if (kind == RTM_TOPIC_CALL || kind == RTM_TOPIC_DEVICE || kind == RTM_TOPIC_MSG)
            FUZZ_CHECK(readable_by(px, buf, uid));
    }
}

static bool is_level(const char *s, char c)
{
    return s[0] == c && (s[1] == '/' || s[1] == '\0');
}

/* Plain MQTT matching, written apart from topic.c's so the two can be
 * compared. A '#' level matches whatever is left, the parent level too (and,
 * as in topic.c, levels after it are not looked at: the broker refuses such
 * filters before any plugin sees them). */
static bool ref_match(const char *filter, const char *topic)
{
    for (;;) {
        size_t fl = strcspn(filter, "/"), tl = strcspn(topic, "/");
        if (is_level(filter, '#'))
            return true;
        if (!is_level(filter, '+') && (fl != tl || memcmp(filter, topic, fl) != 0))
            return false;
        bool f_more = filter[fl] == '/', t_more = topic[tl] == '/';
        if (!t_more)
            return !f_more || is_level(filter + fl + 1, '#');
        if (!f_more)
            return false;
        filter += fl + 1;
        topic += tl + 1;
    }
}

static void check_covers(const struct prefix *px, const char *filter, const char *uid)
{
    char inbox[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    snprintf(inbox, sizeof(inbox), "%s/u/%s/call", px->s, uid);
    bool covers = rtm_topic_filter_covers_inbox(px->s, px->len, filter, uid);
    FUZZ_CHECK(covers == ref_match(filter, inbox));
    if (!strpbrk(filter, "+#"))
        FUZZ_CHECK(covers == (strcmp(filter, inbox) == 0));
}

/* The uid the topic names after "{prefix}/u/" or "{prefix}/presence/", if
 * it is a valid one: the uid most worth trying the filter for. */
static bool named_uid(const struct prefix *px, const char *topic, char *uid)
{
    if (!rtm_topic_under_prefix(px->s, px->len, topic) || topic[px->len] != '/')
        return false;
    const char *rest = topic + px->len + 1;
    size_t skip = strncmp(rest, "u/", 2) == 0 ? 2 : strncmp(rest, "presence/", 9) == 0 ? 9 : 0;
    if (!skip)
        return false;
    size_t len = strcspn(rest + skip, "/");
    if (!rtm_uid_valid(rest + skip, len))
        return false;
    memcpy(uid, rest + skip, len);
    uid[len] = '\0';
    return true;
}

static void check_prefix(const struct prefix *px, const char *topic)
{
    check_parse(px, topic);
    for (size_t i = 0; i < sizeof(uids) / sizeof(uids[0]); i++) {
        check_filter(px, topic, uids[i]);
        check_covers(px, topic, uids[i]);
    }
    char uid[RTM_UID_MAX + 1];
    if (named_uid(px, topic, uid)) {
        check_filter(px, topic, uid);
        check_covers(px, topic, uid);
    }
    /* Without a valid uid nothing under the prefix may be subscribed to. */
    FUZZ_CHECK(!rtm_topic_filter_allowed(px->s, px->len, topic, "not valid", false));
    FUZZ_CHECK(!rtm_topic_filter_allowed(px->s, px->len, topic, NULL, false));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TOPIC_MAX)
        return 0;
    check_syntax(data, size);
    char *topic = fuzz_string(data, size);
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        check_prefix(&prefixes[i], topic);
    free(topic);
    return 0;
}
