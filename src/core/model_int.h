/*
 * model_int.h - the inside of sq_model, shared by model.c, value.c and
 * render.c (the renderer reads the pre-quoted names directly). Not
 * installed; the binding and the DDL see only sqorm.h.
 */
#ifndef SQORM_MODEL_INT_H
#define SQORM_MODEL_INT_H

#include "sqorm.h"

#define SQ_IDENT_MAX 63

/* Quote styles: 0 = "x" (sqlite, postgres), 1 = `x` (mysql). */
enum { SQ_QSTYLE_DOUBLE = 0, SQ_QSTYLE_BACKTICK = 1 };

typedef struct sq_qname {
  const char *p; /* points into sq_model.qbuf */
  size_t n;
} sq_qname;

typedef struct sq_midx {
  char *name;   /* NULL until finish generates one */
  int unique;
  char **colnames; /* as given, resolved at finish */
  int *cols;
  int ncols;
} sq_midx;

struct sq_model {
  char *name;
  char *table;
  size_t table_len;
  sq_col *cols;
  int ncols, capcols;
  int *pk;
  int npk;
  sq_midx *idx;
  int nidx, capidx;
  int *slots;       /* open addressing: column index + 1, 0 = empty */
  size_t nslots;    /* power of two */
  int roles[5];     /* column index per SQ_ROLE_*, -1 */
  int timestamps, paranoid;
  char *ts_created, *ts_updated, *ts_deleted;
  char *version;    /* the version column's name (optimistic locking), or NULL */
  int finished;
  /* Quoted names, filled by finish: [style][column]. */
  char *qbuf;
  sq_qname qtable[2];
  sq_qname *qcol[2];
  /* A name MySQL refuses even quoted (trailing space, a character outside
   * the BMP), or NULL. */
  const char *mysql_bad;
  /* Associations defined on this model and foreign keys it holds
   * (assoc.c); changes after finish bump generation. */
  sq_assoc **assocs;
  int nassocs, capassocs;
  sq_fk *fks;
  int nfks, capfks;
  unsigned generation;
};

/* Frees m's associations and foreign keys (assoc.c; sq_model_free calls it). */
void sq_model_free_assocs(sq_model *m);

/* Checks an identifier: 1..63 bytes, no NUL, valid UTF-8 without control
 * characters. what names it in the message ("column name"). */
int sq_ident_check(const char *what, const char *name, size_t len, sq_err *err);
/* 1 when MySQL takes the (already checked) name quoted. */
int sq_ident_mysql_ok(const char *name, size_t len);
/* Writes a printable, shortened copy of s for error messages. */
void sq_show(const char *s, size_t len, char *out, size_t outn);
/* Number of UTF-8 characters in s (bytes that are not continuation bytes). */
size_t sq_utf8_len(const char *s, size_t n);

#endif
