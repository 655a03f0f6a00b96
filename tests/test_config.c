/* test_config.c - URL parsing, named options, defaults, copy/equal. */
#include "sqorm.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse(const char *url, sq_config *cfg, sq_err *err) {
  sq_config_init(cfg);
  sq_err_clear(err);
  int rc = sq_config_parse_url(cfg, url, err);
  if (!rc) rc = sq_config_finish(cfg, err);
  return rc;
}

/* Multi-host configurations (issue 14): URL authorities, the host /
 * hosts options, ports, copies, comparison, secrets. */
static void test_hosts(void) {
  sq_config c, d;
  sq_err e;

  CHECK(parse("mysql://u:pw@h1:3306,h2:3307,h3/db", &c, &e) == SQ_OK);
  CHECK(c.nhosts == 3);
  if (c.nhosts == 3) {
    CHECK_STR(c.hosts[0].host, "h1");
    CHECK(c.hosts[0].port == 3306);
    CHECK_STR(c.hosts[1].host, "h2");
    CHECK(c.hosts[1].port == 3307);
    CHECK_STR(c.hosts[2].host, "h3");
    CHECK(c.hosts[2].port == 3306); /* the dialect's default */
  }
  CHECK_STR(c.host, "h1"); /* host / port mirror the first */
  CHECK(c.port == 3306);
  CHECK_STR(c.user, "u");
  CHECK_STR(c.password, "pw");
  CHECK_STR(c.database, "db");
  CHECK(sq_config_copy(&d, &c) == SQ_OK);
  CHECK(d.nhosts == 3 && d.hosts != c.hosts && sq_config_equal(&c, &d));
  free(d.hosts[2].host);
  d.hosts[2].host = strdup("h4");
  CHECK(!sq_config_equal(&c, &d));
  sq_config_free(&d);
  CHECK(parse("mysql://u:pw@h2:3307,h1:3306,h3/db", &d, &e) == SQ_OK);
  CHECK(!sq_config_equal(&c, &d)); /* order matters: the first that answers */
  sq_config_free(&d);
  sq_config_free(&c);

  /* tidb's default port, IPv6 entries, percent-escapes in a host */
  CHECK(parse("tidb://u@[::1]:4001,[fe80::2],h%2Dx/db", &c, &e) == SQ_OK);
  CHECK(c.nhosts == 3);
  if (c.nhosts == 3) {
    CHECK_STR(c.hosts[0].host, "::1");
    CHECK(c.hosts[0].port == 4001);
    CHECK_STR(c.hosts[1].host, "fe80::2");
    CHECK(c.hosts[1].port == 4000);
    CHECK_STR(c.hosts[2].host, "h-x");
  }
  sq_config_free(&c);

  /* PostgreSQL: the same form, passed on to libpq */
  CHECK(parse("postgresql://u:pw@pg1:5433,pg2/app?target_session_attrs=read-write", &c, &e) == SQ_OK);
  CHECK(c.nhosts == 2 && c.hosts[0].port == 5433 && c.hosts[1].port == 5432);
  CHECK(c.nparams == 1 && !strcmp(c.params[0].key, "target_session_attrs"));
  sq_config_free(&c);

  /* A port option applies to the hosts that have none, in any order. */
  sq_config_init(&c);
  CHECK(sq_config_set(&c, "hosts", "a,b:7000", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "port", "6000", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "dialect", "mysql", &e) == SQ_OK);
  CHECK(sq_config_finish(&c, &e) == SQ_OK);
  CHECK(c.nhosts == 2 && c.hosts[0].port == 6000 && c.hosts[1].port == 7000);
  CHECK(sq_config_finish(&c, &e) == SQ_OK && c.nhosts == 2 && c.port == 6000); /* idempotent */
  CHECK(c.host_backoff == 5);
  /* host with a comma is a list too; a plain host replaces the list */
  CHECK(sq_config_set(&c, "host", "x:1,y:2", &e) == SQ_OK);
  CHECK(c.nhosts == 2);
  CHECK(sq_config_set(&c, "host", "only", &e) == SQ_OK);
  CHECK(c.nhosts == 0 && c.hosts == NULL);
  CHECK_STR(c.host, "only");
  CHECK(sq_config_set(&c, "hosts", "solo:3333", &e) == SQ_OK); /* one entry: plain host and port */
  CHECK(c.nhosts == 0 && c.port == 3333);
  CHECK_STR(c.host, "solo");
  CHECK(sq_config_set(&c, "host_backoff", "0.25", &e) == SQ_OK && c.host_backoff == 0.25);
  CHECK(sq_config_set(&c, "host_backoff", "-1", &e) == SQ_EUSAGE);
  CHECK(sq_config_set(&c, "host_backoff", "0", &e) == SQ_EUSAGE);
  sq_config_free(&c);

  /* Errors name the problem and never show the password. */
  static const char *const badh[] = {"mysql://u:s3cret@h1:3306,,h3/db", "mysql://u:s3cret@h1:3306,h2:x/db",
                                     "mysql://u:s3cret@h1:3306,h2:99999/db", "mysql://u:s3cret@h1,[::1/db",
                                     "mysql://u:s3cret@h1,[::1]x/db", "mysql://u:s3cret@h1,h2:/db"};
  for (size_t i = 0; i < sizeof badh / sizeof *badh; i++) {
    CHECK(parse(badh[i], &c, &e) == SQ_EUSAGE);
    CHECK(strstr(e.msg, "s3cret") == NULL);
    CHECK(strstr(e.msg, "malformed URL") != NULL);
    sq_config_free(&c);
  }
  char many[512] = "mysql://h0";
  for (int i = 1; i < 40; i++) snprintf(many + strlen(many), sizeof many - strlen(many), ",h%d", i);
  strcat(many, "/db");
  CHECK(parse(many, &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "too many hosts") != NULL);
  sq_config_free(&c);
  CHECK(parse("sqlite:x.db?hosts=a,b", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  char out[128];
  sq_url_redact("mysql://u:s3cret@h1:3306,h2:3307/db", out, sizeof out);
  CHECK_STR(out, "mysql://u:***@h1:3306,h2:3307/db");
  CHECK(parse("mysql://u:s3cret@h1,h2/db", &c, &e) == SQ_OK);
  sq_err_set(&e, SQ_ECONNECTION, "no host answered: h1: Access denied for 'u' (using password s3cret)");
  sq_config_redact(&c, &e);
  CHECK(strstr(e.msg, "s3cret") == NULL);
  sq_config_free(&c);
}

/* Pooler mode for PostgreSQL (issue 14): prepare, pgbouncer, -pooler. */
static void test_pooler(void) {
  sq_config c, d;
  sq_err e;
  CHECK(parse("postgres://u:p@db.example/app", &c, &e) == SQ_OK);
  CHECK(c.prepare == SQ_PREPARE_ON && !sq_config_pooler_mode(&c));
  sq_config_free(&c);
  CHECK(parse("postgres://u:p@db.example/app?prepare=false", &c, &e) == SQ_OK);
  CHECK(c.prepare == SQ_PREPARE_OFF && sq_config_pooler_mode(&c) && c.nparams == 0);
  sq_config_free(&c);
  CHECK(parse("postgres://u:p@127.0.0.1:6432/app?pgbouncer=true&sslmode=require", &c, &e) == SQ_OK);
  CHECK(c.prepare == SQ_PREPARE_OFF && c.pgbouncer == 1 && sq_config_pooler_mode(&c));
  CHECK(c.nparams == 0); /* not a libpq keyword: never passed on */
  sq_config_free(&c);
  CHECK(parse("postgres://u:p@ep-cool-darkness-123456-POOLER.us-east-2.aws.neon.tech/neondb", &c, &e) == SQ_OK);
  CHECK(c.prepare == SQ_PREPARE_OFF && sq_config_pooler_mode(&c));
  CHECK(sq_config_copy(&d, &c) == SQ_OK);
  CHECK(d.prepare == SQ_PREPARE_OFF && sq_config_equal(&c, &d));
  d.prepare = SQ_PREPARE_ON;
  CHECK(!sq_config_equal(&c, &d));
  sq_config_free(&d);
  sq_config_free(&c);
  /* the plain endpoint of the same project is not a pooler */
  CHECK(parse("postgres://u:p@ep-cool-darkness-123456.us-east-2.aws.neon.tech/neondb", &c, &e) == SQ_OK);
  CHECK(c.prepare == SQ_PREPARE_ON);
  sq_config_free(&c);
  /* an explicit prepare wins over the guesses */
  CHECK(parse("postgres://u:p@ep-x-pooler.eu.aws.neon.tech/db?prepare=true", &c, &e) == SQ_OK);
  CHECK(c.prepare == SQ_PREPARE_ON && !sq_config_pooler_mode(&c));
  sq_config_free(&c);
  CHECK(parse("postgres://u:p@h/db?pgbouncer=true&prepare=on", &c, &e) == SQ_OK);
  CHECK(!sq_config_pooler_mode(&c));
  sq_config_free(&c);
  /* a pooler among several hosts */
  CHECK(parse("postgres://u:p@a.example,ep-y-pooler.example/db", &c, &e) == SQ_OK);
  CHECK(sq_config_pooler_mode(&c));
  sq_config_free(&c);
  /* the connect table spells it the same way */
  sq_config_init(&c);
  CHECK(sq_config_set(&c, "dialect", "postgres", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "prepare", "false", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "prepare", "maybe", &e) == SQ_EUSAGE);
  CHECK(sq_config_finish(&c, &e) == SQ_OK && c.prepare == SQ_PREPARE_OFF);
  sq_config_free(&c);
  /* PostgreSQL only */
  CHECK(parse("mysql://h/db?prepare=false", &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "prepare") != NULL && strstr(e.msg, "postgres") != NULL);
  sq_config_free(&c);
  CHECK(parse("mysql://h/db?pgbouncer=true", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
}

int main(void) {
  sq_config c;
  sq_err e;

  test_hosts();
  test_pooler();

  CHECK(parse("sqlite::memory:", &c, &e) == SQ_OK);
  CHECK(c.dialect == SQ_DIALECT_SQLITE);
  CHECK_STR(c.storage, ":memory:");
  CHECK(c.pool.max == 1); /* each :memory: connection is its own database */
  sq_config_free(&c);

  CHECK(parse("sqlite:data/game.db", &c, &e) == SQ_OK);
  CHECK_STR(c.storage, "data/game.db");
  CHECK(c.pool.max == 5);
  sq_config_free(&c);

  CHECK(parse("sqlite:///var/tmp/x.db", &c, &e) == SQ_OK);
  CHECK_STR(c.storage, "/var/tmp/x.db");
  sq_config_free(&c);

  CHECK(parse("sqlite://rel/x.db?mode=ro", &c, &e) == SQ_OK);
  CHECK_STR(c.storage, "rel/x.db");
  CHECK(c.nparams == 1 && !strcmp(c.params[0].key, "mode"));
  sq_config_free(&c);

  CHECK(parse("sqlite:x.db?bogus=1", &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "bogus") != NULL);
  sq_config_free(&c);

  CHECK(parse("mysql://root@127.0.0.1:4000/test", &c, &e) == SQ_OK);
  CHECK(c.dialect == SQ_DIALECT_MYSQL);
  CHECK_STR(c.user, "root");
  CHECK(c.password == NULL);
  CHECK_STR(c.host, "127.0.0.1");
  CHECK(c.port == 4000);
  CHECK_STR(c.database, "test");
  sq_config_free(&c);

  CHECK(parse("tidb://u:p@h/db", &c, &e) == SQ_OK);
  CHECK(c.port == 4000);
  CHECK_STR(c.scheme, "tidb");
  sq_config_free(&c);

  CHECK(parse("mariadb://u@h", &c, &e) == SQ_OK);
  CHECK(c.port == 3306 && c.database == NULL);
  sq_config_free(&c);

  CHECK(parse("postgres://u:p%40ss%2Fw@host.example:6543/neondb?sslmode=require&application_name=game", &c, &e) == SQ_OK);
  CHECK(c.dialect == SQ_DIALECT_POSTGRES);
  CHECK_STR(c.password, "p@ss/w");
  CHECK_STR(c.host, "host.example");
  CHECK(c.port == 6543);
  CHECK_STR(c.database, "neondb");
  CHECK(c.ssl.mode == SQ_SSL_REQUIRE);
  CHECK(c.nparams == 1);
  CHECK_STR(c.params[0].key, "application_name");
  CHECK_STR(c.params[0].value, "game");
  sq_config_free(&c);

  CHECK(parse("postgresql://u@[::1]:5433/db?sslmode=verify-full&sslrootcert=/ca.pem", &c, &e) == SQ_OK);
  CHECK_STR(c.host, "::1");
  CHECK(c.port == 5433);
  CHECK(c.ssl.mode == SQ_SSL_VERIFY_IDENTITY);
  CHECK_STR(c.ssl.ca, "/ca.pem");
  sq_config_free(&c);

  /* A CA alone implies verification. */
  CHECK(parse("postgres://h/db?sslrootcert=/ca.pem", &c, &e) == SQ_OK);
  CHECK(c.ssl.mode == SQ_SSL_VERIFY_CA);
  CHECK(c.port == 5432);
  CHECK_STR(c.host, "h");
  sq_config_free(&c);

  /* The password may contain an unescaped '@'; the last one ends it. */
  CHECK(parse("mysql://u:a@b@h/d", &c, &e) == SQ_OK);
  CHECK_STR(c.password, "a@b");
  CHECK_STR(c.host, "h");
  sq_config_free(&c);

  /* Errors that name the problem. */
  CHECK(parse("oracle://h/db", &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "unknown URL scheme 'oracle'") != NULL);
  sq_config_free(&c);
  CHECK(parse("", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("nocolon", &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "malformed URL") != NULL);
  sq_config_free(&c);
  CHECK(parse("mysql:/h/db", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("mysql://h:99999/db", &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "port") != NULL);
  sq_config_free(&c);
  CHECK(parse("mysql://h:12x/db", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("mysql://h:/db", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("postgres://h/db?sslmode=sometimes", &c, &e) == SQ_EUSAGE);
  CHECK(strstr(e.msg, "sometimes") != NULL);
  sq_config_free(&c);
  CHECK(parse("postgres://h/db?%zz=1", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("postgres://h/db?novalue", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("mysql://h/db?application_name=x", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("postgres://h/db?ssl.min_version=TLSv1.1", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("sqlite:", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);
  CHECK(parse("postgres://[::1/db", &c, &e) == SQ_EUSAGE);
  sq_config_free(&c);

  /* Named options, as the Lua connect table sets them. */
  sq_config_init(&c);
  sq_err_clear(&e);
  CHECK(sq_config_set(&c, "dialect", "postgresql", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "ssl.mode", "verify_identity", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "ssl.min_version", "TLSv1.3", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "pool.max", "10", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "pool.acquire_timeout", "0.5", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "pool.pre_ping", "true", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "pool.max", "-1", &e) == SQ_EUSAGE);
  CHECK(sq_config_set(&c, "pool.idle_timeout", "soon", &e) == SQ_EUSAGE);
  CHECK(sq_config_set(&c, "pool.bogus", "1", &e) == SQ_EUSAGE);
  CHECK(sq_config_set(&c, "dialect", "oracle", &e) == SQ_EUSAGE);
  CHECK(sq_config_set(&c, "port", "0", &e) == SQ_EUSAGE);
  CHECK(sq_config_finish(&c, &e) == SQ_OK);
  CHECK(c.pool.max == 10 && c.pool.pre_ping == 1 && c.pool.acquire_timeout == 0.5);
  CHECK(c.pool.min == 0 && c.pool.idle_timeout == 10);
  CHECK_STR(c.host, "localhost");

  sq_config d;
  CHECK(sq_config_copy(&d, &c) == SQ_OK);
  CHECK(sq_config_equal(&c, &d));
  CHECK(sq_config_set(&d, "pool.max", "11", &e) == SQ_OK);
  CHECK(!sq_config_equal(&c, &d));
  sq_config_free(&d);
  sq_config_free(&c);

  sq_config_init(&c);
  CHECK(sq_config_finish(&c, &e) == SQ_EUSAGE); /* no dialect */
  CHECK(sq_config_set(&c, "dialect", "sqlite", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "pool.min", "9", &e) == SQ_OK);
  CHECK(sq_config_set(&c, "storage", "x.db", &e) == SQ_OK);
  CHECK(sq_config_finish(&c, &e) == SQ_EUSAGE); /* min > max */
  sq_config_free(&c);

  /* Named pools: extra parameters compare as a set, whatever order a
   * Lua table's traversal gave them in (issue 19). */
  sq_config p1, p2;
  CHECK(parse("postgres://h/db?application_name=a&keepalives=1&options=-c%20x%3Dy", &p1, &e) == SQ_OK);
  CHECK(parse("postgres://h/db?options=-c%20x%3Dy&application_name=a&keepalives=1", &p2, &e) == SQ_OK);
  CHECK(p1.nparams == 3 && p2.nparams == 3 && strcmp(p1.params[0].key, p2.params[0].key) != 0);
  CHECK(sq_config_equal(&p1, &p2) && sq_config_equal(&p2, &p1));
  CHECK(sq_config_set(&p1, "name", "set_order", &e) == SQ_OK);
  CHECK(sq_config_set(&p2, "name", "set_order", &e) == SQ_OK);
  sq_pool *pa = NULL, *pb = NULL;
  CHECK(sq_global_init(&e) == SQ_OK);
  CHECK(sq_pool_open_shared(&p1, &pa, &e) == SQ_OK);
  CHECK(sq_pool_open_shared(&p2, &pb, &e) == SQ_OK); /* the same pool, no conflict */
  if (!pb) fprintf(stderr, "shared pool: %s\n", e.msg);
  CHECK(pa && pa == pb);
  if (pb) sq_pool_close(pb);
  CHECK(sq_config_set(&p2, "keepalives", "0", &e) == SQ_OK); /* a real difference still counts */
  CHECK(!sq_config_equal(&p1, &p2));
  pb = NULL;
  CHECK(sq_pool_open_shared(&p2, &pb, &e) == SQ_EUSAGE && !pb);
  CHECK(strstr(e.msg, "different settings") != NULL);
  CHECK(sq_config_set(&p2, "keepalives", "1", &e) == SQ_OK);
  CHECK(sq_config_set(&p2, "connect_timeout", "3", &e) == SQ_OK);
  CHECK(!sq_config_equal(&p1, &p2));
  if (pa) sq_pool_close(pa);
  sq_config_free(&p1);
  sq_config_free(&p2);

  /* Secrets (issue 16): what URL errors show, and the net for library text */
  static const char *const red[][2] = {
      {"postgres://u:s3cret@h:5432/db", "postgres://u:***@h:5432/db"},
      {"postgres://u:s3@cr@et@h/db", "postgres://u:***@h/db"},
      {"postgres://u:pre/s3cret@h/db", "postgres://u:***@h/db"},
      {"postgres://u:pre?s3cret@h/db", "postgres://u:***@h/db"},
      {"postgres:/u:s3cret@h/db", "postgres:***@h/db"},
      {"postgres//u:s3cret@h/db", "postgres//u:***@h/db"},
      {"postgres://u:s3cret/db", "postgres://u:***/db"},
      {"postgres://u@h/db", "postgres://u@h/db"},
      {"mysql://h1:3306,h2:3307/db", "mysql://h1:3306,h2:3307/db"},
      {"mysql://[::1]:3306/db", "mysql://[::1]:3306/db"},
      {"postgres://h/db?sslmode=require&password=s3cret&x=1", "postgres://h/db?sslmode=require&password=***&x=1"},
      {"postgres://h/db?sslpassword=s3cret", "postgres://h/db?sslpassword=***"},
      {"postgres://h/db?s3cret", "postgres://h/db?***"},
      {"sqlite::memory:", "sqlite::memory:"},
  };
  for (size_t i = 0; i < sizeof red / sizeof *red; i++) {
    char out[128];
    sq_url_redact(red[i][0], out, sizeof out);
    CHECK_STR(out, red[i][1]);
  }
  char small[12];
  sq_url_redact("postgres://u:s3cret@h/db", small, sizeof small);
  CHECK_STR(small, "postgres...");
  static const char *const bad[] = {
      "postgres://u:s3cret@h:port/db", "postgres://u:s3cret%zz@h/db", "postgres://u:pre/s3cret@h/db",
      "postgres://u:s3cret/db", "postgres:/u:s3cret@h/db", "postgres//u:s3cret@h/db", "postgres://u:s3cret@[h/db",
      "postgres://h/db?password=s3cret%zz", "postgres://h/db?s3cret", "postgres://u:s3cret@h:99999/db"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CHECK(parse(bad[i], &c, &e) == SQ_EUSAGE);
    CHECK(strstr(e.msg, "s3cret") == NULL);
    if (strstr(e.msg, "s3cret")) fprintf(stderr, "shows the password: %s\n", e.msg);
    sq_config_free(&c);
  }
  CHECK(parse("postgres://u:p%40ss@h/db?sslpassword=k3y", &c, &e) == SQ_OK);
  sq_err_set(&e, SQ_EAUTH, "bad password p@ss for u, key k3y; pass p@ss");
  sq_config_redact(&c, &e);
  CHECK_STR(e.msg, "bad password *** for u, key ***; pass ***");
  CHECK(e.kind == SQ_EAUTH);
  sq_config_free(&c);
  CHECK(parse("postgres://u:ok@h/db", &c, &e) == SQ_OK); /* short: only where it stands alone */
  sq_err_set(&e, SQ_EAUTH, "token ok, broken: ok");
  sq_config_redact(&c, &e);
  CHECK_STR(e.msg, "token ***, broken: ***");
  sq_err_set(&e, SQ_EAUTH, "looks okay");
  sq_config_redact(&c, &e);
  CHECK_STR(e.msg, "looks okay");
  sq_config_free(&c);

  CHECK_STR(sq_kind_name(SQ_EUNIQUE), "unique_violation");
  CHECK_STR(sq_kind_name(SQ_EPOOL_TIMEOUT), "pool_timeout");
  CHECK_STR(sq_kind_name(999), "internal");
  CHECK(sq_ssl_mode_parse("verify_ca") == SQ_SSL_VERIFY_CA);
  CHECK(sq_ssl_mode_parse("nope") == -1);
  return CHECK_DONE();
}
