/*
 * The waker: keeps Mosquitto 2.1's loop turning while nothing else wakes it.
 *
 * Mosquitto 2.0 waits at most 100 ms for network events, so its TICK comes
 * at least ten times a second. 2.1 sleeps until its next scheduled event,
 * which may be seconds away on a quiet broker, and a plugin's TICK can only
 * ask to be woken from inside a TICK that ran: a pass of the loop that skips
 * the plugin's TICK (it came early, on traffic) asks for nothing, and the
 * broker then sleeps on. Timers would fire seconds late.
 *
 * So a thread sends the broker's thread a signal every period: a real-time
 * signal that nobody else handles, with a handler that does nothing and no
 * SA_RESTART, so a sleeping epoll_wait() returns EINTR and the loop runs
 * again (Mosquitto treats EINTR as a pass with no events). A signal that
 * arrives while the broker thread is busy does nothing at all.
 *
 * No Mosquitto calls. At stop the signal is set to SIG_IGN, which discards
 * one still pending, so no handler of a plugin about to be unloaded is ever
 * left behind.
 */
#ifndef RTM_WAKER_H
#define RTM_WAKER_H

#include <pthread.h>
#include <stddef.h>

struct rtm_waker;

/* Starts waking `target` every `period_ms`. NULL, with `err` saying why, when
 * no free real-time signal or no thread can be had. */
struct rtm_waker *rtm_waker_start(pthread_t target, int period_ms, char *err, size_t err_len);

/* The signal it sends (for the log line). */
int rtm_waker_signal(const struct rtm_waker *w);

/* Stops the thread and frees all. NULL is a no-op. */
void rtm_waker_stop(struct rtm_waker *w);

#endif
