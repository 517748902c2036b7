/* rackpulsectl audit verify | export | --deploy-id X: the audit log's hash
 * chain checked from an export (a file, or fetched from the API) or from
 * the ledger's audit LMDB itself; the export as JSON lines; one deploy's
 * story in the order it was audited. Exit status of verify: 0 the chain is
 * whole, 1 a gap, an edit or a cut, 2 an error (unreadable input). */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_chain.h"
#include "ctl_common.h"

/* Verifies the JSON lines of `text` (an export, its header line first).
 * Returns 0, 1 or EXIT_ERROR. */
static int verify_lines(char *text, const char *what) {
  struct rp_chain_verify v = {0};
  char err[512];
  size_t lineno = 0;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    lineno++;
    json_error_t je;
    json_t *e = json_loads(line, 0, &je);
    if (e == NULL) {
      printf("%s:%zu: BROKEN: not JSON (%s)\n", what, lineno, je.text);
      return 1;
    }
    json_t *hdr = json_object_get(e, "audit_export");
    if (hdr != NULL && lineno == 1) {
      const char *hh = json_string_value(json_object_get(hdr, "head_hash"));
      const char *th = json_string_value(json_object_get(hdr, "tip_hash"));
      v.have_head = json_integer_value(json_object_get(hdr, "after")) == 0;
      v.head_seq = (uint64_t)json_integer_value(json_object_get(hdr, "head_seq"));
      snprintf(v.head_hash, sizeof(v.head_hash), "%s", hh ? hh : "");
      v.have_tip = true;
      v.tip_seq = (uint64_t)json_integer_value(json_object_get(hdr, "tip_seq"));
      snprintf(v.tip_hash, sizeof(v.tip_hash), "%s", th ? th : "");
      json_decref(e);
      continue;
    }
    int rc = rp_chain_verify_next(&v, e, err, sizeof(err));
    json_decref(e);
    if (rc != 0) {
      printf("%s:%zu: BROKEN: %s\n", what, lineno, err);
      return 1;
    }
  }
  if (rp_chain_verify_end(&v, err, sizeof(err)) != 0) {
    printf("%s: BROKEN: %s\n", what, err);
    return 1;
  }
  printf("%s: ok: %" PRIu64 " entries, seq %" PRIu64 "..%" PRIu64 ", chain whole\n", what,
         v.entries, v.entries ? v.last_seq - v.entries + 1 : 0, v.last_seq);
  return 0;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  for (;;) {
    if (*len + 65536 + 1 > cap) {
      char *grown = realloc(buf, cap = cap * 2 + 65536 + 1);
      if (grown == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = grown;
    }
    size_t n = fread(buf + *len, 1, cap - *len - 1, f);
    *len += n;
    if (n == 0)
      break;
  }
  if (buf != NULL)
    buf[*len] = '\0';
  if (f != stdin)
    fclose(f);
  return buf;
}

static uint64_t be64(const void *p) {
  const unsigned char *b = p;
  uint64_t u = 0;
  for (int i = 0; i < 8; i++)
    u = u << 8 | b[i];
  return u;
}

/* "head"/"tip" of chain_meta into seq and hex hash. */
static void meta(MDB_txn *txn, MDB_dbi dbi, const char *which, bool *have, uint64_t *seq,
                 char hash[RP_CHAIN_HEX]) {
  MDB_val k = {strlen(which), (void *)which}, v;
  *have = true;
  *seq = 0;
  hash[0] = '\0';
  if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size == 40) {
    *seq = be64(v.mv_data);
    rp_chain_to_hex((const uint8_t *)v.mv_data + 8, hash);
  }
}

static int open_env(const char *dir, unsigned flags, MDB_env **env) {
  int rc = mdb_env_create(env);
  if (rc != 0)
    return rc;
  if ((rc = mdb_env_set_maxdbs(*env, 4)) == 0 &&
      (rc = mdb_env_open(*env, dir, MDB_RDONLY | flags, 0)) == 0)
    return 0;
  mdb_env_close(*env);
  *env = NULL;
  return rc;
}

/* Walks the chain index of the audit LMDB at dir; 0, 1 or EXIT_ERROR. */
static int verify_lmdb(const char *dir) {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi audit, chain, cmeta;
  MDB_cursor *c;
  /* Read-only with LMDB's reader lock (safe beside a running aggregator);
   * without it only when the lock file cannot be opened (another user's
   * copy: then the aggregator must not be writing it). */
  int rc = open_env(dir, 0, &env);
  if (rc == EACCES || rc == EROFS)
    rc = open_env(dir, MDB_NOLOCK, &env);
  if (rc == 0 && (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) == 0) {
    if ((rc = mdb_dbi_open(txn, "audit", 0, &audit)) != 0 ||
        (rc = mdb_dbi_open(txn, "chain", 0, &chain)) != 0 ||
        (rc = mdb_dbi_open(txn, "chain_meta", 0, &cmeta)) != 0)
      mdb_txn_abort(txn);
  }
  if (rc != 0) {
    fprintf(stderr,
            "rackpulsectl: audit verify: %s: %s (the ledger's audit directory, e.g. "
            "STORE/ledger/audit)\n",
            dir, mdb_strerror(rc));
    if (env != NULL)
      mdb_env_close(env);
    return EXIT_ERROR;
  }
  struct rp_chain_verify v = {0};
  meta(txn, cmeta, "head", &v.have_head, &v.head_seq, v.head_hash);
  meta(txn, cmeta, "tip", &v.have_tip, &v.tip_seq, v.tip_hash);
  char err[512];
  int result = 0;
  MDB_val k, val;
  mdb_cursor_open(txn, chain, &c);
  for (int get = mdb_cursor_get(c, &k, &val, MDB_FIRST); get == 0 && result == 0;
       get = mdb_cursor_get(c, &k, &val, MDB_NEXT)) {
    uint64_t seq = k.mv_size == 8 ? be64(k.mv_data) : 0;
    MDB_val ak = {val.mv_size > 40 ? val.mv_size - 40 : 0, (char *)val.mv_data + 40}, text;
    json_t *e = NULL;
    if (val.mv_size <= 40 || mdb_get(txn, audit, &ak, &text) != 0) {
      printf("%s: BROKEN: entry seq %" PRIu64 " is indexed but its record is gone\n", dir, seq);
      result = 1;
    } else if ((e = json_loadb(text.mv_data, text.mv_size, 0, NULL)) == NULL) {
      printf("%s: BROKEN: entry seq %" PRIu64 " is not JSON (edited)\n", dir, seq);
      result = 1;
    } else if (rp_chain_verify_next(&v, e, err, sizeof(err)) != 0) {
      printf("%s: BROKEN: %s\n", dir, err);
      result = 1;
    } else if (json_integer_value(json_object_get(e, "seq")) != (json_int_t)seq) {
      printf("%s: BROKEN: the index says seq %" PRIu64 ", the entry says another\n", dir, seq);
      result = 1;
    }
    json_decref(e);
  }
  mdb_cursor_close(c);
  MDB_stat st;
  if (result == 0 && mdb_stat(txn, audit, &st) == 0 && st.ms_entries != v.entries) {
    printf("%s: BROKEN: %zu records but %" PRIu64 " in the chain (inserted or removed)\n", dir,
           (size_t)st.ms_entries, v.entries);
    result = 1;
  }
  if (result == 0 && rp_chain_verify_end(&v, err, sizeof(err)) != 0) {
    printf("%s: BROKEN: %s\n", dir, err);
    result = 1;
  }
  if (result == 0)
    printf("%s: ok: %" PRIu64 " entries, seq %" PRIu64 "..%" PRIu64 ", chain whole\n", dir,
           v.entries, v.head_seq + 1, v.entries ? v.last_seq : v.head_seq);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return result;
}

static char *fetch_export(const struct args *a, size_t *len) {
  long status = 0;
  char *text = ctl_get_text(a->base, "/v1/audit/export", len, &status, NULL, NULL, 0);
  if (text != NULL && status != 200) {
    fprintf(stderr, "rackpulsectl: audit export: HTTP %ld: %.200s\n", status, text);
    free(text);
    return NULL;
  }
  return text;
}

static void print_story(const json_t *j) {
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(j, "decisions"), i, e) {
    const char *action = json_string_value(json_object_get(e, "action"));
    const char *decision = json_string_value(json_object_get(e, "decision"));
    char what[160];
    if (action == NULL)
      snprintf(what, sizeof(what), "gate %s %.2f kW%s", decision ? decision : "?",
               json_number_value(json_object_get(e, "kw")),
               json_object_get(e, "override") ? " (OVERRIDE)" : "");
    else if (strncmp(action, "canary", 6) == 0)
      snprintf(what, sizeof(what), "%s %s %s", action,
               json_string_value(json_object_get(json_object_get(e, "canary"), "id")),
               json_string_value(json_object_get(json_object_get(e, "canary"), "state")));
    else
      snprintf(what, sizeof(what), "%s", action);
    printf("%lld  seq %-6lld %-10s %-40s client %s  policy %s\n",
           (long long)json_integer_value(json_object_get(e, "evaluated_at_ms")),
           (long long)json_integer_value(json_object_get(e, "seq")),
           json_string_value(json_object_get(e, "rack")), what,
           json_string_value(json_object_get(e, "client")),
           json_string_value(json_object_get(e, "policy_version")));
  }
}

int ctl_audit(const struct args *a, const char *sub) {
  if (sub == NULL && a->deploy_id != NULL) {
    char path[512] = "/v1/audit";
    ctl_add_query(path, sizeof(path), "deploy_id", a->deploy_id);
    ctl_add_query(path, sizeof(path), "limit", a->limit);
    return ctl_show(a, "audit", path, print_story);
  }
  size_t len = 0;
  if (sub != NULL && strcmp(sub, "export") == 0) {
    char *text = fetch_export(a, &len);
    if (text == NULL)
      return EXIT_ERROR;
    FILE *out = a->file ? fopen(a->file, "w") : stdout;
    int rc = out != NULL && fwrite(text, 1, len, out) == len ? 0 : EXIT_ERROR;
    if (out != NULL && out != stdout && fclose(out) != 0)
      rc = EXIT_ERROR;
    free(text);
    if (rc != 0)
      fprintf(stderr, "rackpulsectl: audit export: cannot write %s\n", a->file);
    return rc;
  }
  if (sub != NULL && strcmp(sub, "verify") == 0) {
    if (a->ledger != NULL)
      return verify_lmdb(a->ledger);
    char *text = a->file ? read_file(a->file, &len) : fetch_export(a, &len);
    if (text == NULL) {
      if (a->file)
        fprintf(stderr, "rackpulsectl: audit verify: cannot read %s\n", a->file);
      return EXIT_ERROR;
    }
    int rc = verify_lines(text, a->file ? a->file : "export");
    free(text);
    return rc;
  }
  fprintf(stderr, "rackpulsectl: audit: expected 'audit verify', 'audit export' or "
                  "'audit --deploy-id X'\n");
  return EXIT_ERROR;
}
