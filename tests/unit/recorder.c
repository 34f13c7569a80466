/*
 * The recording sink the unit test fixtures share. recorder.h says what
 * each function does.
 */
#include "recorder.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *dup_s(const char *s)
{
    return s ? dup_n(s, strlen(s)) : NULL;
}

void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    *cap = *cap ? *cap * 2 : 64;
    void *p = realloc(arr, *cap * size);
    if (!p)
        abort();
    return p;
}

static void rec_publish(void *ud, const struct rtm_publish *msg)
{
    struct recorder *r = ud;
    if (!r)
        abort();
    r->pubs = grow(r->pubs, &r->pubcap, r->npubs, sizeof(*r->pubs));
    struct pub *p = &r->pubs[r->npubs++];
    p->client_id = msg->handle ? dup_s(recorder_client_id(msg->handle)) : NULL;
    p->topic = dup_s(msg->topic);
    p->payload = dup_n(msg->payload, msg->payload_len);
    p->payload_len = msg->payload_len;
    p->json = msg->payload_len ? cJSON_ParseWithLength(msg->payload, msg->payload_len) : NULL;
    p->qos = msg->qos;
    p->retain = msg->retain;
}

static void rec_log(void *ud, enum rtm_log_level level, const char *line)
{
    struct recorder *r = ud;
    if (!r)
        abort();
    r->logs = grow(r->logs, &r->logcap, r->nlogs, sizeof(*r->logs));
    r->logs[r->nlogs].level = level;
    r->logs[r->nlogs].text = dup_s(line);
    r->nlogs++;
}

const char *recorder_client_id(const void *handle)
{
    return ((const struct rtm_client *)handle)->client_id;
}

void recorder_install(struct recorder *r, struct rtm_sink *sink)
{
    sink->ud = r;
    sink->publish = rec_publish;
    sink->log = rec_log;
}

void recorder_clear(struct recorder *r)
{
    for (size_t i = 0; i < r->npubs; i++) {
        free(r->pubs[i].client_id);
        free(r->pubs[i].topic);
        free(r->pubs[i].payload);
        cJSON_Delete(r->pubs[i].json);
    }
    r->npubs = 0;
    for (size_t i = 0; i < r->nlogs; i++)
        free(r->logs[i].text);
    r->nlogs = 0;
}

void recorder_free(struct recorder *r)
{
    recorder_clear(r);
    free(r->pubs);
    free(r->logs);
    memset(r, 0, sizeof(*r));
}

const char *inbox(const char *uid)
{
    static char buf[8][160];
    static unsigned next;
    char *b = buf[next++ % 8];
    snprintf(b, sizeof(buf[0]), "rtm/u/%s/call", uid);
    return b;
}

const char *jstr(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(it))
        print_error("no string field %s\n", key);
    assert_true(cJSON_IsString(it));
    return it->valuestring;
}

int64_t jnum(const cJSON *o, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(it))
        print_error("no number field %s\n", key);
    assert_true(cJSON_IsNumber(it));
    return (int64_t)it->valuedouble;
}

bool jhas(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}
