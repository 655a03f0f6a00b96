/*
 * test_pg_sni.c - the PostgreSQL driver sends the server name (TLS SNI),
 * which Neon's proxy routes by (issue 14). No database needed: a tiny
 * listener of the test's own answers PostgreSQL's SSLRequest with 'S',
 * reads the TLS ClientHello and records its server_name extension, then
 * hangs up (the connect then fails; only the hello matters).
 *
 *   - host name            -> sent (libpq sends none for an IP address)
 *   - a Neon pooler name   -> sent as is (hostaddr does the resolving)
 *   - PGSSLSNI=0 in the environment -> still sent: sqorm asks for it
 *   - two hosts, the first refusing -> the second one's name is sent
 *   - params.sslsni = 0 given by the caller -> not sent (the listener
 *     really reads the extension)
 *
 * Skipped (77) when the PostgreSQL driver is not built.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "sqorm.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                  \
  do {                                                                    \
    printf("%s - ", (cond) ? "ok" : "FAIL");                              \
    printf(__VA_ARGS__);                                                  \
    printf("\n");                                                         \
    if (!(cond)) failures++;                                              \
  } while (0)

typedef struct listener {
  int fd;
  int port;
  int got_hello;   /* a ClientHello arrived */
  int has_sni;     /* ... with a server_name */
  char sni[256];
} listener;

/* Reads exactly n bytes (10 s at most); 0 on success. */
static int read_full(int fd, unsigned char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return -1;
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }
static unsigned long be32(const unsigned char *p) {
  return (unsigned long)p[0] << 24 | (unsigned long)p[1] << 16 | (unsigned long)p[2] << 8 | p[3];
}

/* Finds the server_name extension in a ClientHello body. */
static void parse_hello(listener *l, const unsigned char *h, size_t n) {
  /* handshake header: type 1, 3-byte length */
  if (n < 4 || h[0] != 1) return;
  l->got_hello = 1;
  size_t p = 4 + 2 + 32; /* version, random */
  if (p + 1 > n) return;
  p += 1 + h[p]; /* session id */
  if (p + 2 > n) return;
  p += 2 + be16(h + p); /* cipher suites */
  if (p + 1 > n) return;
  p += 1 + h[p]; /* compression methods */
  if (p + 2 > n) return;
  size_t end = p + 2 + be16(h + p);
  p += 2;
  if (end > n) end = n;
  while (p + 4 <= end) {
    unsigned type = be16(h + p), len = be16(h + p + 2);
    const unsigned char *d = h + p + 4;
    if (p + 4 + len > end) return;
    if (type == 0 && len >= 5 && d[2] == 0) { /* server_name: list length, type host_name, name */
      unsigned nl = be16(d + 3);
      if (5 + nl <= len && nl < sizeof l->sni) {
        memcpy(l->sni, d + 5, nl);
        l->sni[nl] = '\0';
        l->has_sni = 1;
      }
    }
    p += 4 + len;
  }
}

/* Serves one connection: SSLRequest (GSSENCRequest is declined first,
 * should one come), 'S', then the ClientHello. */
static void *serve(void *arg) {
  listener *l = arg;
  struct pollfd p = {l->fd, POLLIN, 0};
  if (poll(&p, 1, 15000) <= 0) return NULL;
  int c = accept(l->fd, NULL, NULL);
  if (c < 0) return NULL;
  unsigned char req[8];
  for (int k = 0; k < 2; k++) {
    if (read_full(c, req, 8) || be32(req) != 8) goto out;
    unsigned long code = be32(req + 4);
    if (code == 80877104UL) { /* GSSENCRequest: no */
      if (write(c, "N", 1) != 1) goto out;
      continue;
    }
    if (code != 80877103UL) goto out; /* not an SSLRequest */
    if (write(c, "S", 1) != 1) goto out;
    break;
  }
  unsigned char rec[5];
  if (read_full(c, rec, 5) || rec[0] != 0x16) goto out; /* a handshake record */
  size_t len = be16(rec + 3);
  unsigned char *body = malloc(len);
  if (body && !read_full(c, body, len)) parse_hello(l, body, len);
  free(body);
out:
  close(c);
  return NULL;
}

static int listen_on(listener *l) {
  memset(l, 0, sizeof *l);
  l->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (l->fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (bind(l->fd, (struct sockaddr *)&a, sizeof a) || listen(l->fd, 4) ||
      getsockname(l->fd, (struct sockaddr *)&a, &al))
    return -1;
  l->port = ntohs(a.sin_port);
  return 0;
}

/* A loopback port nothing listens on. */
static int dead_port(void) {
  listener l;
  if (listen_on(&l)) return 1;
  close(l.fd);
  return l.port;
}

/* Connects through the driver with these settings while the listener
 * serves one connection; fills l with what the hello said. */
static void try_connect(listener *l, const char *hosts, int port, const char *const *params) {
  const sq_driver *D = sq_driver_for(SQ_DIALECT_POSTGRES);
  sq_config cfg;
  sq_err err;
  sq_config_init(&cfg);
  sq_config_set(&cfg, "dialect", "postgres", &err);
  sq_config_set(&cfg, "host", hosts, &err);
  char p[16];
  snprintf(p, sizeof p, "%d", port);
  sq_config_set(&cfg, "port", p, &err);
  sq_config_set(&cfg, "user", "sqorm", &err);
  sq_config_set(&cfg, "password", "s3cret", &err);
  sq_config_set(&cfg, "database", "neondb", &err);
  sq_config_set(&cfg, "sslmode", "require", &err);
  sq_config_set(&cfg, "connect_timeout", "5", &err);
  sq_config_set(&cfg, "gssencmode", "disable", &err);
  for (int i = 0; params && params[i]; i += 2) sq_config_set(&cfg, params[i], params[i + 1], &err);
  int rc = sq_config_finish(&cfg, &err);
  if (rc) printf("config: %s\n", err.msg);
  pthread_t t;
  pthread_create(&t, NULL, serve, l);
  sq_dconn *c = NULL;
  rc = rc ? rc : D->open(&cfg, &c, &err);
  if (c) D->close(c); /* not expected: the listener hangs up */
  pthread_join(t, NULL);
  CHECK(rc == SQ_ECONNECTION && !strstr(err.msg, "s3cret"), "the connect fails after the hello (%s)",
        rc ? err.msg : "connected?");
  sq_config_free(&cfg);
}

int main(void) {
  if (!sq_driver_for(SQ_DIALECT_POSTGRES)) {
    printf("skipped: the PostgreSQL driver is not built\n");
    return 77;
  }
  sq_err err;
  if (sq_global_init(&err)) return 1;
  listener l;

  if (listen_on(&l)) return 1;
  try_connect(&l, "localhost", l.port, NULL);
  CHECK(l.got_hello && l.has_sni && !strcmp(l.sni, "localhost"), "SNI sent for a host name: '%s'", l.sni);
  close(l.fd);

  static const char pooler[] = "ep-cool-darkness-123456-pooler.us-east-2.aws.neon.tech";
  const char *addr[] = {"hostaddr", "127.0.0.1", NULL};
  if (listen_on(&l)) return 1;
  try_connect(&l, pooler, l.port, addr);
  CHECK(l.has_sni && !strcmp(l.sni, pooler), "SNI is the Neon endpoint name: '%s'", l.sni);
  close(l.fd);

  setenv("PGSSLSNI", "0", 1); /* what would turn it off for plain libpq */
  if (listen_on(&l)) return 1;
  try_connect(&l, pooler, l.port, addr);
  CHECK(l.has_sni && !strcmp(l.sni, pooler), "SNI sent despite PGSSLSNI=0: '%s'", l.sni);
  close(l.fd);
  unsetenv("PGSSLSNI");

  if (listen_on(&l)) return 1;
  char hosts[128];
  snprintf(hosts, sizeof hosts, "first.example:%d,second-pooler.example:%d", dead_port(), l.port);
  const char *addr2[] = {"hostaddr", "127.0.0.1,127.0.0.1", NULL};
  try_connect(&l, hosts, 5432, addr2);
  CHECK(l.has_sni && !strcmp(l.sni, "second-pooler.example"),
        "multi-host: the first host refuses, the second gets its own name: '%s'", l.sni);
  close(l.fd);

  const char *off[] = {"hostaddr", "127.0.0.1", "sslsni", "0", NULL};
  if (listen_on(&l)) return 1;
  try_connect(&l, pooler, l.port, off);
  CHECK(l.got_hello && !l.has_sni, "params.sslsni = 0 from the caller is honoured (hello without SNI)");
  close(l.fd);

  printf("%d failed\n", failures);
  return failures ? 1 : 0;
}
