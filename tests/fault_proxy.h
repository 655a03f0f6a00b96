/*
 * fault_proxy.h - a small TCP fault proxy for the live tests (issue 16,
 * "faults under load"). It listens on a loopback port and forwards every
 * connection to a target host:port, byte for byte (so it is transparent
 * to TLS too). Each accepted connection is given, at random from a
 * seeded generator (one stream per connection), a fault or none and a
 * trigger point (after 1..trigger_max forwarded reads, counting both
 * directions), so faults land anywhere in a session: in the handshake,
 * in a statement, in a COMMIT's reply. A connection that survives its
 * trigger (no fault, or a delay) is planned again for the next window,
 * so long-lived pooled connections keep meeting faults.
 *
 *   delay      from the trigger to the next one, every read is held
 *              0..delay_max seconds before it is forwarded (slow spells);
 *   truncate   the trigger read is forwarded in part (0..n-1 bytes), then
 *              both sides are closed (FIN);
 *   reset      both sides are closed with SO_LINGER 0 (RST), the trigger
 *              read is not forwarded;
 *   blackhole  nothing is forwarded any more and both sockets stay open,
 *              for blackhole_hold seconds (then reset), or until faults
 *              are turned off or the proxy stops (0: no hold limit).
 *
 * One-shot, deterministic: fp_arm_reply_loss(p, "COMMIT") makes the next
 * client read containing the bytes "COMMIT" go to the server, and the
 * connection is then reset before any byte of the reply reaches the
 * client: a commit whose outcome the client cannot know.
 *
 * A connection whose target refuses (the server is down) is reset at
 * once. Threads: one accepting, one per connection (poll on both
 * sockets). All functions are thread-safe.
 */
#ifndef SQORM_TESTS_FAULT_PROXY_H
#define SQORM_TESTS_FAULT_PROXY_H

enum { FP_NONE = 0, FP_DELAY, FP_TRUNCATE, FP_RESET, FP_BLACKHOLE, FP_REPLY_LOSS, FP_NKINDS };

typedef struct fp_config {
  const char *host;         /* target (numeric IPv4) */
  int port;
  unsigned long long seed;  /* the fault plan's random generator */
  double rate[FP_NKINDS];   /* per connection: probability of each fault (FP_DELAY..FP_BLACKHOLE) */
  int trigger_max;          /* the fault fires after 1..trigger_max reads (default 60) */
  double delay_max;         /* seconds (default 0.05) */
  double blackhole_hold;    /* seconds (0: until faults go off or the proxy stops) */
} fp_config;

typedef struct fp_stats {
  long long accepted;            /* connections accepted */
  long long refused;             /* of which the target refused (reset at once) */
  long long planned[FP_NKINDS];  /* windows planned with each fault (FP_NONE: none) */
  long long injected[FP_NKINDS]; /* faults that fired (a planned one may never fire) */
  long long bytes;               /* forwarded, both directions */
} fp_stats;

typedef struct fp_proxy fp_proxy;

/* Starts the proxy on 127.0.0.1, an ephemeral port (fp_port). 0 or -1. */
int fp_start(const fp_config *cfg, fp_proxy **out);
int fp_port(const fp_proxy *p);
/* Faults on (the initial state) or off: off, no planned fault fires,
 * delays end, black-holed connections are reset. */
void fp_set_faults(fp_proxy *p, int on);
/* See above; pattern is copied (up to 31 bytes); "" disarms. */
void fp_arm_reply_loss(fp_proxy *p, const char *pattern);
/* The same for kind FP_REPLY_LOSS; FP_BLACKHOLE: the client read
 * containing pattern is dropped and the connection black-holed (for
 * blackhole_hold seconds, or until faults go off). Faults off do not
 * disarm it; it fires even then. */
void fp_arm(fp_proxy *p, const char *pattern, int kind);
/* 1 once the armed fault has fired. */
int fp_reply_loss_fired(fp_proxy *p);
/* Resets every open connection (the faults in flight included). */
void fp_reset_all(fp_proxy *p);
void fp_stats_get(fp_proxy *p, fp_stats *st);
/* Closes the listener and every connection, joins the threads, frees. */
void fp_stop(fp_proxy *p);
const char *fp_kind_name(int kind);

#endif
