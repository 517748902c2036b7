/* Site-wide queries in a cluster (see forward.c): the same GET goes to
 * every live member at once (this one included), each answers from its own
 * store and ledger, and the answers are merged as one member would have
 * answered for the whole site:
 *   /v1/racks, /v1/floor      racks, each only from the member that owns it
 *   /v1/placement             ranked racks from their owners, best first, cut
 *                             to count; excluded racks likewise
 *   /v1/audit                 decisions of every member, oldest first, cut to
 *                             limit (a rack's history may span members)
 *   /v1/reservations, /v1/flags, /v1/overrides   each rack's from its owner
 *                             (a member that
 *                             owned it before keeps a stale copy)
 * The merged answer names the members asked ("members": [{member, status |
 * error}]), says "incomplete": true when one did not answer, and lists the
 * partitions no live member owns ("unowned_partitions"). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "forward_internal.h"

struct merge_spec {
  const char *path;
  const char *lists[2];  /* arrays merged; the first is sorted and cut */
  bool by_owner;         /* keep an item only from the owner of its "rack" */
  const char *sort_key;  /* of the first list's items */
  bool desc;             /* sort descending */
  const char *limit_arg; /* query argument cutting the first list */
  long limit_default;
  const char *dedupe[2]; /* fields that identify an item */
};

static const struct merge_spec specs[] = {
    {"/v1/racks", {"racks", NULL}, true, "rack", false, NULL, 0, {"rack", NULL}},
    {"/v1/floor", {"racks", NULL}, true, "rack", false, NULL, 0, {"rack", NULL}},
    {"/v1/placement", {"racks", "excluded"}, true, "score", true, "count", 3, {"rack", NULL}},
    {"/v1/audit",
     {"decisions", NULL},
     false,
     "evaluated_at_ms",
     false,
     "limit",
     100,
     {"decision_id", NULL}},
    {"/v1/reservations", {"reservations", NULL}, true, "id", false, NULL, 0, {"id", NULL}},
    {"/v1/flags", {"flags", NULL}, true, "rack", false, NULL, 0, {"rack", "flag"}},
    {"/v1/overrides", {"overrides", NULL}, true, "rack", false, NULL, 0, {"id", NULL}},
};

static const struct merge_spec *find_spec(const char *url) {
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++)
    if (strcmp(specs[i].path, url) == 0)
      return &specs[i];
  return NULL;
}

struct sort_ctx {
  const char *key;
  bool desc;
};

static int compare(const void *x, const void *y, void *arg) {
  const struct sort_ctx *s = arg;
  json_t *a = json_object_get(*(json_t *const *)x, s->key);
  json_t *b = json_object_get(*(json_t *const *)y, s->key);
  int c;
  if (json_is_number(a) && json_is_number(b)) {
    double da = json_number_value(a), db = json_number_value(b);
    c = da < db ? -1 : da > db ? 1 : 0;
  } else {
    const char *sa = json_string_value(a), *sb = json_string_value(b);
    c = strcmp(sa ? sa : "", sb ? sb : "");
  }
  return s->desc ? -c : c;
}

/* Sorts array `list` by key (a new array, stolen back into parent[name]). */
static void sort_list(json_t *parent, const char *name, const char *key, bool desc, long limit) {
  json_t *list = json_object_get(parent, name);
  size_t n = json_array_size(list);
  json_t **items = calloc(n ? n : 1, sizeof(*items));
  if (items == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    items[i] = json_array_get(list, i);
  struct sort_ctx ctx = {key, desc};
  qsort_r(items, n, sizeof(*items), compare, &ctx);
  json_t *sorted = json_array();
  for (size_t i = 0; i < n && (limit <= 0 || (long)i < limit); i++)
    json_array_append(sorted, items[i]);
  free(items);
  json_object_set_new(parent, name, sorted);
}

/* The identity of an item for de-duplication ("" when it has none). */
static void identity(const json_t *item, const struct merge_spec *spec, char *out, size_t len) {
  const char *a = json_string_value(json_object_get(item, spec->dedupe[0]));
  const char *b = spec->dedupe[1] ? json_string_value(json_object_get(item, spec->dedupe[1])) : "";
  snprintf(out, len, "%s\x1f%s", a ? a : "", b ? b : "");
}

/* Whether `item` is `member`'s to report: its rack's owner now. */
static bool owned_by(struct rp_aggregator *a, const json_t *item, const char *member) {
  const char *rack = json_string_value(json_object_get(item, "rack"));
  if (rack == NULL)
    return false;
  int32_t partition;
  char owner[65], url[256];
  enum rp_owner who = rp_cluster_owner(a->cluster, rack, &partition, owner, url);
  return who != RP_OWNER_NONE && strcmp(owner, member) == 0;
}

/* Adds the items of answer `from` (member `member`) to merged[list]. */
static void merge_from(struct rp_aggregator *a, const struct merge_spec *spec, json_t *merged,
                       json_t *seen, const json_t *from, const char *member) {
  for (size_t l = 0; l < 2 && spec->lists[l] != NULL; l++) {
    json_t *into = json_object_get(merged, spec->lists[l]);
    if (into == NULL) {
      into = json_array();
      json_object_set_new(merged, spec->lists[l], into);
    }
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(from, spec->lists[l]), i, item) {
      if (spec->by_owner && !owned_by(a, item, member))
        continue;
      char id[160];
      identity(item, spec, id, sizeof(id));
      if (id[0] != '\x1f' && json_object_get(seen, id) != NULL)
        continue;
      if (id[0] != '\x1f')
        json_object_set_new(seen, id, json_true());
      json_array_append(into, item);
    }
  }
}

static long limit_of(struct MHD_Connection *conn, const struct merge_spec *spec) {
  if (spec->limit_arg == NULL)
    return 0;
  const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, spec->limit_arg);
  long n = v ? strtol(v, NULL, 10) : spec->limit_default;
  return n > 0 ? n : spec->limit_default;
}

enum MHD_Result rp_fanout(struct rp_aggregator *a, struct MHD_Connection *conn, const char *url,
                          const struct outbound *req) {
  const struct merge_spec *spec = find_spec(url);
  if (spec == NULL)
    return rp_forward_respond_json(conn, 404, json_pack("{s:s}", "error", "no such endpoint"));
  struct rp_member_addr to[RP_CLUSTER_MAX_MEMBERS];
  size_t n = rp_cluster_live(a->cluster, to, RP_CLUSTER_MAX_MEMBERS);
  struct answer *answers = calloc(n, sizeof(*answers));
  if (answers == NULL)
    return rp_forward_respond_json(conn, 503, json_pack("{s:s}", "error", "out of memory"));
  rp_forward_request_all(to, n, req, (long)rp_cluster_config(a->cluster)->forward_timeout_ms,
                         answers);
  json_t *merged = NULL, *seen = json_object(), *members = json_array();
  unsigned first_error = 0;
  bool incomplete = false;
  for (size_t i = 0; i < n; i++) {
    struct answer *ans = &answers[i];
    json_t *body = ans->failed ? NULL : json_loadb(ans->body ? ans->body : "", ans->len, 0, NULL);
    if (ans->failed || ans->status != 200 || !json_is_object(body)) {
      if (!ans->failed && ans->status >= 400 && ans->status < 500 && first_error == 0)
        first_error = (unsigned)ans->status; /* the request itself is wrong */
      char why[CURL_ERROR_SIZE + 32];
      if (ans->failed)
        snprintf(why, sizeof(why), "%s", ans->err);
      else
        snprintf(why, sizeof(why), "HTTP %ld", ans->status);
      json_array_append_new(members, json_pack("{s:s, s:s, s:s}", "member", to[i].id, "url",
                                               to[i].url, "error", why));
      incomplete = true;
      if (first_error != 0 && merged == NULL && body != NULL) {
        merged = body; /* a 4xx: answer it as it is */
        body = NULL;
      }
      json_decref(body);
      continue;
    }
    json_array_append_new(members, json_pack("{s:s, s:s, s:s}", "member", to[i].id, "url",
                                             to[i].url, "status", "ok"));
    if (merged == NULL) {
      merged = json_deep_copy(body);
      for (size_t l = 0; l < 2 && spec->lists[l] != NULL; l++)
        json_object_set_new(merged, spec->lists[l], json_array());
    }
    merge_from(a, spec, merged, seen, body, to[i].id);
    json_decref(body);
  }
  for (size_t i = 0; i < n; i++)
    free(answers[i].body);
  free(answers);
  json_decref(seen);
  if (merged == NULL) {
    json_decref(members);
    return rp_forward_respond_json(
        conn, 503, json_pack("{s:s}", "error", "no member answered (see cluster.forward_timeout)"));
  }
  if (first_error != 0 && json_object_get(merged, "error") != NULL) {
    json_decref(members);
    return rp_forward_respond_json(conn, first_error, merged);
  }
  sort_list(merged, spec->lists[0], spec->sort_key, spec->desc, limit_of(conn, spec));
  if (spec->lists[1] != NULL)
    sort_list(merged, spec->lists[1], "rack", false, 0);
  json_object_set_new(merged, "members", members);
  json_object_set_new(merged, "incomplete", json_boolean(incomplete));
  json_object_set_new(merged, "unowned_partitions", rp_cluster_unowned(a->cluster));
  return rp_forward_respond_json(conn, 200, merged);
}
