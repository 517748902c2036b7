/* The store's dictionary cache (see store_internal.h).
 *
 * The hot path is one LMDB cursor lookup and one in-place write per sample.
 * The series dictionaries are also kept decoded in memory (struct dict):
 * a sample's series id resolves to its key, unit and decimals without an
 * LMDB get and a protobuf unpack. The cache mirrors the dictionary database
 * as the open batch sees it: it holds dictionaries by (agent, dictionary id),
 * each filled from LMDB on first use, written when a frame brings a new one,
 * dropped when LMDB evicts it, and all dropped when a batch aborts. Only the
 * writer's thread touches it. */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/hash.h"
#include "store_internal.h"

/* The dictionary cache is dropped and refilled past this many series. */
#define DICT_CACHE_MAX_SERIES (4u << 20)

/* ---- the dictionary cache ------------------------------------------------- */

static size_t hash_agent_dict(const char *agent, uint64_t dict_id) {
  return (size_t)rp_hash_str(agent) ^ (size_t)(dict_id * 0x9e3779b97f4a7c15ull);
}

void dict_agent_empty(struct dict_agent *da, struct dict *d) {
  for (size_t i = 0; i < da->cap; i++)
    free(da->slots[i].key);
  free(da->slots);
  d->nseries -= da->n;
  da->slots = NULL;
  da->n = da->cap = 0;
}

/* Drops every cached dictionary (after an abort: it may hold uncommitted
 * ones). */
void dict_clear(struct dict *d) {
  for (size_t b = 0; b < d->nbuckets; b++) {
    struct dict_agent *da = d->buckets[b];
    while (da != NULL) {
      struct dict_agent *next = da->next;
      dict_agent_empty(da, d);
      free(da);
      da = next;
    }
    d->buckets[b] = NULL;
  }
  d->nagents = 0;
  d->nseries = 0;
}

void dict_free(struct dict *d) {
  dict_clear(d);
  free(d->order);
  free(d->buckets);
  d->buckets = NULL;
  d->nbuckets = 0;
}

static int by_key(const void *a, const void *b) {
  const struct dict_series *x = *(const struct dict_series *const *)a;
  const struct dict_series *y = *(const struct dict_series *const *)b;
  return strcmp(x->key, y->key); /* LMDB's order for keys with one prefix */
}

/* Numbers the agent's series in key order. Returns 0 or ENOMEM. */
int dict_rank(struct dict_agent *da) {
  if (da->ranked)
    return 0;
  struct dict_series **sorted = malloc((da->n ? da->n : 1) * sizeof(*sorted));
  if (sorted == NULL)
    return ENOMEM;
  size_t n = 0;
  for (size_t i = 0; i < da->cap; i++)
    if (da->slots[i].key_len != 0)
      sorted[n++] = &da->slots[i];
  qsort(sorted, n, sizeof(*sorted), by_key);
  for (size_t i = 0; i < n; i++)
    sorted[i]->rank = (uint32_t)i;
  free(sorted);
  da->ranked = true;
  return 0;
}

/* "name{k=v,...}@device" */
static void series_key(char *out, size_t len, const Rackpulse__V1__SeriesDef *d) {
  int n = snprintf(out, len, "%s", d->name);
  if (d->n_labels > 0) {
    for (size_t i = 0; i < d->n_labels && n >= 0 && (size_t)n < len; i++)
      n += snprintf(out + n, len - (size_t)n, "%c%s=%s", i ? ',' : '{', d->labels[i]->key,
                    d->labels[i]->value);
    if (n >= 0 && (size_t)n < len)
      n += snprintf(out + n, len - (size_t)n, "}");
  }
  if (n >= 0 && (size_t)n < len)
    snprintf(out + n, len - (size_t)n, "@%s", d->device);
}

/* Adds (or replaces) a series in the agent's table. Returns 0 or ENOMEM. */
int dict_put(struct dict *d, struct dict_agent *da, const Rackpulse__V1__SeriesDef *def) {
  if (2 * (da->n + 1) > da->cap) {
    size_t cap = da->cap ? da->cap * 2 : 16;
    struct dict_series *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL)
      return ENOMEM;
    for (size_t i = 0; i < da->cap; i++) {
      struct dict_series *e = &da->slots[i];
      if (e->key_len == 0)
        continue;
      size_t j = hash_id(e->id) & (cap - 1);
      while (slots[j].key_len != 0)
        j = (j + 1) & (cap - 1);
      slots[j] = *e;
    }
    free(da->slots);
    da->slots = slots;
    da->cap = cap;
  }
  char key[RP_SERIES_KEY_MAX + 1];
  series_key(key, sizeof(key), def);
  size_t len = strlen(key);
  char *copy = malloc(len + 1);
  if (copy == NULL)
    return ENOMEM;
  memcpy(copy, key, len + 1);
  size_t mask = da->cap - 1, i = hash_id(def->id) & mask;
  while (da->slots[i].key_len != 0 && da->slots[i].id != def->id)
    i = (i + 1) & mask;
  struct dict_series *e = &da->slots[i];
  if (e->key_len != 0) {
    free(e->key);
  } else {
    da->n++;
    d->nseries++;
  }
  da->ranked = false;
  e->id = def->id;
  e->decimals = def->decimals;
  e->key = copy;
  e->key_len = (uint16_t)(len ? len : 1);            /* series keys are never empty */
  memset(e->unit, 0, sizeof(e->unit));               /* records carry no stale bytes */
  rp_utf8_copy(e->unit, sizeof(e->unit), def->unit); /* whole characters only: JSON */
  return 0;
}

/* Advances *p past str when the key continues with it. */
static bool key_eat(const char **p, const char *end, const char *str, size_t n) {
  if ((size_t)(end - *p) < n || memcmp(*p, str, n) != 0)
    return false;
  *p += n;
  return true;
}

static bool key_eat_str(const char **p, const char *end, const char *str) {
  return key_eat(p, end, str, strlen(str));
}

/* Whether cached series e is what def says: its key as series_key() makes
 * it (without formatting one), its unit as dict_put() stores it, its
 * decimals. */
static bool series_same(const struct dict_series *e, const Rackpulse__V1__SeriesDef *def) {
  if (e->decimals != def->decimals)
    return false;
  char unit[sizeof(e->unit)];
  memset(unit, 0, sizeof(unit));
  rp_utf8_copy(unit, sizeof(unit), def->unit);
  if (memcmp(unit, e->unit, sizeof(unit)) != 0)
    return false;
  const char *p = e->key, *end = e->key + e->key_len;
  if (!key_eat_str(&p, end, def->name))
    return false;
  for (size_t i = 0; i < def->n_labels; i++)
    if (!key_eat(&p, end, i ? "," : "{", 1) || !key_eat_str(&p, end, def->labels[i]->key) ||
        !key_eat(&p, end, "=", 1) || !key_eat_str(&p, end, def->labels[i]->value))
      return false;
  if (def->n_labels > 0 && !key_eat(&p, end, "}", 1))
    return false;
  return key_eat(&p, end, "@", 1) && key_eat_str(&p, end, def->device) && p == end;
}

bool dict_same(const struct dict_agent *da, const rp_frame *f) {
  if (da->n != f->n_dictionary)
    return false;
  for (size_t i = 0; i < f->n_dictionary; i++) {
    const struct dict_series *e = dict_find(da, f->dictionary[i]->id);
    if (e == NULL || !series_same(e, f->dictionary[i]))
      return false;
  }
  return true;
}

struct dict_agent *dict_lookup(struct dict *d, const char *agent, uint64_t dict_id) {
  if (d->nbuckets == 0)
    return NULL;
  struct dict_agent *da = d->buckets[hash_agent_dict(agent, dict_id) & (d->nbuckets - 1)];
  while (da != NULL && (da->dict_id != dict_id || strcmp(da->id, agent) != 0))
    da = da->next;
  return da;
}

/* Forgets one dictionary of `agent` (evicted from LMDB). */
void dict_drop(struct dict *d, const char *agent, uint64_t dict_id) {
  if (d->nbuckets == 0)
    return;
  struct dict_agent **at = &d->buckets[hash_agent_dict(agent, dict_id) & (d->nbuckets - 1)];
  for (; *at != NULL; at = &(*at)->next) {
    struct dict_agent *da = *at;
    if (da->dict_id == dict_id && strcmp(da->id, agent) == 0) {
      *at = da->next;
      dict_agent_empty(da, d);
      free(da);
      d->nagents--;
      return;
    }
  }
}

/* A new, empty entry for dictionary `dict_id` of `agent`. Returns NULL when
 * out of memory. */
struct dict_agent *dict_add_agent(struct dict *d, const char *agent, uint64_t dict_id) {
  if (d->nagents + 1 > d->nbuckets) {
    size_t nb = d->nbuckets ? d->nbuckets * 2 : 256;
    struct dict_agent **buckets = calloc(nb, sizeof(*buckets));
    if (buckets == NULL)
      return NULL;
    for (size_t b = 0; b < d->nbuckets; b++) {
      struct dict_agent *da = d->buckets[b];
      while (da != NULL) {
        struct dict_agent *next = da->next;
        size_t h = hash_agent_dict(da->id, da->dict_id) & (nb - 1);
        da->next = buckets[h];
        buckets[h] = da;
        da = next;
      }
    }
    free(d->buckets);
    d->buckets = buckets;
    d->nbuckets = nb;
  }
  struct dict_agent *da = calloc(1, sizeof(*da));
  if (da == NULL)
    return NULL;
  snprintf(da->id, sizeof(da->id), "%s", agent);
  da->dict_id = dict_id;
  size_t h = hash_agent_dict(agent, dict_id) & (d->nbuckets - 1);
  da->next = d->buckets[h];
  d->buckets[h] = da;
  d->nagents++;
  return da;
}

/* The prefix of dictionary `dict_id` of `agent` in the dict database:
 * agent "\0" id (8 bytes, big-endian). Returns its length. */
size_t dict_prefix(char *key, const char *agent, uint64_t dict_id) {
  size_t alen = strlen(agent);
  memcpy(key, agent, alen + 1);
  uint64_t be = __builtin_bswap64(dict_id);
  memcpy(key + alen + 1, &be, 8);
  return alen + 9;
}

int dict_each_record(struct store_batch *b, const char *agent, uint64_t dict_id,
                     int (*fn)(void *ctx, MDB_cursor *c, const MDB_val *v), void *ctx) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(b->txn, b->s->dict, &c);
  if (rc != 0)
    return rc;
  char prefix[RP_ID_MAX + 9];
  size_t plen = dict_prefix(prefix, agent, dict_id);
  MDB_val k = {plen, prefix}, v;
  rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
  while (rc == 0 && k.mv_size > plen && memcmp(k.mv_data, prefix, plen) == 0) {
    if ((rc = fn(ctx, c, &v)) != 0)
      break;
    /* After a delete the cursor already stands on the next record: MDB_NEXT
     * returns it without advancing. */
    rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

struct dict_load {
  struct dict *d;
  struct dict_agent *da;
};

static int load_series(void *ctx, MDB_cursor *c, const MDB_val *v) {
  (void)c;
  struct dict_load *l = ctx;
  Rackpulse__V1__SeriesDef *def = rackpulse__v1__series_def__unpack(NULL, v->mv_size, v->mv_data);
  if (def == NULL)
    return 0;
  int rc = dict_put(l->d, l->da, def);
  rackpulse__v1__series_def__free_unpacked(def, NULL);
  return rc;
}

/* Dictionary `dict_id` of `agent` as the batch sees it: from the cache, else
 * read from LMDB into it (the caller knows it is stored: store_agent.dicts).
 * Returns 0 and *out, or an LMDB error / ENOMEM. */
int dict_get(struct store_batch *b, const char *agent, uint64_t dict_id, struct dict_agent **out) {
  struct dict *d = &b->s->cache;
  struct dict_agent *da = dict_lookup(d, agent, dict_id);
  if (da != NULL) {
    *out = da;
    return 0;
  }
  if (d->nseries > DICT_CACHE_MAX_SERIES)
    dict_clear(d);
  if ((da = dict_add_agent(d, agent, dict_id)) == NULL)
    return ENOMEM;
  struct dict_load l = {d, da};
  int rc = dict_each_record(b, agent, dict_id, load_series, &l);
  if (rc != 0) {
    dict_clear(d); /* do not keep a partial dictionary */
    return rc;
  }
  *out = da;
  return 0;
}
