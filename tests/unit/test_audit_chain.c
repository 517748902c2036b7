/* test_audit_chain: the audit log's hash chain (audit_chain.c) and its
 * LMDB ring (ledger_audit.c): sealing, verification catching an edit, a
 * gap, a cut and a broken link; eviction by the ring's cap moving the
 * chain's head so that what is kept still verifies; a ledger reopened
 * continuing the chain; and the tokens file of named clients (auth.c):
 * roles, the 0640 rule, the shared token as client "shared". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aggregator/audit_chain.h"
#include "aggregator/auth.h"
#include "aggregator/ledger.h"

static json_t *entry(int i) {
  return json_pack("{s:s, s:s, s:I, s:f, s:s}", "rack", "r1", "decision_id", "d", "evaluated_at_ms",
                   (json_int_t)(1000 + i), "kw", 1.5 * i, "decision", "allow");
}

/* n sealed entries from seq 1. */
static json_t *chain(int n) {
  json_t *all = json_array();
  char prev[RP_CHAIN_HEX] = "", hash[RP_CHAIN_HEX];
  for (int i = 1; i <= n; i++) {
    json_t *e = entry(i);
    assert_int_equal(rp_chain_seal(e, (uint64_t)i, prev, hash), 0);
    memcpy(prev, hash, sizeof(prev));
    json_array_append_new(all, e);
  }
  return all;
}

static int verify(json_t *all, bool anchored, char *err, size_t errlen) {
  struct rp_chain_verify v = {.have_head = anchored, .have_tip = anchored};
  if (anchored) {
    json_t *last = json_array_get(all, json_array_size(all) - 1);
    v.tip_seq = (uint64_t)json_integer_value(json_object_get(last, "seq"));
    snprintf(v.tip_hash, sizeof(v.tip_hash), "%s",
             json_string_value(json_object_get(last, "hash")));
  }
  size_t i;
  json_t *e;
  json_array_foreach(all, i, e) {
    if (rp_chain_verify_next(&v, e, err, errlen) != 0)
      return -1;
  }
  return rp_chain_verify_end(&v, err, errlen);
}

static void test_chain_verifies_and_catches(void **state) {
  (void)state;
  char err[256];
  json_t *all = chain(5);
  assert_int_equal(verify(all, true, err, sizeof(err)), 0);
  /* A hash survives a round trip through text (the export). */
  char *text = json_dumps(json_array_get(all, 2), JSON_COMPACT);
  json_t *back = json_loads(text, 0, NULL);
  char h[RP_CHAIN_HEX];
  rp_chain_hash(back, h);
  assert_string_equal(h, json_string_value(json_object_get(back, "hash")));
  free(text);
  json_decref(back);
  /* An edit. */
  json_t *edited = json_deep_copy(all);
  json_object_set_new(json_array_get(edited, 2), "kw", json_real(99));
  assert_int_equal(verify(edited, true, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "edited: entry seq 3"));
  json_decref(edited);
  /* A gap. */
  json_t *gap = json_deep_copy(all);
  json_array_remove(gap, 1);
  assert_int_equal(verify(gap, true, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "gap: entry seq 3 follows seq 1"));
  json_decref(gap);
  /* A cut tail: caught only against the tip. */
  json_t *cut = json_deep_copy(all);
  json_array_remove(cut, 4);
  struct rp_chain_verify v = {.have_tip = true, .tip_seq = 5};
  size_t i;
  json_t *e;
  json_array_foreach(cut, i, e) assert_int_equal(rp_chain_verify_next(&v, e, err, sizeof(err)), 0);
  assert_int_equal(rp_chain_verify_end(&v, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "truncated"));
  json_decref(cut);
  /* An entry re-sealed with a forged prev (rewritten history). */
  json_t *forged = json_deep_copy(all);
  char hash[RP_CHAIN_HEX];
  rp_chain_seal(json_array_get(forged, 3), 4,
                "1111111111111111111111111111111111111111111111111111111111111111", hash);
  assert_int_equal(verify(forged, true, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "broken link: entry seq 4"));
  json_decref(forged);
  json_decref(all);
}

/* Parses an export (JSON lines) into entries. */
static json_t *lines(const char *text) {
  json_t *all = json_array();
  const char *p = text;
  while (p && *p) {
    const char *nl = strchr(p, '\n');
    json_t *e = json_loadb(p, nl ? (size_t)(nl - p) : strlen(p), 0, NULL);
    if (e != NULL)
      json_array_append_new(all, e);
    p = nl ? nl + 1 : NULL;
  }
  return all;
}

static void test_ring_evicts_along_the_chain(void **state) {
  (void)state;
  char dir[] = "/tmp/rp_test_chain_XXXXXX", err[256];
  assert_non_null(mkdtemp(dir));
  struct rp_ledger_limits lim = {
      .map_size = 16u << 20, .audit_max_age_ms = 3600000, .audit_max_entries = 10};
  struct rp_ledger *l;
  for (int round = 0; round < 2; round++) { /* the second: reopened, the chain goes on */
    assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
    for (int i = 0; i < 25; i++) {
      json_t *e = entry(round * 100 + i);
      char id[16];
      snprintf(id, sizeof(id), "d%d-%d", round, i);
      json_object_set_new(e, "decision_id", json_string(id));
      assert_int_equal(rp_ledger_audit_append(l, e), 0);
      json_decref(e);
      if (i % 7 == 0)
        rp_ledger_audit_flush(l);
    }
    rp_ledger_audit_flush(l);
    uint64_t head_seq, tip_seq;
    char head[65], tip[65];
    assert_int_equal(rp_ledger_audit_chain_info(l, &head_seq, head, &tip_seq, tip), 0);
    assert_int_equal(tip_seq, 25 * (round + 1));
    assert_int_equal(head_seq, tip_seq - 10); /* the ring kept the newest 10 */
    assert_true(rp_ledger_audit_evicted(l) > 0);
    size_t len;
    uint64_t last;
    struct rp_audit_ends ends;
    char *text = rp_ledger_audit_export(l, 0, 1000, &len, &last, &ends);
    assert_non_null(text);
    assert_int_equal(last, tip_seq);
    assert_int_equal(ends.head_seq, head_seq); /* read with the entries */
    assert_int_equal(ends.tip_seq, tip_seq);
    assert_string_equal(ends.tip_hash, tip);
    json_t *all = lines(text);
    free(text);
    assert_int_equal(json_array_size(all), 10);
    struct rp_chain_verify v = {
        .have_head = true, .have_tip = true, .head_seq = head_seq, .tip_seq = tip_seq};
    memcpy(v.head_hash, head, sizeof(head));
    memcpy(v.tip_hash, tip, sizeof(tip));
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e) {
      assert_int_equal(rp_chain_verify_next(&v, e, err, sizeof(err)), 0);
    }
    assert_int_equal(rp_chain_verify_end(&v, err, sizeof(err)), 0);
    json_decref(all);
    rp_ledger_close(l);
  }
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void test_by_deploy(void **state) {
  (void)state;
  char dir[] = "/tmp/rp_test_deploy_XXXXXX", err[256];
  assert_non_null(mkdtemp(dir));
  struct rp_ledger_limits lim = {.map_size = 16u << 20, .audit_max_age_ms = 3600000};
  struct rp_ledger *l;
  assert_int_equal(rp_ledger_open(dir, &lim, &l, err, sizeof(err)), 0);
  for (int i = 0; i < 6; i++) {
    json_t *e = entry(i);
    char id[16];
    snprintf(id, sizeof(id), "d%d", i);
    json_object_set_new(e, "decision_id", json_string(id));
    json_object_set_new(e, "deploy", json_pack("{s:s}", "deploy_id", i % 2 ? "dep-a" : "dep-ab"));
    rp_ledger_audit_append(l, e);
    json_decref(e);
  }
  rp_ledger_audit_flush(l);
  json_t *a = rp_ledger_audit_by_deploy(l, "dep-a", 100);
  assert_int_equal(json_array_size(a), 3); /* not dep-ab's */
  assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "decision_id")),
                      "d1");
  json_decref(a);
  rp_ledger_close(l);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

static void test_tokens_file(void **state) {
  (void)state;
  char path[] = "/tmp/rp_test_tokens_XXXXXX", err[256];
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  write_file(path,
             "# clients\n"
             "ci   reserve,flag  ci-token-0123456789abcdef\n"
             "\n"
             "ops  override      ops-token-0123456789abcdef\n"
             "boss admin         cert:boss.example\n",
             0600);
  struct rp_auth *a;
  struct rp_client c;
  assert_int_equal(rp_auth_load(path, "shared-token-0123456789", &a, err, sizeof(err)), 0);
  assert_true(rp_auth_by_token(a, "ci-token-0123456789abcdef", &c));
  assert_string_equal(c.name, "ci");
  assert_string_equal(c.secret, ""); /* a look-up never copies the secret out */
  assert_true(rp_auth_has(&c, RP_ROLE_RESERVE) && rp_auth_has(&c, RP_ROLE_FLAG));
  assert_false(rp_auth_has(&c, RP_ROLE_OVERRIDE));
  assert_false(rp_auth_by_token(a, "ci-token-0123456789abcdeX", &c));
  assert_false(rp_auth_by_token(a, "boss.example", &c)); /* a certificate is not a token */
  assert_true(rp_auth_by_cert(a, "boss.example", &c));
  assert_true(rp_auth_has(&c, RP_ROLE_OVERRIDE)); /* admin holds every role */
  assert_true(rp_auth_by_token(a, "shared-token-0123456789", &c));
  assert_string_equal(c.name, "shared");
  assert_true(rp_auth_has(&c, RP_ROLE_ADMIN));
  /* A reload puts the new file in force at once: ci is gone, ops2 holds
   * the new token; a file that does not load leaves the clients in force. */
  write_file(path, "ops2 flag ops2-token-0123456789abcdef\n", 0600);
  size_t n = 0;
  assert_int_equal(rp_auth_reload(a, path, NULL, &n, err, sizeof(err)), 0);
  assert_int_equal(n, 1);
  assert_false(rp_auth_by_token(a, "ci-token-0123456789abcdef", &c));
  assert_false(rp_auth_by_token(a, "shared-token-0123456789", &c));
  assert_true(rp_auth_by_token(a, "ops2-token-0123456789abcdef", &c));
  assert_string_equal(c.name, "ops2");
  write_file(path, "ops3 flag short\n", 0600);
  assert_int_not_equal(rp_auth_reload(a, path, NULL, &n, err, sizeof(err)), 0);
  assert_non_null(strstr(err, ":1:"));
  assert_true(rp_auth_by_token(a, "ops2-token-0123456789abcdef", &c));
  assert_true(rp_auth_enabled(a));
  rp_auth_free(a);
  /* Looser than 0640, an unknown role, a short token: refused, naming the line. */
  chmod(path, 0644);
  assert_int_not_equal(rp_auth_load(path, NULL, &a, err, sizeof(err)), 0);
  assert_non_null(strstr(err, "at most 0640"));
  write_file(path, "ci deploy ci-token-0123456789abcdef\n", 0640);
  assert_int_not_equal(rp_auth_load(path, NULL, &a, err, sizeof(err)), 0);
  assert_non_null(strstr(err, ":1: client ci: roles"));
  write_file(path, "ci reserve short\n", 0600);
  assert_int_not_equal(rp_auth_load(path, NULL, &a, err, sizeof(err)), 0);
  assert_null(strstr(err, "short")); /* never the token */
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_verifies_and_catches),
      cmocka_unit_test(test_ring_evicts_along_the_chain),
      cmocka_unit_test(test_by_deploy),
      cmocka_unit_test(test_tokens_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
