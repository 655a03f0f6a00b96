/*
 * hosts.c - backoff steps, and the process-wide health of hosts for
 * multi-host failover.
 *
 * A host that failed to connect is remembered here with its backoff; a
 * host that is up has no entry (a successful connect removes it). The
 * table is shared by every pool of the process, as the hosts are: once
 * one pool found h1 dead, another pool's next connection skips it too.
 * It is small and bounded: only hosts failing right now take an entry,
 * and when it is full the entry retried soonest gives way.
 */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOSTS_MAX 128
#define HOST_NAME_CAP 256

typedef struct hentry {
  char host[HOST_NAME_CAP];
  int port;
  sq_backoff b;
  char why[160];
} hentry;

static pthread_mutex_t hmu = PTHREAD_MUTEX_INITIALIZER;
static hentry table[HOSTS_MAX];
static int ntable;

double sq_backoff_delay(double base, int failures) {
  if (!(base > 0)) base = SQ_HOST_BACKOFF_DEFAULT;
  double d = base;
  for (int i = 1; i < failures && d < base * SQ_BACKOFF_MAX_FACTOR; i++) d *= 2;
  if (d > base * SQ_BACKOFF_MAX_FACTOR) d = base * SQ_BACKOFF_MAX_FACTOR;
  return d;
}

void sq_backoff_fail(sq_backoff *b, double base, double now) {
  if (b->failures < 1000) b->failures++;
  b->until = now + sq_backoff_delay(base, b->failures);
}

/* The entry of host:port, or NULL (hmu held). Names too long to keep are
 * never tracked: they are always "up". */
static hentry *find(const char *host, int port) {
  if (!host || strlen(host) >= HOST_NAME_CAP) return NULL;
  for (int i = 0; i < ntable; i++)
    if (table[i].port == port && !strcmp(table[i].host, host)) return &table[i];
  return NULL;
}

int sq_hosts_order(const sq_host *hosts, int n, int *order) {
  double now = sq_now();
  double until[64];
  int up = 0, down = 0;
  int downs[64];
  if (n > 64) n = 64;
  pthread_mutex_lock(&hmu);
  for (int i = 0; i < n; i++) {
    hentry *e = find(hosts[i].host, hosts[i].port);
    if (e && sq_backoff_down(&e->b, now)) {
      until[i] = e->b.until;
      downs[down++] = i;
    } else {
      order[up++] = i;
    }
  }
  pthread_mutex_unlock(&hmu);
  /* the down ones, soonest retry first (insertion sort: a handful) */
  for (int i = 1; i < down; i++) {
    int x = downs[i], j = i;
    while (j > 0 && until[downs[j - 1]] > until[x]) {
      downs[j] = downs[j - 1];
      j--;
    }
    downs[j] = x;
  }
  for (int i = 0; i < down; i++) order[up + i] = downs[i];
  return up;
}

void sq_hosts_failed(const char *host, int port, double base, const char *why) {
  if (!host || strlen(host) >= HOST_NAME_CAP) return;
  double now = sq_now();
  pthread_mutex_lock(&hmu);
  hentry *e = find(host, port);
  if (!e) {
    if (ntable < HOSTS_MAX) {
      e = &table[ntable++];
    } else { /* full: the entry retried soonest gives way */
      e = &table[0];
      for (int i = 1; i < ntable; i++)
        if (table[i].b.until < e->b.until) e = &table[i];
    }
    memset(e, 0, sizeof *e);
    snprintf(e->host, sizeof e->host, "%s", host);
    e->port = port;
  }
  /* A failure seen while the host was already down (a connect that
   * started before another one marked it) does not lengthen the wait. */
  if (!sq_backoff_down(&e->b, now)) sq_backoff_fail(&e->b, base, now);
  snprintf(e->why, sizeof e->why, "%s", why ? why : "");
  pthread_mutex_unlock(&hmu);
}

void sq_hosts_ok(const char *host, int port) {
  pthread_mutex_lock(&hmu);
  hentry *e = find(host, port);
  if (e) *e = table[--ntable];
  pthread_mutex_unlock(&hmu);
}

int sq_host_state_get(const char *host, int port, sq_host_state *st) {
  memset(st, 0, sizeof *st);
  double now = sq_now();
  pthread_mutex_lock(&hmu);
  hentry *e = find(host, port);
  if (e) {
    st->down = sq_backoff_down(&e->b, now);
    st->retry_in = st->down ? e->b.until - now : 0;
    st->failures = e->b.failures;
    snprintf(st->last_error, sizeof st->last_error, "%s", e->why);
  }
  pthread_mutex_unlock(&hmu);
  return st->down;
}

void sq_host_state_reset(void) {
  pthread_mutex_lock(&hmu);
  ntable = 0;
  pthread_mutex_unlock(&hmu);
}
