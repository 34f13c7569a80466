/*
 * rtm-loadgen stalls: how often this machine takes a CPU away from a thread
 * that wants it, and for how long. One thread per CPU spins on the
 * monotonic clock for --seconds; a gap between two readings longer than
 * STALL_NS is time the thread did not run (an interrupt, a kernel thread,
 * the hypervisor). Run with both CPUs busy, as during the measurements, it
 * shows how much of a p99 in milliseconds the machine itself can explain:
 * a window of a few seconds that catches one such stall has it in its p99.
 */
#define _GNU_SOURCE /* pthread_attr_setaffinity_np */
#include "lg.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#define STALL_NS  (500 * 1000)        /* 0.5 ms */
#define SETTLE_NS (200 * 1000 * 1000) /* not counted: every thread starting */
#define MAX_CPUS  64

struct probe {
    int cpu;
    int64_t from, until; /* the window counted, the same for every thread */
    long stalls;
    int64_t longest;
};

static void *spin(void *arg)
{
    struct probe *p = arg;
    int64_t prev = lg_now_ns();
    while (prev < p->until) {
        int64_t now = lg_now_ns();
        if (now - prev > STALL_NS && prev >= p->from) {
            p->stalls++;
            if (now - prev > p->longest)
                p->longest = now - prev;
        }
        prev = now;
    }
    return NULL;
}

/* A thread that starts on its CPU (not on the creator's, then moved), so
 * that starting the probes is not counted as a stall of the first one. */
static void start_on(int cpu, pthread_t *thread, struct probe *p)
{
    pthread_attr_t attr;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (pthread_attr_init(&attr) != 0 ||
        pthread_attr_setaffinity_np(&attr, sizeof(set), &set) != 0 ||
        pthread_create(thread, &attr, spin, p) != 0)
        lg_die("stalls: cannot start a thread on CPU %d", cpu);
    pthread_attr_destroy(&attr);
}

int lg_stalls(const struct lg_opts *o)
{
    /* CPUs 0..n-1, as bench/run.sh pins them. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > MAX_CPUS)
        lg_die("stalls: %ld CPUs online", n);
    if (!(o->seconds > 0))
        lg_die("stalls: --seconds must be more than 0");
    struct probe probes[MAX_CPUS];
    pthread_t threads[MAX_CPUS];
    int64_t from = lg_now_ns() + SETTLE_NS, until = from + (int64_t)(o->seconds * LG_NS);
    for (int i = 0; i < n; i++) {
        probes[i] = (struct probe){.cpu = i, .from = from, .until = until};
        start_on(i, &threads[i], &probes[i]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        char key[16], what[160], what_max[160];
        snprintf(key, sizeof(key), "M%d", 2 * i + 1);
        snprintf(what, sizeof(what),
                 "machine: stalls over 0.5 ms of a thread spinning on CPU %d (all CPUs busy), "
                 "per second",
                 p->cpu);
        lg_row(key, what, "/s", 1, (double)p->stalls / o->seconds, LG_NONE_BASE, NAN, NULL);
        snprintf(key, sizeof(key), "M%d", 2 * i + 2);
        snprintf(what_max, sizeof(what_max), "machine: the longest of those stalls, CPU %d",
                 p->cpu);
        lg_row(key, what_max, "ms", 2, (double)p->longest / LG_MS, LG_NONE_BASE, NAN, NULL);
    }
    return 0;
}
