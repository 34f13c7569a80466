/*
 * The plugin's background services, started at load and stopped at unload:
 * the push dispatcher, the HTTP worker behind it (none in dry run), and the
 * registry loader. No Mosquitto calls: the adapter feeds them time on TICK
 * and asks them who the loader's connection is.
 */
#ifndef RTM_BACKGROUND_H
#define RTM_BACKGROUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtm_core.h"
#include "rtm_stats.h"

struct rtm_background;

/* Starts everything and installs the pusher as the core's push provider.
 * NULL, with `err` naming the problem, on failure. */
struct rtm_background *rtm_background_start(const struct rtm_config *cfg, struct rtm_core *core,
                                            const struct rtm_sink *sink, char *err, size_t err_len);

/* On every TICK: hands finished HTTP results to the pusher, sends due
 * retries, lets the registry loader start (the first TICK comes once the
 * broker's listeners are open), logs each of its failures as an error, and
 * once it has read the registry back, releases the pushes that waited. */
void rtm_background_tick(struct rtm_background *s, int64_t now_ms);

/* From BASIC_AUTH, for every login: is this connection the registry
 * loader's current attempt? (its secret password proves it; the loader
 * also learns that this broker saw it, rtm_loader.h) */
bool rtm_background_is_loader(const struct rtm_background *s, const char *client_id,
                              const char *password);

/* The one subscription the loader makes: {prefix}/+/+/+/+, every device
 * and attribute topic (and nothing else the plugin stores). */
const char *rtm_background_loader_filter(const struct rtm_background *s);

/* Adds the push dispatcher's numbers and the registry's state to `out`
 * (rtm_stats.h). */
void rtm_background_stats(const struct rtm_background *s, struct rtm_stats *out);

/* Stops the threads; queued pushes are abandoned. */
void rtm_background_stop(struct rtm_background *s);

#endif
