/*
 * Reading the device registry back at start-up. Mosquitto 2.0 gives plugins
 * no way to list retained messages, but it runs the ACL check (access READ,
 * with topic and payload) for every retained message it hands a new
 * subscription. So a thread connects to one of the broker's own plain MQTT
 * listeners as an MQTT 3.1.1 client, subscribes to every device topic,
 * waits for the SUBACK and leaves. The plugin recognizes that client by a
 * secret password, and its ACL callback, on the broker thread, records each
 * registration and refuses its delivery. This depends on no file format.
 */
#ifndef RTM_LOADER_H
#define RTM_LOADER_H

#include <stddef.h>

struct rtm_loader;

/* Starts the thread. `listener` is "host:port". NULL (and `err`) on failure. */
struct rtm_loader *rtm_loader_start(const char *listener, const char *client_id,
                                    const char *password, const char *filter, char *err,
                                    size_t err_len);

enum rtm_loader_state { RTM_LOADER_RUNNING, RTM_LOADER_DONE, RTM_LOADER_FAILED };

/* How it went; on RTM_LOADER_FAILED `err` says why. Never blocks. */
enum rtm_loader_state rtm_loader_poll(struct rtm_loader *loader, char *err, size_t err_len);

/* Stops the thread (it gives up waiting within ~200 ms) and frees all. */
void rtm_loader_stop(struct rtm_loader *loader);

#endif
