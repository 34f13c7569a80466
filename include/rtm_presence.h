/*
 * Presence (a feature, SPEC 5): the retained {prefix}/presence/{uid}
 * messages. It owns the user fields marked "presence" (rtm_context.h) and
 * the queue of users whose presence may have changed, which it publishes
 * from the tick, only for users whose state changed, so a takeover (new
 * session in, old one out, same iteration) never shows the user offline and
 * a refused connection never shows it online.
 */
#ifndef RTM_PRESENCE_H
#define RTM_PRESENCE_H

#include "rtm_context.h"

/* The user's confirmed sessions changed: queue it for the next tick. */
void rtm_presence_changed(struct rtm_core *core, struct rtm_user *user, int64_t now);
/* Publishes the presence of every queued user whose state changed. */
void rtm_presence_tick(struct rtm_core *core, int64_t now);
/* May this presence message be delivered? False when it claims online for
 * a user who is not (a corrected offline message is published), or when
 * the plugin did not write it (a retained one is replaced or erased). */
bool rtm_presence_read_ok(struct rtm_core *core, const char *uid, const void *payload, size_t len,
                          bool retain, int64_t now);
void rtm_presence_free_all(struct rtm_core *core);

#endif
