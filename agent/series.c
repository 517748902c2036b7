/* The series dictionary (see series.h): an array indexed by id plus an
 * open-addressing hash index over the series key. */
#include "series.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/frame.h"
#include "rackpulse/hash.h"

int rp_series_table_init(struct rp_series_table *t, size_t max) {
  memset(t, 0, sizeof(*t));
  t->max = max;
  t->index_cap = 16;
  while (t->index_cap < max * 2)
    t->index_cap *= 2;
  t->entries = calloc(max, sizeof(*t->entries));
  t->index = calloc(t->index_cap, sizeof(*t->index));
  if (t->entries == NULL || t->index == NULL) {
    rp_series_table_free(t);
    return -ENOMEM;
  }
  return 0;
}

static void free_entry(struct rp_series *s) {
  free(s->key);
  free(s->name);
  free(s->unit);
  free(s->device);
  for (size_t i = 0; i < s->nlabels; i++) {
    free(s->label_keys[i]);
    free(s->label_values[i]);
  }
  free(s->label_keys);
  free(s->label_values);
}

void rp_series_table_free(struct rp_series_table *t) {
  for (size_t i = 0; i < t->count; i++)
    free_entry(&t->entries[i]);
  free(t->entries);
  free(t->index);
  memset(t, 0, sizeof(*t));
}

/* Builds the key into buf; returns its length or -ENAMETOOLONG. */
static int build_key(char *buf, size_t len, const char *device, const struct rp_reading *r) {
  size_t n = 0;
  int w = snprintf(buf, len, "%s\x1f%s", device, r->name);
  if (w < 0 || (size_t)w >= len)
    return -ENAMETOOLONG;
  n = (size_t)w;
  for (size_t i = 0; i < r->nlabels; i++) {
    w = snprintf(buf + n, len - n, "\x1f%s\x1e%s", r->labels[i].key, r->labels[i].value);
    if (w < 0 || (size_t)w >= len - n)
      return -ENAMETOOLONG;
    n += (size_t)w;
  }
  return (int)n;
}

static int add_entry(struct rp_series_table *t, const char *key, const char *device,
                     const struct rp_reading *r) {
  struct rp_series *s = &t->entries[t->count];
  memset(s, 0, sizeof(*s));
  s->id = (uint32_t)t->count;
  s->key = strdup(key);
  s->name = strdup(r->name);
  s->unit = strdup(r->unit ? r->unit : "");
  s->device = strdup(device);
  s->decimals = r->decimals;
  s->label_keys = calloc(r->nlabels + 1, sizeof(char *));
  s->label_values = calloc(r->nlabels + 1, sizeof(char *));
  if (!s->key || !s->name || !s->unit || !s->device || !s->label_keys || !s->label_values)
    goto fail;
  for (size_t i = 0; i < r->nlabels; i++) {
    s->label_keys[i] = strdup(r->labels[i].key);
    s->label_values[i] = strdup(r->labels[i].value);
    s->nlabels = i + 1;
    if (!s->label_keys[i] || !s->label_values[i])
      goto fail;
  }
  t->count++;
  t->version++;
  return 0;
fail:
  free_entry(s);
  memset(s, 0, sizeof(*s));
  return -ENOMEM;
}

int rp_series_lookup(struct rp_series_table *t, const char *device, const struct rp_reading *r,
                     uint32_t *id) {
  char key[1024];
  if (build_key(key, sizeof(key), device, r) < 0)
    return -ENAMETOOLONG;
  size_t mask = t->index_cap - 1;
  size_t slot = (size_t)rp_hash_str(key) & mask;
  for (;; slot = (slot + 1) & mask) {
    uint32_t at = t->index[slot];
    if (at == 0)
      break;
    if (strcmp(t->entries[at - 1].key, key) == 0) {
      *id = at - 1;
      return 0;
    }
  }
  if (t->count >= t->max)
    return -ENOSPC;
  int rc = add_entry(t, key, device, r);
  if (rc != 0)
    return rc;
  t->index[slot] = (uint32_t)t->count;
  *id = (uint32_t)(t->count - 1);
  return 0;
}

uint64_t rp_series_table_hash(struct rp_series_table *t) {
  if (t->hashed && t->hash_version == t->version)
    return t->hash;
  uint64_t h = RP_DICT_HASH_INIT;
  for (size_t i = 0; i < t->count; i++) { /* entries[i].id == i: id order */
    const struct rp_series *s = &t->entries[i];
    h = rp_dict_hash_series(h, s->id, s->name, s->unit, s->device, s->decimals, s->nlabels);
    for (size_t j = 0; j < s->nlabels; j++)
      h = rp_dict_hash_label(h, s->label_keys[j], s->label_values[j]);
  }
  t->hash = rp_dict_hash_final(h);
  t->hash_version = t->version;
  t->hashed = true;
  return t->hash;
}
