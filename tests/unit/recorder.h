/*
 * The recording sink the unit test fixtures share (core_fixture.c,
 * devices_fixture.c, pusher_fixture.c): a `struct recorder` keeps every
 * publish (its payload copied and parsed with cJSON) and every log line a
 * `struct rtm_sink` receives, until the test clears it. Also the copying and
 * growing helpers the fixtures' own recorders use.
 *
 * A zeroed recorder is empty. Its callbacks make no assertions (a failed
 * assertion would longjmp through the code under test) and abort when out
 * of memory.
 */
#ifndef RTM_TESTS_RECORDER_H
#define RTM_TESTS_RECORDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "rtm_core.h"

struct pub {
    /* NULL: to every subscriber; else the id of the client it was aimed
     * at (rtm_publish.handle), as the adapter asks the broker for it. */
    char *client_id;
    char *topic;
    char *payload; /* payload_len bytes, NUL-terminated */
    size_t payload_len;
    cJSON *json; /* NULL when the payload was not JSON */
    int qos;
    bool retain;
};

struct logline {
    enum rtm_log_level level;
    char *text;
};

struct recorder {
    struct pub *pubs;
    size_t npubs, pubcap;
    struct logline *logs;
    size_t nlogs, logcap;
};

/* The tests' stand-in for the broker's mosquitto_client_id(): every test
 * client's handle is the address of its own struct rtm_client, so
 * `{&alice, "alice", "alice-phone"}` is named by the core as &alice, and
 * a publish aimed at it is recorded with client id "alice-phone". */
const char *recorder_client_id(const void *handle);

/* Points `sink` at `r`: its publishes and log lines are recorded there. */
void recorder_install(struct recorder *r, struct rtm_sink *sink);
/* Forgets every publish and log line recorded so far. */
void recorder_clear(struct recorder *r);
/* Clears `r` and frees its arrays: it is empty again. */
void recorder_free(struct recorder *r);

/* A NUL-terminated copy of the `n` bytes at `s` (which may be NULL when `n`
 * is 0), and of the string `s` (NULL for NULL). */
char *dup_n(const char *s, size_t n);
char *dup_s(const char *s);
/* `arr` (of `n` elements of `size` bytes, room for *cap) with room for one
 * more: doubles *cap, from 64, when it is full. */
void *grow(void *arr, size_t *cap, size_t n, size_t size);

/* rtm/u/{uid}/call, in one of a few rotating buffers. */
const char *inbox(const char *uid);

/* Field of a JSON object, asserting its type (a test failure otherwise). */
const char *jstr(const cJSON *o, const char *key);
int64_t jnum(const cJSON *o, const char *key);
bool jhas(const cJSON *o, const char *key);

#endif
