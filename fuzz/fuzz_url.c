/*
 * fuzz_url.c - connection URLs and options: sq_config_parse_url,
 * sq_config_set, sq_config_finish, sq_config_copy / sq_config_equal, and
 * the redaction of secrets (sq_url_redact, sq_config_redact).
 *
 * First input byte picks a mode:
 *   0  the rest is a URL as is
 *   1  a URL built around a canary password: scheme "://" user ":" PW "@"
 *      rest, where every piece comes from the input
 *   2  a list of sq_config_set(key, value) calls
 *
 * Invariants:
 *   - no crash, no leak; errors are kind usage with a message
 *   - the redaction invariant: a password (raw or percent-decoded) never
 *     survives in sq_url_redact's copy of the URL, in a parse error
 *     message, or in a message passed through sq_config_redact - unless
 *     the same bytes also appear elsewhere in the URL, where they are not
 *     the password
 *   - sq_url_redact always NUL-terminates within its buffer
 *   - a copy equals its original (both ways); the parse of a well-formed
 *     user:password gives that password back
 */
#include "fuzz.h"

#include <ctype.h>

static int fz_contains(const char *hay, size_t hn, const char *needle, size_t nn) {
  if (!nn || nn > hn) return 0;
  for (size_t i = 0; i + nn <= hn; i++)
    if (!memcmp(hay + i, needle, nn)) return 1;
  return 0;
}

/* Percent-decodes s ('+' as space too); invalid escapes are kept as is. */
static size_t pct(const char *s, size_t n, char *out) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n + 0 && isxdigit((unsigned char)s[i + 1]) && isxdigit((unsigned char)s[i + 2])) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      out[o++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else if (s[i] == '+') {
      out[o++] = ' ';
    } else {
      out[o++] = s[i];
    }
  }
  return o;
}

/* A secret we can look for: long enough to be unambiguous, free of the
 * bytes redaction itself writes ("***", "...") ... */
static int checkable(const char *pw, size_t n) {
  if (n < 4) return 0;
  int odd = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)pw[i];
    if (c == '*' || c == '.' || c == '\0') return 0;
    odd |= c < 0x20 || c >= 0x80;
  }
  /* ... and unlike any text of sqorm's own messages, which are printable
   * ASCII: it starts and ends with another byte, so where it shows, it
   * came from one interpolated piece, not from a piece and the text
   * around it */
  unsigned char a = (unsigned char)pw[0], z = (unsigned char)pw[n - 1];
  return odd && (a < 0x20 || a >= 0x80) && (z < 0x20 || z >= 0x80);
}

/* Fails when secret (n bytes) appears in text. */
static void no_secret(const char *what, const char *text, const char *secret, size_t n) {
  if (fz_contains(text, strlen(text), secret, n)) {
    fz_dump("secret", secret, n);
    fz_dump(what, text, strlen(text));
    FZ_CHECK(0, "the password shows in %s", what);
  }
}

/* Runs sq_config_redact over a message holding every secret of cfg and
 * checks none survives (unless it is also part of the message's own
 * text, where it is not the secret). */
static void check_config_redact(const sq_config *cfg) {
  const char *pw = cfg->password ? cfg->password : "";
  const char *user = cfg->user ? cfg->user : "";
  int secret_param = -1;
  for (int i = 0; i < cfg->nparams; i++)
    if (strstr(cfg->params[i].key, "pass") || strstr(cfg->params[i].key, "pwd") ||
        strstr(cfg->params[i].key, "secret") || strstr(cfg->params[i].key, "token"))
      secret_param = i;
  const char *pv = secret_param >= 0 ? cfg->params[secret_param].value : "";
  const char *fmt = "connect failed: password '%s' for user %s; %s=%s";
  const char *pk = secret_param >= 0 ? cfg->params[secret_param].key : "x";
  sq_err e;
  sq_err_set(&e, SQ_ECONNECTION, fmt, pw, user, pk, pv);
  char without[1100];
  snprintf(without, sizeof without, fmt, "\x01", user, pk, "\x01");
  sq_config_redact(cfg, &e);
  FZ_CHECK(memchr(e.msg, '\0', sizeof e.msg) != NULL, "sq_config_redact lost the NUL");
  if (checkable(pw, strlen(pw)) && !strstr(without, pw) && !strstr(pv, pw) && strlen(pw) < 300)
    no_secret("sq_config_redact's message", e.msg, pw, strlen(pw));
  if (checkable(pv, strlen(pv)) && !strstr(without, pv) && !strstr(pw, pv) && strlen(pv) < 300)
    no_secret("sq_config_redact's message", e.msg, pv, strlen(pv));
}

static void check_copy(const sq_config *cfg) {
  sq_config c2;
  if (sq_config_copy(&c2, cfg) != SQ_OK) return;
  FZ_CHECK(sq_config_equal(&c2, cfg) && sq_config_equal(cfg, &c2), "a config copy differs from its original");
  c2.port ^= 1;
  FZ_CHECK(!sq_config_equal(&c2, cfg), "configs with different ports compare equal");
  sq_config_free(&c2);
}

static void check_redact_buffer(const char *url, size_t n) {
  char out[600];
  memset(out, 'Z', sizeof out);
  sq_url_redact(url, out, n);
  if (n == 0) {
    FZ_CHECK(out[0] == 'Z', "sq_url_redact wrote into a zero-size buffer");
    return;
  }
  FZ_CHECK(memchr(out, '\0', n) != NULL, "sq_url_redact did not NUL-terminate within %zu bytes", n);
  FZ_CHECK(n >= sizeof out || out[n] == 'Z', "sq_url_redact wrote past its %zu-byte buffer", n);
}

/* Mode 0: the URL as given. */
static void raw_url(const char *url) {
  size_t ulen = strlen(url);
  check_redact_buffer(url, ulen % 300);
  check_redact_buffer(url, 0);
  char red[600];
  sq_url_redact(url, red, sizeof red);

  sq_config cfg;
  sq_config_init(&cfg);
  sq_err e;
  int rc = sq_config_parse_url(&cfg, url, &e);
  fz_check_err(rc, &e, 1);
  if (rc == SQ_OK && cfg.password) {
    /* Where the raw password sits: between the first ':' and the last '@'
     * of the authority (after "scheme://", up to the first '/' or '?'). */
    const char *auth = strstr(url, "://");
    if (auth) {
      auth += 3;
      const char *end = auth + strcspn(auth, "/?");
      const char *at = NULL;
      for (const char *p = auth; p < end; p++)
        if (*p == '@') at = p;
      const char *pc = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
      if (pc) {
        /* the URL without its password, raw and decoded */
        size_t pre = (size_t)(pc + 1 - url), post = ulen - (size_t)(at - url);
        char *rest = malloc(pre + post + 2), *dec = malloc(pre + post + 2);
        memcpy(rest, url, pre);
        rest[pre] = '\x01';
        memcpy(rest + pre + 1, at, post);
        size_t rn = pre + 1 + post, dn = pct(rest, rn, dec);
        const char *pw = cfg.password;
        size_t pn = strlen(pw);
        const char *rawpw = pc + 1;
        size_t rawn = (size_t)(at - rawpw);
        if (checkable(pw, pn) && !fz_contains(rest, rn, pw, pn) && !fz_contains(dec, dn, pw, pn))
          no_secret("sq_url_redact's copy", red, pw, pn);
        if (checkable(rawpw, rawn) && !fz_contains(rest, rn, rawpw, rawn) && !fz_contains(dec, dn, rawpw, rawn))
          no_secret("sq_url_redact's copy", red, rawpw, rawn);
        free(rest);
        free(dec);
      }
    }
  }
  if (rc == SQ_OK) {
    sq_err e2;
    int frc = sq_config_finish(&cfg, &e2);
    fz_check_err(frc, &e2, 1);
    check_config_redact(&cfg);
    check_copy(&cfg);
  }
  sq_config_free(&cfg);
}

static const char *const schemes[] = {"mysql", "mariadb", "tidb", "postgres", "postgresql", "sqlite",
                                      "MySQL", "bogus", "my sql", "", "postgres:"};

/* Mode 1: a canary password in the userinfo of a URL. */
static void canary_url(fz *f) {
  const char *scheme = schemes[fz_below(f, (int)(sizeof schemes / sizeof *schemes))];
  size_t un, pn, rn;
  char *user = fz_str(f, 40, &un);
  char *pw = fz_str(f, 60, &pn);
  char *rest = fz_str(f, 200, &rn);
  if (!fz_bool(f)) { /* a plausible host part, so deeper code runs */
    static const char *const hosts[] = {"h", "h:5432/db", "h/db?sslmode=require", "[::1]:3306/d",
                                        "h1:1,h2:2/db", "h/db?password=x&application_name=a"};
    rest = fz_strdup(f, hosts[fz_below(f, 6)]);
    rn = strlen(rest);
  }
  size_t sn = strlen(scheme);
  size_t n = sn + 3 + un + 1 + pn + 1 + rn;
  char *url = fz_alloc(f, n + 1);
  size_t o = 0;
  memcpy(url + o, scheme, sn), o += sn;
  memcpy(url + o, "://", 3), o += 3;
  memcpy(url + o, user, un), o += un;
  url[o++] = ':';
  memcpy(url + o, pw, pn), o += pn;
  url[o++] = '@';
  memcpy(url + o, rest, rn), o += rn;
  url[o] = '\0';

  /* The URL without the password, raw and percent-decoded: a secret that
   * also appears there may be shown as that other part. */
  char *without = fz_alloc(f, n + 2), *wdec = fz_alloc(f, n + 2);
  size_t wn = 0;
  memcpy(without, url, sn + 3 + un + 1), wn = sn + 3 + un + 1;
  without[wn++] = '\x01';
  without[wn++] = '@';
  memcpy(without + wn, rest, rn), wn += rn;
  size_t wdn = pct(without, wn, wdec);
  char *pwdec = fz_alloc(f, pn + 1);
  size_t pdn = pct(pw, pn, pwdec);
  int check_raw = checkable(pw, pn) && !fz_contains(without, wn, pw, pn) && !fz_contains(wdec, wdn, pw, pn);
  int check_dec = checkable(pwdec, pdn) && !memchr(pwdec, '\0', pdn) && !fz_contains(without, wn, pwdec, pdn) &&
                  !fz_contains(wdec, wdn, pwdec, pdn);

  char red[600];
  sq_url_redact(url, red, sizeof red);
  if (check_raw) no_secret("sq_url_redact's copy", red, pw, pn);
  if (check_dec) no_secret("sq_url_redact's copy", red, pwdec, pdn);

  sq_config cfg;
  sq_config_init(&cfg);
  sq_err e;
  int rc = sq_config_parse_url(&cfg, url, &e);
  fz_check_err(rc, &e, 1);
  if (rc) {
    if (check_raw) no_secret("the parse error", e.msg, pw, pn);
    if (check_dec) no_secret("the parse error", e.msg, pwdec, pdn);
  }
  /* A plain user and a password without delimiters parse back exactly. */
  int plain_user = un > 0;
  for (size_t i = 0; i < un; i++)
    if (!isalnum((unsigned char)user[i])) plain_user = 0;
  int plain_pw = !strpbrk(pw, "/?#%+") && !strchr(rest, '@') && !strstr(rest, "password") && strcmp(scheme, "sqlite") && scheme[0] &&
                 strcmp(scheme, "bogus") && strcmp(scheme, "my sql") && strcmp(scheme, "postgres:");
  if (rc == SQ_OK && plain_user && plain_pw) {
    FZ_CHECK(cfg.password && !strcmp(cfg.password, pw), "password parsed as '%s', written '%s'",
             cfg.password ? cfg.password : "(null)", pw);
    FZ_CHECK(cfg.user && !strcmp(cfg.user, user), "user parsed as '%s', written '%s'", cfg.user ? cfg.user : "(null)",
             user);
  }
  if (rc == SQ_OK) {
    sq_err e2;
    int frc = sq_config_finish(&cfg, &e2);
    fz_check_err(frc, &e2, 1);
    if (frc) {
      if (check_raw) no_secret("the finish error", e2.msg, pw, pn);
      if (check_dec) no_secret("the finish error", e2.msg, pwdec, pdn);
    }
    check_config_redact(&cfg);
    check_copy(&cfg);
  }
  sq_config_free(&cfg);
}

static const char *const keys[] = {
  "dialect", "host", "hostname", "port", "user", "username", "password", "database", "dbname", "storage", "name",
  "connect_timeout", "ssl.mode", "sslmode", "ssl_mode", "ssl-mode", "ssl", "ssl.ca", "sslrootcert", "ssl.cert",
  "ssl.key", "ssl.min_version", "tls_version", "pool.max", "pool.min", "pool.acquire_timeout", "pool.idle_timeout",
  "pool.max_lifetime", "pool.pre_ping", "application_name", "sslpassword", "mode", "cache", "pool.bogus", "",
  "x.y", "options", "api_token", "client_secret"};

static const char *const values[] = {"sqlite", "mysql", "postgres", "tidb", "require", "verify-full", "TLSv1.2",
                                     "1", "0", "65535", "65536", "-1", "1e9", "1e10", "nan", "inf", "true", "off",
                                     ":memory:", "", " 5", "5 ", "0x10", "2147483648", "s3cr3t-pw"};

/* Mode 2: options by name. */
static void options(fz *f) {
  sq_config cfg;
  sq_config_init(&cfg);
  int n = fz_below(f, 12);
  for (int i = 0; i < n; i++) {
    const char *k = fz_bool(f) ? keys[fz_below(f, (int)(sizeof keys / sizeof *keys))] : fz_str(f, 24, NULL);
    const char *v = fz_bool(f) ? values[fz_below(f, (int)(sizeof values / sizeof *values))] : fz_str(f, 40, NULL);
    sq_err e;
    int rc = sq_config_set(&cfg, k, v, &e);
    fz_check_err(rc, &e, 1);
    if (rc && (!strcmp(k, "password") || strstr(k, "pass") || strstr(k, "secret") || strstr(k, "token")) &&
        checkable(v, strlen(v)) && !strstr(k, v))
      no_secret("an option error", e.msg, v, strlen(v));
  }
  /* The finish error must not depend on the password: the same config
   * with another password gives the same message. */
  sq_config other;
  int have_other = sq_config_copy(&other, &cfg) == SQ_OK;
  if (have_other) {
    free(other.password);
    other.password = cfg.password ? malloc(5) : NULL;
    if (other.password) memcpy(other.password, "\x03\x03\x03\x03", 5);
  }
  sq_err e;
  int rc = sq_config_finish(&cfg, &e);
  fz_check_err(rc, &e, 1);
  if (have_other) {
    sq_err e2;
    int rc2 = sq_config_finish(&other, &e2);
    if (rc && rc2 && cfg.password && checkable(cfg.password, strlen(cfg.password)) && !strstr(e2.msg, cfg.password))
      no_secret("the finish error", e.msg, cfg.password, strlen(cfg.password));
    sq_config_free(&other);
  }
  check_config_redact(&cfg);
  check_copy(&cfg);
  sq_config_free(&cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz f;
  fz_init(&f, data, size);
  switch (fz_u8(&f) % 3) {
  case 0: {
    char *url = fz_alloc(&f, size + 1);
    size_t o = 0;
    for (size_t i = f.i; i < size && data[i]; i++) url[o++] = (char)data[i];
    url[o] = '\0';
    raw_url(url);
    break;
  }
  case 1:
    canary_url(&f);
    break;
  default:
    options(&f);
    break;
  }
  fz_done(&f);
  return 0;
}
