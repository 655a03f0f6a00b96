/*
 * fault_proxy.c - the TCP fault proxy of the live tests (see
 * fault_proxy.h for what it does).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif

#include "fault_proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct fp_conn {
  struct fp_conn *next;
  fp_proxy *p;
  pthread_t thread;
  int cfd, sfd;          /* client side, server side */
  int kind;              /* the planned fault (FP_NONE: none) */
  int trigger;           /* fires at this read */
  uint64_t rng;
  atomic_int kill;       /* fp_reset_all / fp_stop: reset now */
  atomic_int done;       /* the thread has finished: join it */
} fp_conn;

struct fp_proxy {
  fp_config cfg;
  int lfd, port;
  int wake[2];           /* written once by fp_stop: wakes the accept loop */
  pthread_t accept_thread;
  pthread_mutex_t mu;    /* conns, rng, stats, pattern */
  fp_conn *conns;
  uint64_t rng;
  fp_stats st;
  atomic_int faults_on;
  atomic_int stopping;
  char pattern[32];      /* armed one-shot fault ("" when not armed) */
  int armed_kind;        /* FP_REPLY_LOSS or FP_BLACKHOLE */
  int loss_fired;
};

const char *fp_kind_name(int kind) {
  static const char *const names[FP_NKINDS] = {"none", "delay", "truncate", "reset", "blackhole", "reply_loss"};
  return kind >= 0 && kind < FP_NKINDS ? names[kind] : "?";
}

/* splitmix64 */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) / 9007199254740992.0; }

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void nap(double s) {
  if (s <= 0) return;
  struct timespec ts;
  ts.tv_sec = (time_t)s;
  ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Closes with RST (SO_LINGER 0). */
static void close_rst(int fd) {
  if (fd < 0) return;
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

static int write_all(int fd, const char *b, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static void count(fp_proxy *p, int injected_kind, long long bytes) {
  pthread_mutex_lock(&p->mu);
  if (injected_kind) p->st.injected[injected_kind]++;
  p->st.bytes += bytes;
  pthread_mutex_unlock(&p->mu);
}

/* Plans c's next fault (or none): its kind and the read it fires at,
 * 1..trigger_max reads after `reads`. */
static void plan(fp_proxy *p, fp_conn *c, int reads) {
  double u = next_unit(&c->rng), acc = 0;
  c->kind = FP_NONE;
  for (int k = FP_DELAY; k <= FP_BLACKHOLE; k++) {
    acc += p->cfg.rate[k];
    if (u < acc) {
      c->kind = k;
      break;
    }
  }
  c->trigger = reads + 1 + (int)(next_u64(&c->rng) % (uint64_t)p->cfg.trigger_max);
  pthread_mutex_lock(&p->mu);
  p->st.planned[c->kind]++;
  pthread_mutex_unlock(&p->mu);
}

/* The forwarding loop of one connection. */
static void *conn_main(void *arg) {
  fp_conn *c = arg;
  fp_proxy *p = c->p;
  char buf[16384];
  int reads = 0, delaying = 0, blackholed = 0, armed_hole = 0, drop_reply = 0, rst = 0;
  double hold_until = 0;
  for (;;) {
    if (atomic_load(&c->kill)) {
      rst = 1;
      break;
    }
    int on = atomic_load(&p->faults_on);
    if (blackholed) {
      if ((!on && !armed_hole) || (p->cfg.blackhole_hold > 0 && now_s() >= hold_until)) {
        rst = 1;
        break;
      }
      nap(0.05);
      continue;
    }
    if (!on) delaying = 0;
    struct pollfd pf[2] = {{c->cfd, POLLIN, 0}, {c->sfd, POLLIN, 0}};
    int n = poll(pf, 2, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    int end = 0;
    for (int i = 0; i < 2 && !end && !blackholed; i++) {
      if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = i == 0 ? c->cfd : c->sfd, to = i == 0 ? c->sfd : c->cfd;
      ssize_t r = recv(from, buf, sizeof buf, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) { /* that side closed (or reset): so does the other */
        end = 1;
        break;
      }
      reads++;
      if (i == 1 && drop_reply) { /* the reply to the armed request: lost */
        count(p, FP_REPLY_LOSS, 0);
        rst = end = 1;
        break;
      }
      if (i == 0) {
        int hit = 0;
        pthread_mutex_lock(&p->mu);
        if (p->pattern[0] && memmem(buf, (size_t)r, p->pattern, strlen(p->pattern))) {
          p->pattern[0] = '\0';
          p->loss_fired = 1;
          hit = p->armed_kind;
        }
        pthread_mutex_unlock(&p->mu);
        if (hit == FP_REPLY_LOSS) drop_reply = 1;
        if (hit == FP_BLACKHOLE) { /* the request goes nowhere */
          count(p, FP_BLACKHOLE, 0);
          blackholed = armed_hole = 1;
          hold_until = now_s() + p->cfg.blackhole_hold;
          break;
        }
      }
      on = atomic_load(&p->faults_on);
      if (on && reads >= c->trigger) {
        int k = c->kind;
        /* the next window: a connection the dice spared (or only slowed)
         * is planned again, so long-lived pooled connections keep
         * meeting faults */
        plan(p, c, reads);
        delaying = 0;
        if (k != FP_NONE) count(p, k, 0);
        if (k == FP_DELAY) {
          delaying = 1;
        } else if (k == FP_TRUNCATE) {
          size_t part = (size_t)(next_u64(&c->rng) % (uint64_t)r);
          if (part) write_all(to, buf, part);
          count(p, 0, (long long)part);
          end = 1;
          break;
        } else if (k == FP_RESET) {
          rst = end = 1;
          break;
        } else if (k == FP_BLACKHOLE) {
          blackholed = 1;
          hold_until = now_s() + p->cfg.blackhole_hold;
          break;
        }
      }
      if (delaying) nap(next_unit(&c->rng) * p->cfg.delay_max);
      if (write_all(to, buf, (size_t)r)) {
        end = 1;
        break;
      }
      count(p, 0, (long long)r);
    }
    if (end) break;
  }
  if (rst) {
    close_rst(c->cfd);
    close_rst(c->sfd);
  } else {
    close(c->cfd);
    close(c->sfd);
  }
  c->cfd = c->sfd = -1;
  atomic_store(&c->done, 1);
  return NULL;
}

/* Joins and frees finished connections (all of them when all != 0,
 * after telling them to stop). */
static void reap(fp_proxy *p, int all) {
  pthread_mutex_lock(&p->mu);
  fp_conn **pp = &p->conns;
  fp_conn *gone = NULL;
  while (*pp) {
    fp_conn *c = *pp;
    if (all || atomic_load(&c->done)) {
      *pp = c->next;
      c->next = gone;
      gone = c;
    } else {
      pp = &c->next;
    }
  }
  pthread_mutex_unlock(&p->mu);
  while (gone) {
    fp_conn *c = gone;
    gone = c->next;
    atomic_store(&c->kill, 1);
    pthread_join(c->thread, NULL);
    free(c);
  }
}

static int connect_target(const fp_proxy *p) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)p->cfg.port);
  inet_pton(AF_INET, p->cfg.host, &a.sin_addr);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void *accept_main(void *arg) {
  fp_proxy *p = arg;
  while (!atomic_load(&p->stopping)) {
    struct pollfd pf[2] = {{p->lfd, POLLIN, 0}, {p->wake[0], POLLIN, 0}};
    int n = poll(pf, 2, 200);
    reap(p, 0);
    if (n <= 0 || !(pf[0].revents & POLLIN)) continue;
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    int one = 1;
    setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int sfd = connect_target(p);
    pthread_mutex_lock(&p->mu);
    p->st.accepted++;
    if (sfd < 0) p->st.refused++;
    pthread_mutex_unlock(&p->mu);
    if (sfd < 0) {
      close_rst(cfd);
      continue;
    }
    fp_conn *c = calloc(1, sizeof *c);
    if (!c) {
      close_rst(cfd);
      close_rst(sfd);
      continue;
    }
    c->p = p;
    c->cfd = cfd;
    c->sfd = sfd;
    pthread_mutex_lock(&p->mu);
    c->rng = next_u64(&p->rng);
    pthread_mutex_unlock(&p->mu);
    plan(p, c, 0);
    if (pthread_create(&c->thread, NULL, conn_main, c) != 0) {
      close_rst(cfd);
      close_rst(sfd);
      free(c);
      continue;
    }
    pthread_mutex_lock(&p->mu);
    c->next = p->conns;
    p->conns = c;
    pthread_mutex_unlock(&p->mu);
  }
  return NULL;
}

int fp_start(const fp_config *cfg, fp_proxy **out) {
  *out = NULL;
  fp_proxy *p = calloc(1, sizeof *p);
  if (!p) return -1;
  p->cfg = *cfg;
  if (p->cfg.trigger_max <= 0) p->cfg.trigger_max = 60;
  if (p->cfg.delay_max <= 0) p->cfg.delay_max = 0.05;
  p->rng = cfg->seed;
  atomic_init(&p->faults_on, 1);
  atomic_init(&p->stopping, 0);
  pthread_mutex_init(&p->mu, NULL);
  /* close-on-exec everywhere: the test restarts servers with system(),
   * and a server that inherited a proxied socket would keep it open */
  p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (p->lfd < 0 || pipe2(p->wake, O_CLOEXEC) != 0) goto fail;
  int one = 1;
  setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(p->lfd, (struct sockaddr *)&a, sizeof a) || listen(p->lfd, 128) ||
      getsockname(p->lfd, (struct sockaddr *)&a, &al))
    goto fail;
  p->port = ntohs(a.sin_port);
  if (pthread_create(&p->accept_thread, NULL, accept_main, p) != 0) goto fail;
  *out = p;
  return 0;
fail:
  if (p->lfd >= 0) close(p->lfd);
  free(p);
  return -1;
}

int fp_port(const fp_proxy *p) { return p->port; }

void fp_set_faults(fp_proxy *p, int on) { atomic_store(&p->faults_on, on ? 1 : 0); }

void fp_arm_reply_loss(fp_proxy *p, const char *pattern) { fp_arm(p, pattern, FP_REPLY_LOSS); }

void fp_arm(fp_proxy *p, const char *pattern, int kind) {
  pthread_mutex_lock(&p->mu);
  p->armed_kind = kind;
  size_t n = strlen(pattern);
  if (n >= sizeof p->pattern) n = sizeof p->pattern - 1;
  memcpy(p->pattern, pattern, n);
  p->pattern[n] = '\0';
  p->loss_fired = 0;
  pthread_mutex_unlock(&p->mu);
}

int fp_reply_loss_fired(fp_proxy *p) {
  pthread_mutex_lock(&p->mu);
  int f = p->loss_fired;
  pthread_mutex_unlock(&p->mu);
  return f;
}

void fp_reset_all(fp_proxy *p) {
  pthread_mutex_lock(&p->mu);
  for (fp_conn *c = p->conns; c; c = c->next) atomic_store(&c->kill, 1);
  pthread_mutex_unlock(&p->mu);
}

void fp_stats_get(fp_proxy *p, fp_stats *st) {
  pthread_mutex_lock(&p->mu);
  *st = p->st;
  pthread_mutex_unlock(&p->mu);
}

void fp_stop(fp_proxy *p) {
  if (!p) return;
  atomic_store(&p->stopping, 1);
  if (write(p->wake[1], "x", 1) < 0) {
    /* the accept loop also wakes every 200 ms */
  }
  pthread_join(p->accept_thread, NULL);
  close(p->lfd);
  reap(p, 1);
  close(p->wake[0]);
  close(p->wake[1]);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
