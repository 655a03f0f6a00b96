/*
 * oper_int.h - the inside of an sq_oper, shared by op.c (the op, its
 * targets and the read / transaction / cursor kinds) and oper_write.c
 * (the write and schema kinds). Not installed.
 */
#ifndef SQ_OPER_INT_H
#define SQ_OPER_INT_H

#include "internal.h"

#define DEFAULT_BATCH 32

typedef struct op_stmt {
  const char *sql;
  size_t len;
  const sq_value *params;
  int nparams;
  unsigned flags; /* SQ_STMT_* */
} op_stmt;

struct sq_oper {
  sq_job job;            /* job.err is the op's error */
  sq_arena *arena;
  sq_rowset *rowset;     /* SQ_OPER_RECORD; kept (cleared) across resets */
  /* Valid only while the field that says so is set (has_holder, nst,
   * nlogs, has_sink, a run): not zeroed by sq_oper_reset. */
  sq_holder holder;
  char what[96];
  op_stmt st1;           /* the first statement and log record: no */
  sq_oper_log log1;      /* allocation for the common op of one statement */
  sq_oper_sink sink;
  sq_oper_sink out;      /* where rows go now: sink, or the recorder */
  sq_row_sink rsink;     /* what drivers call */
  /* BULK_INSERT's last full-batch statement, kept across resets (a
   * holder's op runs the same bulk insert again and again): reused when
   * model, generation, columns, rows, dialect and caps are the same. */
  struct {
    const sq_model *m;
    unsigned gen;
    int dialect, caps, returning, k, ncols;
    int *cols;
    int *okey;           /* the conflict options (bulk_okey), nokey ints */
    int nokey;
    char *sql;
    size_t len;
    int returns_rows;
  } bcache;

  /* Everything from here on is zeroed by sq_oper_reset. */
  int kind;
  unsigned flags;
  int prepared;
  /* target */
  int target;
  sq_pool *pool;
  int has_holder;
  sq_tx *tx;             /* a reference, for a tx target */
  sq_cursor *cursor;     /* borrowed, for a cursor target */
  /* build */
  op_stmt *st;
  int nst, capst;
  sq_oper_log *logs;
  int nlogs, caplogs;
  const char *log_text;
  size_t log_len;
  int has_log_text;
  double timeout;
  int isolation;
  unsigned sp;
  int batch;
  const sq_model *model;
  int has_sink;
  /* running */
  int has_out;
  int set;
  int64_t parent;
  int delivered;         /* something reached out: a retry would repeat it */
  sq_cursor *pcur;       /* CURSOR_OPEN: the cursor being made */
  sq_dcursor *dc;        /* CURSOR_OPEN: the driver statement run opened */
  int dialect;           /* of the connection it ran on */
  int ran;               /* a run function was called */
  int conn_dead;         /* its connection was found dead after run */
  int interrupted;       /* the sink left by a non-local exit */
  double queued, waited, elapsed;
  /* results */
  int rc;
  sq_result res;
  sq_tx *new_tx;
  unsigned new_sp;
  sq_cursor *new_cursor;
  int eof;
  int64_t rows;
  const char *text;
  int *fcols;
  int nfcols;
  /* writes and schema (oper_write.c) */
  int nprep;             /* log records made by prepare; later ones are added by the run */
  int64_t expect;        /* UPDATE / DELETE / INCREMENT: fewer rows than this is stale (0: none) */
  const char *expect_what;
  const sq_value *key;   /* UPSERT: the key values known before (SQ_VNULL: unknown) */
  int nkey;
  const int *bcols;      /* BULK_INSERT: the inserted columns, the rows, rows per statement */
  int nbcols;
  const sq_value *brows;
  int nbrows, per;
  int64_t *ids;          /* BULK_INSERT: the key of each row when the server reports it */
  int bmode;             /* BULK_INSERT: SQ_BULK_* (sq_oper_bulk_conflict) */
  const int *bconf;      /* its conflict columns (NULL: none given) */
  int nbconf;
  const int *bupd;       /* SQ_BULK_UPDATE: the columns to update */
  int nbupd;
  int bcount;            /* no rows back, no keys: the count only */
  int bret;              /* SQ_RETURNING_UNSET: a plain bulk's RETURNING lists only what the server fills */
  int64_t expect_version; /* UPDATE / DELETE with a version check: the version expected (stale message) */
  int has_version;
  int no_insert;         /* FIND_OR_CREATE: nothing found is no insert */
  int created;
  sq_model *const *models; /* SYNC */
  int nmodels, how;
  /* async (sq_oper_submit) */
  int inflight;          /* submitted, sq_oper_complete not called yet */
  int retried;           /* the read's one retry was submitted */
  double deadline;
  sq_pool *apool;        /* a reference taken at submit (pool target) */
  sq_tx *atx;            /* the transaction whose connection it runs on (pinned, sq_tx_conn) */
  sq_pin *apin;          /* the pin of that connection, or of a pooled cursor's */
  /* includes (op_include.c) */
  sq_incplan *inc;       /* SELECT with to-many includes, or NULL */
  int counting;          /* the count statement runs: its value goes to count */
  int64_t count;         /* SQ_STMT_COUNT's value */
};

/* op.c, for oper_write.c */
int sq_oper__protected(sq_oper *op, sq_conn *c, int (*fn)(void *), void *arg, sq_err *err);
int sq_oper__add_log(sq_oper *op, const char *text, size_t len, int copy, sq_err *err);
/* oper_write.c: the run of a write or schema kind on c; prepare's
 * records of those kinds. */
int sq_oper__run_write(sq_oper *op, sq_conn *c, sq_err *err);
int sq_oper__prepare_write(sq_oper *op, int dialect, sq_err *err);
int sq_oper__is_write(int kind);
void sq_oper__free_write(sq_oper *op);


#endif
