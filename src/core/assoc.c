/*
 * assoc.c - associations between models and the foreign keys they add.
 *
 * An association is metadata on its source model: what it joins to and
 * by which columns. Defining one may change a model: the foreign-key
 * column is appended to the model that holds it (typed like the key it
 * references) and recorded as a foreign key, with an index unless a key
 * or index already starts with the column; belongs_to_many with a table
 * name builds the join model. Everything is checked before anything is
 * changed, so a refused definition leaves every model as it was.
 *
 * Defaults follow Sequelize, spelled snake_case: Post belongs_to User as
 * "author" -> posts.author_id; User has_many Post -> posts.user_id; Post
 * belongs_to_many Tag through "post_tags" -> post_tags(post_id, tag_id)
 * with a composite primary key.
 */
#include "model_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int nomem(sq_err *err) { return sq_err_set(err, SQ_ENOMEM, "out of memory"); }

void sq_assoc_opts_init(sq_assoc_opts *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->on_delete = SQ_FK_DEFAULT;
  o->on_update = SQ_FK_DEFAULT;
  o->constraints = SQ_CONSTRAINTS_DEFAULT;
  o->fk_allow_null = -1;
}

const char *sq_assoc_kind_name(int kind) {
  switch (kind) {
  case SQ_ASSOC_BELONGS_TO: return "belongs_to";
  case SQ_ASSOC_HAS_ONE: return "has_one";
  case SQ_ASSOC_HAS_MANY: return "has_many";
  case SQ_ASSOC_BELONGS_TO_MANY: return "belongs_to_many";
  default: return "unknown";
  }
}

int sq_assoc_to_many(const sq_assoc *a) {
  return a && (a->kind == SQ_ASSOC_HAS_MANY || a->kind == SQ_ASSOC_BELONGS_TO_MANY);
}

const char *sq_fk_action_sql(int action) {
  switch (action) {
  case SQ_FK_CASCADE: return "CASCADE";
  case SQ_FK_SET_NULL: return "SET NULL";
  case SQ_FK_RESTRICT: return "RESTRICT";
  case SQ_FK_NO_ACTION: return "NO ACTION";
  default: return NULL;
  }
}

static void assoc_free(sq_assoc *a) {
  if (!a) return;
  free(a->as);
  free(a->singular);
  if (a->owns_through) sq_model_free(a->through);
  sq_arena_free(a->scope_arena_);
  free(a);
}

void sq_model_free_assocs(sq_model *m) {
  for (int i = 0; i < m->nassocs; i++) assoc_free(m->assocs[i]);
  free(m->assocs);
  for (int i = 0; i < m->nfks; i++) free(m->fks[i].name);
  free(m->fks);
  m->assocs = NULL;
  m->fks = NULL;
  m->nassocs = m->capassocs = m->nfks = m->capfks = 0;
}

int sq_model_nassocs(const sq_model *m) { return m ? m->nassocs : 0; }

const sq_assoc *sq_model_assoc(const sq_model *m, int i) {
  return m && i >= 0 && i < m->nassocs ? m->assocs[i] : NULL;
}

const sq_assoc *sq_model_find_assoc(const sq_model *m, const char *name, size_t len) {
  if (!m || !name) return NULL;
  for (int i = 0; i < m->nassocs; i++) {
    const sq_assoc *a = m->assocs[i];
    if (strlen(a->as) == len && !memcmp(a->as, name, len)) return a;
  }
  return NULL;
}

int sq_model_nfks(const sq_model *m) { return m ? m->nfks : 0; }

const sq_fk *sq_model_fk(const sq_model *m, int i) { return m && i >= 0 && i < m->nfks ? &m->fks[i] : NULL; }

void sq_fk_actions(const sq_model *m, const sq_fk *fk, int *on_delete, int *on_update, int *constraints) {
  const sq_col *c = sq_model_col(m, fk->col);
  int nullable = c && c->allow_null;
  if (on_delete)
    *on_delete = fk->on_delete != SQ_FK_DEFAULT ? fk->on_delete
                 : fk->join || !nullable       ? SQ_FK_CASCADE
                                               : SQ_FK_SET_NULL;
  if (on_update) *on_update = fk->on_update != SQ_FK_DEFAULT ? fk->on_update : SQ_FK_CASCADE;
  if (constraints) *constraints = fk->constraints == SQ_CONSTRAINTS_DEFAULT ? SQ_CONSTRAINTS_ON : fk->constraints;
}

/* ------------------------------------------------------------------ */
/* Names                                                                */
/* ------------------------------------------------------------------ */

static uint32_t fnv(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

/*
 * "<a>_<b>[_<suffix>]" into out (64 bytes). Past 63 bytes the name is cut
 * (not inside a UTF-8 sequence) and ends in a hash of the whole, so it
 * stays deterministic and distinct.
 */
static void join_name(char out[64], const char *a, const char *b, const char *suffix) {
  char full[256];
  int n = snprintf(full, sizeof full, "%s_%s%s%s", a, b, suffix ? "_" : "", suffix ? suffix : "");
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof full) n = (int)sizeof full - 1;
  if (n <= SQ_IDENT_MAX) {
    memcpy(out, full, (size_t)n + 1);
    return;
  }
  uint32_t h = fnv(full, (size_t)n);
  size_t cut = SQ_IDENT_MAX - 9;
  while (cut > 0 && ((unsigned char)full[cut] & 0xc0) == 0x80) cut--;
  memcpy(out, full, cut);
  snprintf(out + cut, 64 - cut, "_%08x", (unsigned)h);
}

/* Builds a default key name "<prefix>_<key>"; SQ_EUSAGE when it is no
 * valid identifier (too long: the caller should name the key). */
static int default_key(char out[64], const char *prefix, const char *key, const char *what, sq_err *err) {
  char full[256];
  int n = snprintf(full, sizeof full, "%s_%s", prefix, key);
  if (n < 0 || n > SQ_IDENT_MAX)
    return sq_err_set(err, SQ_EUSAGE, "the default %s '%s_%s' is longer than %d bytes; give it explicitly", what,
                      prefix, key, SQ_IDENT_MAX);
  memcpy(out, full, (size_t)n + 1);
  return SQ_OK;
}

static int copy_name(char out[64], const char *s, const char *what, sq_err *err) {
  size_t n = strlen(s);
  if (sq_ident_check(what, s, n, err)) return err->kind;
  memcpy(out, s, n + 1);
  return SQ_OK;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                 */
/* ------------------------------------------------------------------ */

/* The column named `given` of m, or its single-column primary key. */
static int key_col(const sq_model *m, const char *given, const char *what, int *col, sq_err *err) {
  if (given) {
    int c = sq_model_find(m, given, strlen(given));
    if (c < 0) return sq_err_set(err, SQ_EUSAGE, "%s '%s' is not a column of model '%s'", what, given, m->name);
    *col = c;
    return SQ_OK;
  }
  if (m->npk != 1)
    return sq_err_set(err, SQ_EUSAGE, "model '%s' has a composite primary key; give %s (one column)", m->name, what);
  *col = m->pk[0];
  return SQ_OK;
}

/* A foreign key column may reference a column of the same type (strings
 * of any length; decimals of the same precision and scale): MySQL
 * refuses keys between other types, PostgreSQL compares them slowly. */
static int same_key_type(const sq_col *a, const sq_col *b) {
  if (a->type != b->type) return 0;
  if (a->type == SQ_T_DECIMAL) return a->precision == b->precision && a->scale == b->scale;
  return 1;
}

/* 1 when a key or an index of m starts with column c (it can serve
 * lookups by c, so the foreign key needs no index of its own). */
static int covered(const sq_model *m, int c) {
  if (m->npk >= 1 && m->pk[0] == c) return 1;
  const sq_col *col = &m->cols[c];
  if (col->unique) {
    if (!col->unique[0]) return 1;
    for (int j = 0; j < c; j++)
      if (m->cols[j].unique && !strcmp(m->cols[j].unique, col->unique)) return 0;
    return 1; /* the first column of its composite unique */
  }
  for (int i = 0; i < m->nidx; i++)
    if (m->idx[i].cols && m->idx[i].ncols >= 1 && m->idx[i].cols[0] == c) return 1;
  return 0;
}

/* A constraint may reference only a column that is unique by itself. */
static int unique_alone(const sq_model *m, int c) {
  if (m->npk == 1 && m->pk[0] == c) return 1;
  if (m->cols[c].unique && !m->cols[c].unique[0]) return 1;
  for (int i = 0; i < m->nidx; i++)
    if (m->idx[i].unique && m->idx[i].ncols == 1 && m->idx[i].cols && m->idx[i].cols[0] == c) return 1;
  return 0;
}

/* A foreign key to ensure on a holder model: planned (checked) first,
 * applied once every plan of the definition passed. */
typedef struct fkplan {
  sq_model *holder;
  char name[64];          /* the key column */
  const sq_model *target;
  int target_col;
  int allow_null;         /* for a column to append */
  int on_delete, on_update, constraints, join;
  int col;                /* existing column, or -1: append */
  int fk;                 /* existing foreign key record, or -1 */
} fkplan;

static int find_fk(const sq_model *m, int col) {
  for (int i = 0; i < m->nfks; i++)
    if (m->fks[i].col == col) return i;
  return -1;
}

static int merge_action(int given, int have) { return given != SQ_FK_DEFAULT ? given : have; }

static int check_fk(fkplan *p, sq_err *err) {
  sq_model *h = p->holder;
  const sq_col *ref = &p->target->cols[p->target_col];
  p->col = sq_model_find(h, p->name, strlen(p->name));
  p->fk = -1;
  int nullable = p->allow_null;
  if (p->col >= 0) {
    const sq_col *c = &h->cols[p->col];
    if (!same_key_type(c, ref))
      return sq_err_set(err, SQ_EUSAGE,
                        "column '%s' of model '%s' is %s but the key it references ('%s' of '%s') is %s; make them the same type",
                        c->name, h->name, sq_ctype_name(c->type), ref->name, p->target->name, sq_ctype_name(ref->type));
    nullable = c->allow_null;
    p->fk = find_fk(h, p->col);
    if (p->fk >= 0) {
      const sq_fk *f = &h->fks[p->fk];
      if (f->target != p->target || f->target_col != p->target_col)
        return sq_err_set(err, SQ_EUSAGE, "column '%s' of model '%s' is already a foreign key to %s.%s", c->name,
                          h->name, f->target->table, f->target->cols[f->target_col].name);
      if ((p->on_delete && f->on_delete && p->on_delete != f->on_delete) ||
          (p->on_update && f->on_update && p->on_update != f->on_update))
        return sq_err_set(err, SQ_EUSAGE, "foreign key '%s' of model '%s' is defined twice with different on_delete / on_update",
                          c->name, h->name);
      if (p->constraints != SQ_CONSTRAINTS_DEFAULT && f->constraints != SQ_CONSTRAINTS_DEFAULT &&
          p->constraints != f->constraints)
        return sq_err_set(err, SQ_EUSAGE, "foreign key '%s' of model '%s' is defined twice with different constraints",
                          c->name, h->name);
    }
  } else if (sq_model_find_assoc(h, p->name, strlen(p->name))) {
    return sq_err_set(err, SQ_EUSAGE, "foreign key '%s' of model '%s' would clash with its association of that name",
                      p->name, h->name);
  }
  int del = p->on_delete, upd = p->on_update;
  if (p->fk >= 0) {
    del = merge_action(del, h->fks[p->fk].on_delete);
    upd = merge_action(upd, h->fks[p->fk].on_update);
  }
  if (!nullable && (del == SQ_FK_SET_NULL || upd == SQ_FK_SET_NULL))
    return sq_err_set(err, SQ_EUSAGE, "foreign key '%s' of model '%s' is NOT NULL: set_null can't apply", p->name,
                      h->name);
  int cons = p->constraints;
  if (cons == SQ_CONSTRAINTS_DEFAULT && p->fk >= 0) cons = h->fks[p->fk].constraints;
  if (cons != SQ_CONSTRAINTS_OFF && !unique_alone(p->target, p->target_col))
    return sq_err_set(err, SQ_EUSAGE,
                      "'%s' of model '%s' is neither its primary key nor unique: a foreign key can't reference it "
                      "(make it unique, or set constraints = false)",
                      ref->name, p->target->name);
  return SQ_OK;
}

/* Appends the key column if needed, records (or merges) the foreign key
 * and gives it an index when nothing covers it. */
static int apply_fk(fkplan *p, sq_err *err) {
  sq_model *h = p->holder;
  const sq_col *ref = &p->target->cols[p->target_col];
  if (p->col < 0) {
    sq_coldef d;
    memset(&d, 0, sizeof d);
    d.name = p->name;
    d.type = ref->type;
    d.length = ref->length;
    d.precision = ref->precision;
    d.scale = ref->scale;
    d.allow_null = p->allow_null;
    d.default_value = sq_null();
    if (sq_model_append_column(h, &d, err)) return err->kind;
    p->col = h->ncols - 1;
  }
  if (p->fk >= 0) {
    sq_fk *f = &h->fks[p->fk];
    f->on_delete = merge_action(p->on_delete, f->on_delete);
    f->on_update = merge_action(p->on_update, f->on_update);
    if (p->constraints != SQ_CONSTRAINTS_DEFAULT) f->constraints = p->constraints;
    f->join |= p->join;
    h->generation++;
    return SQ_OK;
  }
  if (h->nfks == h->capfks) {
    int cap = h->capfks ? h->capfks * 2 : 4;
    sq_fk *v = realloc(h->fks, sizeof *v * (size_t)cap);
    if (!v) return nomem(err);
    h->fks = v;
    h->capfks = cap;
  }
  char cname[64];
  join_name(cname, h->table, h->cols[p->col].name, "fkey");
  sq_fk f;
  memset(&f, 0, sizeof f);
  f.col = p->col;
  f.target = p->target;
  f.target_col = p->target_col;
  f.on_delete = p->on_delete;
  f.on_update = p->on_update;
  f.constraints = p->constraints;
  f.join = p->join;
  if (!(f.name = malloc(strlen(cname) + 1))) return nomem(err);
  memcpy(f.name, cname, strlen(cname) + 1);
  h->fks[h->nfks++] = f;
  h->generation++;
  if (covered(h, p->col)) return SQ_OK;
  const char *cols[1] = {h->cols[p->col].name};
  char iname[64];
  join_name(iname, h->table, cols[0], NULL);
  for (int i = 0; i < h->nidx; i++)
    if (h->idx[i].name && !strcmp(h->idx[i].name, iname)) {
      join_name(iname, h->table, cols[0], "fk");
      break;
    }
  return sq_model_append_index(h, iname, cols, 1, 0, err);
}

/* ------------------------------------------------------------------ */
/* Scope: a deep copy of a where tree                                   */
/* ------------------------------------------------------------------ */

static const char *arena_str(sq_arena *a, const char *s, size_t n) {
  char *d = sq_arena_alloc(a, n + 1);
  if (!d) return NULL;
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static int copy_value(sq_arena *a, sq_value *dst, const sq_value *src) {
  *dst = *src;
  if ((src->type == SQ_VTEXT || src->type == SQ_VBLOB) && src->u.s.p) {
    if (!(dst->u.s.p = arena_str(a, src->u.s.p, src->u.s.n))) return -1;
  }
  return 0;
}

static int copy_operands(sq_arena *a, const sq_operand *src, int n, const sq_operand **out, int depth, sq_err *err);

static int copy_operand(sq_arena *a, sq_operand *d, const sq_operand *s, int depth, sq_err *err) {
  if (depth > 100) return sq_err_set(err, SQ_EUSAGE, "scope: expression nested too deep");
  *d = *s;
  if (s->inc) return sq_err_set(err, SQ_EUSAGE, "scope: an association's scope can only name the target's own columns");
  if (copy_value(a, &d->val, &s->val)) return nomem(err);
  if (s->name && !(d->name = arena_str(a, s->name, strlen(s->name)))) return nomem(err);
  if (s->nargs > 0 && copy_operands(a, s->args, s->nargs, &d->args, depth + 1, err)) return err->kind;
  return SQ_OK;
}

static int copy_operands(sq_arena *a, const sq_operand *src, int n, const sq_operand **out, int depth, sq_err *err) {
  if (!src) return sq_err_set(err, SQ_EUSAGE, "scope: operand list missing");
  sq_operand *v = sq_arena_alloc(a, sizeof *v * (size_t)n);
  if (!v) return nomem(err);
  for (int i = 0; i < n; i++)
    if (copy_operand(a, &v[i], &src[i], depth, err)) return err->kind;
  *out = v;
  return SQ_OK;
}

static sq_expr *copy_expr(sq_arena *a, const sq_expr *e, int depth, sq_err *err) {
  if (!e) {
    sq_err_set(err, SQ_EUSAGE, "scope: empty expression");
    return NULL;
  }
  if (depth > 200) {
    sq_err_set(err, SQ_EUSAGE, "scope: nested more than 200 levels deep");
    return NULL;
  }
  if (e->sub) {
    sq_err_set(err, SQ_EUSAGE, "scope: an association's scope can't hold a subquery");
    return NULL;
  }
  sq_expr *d = sq_arena_alloc(a, sizeof *d);
  if (!d) {
    nomem(err);
    return NULL;
  }
  *d = *e;
  if (e->nvals > 0) {
    if (!e->vals) {
      sq_err_set(err, SQ_EUSAGE, "scope: value count without values");
      return NULL;
    }
    sq_value *v = sq_arena_alloc(a, sizeof *v * (size_t)e->nvals);
    if (!v) {
      nomem(err);
      return NULL;
    }
    for (int i = 0; i < e->nvals; i++)
      if (copy_value(a, &v[i], &e->vals[i])) {
        nomem(err);
        return NULL;
      }
    d->vals = v;
  }
  if (e->nkids > 0) {
    if (!e->kids) {
      sq_err_set(err, SQ_EUSAGE, "scope: operand count without operands");
      return NULL;
    }
    sq_expr **k = sq_arena_alloc(a, sizeof *k * (size_t)e->nkids);
    if (!k) {
      nomem(err);
      return NULL;
    }
    for (int i = 0; i < e->nkids; i++)
      if (!(k[i] = copy_expr(a, e->kids[i], depth + 1, err))) return NULL;
    d->kids = k;
  }
  if (e->raw && !(d->raw = arena_str(a, e->raw, e->raw_len))) {
    nomem(err);
    return NULL;
  }
  if (e->lhs) {
    sq_operand *o = sq_arena_alloc(a, sizeof *o);
    if (!o) {
      nomem(err);
      return NULL;
    }
    if (copy_operand(a, o, e->lhs, depth, err)) return NULL;
    d->lhs = o;
  }
  if (e->nrhs > 0 && copy_operands(a, e->rhs, e->nrhs, &d->rhs, depth, err)) return NULL;
  return d;
}

/* ------------------------------------------------------------------ */
/* Defining                                                             */
/* ------------------------------------------------------------------ */

static int in_list(const char *s, const char *const *list, int n) {
  for (int i = 0; list && i < n; i++)
    if (list[i] && !strcmp(list[i], s)) return 1;
  return 0;
}

/* The instance methods an association installs (lua/sqorm/assoc.lua):
 * get_<as>, set_<as>, then count_ / has_ / add_ / remove_<as> and
 * create_<singular> for to-many, create_<as> for to-one. */
#define NACCESSORS 7
static int accessor_names(int many, const char *as, const char *singular, char out[NACCESSORS][80]) {
  int n = 0;
  snprintf(out[n++], 80, "get_%s", as);
  snprintf(out[n++], 80, "set_%s", as);
  if (many) {
    snprintf(out[n++], 80, "count_%s", as);
    snprintf(out[n++], 80, "has_%s", as);
    snprintf(out[n++], 80, "add_%s", as);
    snprintf(out[n++], 80, "remove_%s", as);
    snprintf(out[n++], 80, "create_%s", singular);
  } else {
    snprintf(out[n++], 80, "create_%s", as);
  }
  return n;
}

/* SQ_EUSAGE when a name of the new association (as, its accessors)
 * clashes with a column, a method or a name of another association of
 * source (its name or one of its accessors), naming both. */
static int check_accessors(const sq_model *source, const char *kname, int many, const char *as, const char *singular,
                           const sq_assoc_opts *opts, sq_err *err) {
  char mine[NACCESSORS][80], theirs[NACCESSORS][80];
  int nm = accessor_names(many, as, singular, mine);
  for (int i = 0; i < source->nassocs; i++) {
    const sq_assoc *e = source->assocs[i];
    int nt = accessor_names(sq_assoc_to_many(e), e->as, e->singular, theirs);
    const char *ekind = sq_assoc_kind_name(e->kind);
    for (int t = 0; t < nt; t++)
      if (!strcmp(as, theirs[t]))
        return sq_err_set(err, SQ_EUSAGE,
                          "%s '%s' of model '%s': its name clashes with the accessor %s() of %s '%s'", kname, as,
                          source->name, theirs[t], ekind, e->as);
    for (int j = 0; j < nm; j++) {
      if (!strcmp(mine[j], e->as))
        return sq_err_set(err, SQ_EUSAGE, "%s '%s' of model '%s': its accessor %s() clashes with %s '%s'", kname, as,
                          source->name, mine[j], ekind, e->as);
      for (int t = 0; t < nt; t++)
        if (!strcmp(mine[j], theirs[t]))
          return sq_err_set(err, SQ_EUSAGE,
                            "%s '%s' of model '%s': its accessor %s() clashes with the accessor of %s '%s'", kname,
                            as, source->name, mine[j], ekind, e->as);
    }
  }
  for (int j = 0; j < nm; j++) {
    if (sq_model_find(source, mine[j], strlen(mine[j])) >= 0)
      return sq_err_set(err, SQ_EUSAGE, "%s '%s' of model '%s': its accessor %s() clashes with the column '%s'", kname,
                        as, source->name, mine[j], mine[j]);
    if (in_list(mine[j], opts->reserved, opts->nreserved))
      return sq_err_set(err, SQ_EUSAGE, "%s '%s' of model '%s': its accessor %s() clashes with a method of that name",
                        kname, as, source->name, mine[j]);
  }
  return SQ_OK;
}

/* The join model through `table` already built for an association
 * between these two models (the reverse side defined first), or NULL. */
static sq_model *find_join_model(const sq_model *a, const sq_model *b, const char *table) {
  const sq_model *ms[2] = {a, b};
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < ms[k]->nassocs; i++) {
      const sq_assoc *x = ms[k]->assocs[i];
      if (x->kind == SQ_ASSOC_BELONGS_TO_MANY && x->owns_through && !strcmp(x->through->table, table))
        return x->through;
    }
  return NULL;
}

/* The join model for a table name: two key columns forming the primary
 * key, timestamps only when asked. */
static int build_join_model(const char *table, const sq_col *skey, const char *fk, const sq_col *tkey,
                            const char *ok, int timestamps, sq_model **out, sq_err *err) {
  sq_model_opts mo;
  memset(&mo, 0, sizeof mo);
  mo.table_name = table;
  mo.timestamps = timestamps ? 1 : 0;
  sq_model *jm;
  if (sq_model_new(table, &mo, &jm, err)) return err->kind;
  const sq_col *refs[2] = {skey, tkey};
  const char *names[2] = {fk, ok};
  for (int i = 0; i < 2; i++) {
    sq_coldef d;
    memset(&d, 0, sizeof d);
    d.name = names[i];
    d.type = refs[i]->type;
    d.length = refs[i]->length;
    d.precision = refs[i]->precision;
    d.scale = refs[i]->scale;
    d.primary_key = 1;
    d.default_value = sq_null();
    if (sq_model_add_column(jm, &d, err)) {
      sq_model_free(jm);
      return err->kind;
    }
  }
  if (sq_model_finish(jm, err)) {
    sq_model_free(jm);
    return err->kind;
  }
  *out = jm;
  return SQ_OK;
}

static int valid_action(int a) { return a >= SQ_FK_DEFAULT && a <= SQ_FK_NO_ACTION; }

int sq_model_associate(sq_model *source, int kind, sq_model *target, const sq_assoc_opts *opts,
                       const sq_assoc **out, sq_err *err) {
  sq_assoc_opts defaults;
  if (out) *out = NULL;
  if (!opts) {
    sq_assoc_opts_init(&defaults);
    opts = &defaults;
  }
  if (!source || !target) return sq_err_set(err, SQ_EUSAGE, "an association needs a source and a target model");
  if (!source->finished || !target->finished)
    return sq_err_set(err, SQ_EUSAGE, "associate models once they are finished ('%s', '%s')", source->name,
                      target->name);
  if (kind < SQ_ASSOC_BELONGS_TO || kind > SQ_ASSOC_BELONGS_TO_MANY)
    return sq_err_set(err, SQ_EUSAGE, "unknown association kind %d", kind);
  const char *kname = sq_assoc_kind_name(kind);
  if (!valid_action(opts->on_delete) || !valid_action(opts->on_update))
    return sq_err_set(err, SQ_EUSAGE, "%s: on_delete / on_update must be cascade, set_null, restrict or no_action",
                      kname);
  if (opts->constraints < SQ_CONSTRAINTS_DEFAULT || opts->constraints > SQ_CONSTRAINTS_DEFERRED)
    return sq_err_set(err, SQ_EUSAGE, "%s: unknown constraints mode %d", kname, opts->constraints);
  if (opts->fk_allow_null < -1 || opts->fk_allow_null > 1)
    return sq_err_set(err, SQ_EUSAGE, "%s: fk_allow_null must be -1, 0 or 1", kname);
  int many = kind == SQ_ASSOC_HAS_MANY || kind == SQ_ASSOC_BELONGS_TO_MANY;
  int btm = kind == SQ_ASSOC_BELONGS_TO_MANY;

  /* The name, and what it must not clash with. */
  char as[64], singular[64], plural[160];
  if (opts->as) {
    if (copy_name(as, opts->as, "association name", err)) return err->kind;
  } else {
    if (many) sq_pluralize(target->name, plural, sizeof plural);
    if (copy_name(as, many ? plural : target->name, "association name", err)) return err->kind;
  }
  if (strchr(as, '.'))
    return sq_err_set(err, SQ_EUSAGE, "association name '%s' can't hold '.' (it separates include paths)", as);
  if (sq_model_find(source, as, strlen(as)) >= 0)
    return sq_err_set(err, SQ_EUSAGE, "association name '%s' clashes with a column of model '%s'", as, source->name);
  if (sq_model_find_assoc(source, as, strlen(as)))
    return sq_err_set(err, SQ_EUSAGE, "model '%s' already has an association named '%s'", source->name, as);
  if (opts->singular) {
    if (copy_name(singular, opts->singular, "singular name", err)) return err->kind;
  } else if (many) {
    sq_singularize(as, singular, sizeof singular);
    if (!singular[0]) memcpy(singular, as, strlen(as) + 1);
  } else {
    memcpy(singular, as, strlen(as) + 1);
  }
  if (!btm && (opts->through || opts->through_model || opts->other_key))
    return sq_err_set(err, SQ_EUSAGE, "%s '%s': through and other_key belong to belongs_to_many", kname, as);
  if (check_accessors(source, kname, many, as, singular, opts, err)) return err->kind;
  if (in_list(as, opts->reserved, opts->nreserved))
    return sq_err_set(err, SQ_EUSAGE, "association name '%s' of model '%s' is reserved (a method name)", as,
                      source->name);

  /* The keys and the foreign keys to ensure. */
  fkplan plans[2];
  int nplans = 0;
  memset(plans, 0, sizeof plans);
  int scol = -1, tcol = -1;
  sq_model *through = NULL, *built = NULL;
  char fkname[64], okname[64];
  int fk_null = opts->fk_allow_null != 0;
  switch (kind) {
  case SQ_ASSOC_BELONGS_TO:
    if (opts->source_key) return sq_err_set(err, SQ_EUSAGE, "belongs_to '%s': source_key doesn't apply (give foreign_key)", as);
    if (key_col(target, opts->target_key, "target_key", &tcol, err)) return err->kind;
    if (opts->foreign_key ? copy_name(fkname, opts->foreign_key, "foreign key name", err)
                          : default_key(fkname, as, target->cols[tcol].name, "foreign key name", err))
      return err->kind;
    plans[nplans++] = (fkplan){source, "", target, tcol, fk_null, opts->on_delete, opts->on_update,
                               opts->constraints, 0, -1, -1};
    memcpy(plans[0].name, fkname, sizeof fkname);
    break;
  case SQ_ASSOC_HAS_ONE:
  case SQ_ASSOC_HAS_MANY:
    if (opts->target_key) return sq_err_set(err, SQ_EUSAGE, "%s '%s': target_key doesn't apply (give foreign_key)", kname, as);
    if (key_col(source, opts->source_key, "source_key", &scol, err)) return err->kind;
    if (opts->foreign_key ? copy_name(fkname, opts->foreign_key, "foreign key name", err)
                          : default_key(fkname, source->name, source->cols[scol].name, "foreign key name", err))
      return err->kind;
    plans[nplans++] = (fkplan){target, "", source, scol, fk_null, opts->on_delete, opts->on_update,
                               opts->constraints, 0, -1, -1};
    memcpy(plans[0].name, fkname, sizeof fkname);
    break;
  default: { /* belongs_to_many */
    if (key_col(source, opts->source_key, "source_key", &scol, err)) return err->kind;
    if (key_col(target, opts->target_key, "target_key", &tcol, err)) return err->kind;
    if (!opts->through == !opts->through_model)
      return sq_err_set(err, SQ_EUSAGE, "belongs_to_many '%s' needs through: a join table name or a join model", as);
    if (opts->foreign_key ? copy_name(fkname, opts->foreign_key, "foreign key name", err)
                          : default_key(fkname, source->name, source->cols[scol].name, "foreign key name", err))
      return err->kind;
    if (opts->other_key) {
      if (copy_name(okname, opts->other_key, "other key name", err)) return err->kind;
    } else {
      char sing[64];
      if (source == target) sq_singularize(as, sing, sizeof sing);
      if (default_key(okname, source == target ? sing : target->name, target->cols[tcol].name, "other key name", err))
        return err->kind;
    }
    if (!strcmp(fkname, okname))
      return sq_err_set(err, SQ_EUSAGE, "belongs_to_many '%s': foreign_key and other_key are both '%s'; name them apart",
                        as, fkname);
    if (opts->through_model) {
      through = opts->through_model;
      if (!through->finished) return sq_err_set(err, SQ_EUSAGE, "belongs_to_many '%s': the join model is not finished", as);
      if (through == source || through == target)
        return sq_err_set(err, SQ_EUSAGE, "belongs_to_many '%s': the join model must be a third model", as);
    } else {
      if (sq_ident_check("join table name", opts->through, strlen(opts->through), err)) return err->kind;
      through = find_join_model(source, target, opts->through);
      if (through && (sq_model_find(through, fkname, strlen(fkname)) < 0 ||
                      sq_model_find(through, okname, strlen(okname)) < 0))
        return sq_err_set(err, SQ_EUSAGE,
                          "join table '%s' is already defined with other key columns; give foreign_key and other_key matching it",
                          opts->through);
    }
    int cons = opts->constraints;
    plans[nplans++] = (fkplan){through, "", source, scol, 0, opts->on_delete, opts->on_update, cons, 1, -1, -1};
    memcpy(plans[0].name, fkname, sizeof fkname);
    plans[nplans++] = (fkplan){through, "", target, tcol, 0, opts->on_delete, opts->on_update, cons, 1, -1, -1};
    memcpy(plans[1].name, okname, sizeof okname);
    break;
  }
  }

  /* Check every plan before changing anything. A join model to build is
   * new, so its plans are checked once it exists. */
  if (btm && !through) {
    if (build_join_model(opts->through, &source->cols[scol], fkname, &target->cols[tcol], okname,
                         opts->through_timestamps, &built, err))
      return err->kind;
    through = built;
    plans[0].holder = plans[1].holder = through;
  }
  for (int i = 0; i < nplans; i++)
    if (check_fk(&plans[i], err)) goto fail;

  sq_assoc *a = calloc(1, sizeof *a);
  if (!a) {
    nomem(err);
    goto fail;
  }
  a->kind = kind;
  a->source = source;
  a->target = target;
  a->through = through;
  a->owns_through = built != NULL;
  a->on_delete = opts->on_delete;
  a->on_update = opts->on_update;
  a->constraints = opts->constraints;
  a->lazy_raise = opts->lazy_raise != 0;
  a->source_col = a->target_col = a->through_source_col = a->through_target_col = -1;
  a->as = malloc(strlen(as) + 1);
  a->singular = malloc(strlen(singular) + 1);
  if (!a->as || !a->singular) {
    a->owns_through = 0;
    assoc_free(a);
    nomem(err);
    goto fail;
  }
  memcpy(a->as, as, strlen(as) + 1);
  memcpy(a->singular, singular, strlen(singular) + 1);
  if (opts->scope) {
    if (!(a->scope_arena_ = sq_arena_new()) || !(a->scope = copy_expr(a->scope_arena_, opts->scope, 0, err))) {
      if (!a->scope_arena_) nomem(err);
      a->owns_through = 0;
      assoc_free(a);
      goto fail;
    }
  }
  if (source->nassocs == source->capassocs) {
    int cap = source->capassocs ? source->capassocs * 2 : 4;
    sq_assoc **v = realloc(source->assocs, sizeof *v * (size_t)cap);
    if (!v) {
      a->owns_through = 0;
      assoc_free(a);
      nomem(err);
      goto fail;
    }
    source->assocs = v;
    source->capassocs = cap;
  }
  /* From here on models change; only running out of memory can stop it. */
  source->assocs[source->nassocs++] = a;
  source->generation++;
  for (int i = 0; i < nplans; i++)
    if (apply_fk(&plans[i], err)) {
      /* Out of memory half way: the association goes (with a join model
       * it built); a column or key already added stays, harmless. */
      source->nassocs--;
      assoc_free(a);
      return err->kind;
    }
  switch (kind) {
  case SQ_ASSOC_BELONGS_TO:
    a->source_col = plans[0].col;
    a->target_col = tcol;
    break;
  case SQ_ASSOC_HAS_ONE:
  case SQ_ASSOC_HAS_MANY:
    a->source_col = scol;
    a->target_col = plans[0].col;
    break;
  default:
    a->source_col = scol;
    a->target_col = tcol;
    a->through_source_col = plans[0].col;
    a->through_target_col = plans[1].col;
    break;
  }
  if (out) *out = a;
  return SQ_OK;
fail:
  sq_model_free(built);
  return err->kind;
}
