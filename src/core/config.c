/*
 * config.c - connection configuration: URL parsing, named options,
 * defaults, copy and comparison (named pools compare configs).
 *
 * One vocabulary for every dialect: a URL query parameter and a Lua
 * connect-table key go through the same sq_config_set, so `sslmode=require`
 * in a URL and `ssl = { mode = "require" }` in a table mean the same thing.
 */
#include "sqorm.h"
#include "internal.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sq_config_init(sq_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->pool.max = -1;
  cfg->pool.min = -1;
  cfg->pool.acquire_timeout = -1;
  cfg->pool.idle_timeout = -1;
  cfg->pool.max_lifetime = -1;
  cfg->pool.pre_ping = -1;
  cfg->pool.worker_nice = -1;
}

static void free_hosts(sq_config *cfg) {
  for (int i = 0; i < cfg->nhosts; i++) free(cfg->hosts[i].host);
  free(cfg->hosts);
  cfg->hosts = NULL;
  cfg->nhosts = 0;
}

void sq_config_free(sq_config *cfg) {
  if (!cfg) return;
  free(cfg->scheme);
  free(cfg->host);
  free(cfg->user);
  free(cfg->password);
  free(cfg->database);
  free(cfg->storage);
  free(cfg->name);
  free(cfg->ssl.ca);
  free(cfg->ssl.cert);
  free(cfg->ssl.key);
  free(cfg->ssl.min_version);
  for (int i = 0; i < cfg->nparams; i++) {
    free(cfg->params[i].key);
    free(cfg->params[i].value);
  }
  free(cfg->params);
  free_hosts(cfg);
  sq_config_init(cfg);
}

const char *sq_dialect_name(int dialect) {
  switch (dialect) {
  case SQ_DIALECT_SQLITE: return "sqlite";
  case SQ_DIALECT_MYSQL: return "mysql";
  case SQ_DIALECT_POSTGRES: return "postgres";
  default: return "none";
  }
}

/* Maps a scheme or dialect name onto a dialect; 0 when unknown. */
static int dialect_from_name(const char *s, size_t n) {
  static const struct { const char *name; int dialect; } names[] = {
    {"sqlite", SQ_DIALECT_SQLITE},   {"sqlite3", SQ_DIALECT_SQLITE},
    {"mysql", SQ_DIALECT_MYSQL},     {"mariadb", SQ_DIALECT_MYSQL},
    {"tidb", SQ_DIALECT_MYSQL},      {"postgres", SQ_DIALECT_POSTGRES},
    {"postgresql", SQ_DIALECT_POSTGRES},
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i].name) == n && strncasecmp(names[i].name, s, n) == 0) return names[i].dialect;
  return 0;
}

int sq_ssl_mode_parse(const char *s) {
  static const struct { const char *name; int mode; } modes[] = {
    {"disable", SQ_SSL_DISABLE},     {"disabled", SQ_SSL_DISABLE},
    {"false", SQ_SSL_DISABLE},       {"prefer", SQ_SSL_PREFER},
    {"preferred", SQ_SSL_PREFER},    {"allow", SQ_SSL_PREFER},
    {"require", SQ_SSL_REQUIRE},     {"required", SQ_SSL_REQUIRE},
    {"true", SQ_SSL_REQUIRE},        {"verify_ca", SQ_SSL_VERIFY_CA},
    {"verify-ca", SQ_SSL_VERIFY_CA}, {"verify_identity", SQ_SSL_VERIFY_IDENTITY},
    {"verify-full", SQ_SSL_VERIFY_IDENTITY}, {"verify_full", SQ_SSL_VERIFY_IDENTITY},
    {"verify-identity", SQ_SSL_VERIFY_IDENTITY},
  };
  if (!s) return -1;
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
    if (strcasecmp(modes[i].name, s) == 0) return modes[i].mode;
  return -1;
}

static int set_str(char **dst, const char *v, sq_err *err) {
  char *c = sq_strdup(v);
  if (v && !c) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  free(*dst);
  *dst = c;
  return SQ_OK;
}

/* Parses a non-negative number of seconds. */
static int parse_seconds(const char *key, const char *v, double *out, sq_err *err) {
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (errno || end == v || *end || !(d >= 0) || d > 1e9)
    return sq_err_set(err, SQ_EUSAGE, "option '%s' must be a non-negative number of seconds, got '%s'", key, v);
  *out = d;
  return SQ_OK;
}

static int parse_int(const char *key, const char *v, long lo, long hi, int *out, sq_err *err) {
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno || end == v || *end || n < lo || n > hi)
    return sq_err_set(err, SQ_EUSAGE, "option '%s' must be an integer from %ld to %ld, got '%s'", key, lo, hi, v);
  *out = (int)n;
  return SQ_OK;
}

static int parse_bool(const char *key, const char *v, int *out, sq_err *err) {
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) *out = 1;
  else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) *out = 0;
  else return sq_err_set(err, SQ_EUSAGE, "option '%s' must be true or false, got '%s'", key, v);
  return SQ_OK;
}

static int add_param(sq_config *cfg, const char *key, const char *value, sq_err *err) {
  for (int i = 0; i < cfg->nparams; i++)
    if (!strcmp(cfg->params[i].key, key)) return set_str(&cfg->params[i].value, value, err);
  sq_param *np = realloc(cfg->params, sizeof *np * (size_t)(cfg->nparams + 1));
  if (!np) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  cfg->params = np;
  np[cfg->nparams].key = sq_strdup(key);
  np[cfg->nparams].value = sq_strdup(value);
  if (!np[cfg->nparams].key || !np[cfg->nparams].value) {
    free(np[cfg->nparams].key);
    free(np[cfg->nparams].value);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  cfg->nparams++;
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Host lists                                                           */
/* ------------------------------------------------------------------ */

#define SQ_MAX_HOSTS 32

/* Reads one entry of a host list, s[0..n): "host", "host:port",
 * "[v6]", "[v6]:port", or a bare IPv6 address (two colons or more, no
 * port). With decode (a URL), the host is percent-decoded. The message
 * of an error shows `shown` (a redacted URL) when given, else the entry
 * (which can hold no secret: it is a host list). */
static int parse_host_entry(const char *s, size_t n, int decode, const char *shown, sq_host *out, sq_err *err);

/* Replaces cfg's hosts with the comma-separated list s[0..n). One entry
 * is stored as host / port (nhosts 0). */
static int set_hosts(sq_config *cfg, const char *s, size_t n, int decode, const char *shown, sq_err *err) {
  int count = 1;
  for (size_t i = 0; i < n; i++) count += s[i] == ',';
  if (count > SQ_MAX_HOSTS)
    return sq_err_set(err, SQ_EUSAGE, "too many hosts (%d, at most %d)", count, SQ_MAX_HOSTS);
  sq_host *list = calloc((size_t)count, sizeof *list);
  if (!list) return sq_err_set(err, SQ_ENOMEM, "out of memory");
  int k = 0, rc = SQ_OK;
  for (size_t start = 0; k < count && rc == SQ_OK; k++) {
    const char *comma = memchr(s + start, ',', n - start);
    size_t end = comma ? (size_t)(comma - s) : n;
    rc = parse_host_entry(s + start, end - start, decode, shown, &list[k], err);
    start = end + 1;
  }
  if (rc != SQ_OK) {
    for (int i = 0; i < count; i++) free(list[i].host);
    free(list);
    return rc;
  }
  char *first = sq_strdup(list[0].host);
  if (!first) {
    for (int i = 0; i < count; i++) free(list[i].host);
    free(list);
    return sq_err_set(err, SQ_ENOMEM, "out of memory");
  }
  free_hosts(cfg);
  free(cfg->host);
  cfg->host = first;
  if (count == 1) {
    if (list[0].port) cfg->port = list[0].port;
    free(list[0].host);
    free(list);
    return SQ_OK;
  }
  cfg->hosts = list;
  cfg->nhosts = count;
  return SQ_OK;
}

int sq_config_set(sq_config *cfg, const char *key, const char *v, sq_err *err) {
  if (!key || !v) return sq_err_set(err, SQ_EUSAGE, "option name and value must be given");
  if (!strcmp(key, "dialect")) {
    int d = dialect_from_name(v, strlen(v));
    if (!d) return sq_err_set(err, SQ_EUSAGE, "unknown dialect '%s' (expected sqlite, mysql, mariadb, tidb, postgres or postgresql)", v);
    cfg->dialect = d;
    return set_str(&cfg->scheme, v, err);
  }
  if (!strcmp(key, "host") || !strcmp(key, "hostname")) {
    if (strchr(v, ',')) return set_hosts(cfg, v, strlen(v), 0, NULL, err);
    free_hosts(cfg);
    return set_str(&cfg->host, v, err);
  }
  if (!strcmp(key, "hosts")) return set_hosts(cfg, v, strlen(v), 0, NULL, err);
  if (!strcmp(key, "host_backoff")) {
    double d;
    if (parse_seconds(key, v, &d, err)) return err->kind;
    if (!(d > 0)) return sq_err_set(err, SQ_EUSAGE, "option 'host_backoff' must be a positive number of seconds");
    cfg->host_backoff = d;
    return SQ_OK;
  }
  if (!strcmp(key, "prepare") || !strcmp(key, "pgbouncer")) {
    int b;
    if (parse_bool(key, v, &b, err)) return err->kind;
    if (key[0] == 'p' && key[1] == 'r') cfg->prepare = b ? SQ_PREPARE_ON : SQ_PREPARE_OFF;
    else cfg->pgbouncer = b;
    return SQ_OK;
  }
  if (!strcmp(key, "port")) return parse_int(key, v, 1, 65535, &cfg->port, err);
  if (!strcmp(key, "user") || !strcmp(key, "username")) return set_str(&cfg->user, v, err);
  if (!strcmp(key, "password")) return set_str(&cfg->password, v, err);
  if (!strcmp(key, "database") || !strcmp(key, "dbname")) return set_str(&cfg->database, v, err);
  if (!strcmp(key, "storage")) return set_str(&cfg->storage, v, err);
  if (!strcmp(key, "name")) return set_str(&cfg->name, v, err);
  if (!strcmp(key, "connect_timeout")) return parse_seconds(key, v, &cfg->connect_timeout, err);
  if (!strcmp(key, "ssl.mode") || !strcmp(key, "sslmode") || !strcmp(key, "ssl_mode") ||
      !strcmp(key, "ssl-mode") || !strcmp(key, "ssl")) {
    int m = sq_ssl_mode_parse(v);
    if (m < 0)
      return sq_err_set(err, SQ_EUSAGE, "unknown ssl mode '%s' (expected disable, prefer, require, verify_ca or verify_identity)", v);
    cfg->ssl.mode = m;
    return SQ_OK;
  }
  if (!strcmp(key, "ssl.ca") || !strcmp(key, "sslrootcert") || !strcmp(key, "ssl_ca") || !strcmp(key, "ssl-ca"))
    return set_str(&cfg->ssl.ca, v, err);
  if (!strcmp(key, "ssl.cert") || !strcmp(key, "sslcert") || !strcmp(key, "ssl_cert") || !strcmp(key, "ssl-cert"))
    return set_str(&cfg->ssl.cert, v, err);
  if (!strcmp(key, "ssl.key") || !strcmp(key, "sslkey") || !strcmp(key, "ssl_key") || !strcmp(key, "ssl-key"))
    return set_str(&cfg->ssl.key, v, err);
  if (!strcmp(key, "ssl.min_version") || !strcmp(key, "ssl_min_protocol_version") ||
      !strcmp(key, "ssl_min_version") || !strcmp(key, "tls_version")) {
    if (strcmp(v, "TLSv1.2") && strcmp(v, "TLSv1.3"))
      return sq_err_set(err, SQ_EUSAGE, "unsupported ssl min_version '%s' (expected TLSv1.2 or TLSv1.3)", v);
    return set_str(&cfg->ssl.min_version, v, err);
  }
  if (!strcmp(key, "pool.max")) return parse_int(key, v, 1, 100000, &cfg->pool.max, err);
  if (!strcmp(key, "pool.min")) return parse_int(key, v, 0, 100000, &cfg->pool.min, err);
  if (!strcmp(key, "pool.acquire_timeout")) return parse_seconds(key, v, &cfg->pool.acquire_timeout, err);
  if (!strcmp(key, "pool.idle_timeout")) return parse_seconds(key, v, &cfg->pool.idle_timeout, err);
  if (!strcmp(key, "pool.max_lifetime")) return parse_seconds(key, v, &cfg->pool.max_lifetime, err);
  if (!strcmp(key, "pool.pre_ping")) return parse_bool(key, v, &cfg->pool.pre_ping, err);
  if (!strcmp(key, "pool.worker_nice")) return parse_int(key, v, 0, 19, &cfg->pool.worker_nice, err);
  /* Anything else is a client-library parameter; the driver checks it
   * when the dialect is known (sq_config_finish). */
  if (strchr(key, '.') || !*key)
    return sq_err_set(err, SQ_EUSAGE, "unknown option '%s'", key);
  return add_param(cfg, key, v, err);
}

/* ------------------------------------------------------------------ */
/* Secrets                                                              */
/* ------------------------------------------------------------------ */

/* A query or connect parameter whose value is a secret (password=,
 * sslpassword=, ...). */
static int secret_key(const char *k, size_t n) {
  static const char *const words[] = {"pass", "pwd", "secret", "token"};
  for (size_t w = 0; w < sizeof words / sizeof *words; w++) {
    size_t wn = strlen(words[w]);
    for (size_t i = 0; i + wn <= n; i++)
      if (!strncasecmp(k + i, words[w], wn)) return 1;
  }
  return 0;
}

static int scheme_char(char c) { return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.'; }

/*
 * Copies url into out with every place a password can hide replaced by
 * "***": the password of the userinfo (everything from the first ':' up
 * to the last '@', counted from after "scheme://", or from the start
 * when the URL is too broken to have one), the second half of a
 * "name:word" authority that has no '@' and whose word is not a port,
 * and the values of secret query parameters. Works on malformed URLs
 * (it is what their error messages show); may hide more than needed,
 * never less. Truncates to n - 1 bytes, ending in "..." when it had to.
 */
void sq_url_redact(const char *url, char *out, size_t n) {
  if (!out || !n) return;
  out[0] = '\0';
  if (!url) return;
  size_t len = strlen(url), o = 0;
  const char *start = url;
  const char *sep = strstr(url, "://");
  if (sep && sep > url) {
    const char *p = url;
    while (p < sep && scheme_char(*p)) p++;
    if (p == sep) start = sep + 3;
  }
  const char *at = NULL;
  for (const char *p = start; *p; p++)
    if (*p == '@') at = p;
  /* [hide_from, hide_to): the password part */
  const char *hide_from = NULL, *hide_to = NULL;
  if (at) {
    const char *pc = memchr(start, ':', (size_t)(at - start));
    if (pc) hide_from = pc + 1, hide_to = at;
  } else if (start != url) { /* an authority with no '@': "host:port", or "user:password" */
    const char *end = start + strcspn(start, "/?#");
    const char *pc = memchr(start, ':', (size_t)(end - start));
    if (pc && *start != '[') {
      const char *last = pc;
      for (const char *p = pc; p < end; p++)
        if (*p == ':') last = p;
      int digits = last + 1 < end;
      for (const char *p = last + 1; p < end && digits; p++)
        if (!isdigit((unsigned char)*p) && *p != ',') digits = 0;
      /* "h1:3306,h2:3306" is hosts and ports; "u:word" may be a password */
      if (!digits && !memchr(pc + 1, ',', (size_t)(end - pc - 1))) hide_from = pc + 1, hide_to = end;
    }
  }
  const char *q = strchr(hide_to ? hide_to : start, '?');
#define PUT(c)                          \
  do {                                  \
    if (o + 1 < n) out[o++] = (c);      \
  } while (0)
  for (const char *p = url; p < url + len;) {
    if (p == hide_from && hide_to > hide_from) {
      for (const char *s = "***"; *s; s++) PUT(*s);
      p = hide_to;
      continue;
    }
    if (q && p > q && (p[-1] == '?' || p[-1] == '&' || p[-1] == ';')) {
      size_t seg = strcspn(p, "&;");
      const char *eq = memchr(p, '=', seg);
      if (eq && secret_key(p, (size_t)(eq - p))) {
        for (; p <= eq; p++) PUT(*p);
        for (const char *s = "***"; *s; s++) PUT(*s);
        p += strcspn(p, "&;");
        continue;
      }
      if (!eq && seg) { /* no key=value: who knows what it is */
        for (const char *s = "***"; *s; s++) PUT(*s);
        p += seg;
        continue;
      }
    }
    PUT(*p);
    p++;
  }
#undef PUT
  out[o] = '\0';
  if (o + 1 >= n && n > 4) memcpy(out + n - 4, "...", 4);
}

/* Replaces whole occurrences of secret in msg with "***". A secret of
 * fewer than 4 bytes is replaced only where it stands alone (not inside
 * a longer word), so a one-letter password doesn't mangle the message. */
static void scrub(char *msg, size_t cap, const char *secret) {
  size_t sn = secret ? strlen(secret) : 0;
  if (!sn || !cap || !strstr(msg, secret)) return;
  char *out = malloc(cap);
  if (!out) { /* can't rewrite: drop the message rather than show the secret */
    snprintf(msg, cap, "(message withheld: it held a password)");
    return;
  }
  size_t o = 0;
  for (const char *p = msg; *p && o + 1 < cap;) {
    if (!strncmp(p, secret, sn)) {
      int alone = (p == msg || !isalnum((unsigned char)p[-1])) && !isalnum((unsigned char)p[sn]);
      if (sn >= 4 || alone) {
        for (const char *r = "***"; *r && o + 1 < cap; r++) out[o++] = *r;
        p += sn;
        continue;
      }
    }
    out[o++] = *p++;
  }
  out[o] = '\0';
  memcpy(msg, out, o + 1);
  free(out);
}

/* A safety net for messages a client library wrote (a connect error may
 * echo what it was given): every occurrence of cfg's password and of the
 * values of its secret extra parameters becomes "***". */
void sq_config_redact(const sq_config *cfg, sq_err *err) {
  if (!cfg || !err) return;
  scrub(err->msg, sizeof err->msg, cfg->password);
  for (int i = 0; i < cfg->nparams; i++)
    if (cfg->params[i].key && secret_key(cfg->params[i].key, strlen(cfg->params[i].key)))
      scrub(err->msg, sizeof err->msg, cfg->params[i].value);
}

/* What a URL's error messages show of it: sq_url_redact's copy, cut at
 * 200 bytes. */
typedef struct shown_url {
  char s[208];
} shown_url;

/* Decodes %XX escapes (and '+' as space in query strings) into a new
 * string; NULL with err set on a malformed escape or embedded NUL. The
 * message names the part (`what`) and shows the redacted URL, never the
 * undecoded text, which may be a password. */
static char *pct_decode(const char *s, size_t n, int plus_space, const char *what, const shown_url *u,
                        sq_err *err) {
  char *out = malloc(n + 1);
  if (!out) {
    sq_err_set(err, SQ_ENOMEM, "out of memory");
    return NULL;
  }
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2])) goto bad;
      char hex[3] = {s[i + 1], s[i + 2], 0};
      c = (unsigned char)strtol(hex, NULL, 16);
      if (c == 0) goto bad;
      i += 2;
    } else if (c == '+' && plus_space) {
      c = ' ';
    }
    out[j++] = (char)c;
  }
  out[j] = '\0';
  return out;
bad:
  free(out);
  sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': bad percent-escape in %s (use %%XX with two hex digits, not %%00)",
             u->s, what);
  return NULL;
}

/* Parses the query string "a=b&c=d" through sq_config_set. A value is
 * never shown in a message when its key names a secret. */
static int parse_query(sq_config *cfg, const char *q, const shown_url *u, sq_err *err) {
  while (*q) {
    const char *amp = strchr(q, '&');
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    if (n) {
      const char *eq = memchr(q, '=', n);
      if (!eq) /* not shown: it may be anything, a password pasted in the wrong place included */
        return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': a query parameter has no value (expected key=value)",
                          u->s);
      char *k = pct_decode(q, (size_t)(eq - q), 1, "a query parameter name", u, err);
      if (!k) return err->kind;
      char what[96];
      snprintf(what, sizeof what, "the value of query parameter '%.64s'", k);
      char *v = pct_decode(eq + 1, n - (size_t)(eq - q) - 1, 1, what, u, err);
      if (!v) {
        free(k);
        return err->kind;
      }
      int rc = sq_config_set(cfg, k, v, err);
      if (rc && secret_key(k, strlen(k)))
        rc = sq_err_set(err, rc, "malformed URL '%s': bad value for query parameter '%.64s'", u->s, k);
      free(k);
      free(v);
      if (rc) return rc;
    }
    q += n;
    if (*q == '&') q++;
  }
  return SQ_OK;
}

/* Keeps `part` (not NUL-terminated) decoded in *dst. */
static int take(char **dst, const char *part, size_t n, const char *what, const shown_url *u, sq_err *err) {
  char *d = pct_decode(part, n, 0, what, u, err);
  if (!d) return err->kind;
  free(*dst);
  *dst = d;
  return SQ_OK;
}

static int parse_host_entry(const char *s, size_t n, int decode, const char *shown, sq_host *out, sq_err *err) {
  char what[260];
  if (shown) snprintf(what, sizeof what, "URL '%.200s'", shown);
  else snprintf(what, sizeof what, "host list entry '%.*s'", (int)(n > 64 ? 64 : n), s);
  out->host = NULL;
  out->port = 0;
  const char *h = s, *hend = s + n, *portp = NULL;
  if (n && *s == '[') {
    const char *rb = memchr(s, ']', n);
    if (!rb) return sq_err_set(err, SQ_EUSAGE, "malformed %s: unterminated [ in a host", what);
    h = s + 1;
    hend = rb;
    if (rb + 1 < s + n) {
      if (rb[1] != ':') return sq_err_set(err, SQ_EUSAGE, "malformed %s: junk after ]", what);
      portp = rb + 2;
    }
  } else {
    const char *c1 = memchr(s, ':', n);
    if (c1 && !memchr(c1 + 1, ':', (size_t)(s + n - c1 - 1))) { /* one colon: host:port */
      hend = c1;
      portp = c1 + 1;
    } /* none: a name; two or more: a bare IPv6 address */
  }
  if (hend == h) return sq_err_set(err, SQ_EUSAGE, "malformed %s: empty host in a host list", what);
  if (portp) {
    long port = 0;
    if (portp == s + n) return sq_err_set(err, SQ_EUSAGE, "malformed %s: empty port", what);
    for (const char *p = portp; p < s + n; p++) {
      if (!isdigit((unsigned char)*p) || port > 65535)
        return sq_err_set(err, SQ_EUSAGE, "malformed %s: port must be a number from 1 to 65535", what);
      port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
      return sq_err_set(err, SQ_EUSAGE, "malformed %s: port must be a number from 1 to 65535", what);
    out->port = (int)port;
  }
  if (decode) {
    shown_url u;
    snprintf(u.s, sizeof u.s, "%s", shown ? shown : "");
    out->host = pct_decode(h, (size_t)(hend - h), 0, "a host", &u, err);
    if (!out->host) return err->kind;
  } else {
    out->host = malloc((size_t)(hend - h) + 1);
    if (!out->host) return sq_err_set(err, SQ_ENOMEM, "out of memory");
    memcpy(out->host, h, (size_t)(hend - h));
    out->host[hend - h] = '\0';
  }
  return SQ_OK;
}

/*
 * URL forms:
 *   sqlite::memory:   sqlite:relative/path.db   sqlite:///absolute/path.db
 *   sqlite://relative/path.db (as Sequelize writes it)
 *   mysql://user:pass@host:port/db?k=v   (mariadb://, tidb:// port 4000)
 *   postgres://user:pass@host:port/db?sslmode=require   (postgresql://)
 * No message shows the password: they show the URL as sq_url_redact
 * writes it, and never a decoded part of the userinfo.
 */
int sq_config_parse_url(sq_config *cfg, const char *url, sq_err *err) {
  if (!url || !*url) return sq_err_set(err, SQ_EUSAGE, "malformed URL: empty string");
  if (strlen(url) > 8192) return sq_err_set(err, SQ_EUSAGE, "malformed URL: longer than 8192 bytes");
  shown_url u;
  sq_url_redact(url, u.s, 204);
  const char *colon = strchr(url, ':');
  if (!colon || colon == url)
    return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': expected scheme:..., e.g. sqlite::memory: or postgres://host/db", u.s);
  for (const char *p = url; p < colon; p++)
    if (!scheme_char(*p)) return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': bad scheme", u.s);
  int d = dialect_from_name(url, (size_t)(colon - url));
  if (!d)
    return sq_err_set(err, SQ_EUSAGE, "unknown URL scheme '%.*s' (expected sqlite, mysql, mariadb, tidb, postgres or postgresql)",
                      (int)(colon - url > 64 ? 64 : colon - url), url);
  cfg->dialect = d;
  if (take(&cfg->scheme, url, (size_t)(colon - url), "the scheme", &u, err)) return err->kind;
  for (char *p = cfg->scheme; *p; p++) *p = (char)tolower((unsigned char)*p);
  const char *rest = colon + 1;

  if (d == SQ_DIALECT_SQLITE) {
    /* The path runs to '?' (query parameters like mode=ro follow). */
    const char *path = rest;
    if (!strncmp(path, "//", 2)) path += 2; /* sqlite:///abs -> /abs ; sqlite://rel -> rel */
    const char *q = strchr(path, '?');
    size_t n = q ? (size_t)(q - path) : strlen(path);
    if (n == 0) return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': no database path (use sqlite::memory: for memory)", u.s);
    /* An '@' in the query means "user:password@..." ran into it (a '?'
     * before the '@'): its pieces would land in option names and values,
     * which messages show. No sqlite option holds one. */
    if (q && strchr(q, '@'))
      return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': '@' in the query; percent-encode it (%%40)", u.s);
    if (take(&cfg->storage, path, n, "the path", &u, err)) return err->kind;
    return q ? parse_query(cfg, q + 1, &u, err) : SQ_OK;
  }

  if (strncmp(rest, "//", 2))
    return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': expected %s://[user[:password]@]host[:port]/database", u.s,
                      cfg->scheme);
  rest += 2;
  const char *end = rest + strcspn(rest, "/?");
  /* An '@' past the host means a password holding '/' or '?' unescaped:
   * read as is, its pieces would land in the host, port, database or
   * query (and in their error messages). */
  if (strchr(end, '@'))
    return sq_err_set(err, SQ_EUSAGE,
                      "malformed URL '%s': '@' after the host; percent-encode '/' (%%2F) and '?' (%%3F) in a "
                      "password, and '@' (%%40) in the database name or query",
                      u.s);
  const char *at = NULL;
  for (const char *p = rest; p < end; p++)
    if (*p == '@') at = p; /* the last '@' ends the userinfo (passwords may hold '@' unescaped) */
  const char *hostp = rest;
  if (at) {
    const char *pc = memchr(rest, ':', (size_t)(at - rest));
    if (take(&cfg->user, rest, (size_t)((pc ? pc : at) - rest), "the user name", &u, err)) return err->kind;
    if (pc && take(&cfg->password, pc + 1, (size_t)(at - pc - 1), "the password", &u, err)) return err->kind;
    hostp = at + 1;
  }
  free_hosts(cfg);
  const char *portp = NULL, *hend = end;
  if (memchr(hostp, ',', (size_t)(end - hostp))) {
    /* several hosts: "h1:3306,h2:3306,[::1]:3307" */
    if (set_hosts(cfg, hostp, (size_t)(end - hostp), 1, u.s, err)) return err->kind;
  } else if (*hostp == '[') {
    const char *rb = memchr(hostp, ']', (size_t)(end - hostp));
    if (!rb) return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': unterminated [ in host", u.s);
    if (take(&cfg->host, hostp + 1, (size_t)(rb - hostp - 1), "the host", &u, err)) return err->kind;
    if (rb + 1 < end) {
      if (rb[1] != ':') return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': junk after ]", u.s);
      portp = rb + 2;
    }
  } else {
    const char *pc = memchr(hostp, ':', (size_t)(end - hostp));
    if (pc) {
      portp = pc + 1;
      hend = pc;
    }
    if (hend > hostp && take(&cfg->host, hostp, (size_t)(hend - hostp), "the host", &u, err)) return err->kind;
  }
  if (portp) {
    if (portp == end) return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': empty port", u.s);
    long port = 0;
    for (const char *p = portp; p < end; p++) {
      if (!isdigit((unsigned char)*p) || port > 65535)
        return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': port must be a number from 1 to 65535", u.s);
      port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
      return sq_err_set(err, SQ_EUSAGE, "malformed URL '%s': port must be a number from 1 to 65535", u.s);
    cfg->port = (int)port;
  }
  const char *q = NULL;
  if (*end == '/') {
    const char *db = end + 1;
    q = strchr(db, '?');
    size_t n = q ? (size_t)(q - db) : strlen(db);
    if (n && take(&cfg->database, db, n, "the database name", &u, err)) return err->kind;
  } else if (*end == '?') {
    q = end;
  }
  return q ? parse_query(cfg, q + 1, &u, err) : SQ_OK;
}

/* "-pooler." anywhere in a host name, ignoring case (Neon names its
 * pooled endpoints ep-<name>-pooler.<region>.aws.neon.tech). */
static int pooler_host(const char *h) {
  static const char tag[] = "-pooler.";
  size_t n = sizeof tag - 1;
  for (const char *p = h; p && *p; p++)
    if (!strncasecmp(p, tag, n)) return 1;
  return 0;
}

int sq_config_pooler_mode(const sq_config *cfg) {
  if (!cfg || cfg->dialect != SQ_DIALECT_POSTGRES) return 0;
  if (cfg->prepare) return cfg->prepare == SQ_PREPARE_OFF;
  if (cfg->pgbouncer) return 1;
  if (pooler_host(cfg->host)) return 1;
  for (int i = 0; i < cfg->nhosts; i++)
    if (pooler_host(cfg->hosts[i].host)) return 1;
  return 0;
}

int sq_config_finish(sq_config *cfg, sq_err *err) {
  if (!cfg->dialect) return sq_err_set(err, SQ_EUSAGE, "no dialect given (use a URL or dialect = \"sqlite\"|\"mysql\"|\"postgres\")");
  if (cfg->dialect == SQ_DIALECT_SQLITE) {
    if (!cfg->storage && set_str(&cfg->storage, ":memory:", err)) return err->kind;
    for (int i = 0; i < cfg->nparams; i++)
      if (strcmp(cfg->params[i].key, "mode") && strcmp(cfg->params[i].key, "cache"))
        return sq_err_set(err, SQ_EUSAGE, "unknown option '%s' for sqlite", cfg->params[i].key);
  } else {
    if (!cfg->host && set_str(&cfg->host, "localhost", err)) return err->kind;
    if (!cfg->port) {
      if (cfg->dialect == SQ_DIALECT_POSTGRES) cfg->port = 5432;
      else cfg->port = (cfg->scheme && !strcmp(cfg->scheme, "tidb")) ? 4000 : 3306;
    }
    if (cfg->dialect == SQ_DIALECT_MYSQL && cfg->nparams)
      return sq_err_set(err, SQ_EUSAGE, "unknown option '%s' for mysql", cfg->params[0].key);
    /* every host gets its port; host / port mirror the first */
    for (int i = 0; i < cfg->nhosts; i++)
      if (!cfg->hosts[i].port) cfg->hosts[i].port = cfg->port;
    if (cfg->nhosts) {
      if (set_str(&cfg->host, cfg->hosts[0].host, err)) return err->kind;
      cfg->port = cfg->hosts[0].port;
    }
  }
  if (cfg->dialect == SQ_DIALECT_SQLITE && cfg->nhosts)
    return sq_err_set(err, SQ_EUSAGE, "option 'hosts' is not for sqlite");
  if (cfg->dialect != SQ_DIALECT_POSTGRES && (cfg->prepare || cfg->pgbouncer))
    return sq_err_set(err, SQ_EUSAGE, "option '%s' is for postgres only (pooler mode)",
                      cfg->prepare ? "prepare" : "pgbouncer");
  if (cfg->dialect == SQ_DIALECT_POSTGRES && !cfg->prepare)
    cfg->prepare = sq_config_pooler_mode(cfg) ? SQ_PREPARE_OFF : SQ_PREPARE_ON;
  if (!(cfg->host_backoff > 0)) cfg->host_backoff = SQ_HOST_BACKOFF_DEFAULT;
  /* A CA with no mode means the user wants the server verified. */
  if (cfg->ssl.mode == SQ_SSL_DEFAULT && cfg->ssl.ca) cfg->ssl.mode = SQ_SSL_VERIFY_CA;
  if (cfg->pool.max < 0) cfg->pool.max = 5;
  if (cfg->pool.min < 0) cfg->pool.min = 0;
  if (cfg->pool.min > cfg->pool.max)
    return sq_err_set(err, SQ_EUSAGE, "pool.min (%d) is larger than pool.max (%d)", cfg->pool.min, cfg->pool.max);
  if (cfg->pool.acquire_timeout < 0) cfg->pool.acquire_timeout = 30;
  if (cfg->pool.idle_timeout < 0) cfg->pool.idle_timeout = 10;
  if (cfg->pool.max_lifetime < 0) cfg->pool.max_lifetime = 0;
  if (cfg->pool.pre_ping < 0) cfg->pool.pre_ping = 0;
  /* pool.worker_nice stays -1 when not given: the default is best effort
   * (sq_pool_opts), a given value is checked at pool open */
  if (cfg->dialect == SQ_DIALECT_SQLITE && !strcmp(cfg->storage, ":memory:")) {
    /* Every connection to :memory: is a separate database: one is all. */
    cfg->pool.max = 1;
    if (cfg->pool.min > 1) cfg->pool.min = 1;
  }
  return SQ_OK;
}

#define DUP(f)                                                  \
  do {                                                          \
    if (src->f && !(dst->f = sq_strdup(src->f))) goto nomem;    \
  } while (0)

int sq_config_copy(sq_config *dst, const sq_config *src) {
  sq_config_init(dst);
  dst->dialect = src->dialect;
  dst->port = src->port;
  dst->connect_timeout = src->connect_timeout;
  dst->ssl.mode = src->ssl.mode;
  dst->pool = src->pool;
  dst->host_backoff = src->host_backoff;
  dst->prepare = src->prepare;
  dst->pgbouncer = src->pgbouncer;
  DUP(scheme); DUP(host); DUP(user); DUP(password); DUP(database); DUP(storage); DUP(name);
  DUP(ssl.ca); DUP(ssl.cert); DUP(ssl.key); DUP(ssl.min_version);
  if (src->nparams) {
    dst->params = calloc((size_t)src->nparams, sizeof *dst->params);
    if (!dst->params) goto nomem;
    for (int i = 0; i < src->nparams; i++) {
      dst->nparams = i + 1;
      DUP(params[i].key);
      DUP(params[i].value);
    }
  }
  if (src->nhosts) {
    dst->hosts = calloc((size_t)src->nhosts, sizeof *dst->hosts);
    if (!dst->hosts) goto nomem;
    for (int i = 0; i < src->nhosts; i++) {
      dst->nhosts = i + 1;
      dst->hosts[i].port = src->hosts[i].port;
      DUP(hosts[i].host);
    }
  }
  return SQ_OK;
nomem:
  sq_config_free(dst);
  return SQ_ENOMEM;
}

int sq_worker_nice(const sq_pool_opts *o) {
  if (o->worker_nice >= 0) return o->worker_nice;
#ifdef __linux__
  return SQ_WORKER_NICE_DEFAULT;
#else
  return 0;
#endif
}

static int streq(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

int sq_config_equal(const sq_config *a, const sq_config *b) {
  if (a->dialect != b->dialect || a->port != b->port || a->ssl.mode != b->ssl.mode ||
      a->connect_timeout != b->connect_timeout || a->nparams != b->nparams || a->nhosts != b->nhosts ||
      a->host_backoff != b->host_backoff || a->prepare != b->prepare || a->pgbouncer != b->pgbouncer)
    return 0;
  for (int i = 0; i < a->nhosts; i++) /* order matters: the first that answers is used */
    if (a->hosts[i].port != b->hosts[i].port || !streq(a->hosts[i].host, b->hosts[i].host)) return 0;
  if (a->pool.max != b->pool.max || a->pool.min != b->pool.min ||
      a->pool.acquire_timeout != b->pool.acquire_timeout || a->pool.idle_timeout != b->pool.idle_timeout ||
      a->pool.max_lifetime != b->pool.max_lifetime || a->pool.pre_ping != b->pool.pre_ping ||
      sq_worker_nice(&a->pool) != sq_worker_nice(&b->pool))
    return 0;
  if (!streq(a->host, b->host) || !streq(a->user, b->user) || !streq(a->password, b->password) ||
      !streq(a->database, b->database) || !streq(a->storage, b->storage) || !streq(a->name, b->name) ||
      !streq(a->ssl.ca, b->ssl.ca) || !streq(a->ssl.cert, b->ssl.cert) || !streq(a->ssl.key, b->ssl.key) ||
      !streq(a->ssl.min_version, b->ssl.min_version))
    return 0;
  /* Extra parameters are a set: keys are unique (add_param replaces), and
   * their order is whatever a Lua table's traversal gave, which differs
   * between states for the same options. */
  for (int i = 0; i < a->nparams; i++) {
    int found = 0;
    for (int j = 0; j < b->nparams && !found; j++)
      found = streq(a->params[i].key, b->params[j].key) && streq(a->params[i].value, b->params[j].value);
    if (!found) return 0;
  }
  return 1;
}
