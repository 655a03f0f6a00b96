/*
 * lvalidate.c - what goes into an instance before it is written: the
 * current time for timestamps, column defaults (values, now, UUIDs,
 * functions), instances built from tables of values, their values
 * collected for a statement, and validation (the core's checks plus Lua
 * patterns and functions, one error listing every failing field).
 */
#include "lmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The last formatted second, per thread (a state may run on any thread,
 * one at a time): timestamps change once a second, so formatting them
 * once a second is enough. */
static _Thread_local struct {
  int64_t secs;
  char text[32];
} now_cache = {-1, ""};

void lsq_now(char buf[32]) {
  int64_t secs = (int64_t)time(NULL);
  if (secs != now_cache.secs) {
    sq_format_datetime(secs, now_cache.text);
    now_cache.secs = secs;
  }
  memcpy(buf, now_cache.text, sizeof now_cache.text);
}

int lsq_is_now_text(const char *s, size_t n) {
  return n == 19 && now_cache.secs >= 0 && memcmp(s, now_cache.text, 19) == 0;
}

/* Applies defaults (values, now, uuid, functions) to nil slots. May
 * raise (a default function may). */
static void apply_defaults(lua_State *L, int midx, const lsq_model *mod, int iidx, const char *now) {
  for (int i = 0; i < mod->ncols; i++) {
    const sq_col *c = sq_model_col(mod->m, i);
    if (c->default_kind == SQ_DEFAULT_NONE && i != mod->uuid_pk) continue;
    if (lua_rawgeti(L, iidx, i + 1) != LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pop(L, 1);
    switch (c->default_kind) {
    case SQ_DEFAULT_VALUE:
      lsq_push_colval(L, c, &c->default_value);
      break;
    case SQ_DEFAULT_NOW:
      lua_pushlstring(L, now, c->type == SQ_T_DATE ? 10 : strlen(now));
      break;
    case SQ_DEFAULT_CALLBACK: {
      lua_getiuservalue(L, midx, MUV_EXTRA);
      lua_getfield(L, -1, "defaults");
      lua_rawgeti(L, -1, i + 1);
      lua_replace(L, -3);
      lua_pop(L, 1);
      lua_call(L, 0, 1);
      if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        continue;
      }
      sq_err e;
      sq_err_clear(&e);
      int rc = lsq_set_slot(L, mod, iidx, i + 1, -1, 0, &e);
      lua_pop(L, 1);
      if (rc) lsq_usage(L, "default function: %.900s", e.msg);
      continue;
    }
    default: { /* SQ_DEFAULT_UUIDV4, or a UUID key without a default */
      char u[37];
      sq_err e;
      sq_err_clear(&e);
      if (sq_uuid_v4(u, &e)) lsq_raise(L, &e);
      lua_pushlstring(L, u, 36);
      break;
    }
    }
    lua_rawseti(L, iidx, i + 1);
  }
}

void lsq_instance_defaults(lua_State *L, int midx, int iidx) {
  char now[32];
  lsq_now(now);
  apply_defaults(L, midx, lua_touserdata(L, midx), lua_absindex(L, iidx), now);
}

void lsq_instance_prepare_insert(lua_State *L, int midx, int iidx, const char *now) {
  const lsq_model *mod = lua_touserdata(L, midx);
  apply_defaults(L, midx, mod, iidx, now);
  int ts[2] = {mod->created_col, mod->updated_col};
  int nowidx = 0; /* the DATETIME string of now, pushed once for both */
  for (int k = 0; k < 2; k++) {
    if (ts[k] < 0) continue;
    int t = lua_rawgeti(L, iidx, ts[k] + 1);
    lua_pop(L, 1);
    if (t != LUA_TNIL) continue;
    if (sq_model_col(mod->m, ts[k])->type == SQ_T_DATE) {
      lua_pushlstring(L, now, 10);
    } else {
      if (!nowidx) {
        lua_pushstring(L, now);
        nowidx = lua_gettop(L);
      }
      lua_pushvalue(L, nowidx);
    }
    lua_rawseti(L, iidx, ts[k] + 1);
  }
  if (nowidx) lua_remove(L, nowidx);
}

int lsq_instance_from(lua_State *L, int midx, int imtidx, int vidx, int isnew, const unsigned char *fields, int bad,
                      sq_err *err) {
  const lsq_model *mod = lua_touserdata(L, midx);
  if (bad) bad = lua_absindex(L, bad);
  lua_createtable(L, mod->ncols, 0);
  lua_pushvalue(L, imtidx);
  lua_setmetatable(L, -2);
  int iidx = lua_gettop(L);
  if (isnew) lsq_state_set(L, mod, iidx, STATE_NEW);
  if (vidx) {
    lua_getiuservalue(L, midx, MUV_NAMES);
    int nidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, vidx)) {
      int slot = lua_type(L, -2) == LUA_TSTRING ? lsq_slot_of(L, nidx, lua_gettop(L) - 1) : 0;
      int rc;
      if (!slot) rc = lsq_no_column(L, mod, lua_gettop(L) - 1, err);
      else if (fields && !fields[slot - 1]) rc = SQ_OK; /* not to be written: as if not given */
      else if ((rc = lsq_version_refuse(mod, slot, err))) (void)0;
      else if ((rc = lsq_set_slot(L, mod, iidx, slot, -1, 0, err)) && bad &&
               (rc = lsq_bad_value(L, bad, mod->cols[slot - 1], err)) == SQ_OK)
        sq_err_clear(err);
      if (rc) {
        lua_settop(L, iidx - 1);
        return rc;
      }
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return SQ_OK;
}

int lsq_instance_values(lua_State *L, const lsq_model *mod, int iidx, int *cols, sq_value *vals, sq_arena *a,
                        sq_err *err) {
  int n = 0;
  for (int i = 0; i < mod->ncols; i++) {
    if (lua_rawgeti(L, iidx, i + 1) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    char buf[48];
    int rc = lsq_col_value(L, -1, sq_model_col(mod->m, i), &vals[n], buf, a, err);
    lua_pop(L, 1); /* the instance keeps the string alive */
    if (rc) return -1;
    cols[n++] = i;
  }
  return n;
}

void lsq_instance_fill(lua_State *L, const lsq_model *mod, int iidx, int aidx) {
  for (int i = 1; i <= mod->ncols; i++) {
    lua_rawgeti(L, aidx, i);
    lua_rawseti(L, iidx, i);
  }
}

/* ---------------------------------------------------------------- */
/* validation                                                         */
/* ---------------------------------------------------------------- */

/* The message of a failed Lua validator: an error string without its
 * "file:line: " prefix, a sqorm error's message, or a default. */
static void validator_message(lua_State *L, const char *name) {
  if (lua_type(L, -1) == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    const char *p = s;
    /* strip "chunk:123: " */
    const char *colon = strchr(p, ':');
    if (colon) {
      const char *q = colon + 1;
      while (*q >= '0' && *q <= '9') q++;
      if (q > colon + 1 && q[0] == ':' && q[1] == ' ') p = q + 2;
    }
    if (p != s) {
      lua_pushstring(L, p);
      lua_remove(L, -2);
    }
    return;
  }
  if (lua_type(L, -1) == LUA_TTABLE && lua_getfield(L, -1, "message") == LUA_TSTRING) {
    lua_remove(L, -2);
    return;
  }
  lua_settop(L, lua_gettop(L) - (lua_type(L, -1) == LUA_TTABLE ? 2 : 1));
  lua_pushfstring(L, "failed validation '%s'", name);
}

/*
 * Runs the Lua validators of column c on the value at vidx. On failure
 * pushes the message and returns 1.
 */
static int lua_checks(lua_State *L, int midx, int c, int vidx, int inst) {
  lua_getiuservalue(L, midx, MUV_EXTRA);
  lua_getfield(L, -1, "validators");
  lua_rawgeti(L, -1, c + 1);
  int vt = lua_gettop(L);
  if (lua_type(L, vt) != LUA_TTABLE) {
    lua_pop(L, 3);
    return 0;
  }
  /* pattern: a Lua pattern the string form must match */
  if (lua_getfield(L, vt, "pattern") == LUA_TSTRING) {
    lua_getfield(L, vt - 2, "find");
    lua_pushvalue(L, vidx);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_tolstring(L, -1, NULL), lua_remove(L, -2);
    lua_pushvalue(L, -3);
    if (lua_pcall(L, 2, 1, 0) != LUA_OK || lua_isnil(L, -1)) {
      lua_pop(L, 1);
      lua_pushfstring(L, "must match the pattern '%s'", lua_tostring(L, -1));
      lua_replace(L, vt - 2);
      lua_settop(L, vt - 2);
      return 1;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* functions: { name, fn } pairs in the list part */
  int n = (int)lua_rawlen(L, vt);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, vt, i);
    lua_rawgeti(L, -1, 1); /* name */
    lua_rawgeti(L, -2, 2); /* fn */
    lua_pushvalue(L, vidx);
    if (inst) lua_pushvalue(L, inst);
    else lua_pushnil(L);
    int failed = 0;
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
      validator_message(L, lua_tostring(L, -2));
      failed = 1;
    } else if (!lua_toboolean(L, -2) && (lua_type(L, -2) == LUA_TBOOLEAN || !lua_isnil(L, -1))) {
      /* false, or nil + message */
      if (lua_type(L, -1) == LUA_TSTRING) {
        lua_remove(L, -2);
      } else {
        lua_pop(L, 2);
        lua_pushfstring(L, "failed validation '%s'", lua_tostring(L, -1));
      }
      failed = 1;
    } else {
      lua_pop(L, 2);
    }
    if (failed) {
      lua_replace(L, vt - 2);
      lua_settop(L, vt - 2);
      return 1;
    }
    lua_pop(L, 2);
  }
  lua_pop(L, 3);
  return 0;
}

/* The problem text of a one-field core message "validation failed:
 * name: problem". */
static const char *strip_problem(const char *msg, const char *name) {
  const char *p = msg;
  static const char head[] = "validation failed: ";
  if (!strncmp(p, head, sizeof head - 1)) p += sizeof head - 1;
  size_t n = strlen(name);
  if (!strncmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ') p += n + 2;
  return p;
}

/*
 * The common case of lsq_validate, cheaply: every value given here came
 * through lsq_col_value, so it already has its column's type, and the
 * core can only object to a NULL in a NOT NULL column, to a rule beyond
 * the type (CF_RULES), to a text longer than STRING(n) allows (never when
 * it has at most n bytes), or, for an insert, to a required column left
 * out.
 * Only those columns go to sq_model_validate (so, e.g., timestamps are
 * not parsed again). Returns 0 when all is well, -1 when lsq_validate
 * must look closer (a failure, or a case this does not handle).
 */
static int validate_quick(const lsq_model *mod, const int *cols, const sq_value *vals, int n, int partial) {
  enum { QUICK_MAX = 64 };
  int qc[QUICK_MAX];
  sq_value qv[QUICK_MAX];
  int k = 0, nreq = 0;
  for (int i = 0; i < n; i++) {
    int c = cols[i];
    unsigned char f = mod->cflags[c];
    if (f & CF_REQUIRED) nreq++;
    const sq_col *col = mod->cols[c];
    int check = vals[i].type == SQ_VNULL ? !col->allow_null
                                         : (f & CF_RULES) || ((f & CF_MAXLEN) && (vals[i].type != SQ_VTEXT ||
                                                                                   vals[i].u.s.n > (size_t)col->length));
    if (check) {
      if (k == QUICK_MAX) return -1;
      qc[k] = c;
      qv[k++] = vals[i];
    }
  }
  if (!partial && nreq < mod->nrequired) return -1;
  if (k == 0) return 0;
  sq_err e;
  sq_err_clear(&e);
  return sq_model_validate(mod->m, qc, qv, k, 1, &e) == SQ_OK ? 0 : -1;
}

/* The problem of a conversion message ("column 'coins' expects an
 * integer ..., got ...") without its "column 'coins' " head. */
static const char *conv_problem(const char *msg, const sq_col *c) {
  static const char head[] = "column '";
  if (!strncmp(msg, head, sizeof head - 1)) {
    const char *p = msg + sizeof head - 1;
    if (!strncmp(p, c->name, c->name_len) && p[c->name_len] == '\'' && p[c->name_len + 1] == ' ')
      return p + c->name_len + 2;
  }
  return msg;
}

int lsq_bad_value(lua_State *L, int bad, const sq_col *c, const sq_err *err) {
  if (err->kind != SQ_EUSAGE) return err->kind; /* out of memory: not the value's fault */
  if (lua_type(L, bad) != LUA_TTABLE) {
    lua_newtable(L);
    lua_replace(L, bad);
  }
  lua_pushstring(L, conv_problem(err->msg, c));
  lua_setfield(L, bad, c->name);
  return SQ_OK;
}

/* Replaces the fields table at fields (name -> problem) with the
 * validation error listing them, in column order. */
void lsq_push_invalid(lua_State *L, const lsq_model *mod, int fields) {
  lua_pushliteral(L, "validation failed: ");
  int k = 0;
  for (int c = 0; c < mod->ncols; c++) {
    const sq_col *col = mod->cols[c];
    if (lua_getfield(L, fields, col->name) == LUA_TNIL) {
      lua_pop(L, 1);
      continue;
    }
    lua_pushfstring(L, "%s%s: %s", k++ ? "; " : "", col->name, lua_tostring(L, -1));
    lua_remove(L, -2);
    lua_concat(L, 2);
  }
  int msgidx = lua_gettop(L);
  sq_err v;
  sq_err_clear(&v);
  sq_err_set(&v, SQ_EVALIDATION, "validation failed");
  lsq_push_error(L, &v);
  lua_pushvalue(L, msgidx);
  lua_setfield(L, -2, "message");
  lua_pushvalue(L, fields);
  lua_setfield(L, -2, "fields");
  lua_replace(L, fields);
  lua_settop(L, fields);
}

int lsq_validate(lua_State *L, int midx, const lsq_model *mod, const int *cols, const sq_value *vals, int n,
                 int flags, int inst, int bad) {
  int partial = (flags & LSQ_V_PARTIAL) != 0, lua = mod->has_lua_checks && !(flags & LSQ_V_CORE);
  if (bad) bad = lua_absindex(L, bad);
  int has_bad = bad && lua_type(L, bad) == LUA_TTABLE;
  if (!has_bad && !lua && validate_quick(mod, cols, vals, n, partial) == 0) return 0;
  sq_err e;
  sq_err_clear(&e);
  int rc = sq_model_validate(mod->m, cols, vals, n, partial, &e);
  if (rc == SQ_OK && !lua && !has_bad) return 0;
  if (rc && rc != SQ_EVALIDATION) {
    lsq_push_error(L, &e);
    return 1;
  }
  /* Field by field: which failed and why. Values that could not even be
   * converted (bad) are listed with the rest. */
  int nfail = 0;
  unsigned char given_small[256], *given;
  if (mod->ncols > (int)sizeof given_small) given = lua_newuserdatauv(L, (size_t)mod->ncols, 0);
  else given = given_small;
  memset(given, 0, (size_t)mod->ncols);
  if (has_bad) {
    lua_pushvalue(L, bad);
    lua_pushnil(L);
    while (lua_next(L, bad)) {
      lua_pop(L, 1);
      size_t kn;
      const char *k = lua_tolstring(L, -1, &kn);
      int c = sq_model_find(mod->m, k, kn);
      if (c >= 0) given[c] = 1;
      nfail++;
    }
  } else {
    lua_createtable(L, 0, 4);
  }
  int fields = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    int c = cols[i];
    const sq_col *col = mod->cols[c];
    given[c] = 1;
    sq_err e1;
    sq_err_clear(&e1);
    if (rc && sq_model_validate(mod->m, &c, &vals[i], 1, 1, &e1) == SQ_EVALIDATION) {
      if ((mod->cflags[c] & CF_NOT_EMPTY) && (vals[i].type == SQ_VTEXT || vals[i].type == SQ_VBLOB) &&
          vals[i].u.s.n == 0)
        lua_pushliteral(L, "must not be empty");
      else lua_pushstring(L, strip_problem(e1.msg, col->name));
      lua_setfield(L, fields, col->name);
      nfail++;
      continue;
    }
    if (lua && (mod->cflags[c] & CF_LUA_VALIDATE) && vals[i].type != SQ_VNULL) {
      lsq_push_colval(L, col, &vals[i]);
      int vidx = lua_gettop(L);
      if (lua_checks(L, midx, c, vidx, inst)) {
        lua_setfield(L, fields, col->name);
        nfail++;
      }
      lua_settop(L, vidx - 1);
    }
  }
  if (rc && !partial) {
    for (int c = 0; c < mod->ncols; c++) {
      if (given[c] || !(mod->cflags[c] & CF_REQUIRED)) continue;
      lua_pushliteral(L, "cannot be null");
      lua_setfield(L, fields, mod->cols[c]->name);
      nfail++;
    }
  }
  if (nfail == 0) {
    lua_settop(L, fields - 1 - (given != given_small));
    return 0;
  }
  lsq_push_invalid(L, mod, fields);
  if (given != given_small) lua_remove(L, -2);
  return 1;
}


/* Raises the failed conversion err of a value for column c as a
 * validation error naming the field (form input of the wrong type). */
int lsq_raise_bad_value(lua_State *L, const lsq_model *mod, const sq_col *c, const sq_err *err) {
  if (err->kind != SQ_EUSAGE) return lsq_raise(L, err);
  lua_pushnil(L);
  int bad = lua_gettop(L);
  lsq_bad_value(L, bad, c, err);
  lsq_push_invalid(L, mod, bad);
  return lua_error(L);
}

