/* The agent's series dictionary: each distinct (device, name, labels) gets a
 * small numeric id that samples carry on the wire (see proto/rackpulse.proto).
 * The table is bounded: a device that invents series without end cannot grow
 * the agent's memory past agent.max_series. */
#ifndef RACKPULSE_SERIES_H
#define RACKPULSE_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector.h"

struct rp_series {
  uint32_t id;
  char *key;                  /* "device\x1fname\x1fk=v\x1f..." owned */
  char *name, *unit, *device; /* owned */
  int decimals;
  size_t nlabels;
  char **label_keys, **label_values; /* owned */
};

struct rp_series_table {
  struct rp_series *entries; /* by id: entries[id] */
  size_t count, max;
  uint32_t *index; /* open addressing: id + 1, 0 = empty */
  size_t index_cap;
  uint32_t version; /* bumped whenever a series is added */
  uint64_t hash;    /* content hash of the table at hash_version */
  uint32_t hash_version;
  bool hashed; /* hash is valid for hash_version */
};

/* Prepares an empty table that holds at most `max` series. Returns 0 or
 * -ENOMEM. */
int rp_series_table_init(struct rp_series_table *t, size_t max);
/* Frees every entry. Accepts a zeroed table. */
void rp_series_table_free(struct rp_series_table *t);

/* The id of the reading's series from `device`, added when new. Returns 0
 * and *id, -ENOSPC when the table is full, or -ENOMEM. */
int rp_series_lookup(struct rp_series_table *t, const char *device, const struct rp_reading *r,
                     uint32_t *id);

/* The content hash of the whole table (rp_dict_hash_series() in
 * rackpulse/frame.h: ids, names, units, labels, devices, decimals), the
 * dictionary's identity on the wire. Computed once per change. */
uint64_t rp_series_table_hash(struct rp_series_table *t);

#endif
