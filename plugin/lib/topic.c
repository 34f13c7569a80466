/*
 * Topics under the prefix and who may use them. A topic is split into its
 * levels after the prefix and matched against the shapes of the topic table
 * (presence/, u/{uid}/..., c/{ch}/...); filters are allowed only when every
 * topic they can match is one the subscriber may read, and they name one
 * user or one channel rather than list them.
 */
#include <string.h>

#include "rtm_config.h"
#include "rtm_topic.h"

/* The sets a character belongs to: every uid character is one of a
 * channel id too; ids and keys are subsets. */
enum {
    IN_UID = 1, /* A-Z a-z 0-9 _ - . @ (and channel ids) */
    IN_ID = 2,  /* A-Z a-z 0-9 _ - (invitation and device ids) */
    IN_KEY = 4, /* A-Z a-z 0-9 _ - . (attribute keys) */
};

#define ALL(c) [c] = IN_UID | IN_ID | IN_KEY
/* The sets of every byte; a byte in none (0x80 and up included) is 0. */
static const unsigned char char_sets[256] = {
    ALL('0'),       ALL('1'), ALL('2'), ALL('3'), ALL('4'),
    ALL('5'),       ALL('6'), ALL('7'), ALL('8'), ALL('9'),
    ALL('A'),       ALL('B'), ALL('C'), ALL('D'), ALL('E'),
    ALL('F'),       ALL('G'), ALL('H'), ALL('I'), ALL('J'),
    ALL('K'),       ALL('L'), ALL('M'), ALL('N'), ALL('O'),
    ALL('P'),       ALL('Q'), ALL('R'), ALL('S'), ALL('T'),
    ALL('U'),       ALL('V'), ALL('W'), ALL('X'), ALL('Y'),
    ALL('Z'),       ALL('a'), ALL('b'), ALL('c'), ALL('d'),
    ALL('e'),       ALL('f'), ALL('g'), ALL('h'), ALL('i'),
    ALL('j'),       ALL('k'), ALL('l'), ALL('m'), ALL('n'),
    ALL('o'),       ALL('p'), ALL('q'), ALL('r'), ALL('s'),
    ALL('t'),       ALL('u'), ALL('v'), ALL('w'), ALL('x'),
    ALL('y'),       ALL('z'), ALL('_'), ALL('-'), ['.'] = IN_UID | IN_KEY,
    ['@'] = IN_UID,
};
#undef ALL

/* s[0..len) is 1 to `max` characters, each one of `set`. On the hot path
 * (every topic under the prefix): one table lookup per character. */
static bool all_chars(const char *s, size_t len, size_t max, unsigned set)
{
    if (!s || len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!(char_sets[(unsigned char)s[i]] & set))
            return false;
    }
    return true;
}

bool rtm_uid_valid(const char *s, size_t len)
{
    return all_chars(s, len, RTM_UID_MAX, IN_UID);
}

bool rtm_id_valid(const char *s, size_t len)
{
    return all_chars(s, len, RTM_ID_MAX, IN_ID);
}

bool rtm_channel_valid(const char *s, size_t len)
{
    return all_chars(s, len, RTM_CHANNEL_ID_MAX, IN_UID);
}

bool rtm_attr_key_valid(const char *s, size_t len)
{
    return all_chars(s, len, RTM_ATTR_KEY_MAX, IN_KEY);
}

bool rtm_topic_under_prefix(const char *prefix, size_t prefix_len, const char *topic)
{
    return strncmp(topic, prefix, prefix_len) == 0 && topic[prefix_len] == '/';
}

/* The next level of a topic: [*p, end of level). Advances *p past the '/'. */
struct level {
    const char *s;
    size_t len;
};

static bool next_level(const char **p, struct level *out)
{
    if (!*p)
        return false;
    const char *slash = strchr(*p, '/');
    out->s = *p;
    out->len = slash ? (size_t)(slash - *p) : strlen(*p);
    *p = slash ? slash + 1 : NULL;
    return true;
}

static bool level_is(const struct level *l, const char *word)
{
    return l->len == strlen(word) && memcmp(l->s, word, l->len) == 0;
}

/* Splits what follows the prefix into at most `max` levels; returns the
 * count, or max + 1 when there are more. */
static size_t split(size_t prefix_len, const char *topic, struct level *lv, size_t max)
{
    if (topic[prefix_len] != '/')
        return 0;
    const char *p = topic + prefix_len + 1;
    size_t n = 0;
    struct level l;
    while (next_level(&p, &l)) {
        if (n == max)
            return max + 1;
        lv[n++] = l;
    }
    return n;
}

/* The leaf of a four-level u/ or c/ topic: "msg/{sender}" gives `msg`,
 * "attr/{key}" gives `attr`, and sets the sender or the key. */
static enum rtm_topic_kind parse_leaf(const struct level *lv, enum rtm_topic_kind msg,
                                      enum rtm_topic_kind attr, struct rtm_topic *out)
{
    if (level_is(&lv[0], "msg") && rtm_uid_valid(lv[1].s, lv[1].len)) {
        out->sender = lv[1].s;
        out->sender_len = lv[1].len;
        return msg;
    }
    if (level_is(&lv[0], "attr") && rtm_attr_key_valid(lv[1].s, lv[1].len)) {
        out->key = lv[1].s;
        out->key_len = lv[1].len;
        return attr;
    }
    return RTM_TOPIC_INVALID;
}

/* u/{uid}/...: `lv` starts at the uid, `n` levels. Sets uid for every
 * valid kind, and for a devices topic with a malformed device id. */
static enum rtm_topic_kind parse_user(const struct level *lv, size_t n, struct rtm_topic *out)
{
    enum rtm_topic_kind kind = RTM_TOPIC_INVALID;
    if (!rtm_uid_valid(lv[0].s, lv[0].len))
        return kind;
    if (n == 2 && level_is(&lv[1], "call")) {
        kind = RTM_TOPIC_CALL;
    } else if (n >= 3 && level_is(&lv[1], "devices")) {
        /* A user's devices topic: the device id is the rest of the topic,
         * kept even when malformed so that the owner can be told which. */
        out->device = lv[2].s;
        out->device_len = strlen(lv[2].s);
        if (n == 3 && rtm_id_valid(lv[2].s, lv[2].len))
            kind = RTM_TOPIC_DEVICE;
    } else if (n == 3) {
        kind = parse_leaf(&lv[1], RTM_TOPIC_MSG, RTM_TOPIC_USER_ATTR, out);
    }
    if (kind != RTM_TOPIC_INVALID || out->device) {
        out->uid = lv[0].s;
        out->uid_len = lv[0].len;
    }
    return kind;
}

static const struct {
    const char *word;
    enum rtm_topic_kind kind;
} channel_words[] = {
    {"join", RTM_TOPIC_CH_JOIN},       {"leave", RTM_TOPIC_CH_LEAVE},
    {"members", RTM_TOPIC_CH_MEMBERS}, {"events", RTM_TOPIC_CH_EVENTS},
    {"count", RTM_TOPIC_CH_COUNT},
};

/* The kind of c/{ch}/{word}, INVALID for a word not in the table. */
static enum rtm_topic_kind channel_word(const struct level *l)
{
    for (size_t i = 0; i < sizeof(channel_words) / sizeof(channel_words[0]); i++) {
        if (level_is(l, channel_words[i].word))
            return channel_words[i].kind;
    }
    return RTM_TOPIC_INVALID;
}

/* c/{ch}/...: `lv` starts at the channel id, `n` (2 or 3) levels. Sets
 * channel for every valid kind. */
static enum rtm_topic_kind parse_channel(const struct level *lv, size_t n, struct rtm_topic *out)
{
    if (!rtm_channel_valid(lv[0].s, lv[0].len))
        return RTM_TOPIC_INVALID;
    enum rtm_topic_kind kind = n == 2
                                   ? channel_word(&lv[1])
                                   : parse_leaf(&lv[1], RTM_TOPIC_CH_MSG, RTM_TOPIC_CH_ATTR, out);
    if (kind != RTM_TOPIC_INVALID) {
        out->channel = lv[0].s;
        out->channel_len = lv[0].len;
    }
    return kind;
}

enum rtm_topic_kind rtm_topic_parse(const char *prefix, size_t prefix_len, const char *topic,
                                    struct rtm_topic *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = RTM_TOPIC_OUTSIDE;
    if (!rtm_topic_under_prefix(prefix, prefix_len, topic))
        return out->kind;
    out->kind = RTM_TOPIC_INVALID;
    struct level lv[4];
    size_t n = split(prefix_len, topic, lv, 4);
    if (n == 2 && level_is(&lv[0], "presence") && rtm_uid_valid(lv[1].s, lv[1].len)) {
        out->kind = RTM_TOPIC_PRESENCE;
        out->uid = lv[1].s;
        out->uid_len = lv[1].len;
    } else if (n >= 3 && level_is(&lv[0], "u")) {
        out->kind = parse_user(&lv[1], n - 1, out);
    } else if (n >= 3 && n <= 4 && level_is(&lv[0], "c")) {
        out->kind = parse_channel(&lv[1], n - 1, out);
    }
    return out->kind;
}

static bool level_is_wild(const struct level *l)
{
    return level_is(l, "+") || level_is(l, "#");
}

/* A filter's leaf level: a wildcard, or one name `valid` accepts. */
static bool leaf_allowed(const struct level *l, bool (*valid)(const char *, size_t))
{
    return level_is_wild(l) || valid(l->s, l->len);
}

/* The leaf under a '+' ("+/{leaf}" after a uid or a channel id): it may
 * match any of the leaf kinds, device id, sender uid or key. A uid's
 * characters and length include those of the other two, so it matches at
 * least one valid topic exactly when it is a valid uid. */
static bool any_leaf_valid(const char *s, size_t len)
{
    return rtm_uid_valid(s, len);
}

/* "msg/{sender}", "attr/{key}" or "+/{leaf}" under one user or channel,
 * each leaf a wildcard or a name that some valid topic has there. */
static bool leaf_pair_allowed(const struct level *lv)
{
    if (level_is(&lv[0], "msg"))
        return leaf_allowed(&lv[1], rtm_uid_valid);
    if (level_is(&lv[0], "attr"))
        return leaf_allowed(&lv[1], rtm_attr_key_valid);
    return level_is(&lv[0], "+") && leaf_allowed(&lv[1], any_leaf_valid);
}

/* After "u/{own uid}/": the user's call inbox, devices, messages and
 * attributes, all of which the user may read. */
static bool own_levels_allowed(const struct level *lv, size_t n)
{
    if (n == 1)
        return level_is(&lv[0], "call") || level_is_wild(&lv[0]);
    if (n == 2 && level_is(&lv[0], "devices"))
        return leaf_allowed(&lv[1], rtm_id_valid);
    return n == 2 && leaf_pair_allowed(lv);
}

/* After "u/{another uid}/": only that user's attributes are everyone's. */
static bool other_levels_allowed(const struct level *lv, size_t n)
{
    return n == 2 && level_is(&lv[0], "attr") && leaf_allowed(&lv[1], rtm_attr_key_valid);
}

/* After "c/{ch}/": count, events, messages and attributes. join, leave and
 * members are requests that nobody receives; a wildcard over them is fine,
 * as they carry nothing deliverable. */
static bool channel_levels_allowed(const struct level *lv, size_t n)
{
    if (n == 1)
        return level_is(&lv[0], "count") || level_is(&lv[0], "events") || level_is_wild(&lv[0]);
    return n == 2 && leaf_pair_allowed(lv);
}

/* u/{uid}/... or c/{ch}/... of 3 or 4 levels, `uid` a valid uid. A
 * wildcard in place of the uid or the channel id lists them: refused. */
static bool named_levels_allowed(const struct level *lv, size_t n, const char *uid)
{
    if (n < 3 || n > 4)
        return false;
    if (level_is(&lv[0], "u") && rtm_uid_valid(lv[1].s, lv[1].len))
        return level_is(&lv[1], uid) ? own_levels_allowed(&lv[2], n - 2)
                                     : other_levels_allowed(&lv[2], n - 2);
    if (level_is(&lv[0], "c") && rtm_channel_valid(lv[1].s, lv[1].len))
        return channel_levels_allowed(&lv[2], n - 2);
    return false;
}

bool rtm_topic_filter_allowed(const char *prefix, size_t prefix_len, const char *filter,
                              const char *uid, bool admin)
{
    if (admin)
        return true;
    if (!uid || !rtm_uid_valid(uid, strlen(uid)))
        return false;
    if (!rtm_topic_under_prefix(prefix, prefix_len, filter))
        return false;
    struct level lv[4];
    size_t n = split(prefix_len, filter, lv, 4);
    if (n == 2 && level_is(&lv[0], "presence"))
        return level_is_wild(&lv[1]) || rtm_uid_valid(lv[1].s, lv[1].len);
    return named_levels_allowed(lv, n, uid);
}

/* MQTT topic matching of a filter against a concrete topic. */
static bool filter_matches(const char *filter, const char *topic)
{
    struct level f, t;
    const char *fp = filter, *tp = topic;
    for (;;) {
        bool has_f = next_level(&fp, &f);
        if (has_f && level_is(&f, "#"))
            return true;
        bool has_t = next_level(&tp, &t);
        if (!has_f || !has_t)
            return has_f == has_t;
        if (!level_is(&f, "+") && (f.len != t.len || memcmp(f.s, t.s, f.len) != 0))
            return false;
    }
}

bool rtm_topic_filter_covers_inbox(const char *prefix, size_t prefix_len, const char *filter,
                                   const char *uid)
{
    char inbox[RTM_PREFIX_MAX + RTM_UID_MAX + 16];
    size_t uid_len = strlen(uid);
    if (prefix_len > RTM_PREFIX_MAX || uid_len > RTM_UID_MAX)
        return false;
    memcpy(inbox, prefix, prefix_len);
    memcpy(inbox + prefix_len, "/u/", 3);
    memcpy(inbox + prefix_len + 3, uid, uid_len);
    memcpy(inbox + prefix_len + 3 + uid_len, "/call", 6);
    return filter_matches(filter, inbox);
}
