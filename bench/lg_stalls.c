/*
 * rtm-loadgen stalls: how often this machine takes a CPU away from a thread
 * that wants it, and for how long. One thread per CPU spins on the
 * monotonic clock for --seconds; a gap between two readings longer than
 * STALL_NS is time the thread did not run (an interrupt, a kernel thread,
 * the hypervisor). Run with both CPUs busy, as during the measurements, it
 * shows how much of a p99 in milliseconds the machine itself can explain:
 * a window of a few seconds that catches one such stall has it in its p99.
 */
#define _GNU_SOURCE /* pthread_setaffinity_np */
#include "lg.h"

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#define STALL_NS (500 * 1000) /* 0.5 ms */
#define MAX_CPUS 64

struct probe {
    int cpu;
    double seconds;
    bool pinned;
    long stalls;
    int64_t longest;
};

static void *spin(void *arg)
{
    struct probe *p = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(p->cpu, &set);
    p->pinned = pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
    int64_t prev = lg_now_ns(), end = prev + (int64_t)(p->seconds * LG_NS);
    while (prev < end) {
        int64_t now = lg_now_ns();
        if (now - prev > STALL_NS) {
            p->stalls++;
            if (now - prev > p->longest)
                p->longest = now - prev;
        }
        prev = now;
    }
    return NULL;
}

int lg_stalls(const struct lg_opts *o)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1 || n > MAX_CPUS)
        lg_die("stalls: %ld CPUs online", n);
    struct probe probes[MAX_CPUS];
    pthread_t threads[MAX_CPUS];
    for (int i = 0; i < n; i++) {
        probes[i] = (struct probe){.cpu = i, .seconds = o->seconds};
        if (pthread_create(&threads[i], NULL, spin, &probes[i]) != 0)
            lg_die("stalls: cannot start a thread");
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < n; i++) {
        struct probe *p = &probes[i];
        if (!p->pinned)
            lg_die("stalls: cannot run a thread on CPU %d", p->cpu);
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
