/* Applying one frame in a store batch: sequence marks per incarnation,
 * dictionaries (stored per agent, evicted past STORE_AGENT_DICTS), samples,
 * window statistics, devices and the rack record (see store.h). This is the
 * hot path: one LMDB cursor lookup and one in-place write per sample, the
 * series resolved through the dictionary cache (store_dict.c). */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

static int delete_record(void *ctx, MDB_cursor *c, const MDB_val *v) {
  (void)ctx, (void)v;
  return mdb_cursor_del(c, 0);
}

/* Deletes dictionary `dict_id` of `agent` from LMDB and the cache. */
static int delete_dictionary(struct store_batch *b, const char *agent, uint64_t dict_id) {
  int rc = dict_each_record(b, agent, dict_id, delete_record, NULL);
  if (rc != 0)
    return rc;
  dict_drop(&b->s->cache, agent, dict_id);
  return 0;
}

/* The position of dictionary `dict_id` in ag->dicts, or -1. */
static int dict_slot(const struct store_agent *ag, uint64_t dict_id) {
  for (int i = 0; i < STORE_AGENT_DICTS; i++)
    if (ag->dicts[i] == dict_id)
      return i;
  return -1;
}

/* Stores the frame's dictionary under `dict_id`, in LMDB and in the cache,
 * as the agent's most recent one; the least recent of STORE_AGENT_DICTS is
 * evicted. A dictionary named by its content hash that is already stored is
 * not written again (same hash, same content); one named by a legacy
 * version is replaced when its content changed (a restarted old agent
 * reuses versions), and only then: 1 000 series rewritten at every resend
 * cost about a millisecond a frame. */
static int store_dictionary(struct store_batch *b, const rp_frame *f, uint64_t dict_id,
                            struct store_agent *ag) {
  int rc, at = dict_slot(ag, dict_id);
  bool same = at >= 0 && f->dictionary_hash != 0;
  if (at >= 0 && !same) {
    struct dict_agent *stored;
    if ((rc = dict_get(b, f->agent_id, dict_id, &stored)) != 0)
      return rc;
    same = dict_same(stored, f);
  }
  if (same) {
    memmove(&ag->dicts[1], &ag->dicts[0], (size_t)at * sizeof(ag->dicts[0]));
    ag->dicts[0] = dict_id;
    return 0;
  }
  if (at < 0)
    at = STORE_AGENT_DICTS - 1; /* the least recent (or an empty slot) */
  if (ag->dicts[at] != 0 && (rc = delete_dictionary(b, f->agent_id, ag->dicts[at])) != 0)
    return rc;
  memmove(&ag->dicts[1], &ag->dicts[0], (size_t)at * sizeof(ag->dicts[0]));
  ag->dicts[0] = dict_id;
  struct dict *d = &b->s->cache;
  struct dict_agent *da = dict_lookup(d, f->agent_id, dict_id);
  if (da == NULL && (da = dict_add_agent(d, f->agent_id, dict_id)) == NULL)
    return ENOMEM;
  dict_agent_empty(da, d);
  char key[RP_ID_MAX + 9 + 4];
  size_t plen = dict_prefix(key, f->agent_id, dict_id);
  for (size_t i = 0; i < f->n_dictionary; i++) {
    uint8_t small[2048], *buf = small;
    const Rackpulse__V1__SeriesDef *def = f->dictionary[i];
    size_t size = rackpulse__v1__series_def__get_packed_size(def);
    if (size > sizeof(small) && (buf = malloc(size)) == NULL)
      return ENOMEM;
    rackpulse__v1__series_def__pack(def, buf);
    uint32_t id_be = __builtin_bswap32(def->id); /* big-endian: keys sort by id */
    memcpy(key + plen, &id_be, 4);
    rc = store__put(b->txn, b->s->dict, key, plen + 4, buf, size);
    if (buf != small)
      free(buf);
    if (rc == 0)
      rc = dict_put(d, da, def);
    if (rc != 0)
      return rc;
    b->s->dict_series_written++;
  }
  ag->dict_version = f->dictionary_version;
  return 0;
}

/* Writes a latest value under key unless the stored one is newer: one
 * cursor lookup, then an overwrite of the record (in place when its size,
 * which depends on the detail, is unchanged). */
static int put_latest(struct store_batch *b, const char *key, size_t klen,
                      const struct store_latest *l) {
  int rc;
  if (b->latest == NULL && (rc = mdb_cursor_open(b->txn, b->s->latest, &b->latest)) != 0) {
    b->latest = NULL;
    return rc;
  }
  MDB_val k = {klen, (void *)key}, v;
  rc = mdb_cursor_get(b->latest, &k, &v, MDB_SET_KEY);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return rc;
  unsigned flags = 0;
  if (rc == 0 && v.mv_size >= sizeof(struct latest_rec)) {
    int64_t old_ts;
    memcpy(&old_ts, (const char *)v.mv_data + offsetof(struct latest_rec, ts_ms), sizeof(old_ts));
    if (old_ts > l->ts_ms)
      return 0; /* an older sample never replaces a newer one */
    flags = MDB_CURRENT;
  }
  unsigned char rec[LATEST_REC_MAX];
  k = (MDB_val){klen, (void *)key};
  v = (MDB_val){latest_pack(l, rec), rec};
  return mdb_cursor_put(b->latest, &k, &v, flags);
}

/* key = rack "\0" series key; returns its length, 0 when it does not fit. */
static size_t latest_key(char *key, size_t rack_len, const struct dict_series *d) {
  if (rack_len + 1 + d->key_len > KEY_MAX)
    return 0; /* cannot happen: frame validation bounds the series key */
  memcpy(key + rack_len + 1, d->key, d->key_len);
  return rack_len + 1 + d->key_len;
}

static int apply_sample(struct store_batch *b, char *key, size_t rack_len,
                        const struct dict_series *d, int64_t scaled, int64_t ts_ms) {
  size_t klen = latest_key(key, rack_len, d);
  if (klen == 0)
    return 0;
  struct store_latest l = {.value = rp_value_unscale(scaled, d->decimals),
                           .ts_ms = ts_ms,
                           .status = RACKPULSE__V1__READING_STATUS__READING_OK,
                           .decimals = d->decimals,
                           .received_ms = b->received_ms};
  memcpy(l.unit, d->unit, sizeof(l.unit));
  return put_latest(b, key, klen, &l);
}

/* Applies one sample block in the key order of its series: consecutive
 * keys mostly share a leaf page, and LMDB's cursor then finds the next one
 * on that page without descending from the root. The order is a counting
 * sort on the dictionary's ranks, used when the block holds at least a
 * quarter of the dictionary; a block naming a series twice keeps its own
 * order, so that its last value still wins. */
static int apply_block(struct store_batch *b, char *key, size_t rack_len, struct dict_agent *da,
                       const Rackpulse__V1__SampleBlock *blk, struct store_agent *ag) {
  struct dict *d = &b->s->cache;
  size_t unknown = 0;
  bool sorted = da->n > 0 && blk->n_series > 1 && blk->n_series * 4 >= da->n && dict_rank(da) == 0;
  if (sorted && d->order_cap < da->n) {
    int32_t *order = realloc(d->order, da->n * sizeof(*order));
    if (order == NULL) {
      sorted = false;
    } else {
      d->order = order;
      d->order_cap = da->n;
    }
  }
  if (sorted) {
    memset(d->order, 0xff, da->n * sizeof(*d->order)); /* -1: no sample */
    for (size_t j = 0; j < blk->n_series && sorted; j++) {
      const struct dict_series *e = dict_find(da, blk->series[j]);
      if (e == NULL)
        unknown++;
      else if (d->order[e->rank] >= 0)
        sorted = false; /* a series twice */
      else
        d->order[e->rank] = (int32_t)j;
    }
  }
  if (sorted) {
    for (size_t k = 0; k < da->n; k++) {
      if (d->order[k] < 0)
        continue;
      size_t j = (size_t)d->order[k];
      int rc =
          apply_sample(b, key, rack_len, dict_find(da, blk->series[j]), blk->scaled[j], blk->ts_ms);
      if (rc != 0)
        return rc;
    }
  } else {
    unknown = 0;
    for (size_t j = 0; j < blk->n_series; j++) {
      const struct dict_series *e = dict_find(da, blk->series[j]);
      if (e == NULL) {
        unknown++;
        continue;
      }
      int rc = apply_sample(b, key, rack_len, e, blk->scaled[j], blk->ts_ms);
      if (rc != 0)
        return rc;
    }
  }
  ag->undecodable += unknown;
  return 0;
}

/* A status sent without its detail (SeriesStatus.detail_kept): the detail
 * stored with the same status code stays. */
static void keep_detail(struct store_batch *b, const char *key, size_t klen,
                        struct store_latest *l) {
  MDB_val k = {klen, (void *)key}, v;
  struct store_latest old;
  if (mdb_get(b->txn, b->s->latest, &k, &v) == 0 && latest_unpack(v.mv_data, v.mv_size, &old) &&
      old.status == l->status)
    memcpy(l->detail, old.detail, sizeof(l->detail));
}

static int apply_samples(struct store_batch *b, const rp_frame *f, struct dict_agent *da,
                         struct store_agent *ag) {
  char key[KEY_MAX];
  size_t rack_len = strlen(f->rack_id);
  memcpy(key, f->rack_id, rack_len + 1);
  for (size_t i = 0; i < f->n_samples; i++) {
    int rc = apply_block(b, key, rack_len, da, f->samples[i], ag);
    if (rc != 0)
      return rc;
  }
  for (size_t i = 0; i < f->n_statuses; i++) {
    const Rackpulse__V1__SeriesStatus *st = f->statuses[i];
    const struct dict_series *d = dict_find(da, st->series);
    size_t klen;
    if (d == NULL || (klen = latest_key(key, rack_len, d)) == 0) {
      ag->undecodable++;
      continue;
    }
    struct store_latest l = {.value = 0,
                             .ts_ms = f->ts_ms,
                             .status = (int32_t)st->status,
                             .decimals = d->decimals,
                             .received_ms = b->received_ms};
    memcpy(l.unit, d->unit, sizeof(l.unit));
    /* Free text, any bytes: what the API renders must be UTF-8, and a cut
     * in the middle of a character made the series vanish from it. */
    rp_utf8_copy(l.detail, sizeof(l.detail), st->detail);
    if (st->detail_kept)
      keep_detail(b, key, klen, &l);
    int rc = put_latest(b, key, klen, &l);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* One window's statistics as stored: v = min, max, mean, stddev, p50, p95,
 * p99, slope per minute. Zeroed first: LMDB writes the padding too. */
static int put_stats(struct store_batch *b, const char *key, size_t klen, const rp_frame *f,
                     const Rackpulse__V1__WindowStats *w, const double v[8]) {
  struct store_stats st;
  memset(&st, 0, sizeof(st));
  st.window_s = w->window_s;
  st.count = w->count;
  st.min = v[0];
  st.max = v[1];
  st.mean = v[2];
  st.stddev = v[3];
  st.p50 = v[4];
  st.p95 = v[5];
  st.p99 = v[6];
  st.has_slope = w->has_slope;
  st.slope_per_min = w->has_slope ? v[7] : 0;
  st.ts_ms = f->ts_ms;
  st.newest_ms = w->newest_ms;
  st.received_ms = b->received_ms;
  return store__put(b->txn, b->s->stats, key, klen, &st, sizeof(st));
}

/* Scaled statistics (agents with a statistics cadence), stored as values;
 * stddev and slope carry two more digits. */
static int apply_scaled(struct store_batch *b, const char *key, size_t klen, const rp_frame *f,
                        const Rackpulse__V1__WindowStats *w, int decimals) {
  const double v[8] = {
      rp_value_unscale(w->min_x, decimals),  rp_value_unscale(w->max_x, decimals),
      rp_value_unscale(w->mean_x, decimals), rp_value_unscale(w->stddev_x, decimals + 2),
      rp_value_unscale(w->p50_x, decimals),  rp_value_unscale(w->p95_x, decimals),
      rp_value_unscale(w->p99_x, decimals),  rp_value_unscale(w->slope_x, decimals + 2)};
  return put_stats(b, key, klen, f, w, v);
}

/* A frame of an agent with a statistics cadence carries a series'
 * statistics only now and then: those it does not carry are unchanged as
 * of the series' newest sample in the frame, which becomes their newest
 * sample. A series without samples (its device stopped) keeps its old
 * newest_ms, and the gate finds its statistics stale. */
static int refresh_stats(struct store_batch *b, const rp_frame *f, const struct dict_agent *da) {
  MDB_cursor *c;
  int rc = mdb_cursor_open(b->txn, b->s->stats, &c);
  if (rc != 0)
    return rc;
  char key[KEY_MAX];
  size_t rack_len = strlen(f->rack_id);
  memcpy(key, f->rack_id, rack_len + 1);
  for (size_t i = 0; i < f->n_samples && rc == 0; i++) {
    const Rackpulse__V1__SampleBlock *blk = f->samples[i];
    for (size_t j = 0; j < blk->n_series && rc == 0; j++) {
      const struct dict_series *d = dict_find(da, blk->series[j]);
      if (d == NULL || rack_len + 2 + d->key_len > KEY_MAX)
        continue;
      memcpy(key + rack_len + 1, d->key, d->key_len);
      key[rack_len + 1 + d->key_len] = '|';
      size_t plen = rack_len + 2 + d->key_len;
      MDB_val k = {plen, key}, v;
      int r = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
      while (r == 0 && k.mv_size > plen && memcmp(k.mv_data, key, plen) == 0) {
        struct store_stats st;
        if (v.mv_size == sizeof(st)) {
          memcpy(&st, v.mv_data, sizeof(st));
          if (st.newest_ms < blk->ts_ms) {
            st.newest_ms = blk->ts_ms;
            st.ts_ms = f->ts_ms;
            st.received_ms = b->received_ms;
            MDB_val nv = {sizeof(st), &st};
            if ((rc = mdb_cursor_put(c, &k, &nv, MDB_CURRENT)) != 0)
              break;
          }
        }
        r = mdb_cursor_get(c, &k, &v, MDB_NEXT);
      }
    }
  }
  mdb_cursor_close(c);
  return rc;
}

static int apply_stats(struct store_batch *b, const rp_frame *f, const struct dict_agent *da,
                       struct store_agent *ag) {
  for (size_t i = 0; i < f->n_stats; i++) {
    const Rackpulse__V1__WindowStats *w = f->stats[i];
    const struct dict_series *d = dict_find(da, w->series);
    if (d == NULL) {
      ag->undecodable++;
      continue;
    }
    char wkey[RP_SERIES_KEY_MAX + 16], key[KEY_MAX];
    snprintf(wkey, sizeof(wkey), "%s|%u", d->key, w->window_s);
    int klen = store__join_key(key, sizeof(key), f->rack_id, wkey);
    if (klen < 0)
      continue;
    int rc = w->scaled ? apply_scaled(b, key, (size_t)klen, f, w, d->decimals) : 0;
    if (rc != 0)
      return rc;
    if (w->scaled)
      continue;
    const double v[8] = {w->min, w->max, w->mean, w->stddev,
                         w->p50, w->p95, w->p99,  w->slope_per_min};
    rc = put_stats(b, key, (size_t)klen, f, w, v);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int apply_devices(struct store_batch *b, const rp_frame *f) {
  for (size_t i = 0; i < f->n_devices; i++) {
    const Rackpulse__V1__DeviceStatus *ds = f->devices[i];
    struct store_device d = {.up = ds->up,
                             .scrape_ms = ds->scrape_ms,
                             .scrapes = ds->scrapes,
                             .failures = ds->failures,
                             .last_ok_ms = ds->last_ok_ms,
                             .reported_ms = f->ts_ms,
                             .received_ms = b->received_ms};
    snprintf(d.agent, sizeof(d.agent), "%s", f->agent_id);
    rp_utf8_copy(d.kind, sizeof(d.kind), ds->kind); /* as l.detail above */
    rp_utf8_copy(d.last_error, sizeof(d.last_error), ds->last_error);
    char key[KEY_MAX];
    int klen = store__join_key(key, sizeof(key), f->rack_id, ds->device);
    if (klen < 0)
      continue;
    int rc = store__put(b->txn, b->s->devices, key, (size_t)klen, &d, sizeof(d));
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Decides whether frame (agent, incarnation, seq) is new and moves the
 * agent's marks (see store.h, Identity). Returns true to apply it, with
 * *current true when it belongs to the agent's current incarnation. */
static bool accept_seq(struct store_agent *ag, bool known, const rp_frame *f, bool *current,
                       unsigned *events) {
  *current = true;
  if (!known) {
    ag->incarnation = f->incarnation;
    ag->incarnation_ms = f->ts_ms;
    ag->incarnations = 1;
    ag->last_seq = f->seq;
    return true;
  }
  if (f->incarnation == ag->incarnation) {
    if (f->seq <= ag->last_seq)
      return false;
    if (f->seq > ag->last_seq + 1)
      ag->gaps += f->seq - ag->last_seq - 1;
    ag->last_seq = f->seq;
    return true;
  }
  *current = false;
  for (uint32_t i = 0; i < ag->nprevious && i < STORE_AGENT_INCARNATIONS - 1; i++) {
    struct store_incarnation *p = &ag->previous[i];
    if (p->id != f->incarnation)
      continue;
    /* A late frame of an earlier incarnation: new for it, or a duplicate. */
    if (f->seq <= p->last_seq)
      return false;
    p->last_seq = f->seq;
    return true;
  }
  /* An incarnation never seen: the agent restarted with a new state. Its
   * first frame is applied now, whatever its seq; the old marks move down. */
  memmove(&ag->previous[1], &ag->previous[0],
          (STORE_AGENT_INCARNATIONS - 2) * sizeof(ag->previous[0]));
  ag->previous[0] = (struct store_incarnation){ag->incarnation, ag->last_seq};
  if (ag->nprevious < STORE_AGENT_INCARNATIONS - 1)
    ag->nprevious++;
  ag->incarnation = f->incarnation;
  ag->incarnation_ms = f->ts_ms;
  ag->incarnations++;
  ag->last_seq = f->seq;
  *current = true;
  *events |= STORE_EV_NEW_INCARNATION;
  return true;
}

/* Applies a new frame's dictionary, samples, statistics and devices. */
static int apply_frame(struct store_batch *b, const rp_frame *f, struct store_agent *ag,
                       unsigned *events, char *err, size_t errlen) {
  int rc;
  uint64_t dict_id =
      f->dictionary_hash != 0 ? f->dictionary_hash : rp_dict_legacy_id(f->dictionary_version);
  if (f->n_dictionary > 0) {
    bool valid = true;
    if (f->dictionary_hash != 0) {
      uint64_t h;
      if ((rc = rp_frame_dictionary_hash(f, &h)) != 0)
        return store__lmdb_err(rc, "store: dictionary hash", err, errlen);
      valid = h == f->dictionary_hash;
    }
    if (!valid) {
      ag->bad_dict_frames++;
      *events |= STORE_EV_BAD_DICTIONARY;
    } else if ((rc = store_dictionary(b, f, dict_id, ag)) != 0) {
      return store__lmdb_err(rc, "store: dictionary", err, errlen);
    }
  } else if (b->dict_left_out && (rc = store_dictionary(b, f, dict_id, ag)) != 0) {
    /* Sent but left out by the decoder, as stored: only its recency moves. */
    return store__lmdb_err(rc, "store: dictionary", err, errlen);
  }
  if (dict_slot(ag, dict_id) >= 0) {
    struct dict_agent *da;
    if ((rc = dict_get(b, f->agent_id, dict_id, &da)) != 0)
      return store__lmdb_err(rc, "store: dictionary", err, errlen);
    if ((rc = apply_samples(b, f, da, ag)) != 0)
      return store__lmdb_err(rc, "store: samples", err, errlen);
    if ((rc = apply_stats(b, f, da, ag)) != 0)
      return store__lmdb_err(rc, "store: window statistics", err, errlen);
    if (f->stats_every_frames > 0 && (rc = refresh_stats(b, f, da)) != 0)
      return store__lmdb_err(rc, "store: window statistics", err, errlen);
    ag->last_decoded_ms = f->ts_ms;
  } else if (f->n_samples > 0 || f->n_statuses > 0 || f->n_stats > 0) {
    /* Never decoded with another dictionary: skipped and counted. */
    for (size_t i = 0; i < f->n_samples; i++)
      ag->undecodable += f->samples[i]->n_series;
    ag->unknown_dict_frames++;
    ag->last_unknown_dict = dict_id;
    ag->last_unknown_dict_ms = f->ts_ms;
    *events |= STORE_EV_UNKNOWN_DICTIONARY;
  }
  if ((rc = apply_devices(b, f)) != 0)
    return store__lmdb_err(rc, "store: devices", err, errlen);
  struct store_rack r = {0};
  store__get_copy(b->txn, b->s->racks, f->rack_id, strlen(f->rack_id), &r, sizeof(r));
  if (f->ts_ms >= r.last_frame_ms) {
    r.last_frame_ms = f->ts_ms;
    r.received_ms = b->received_ms;
    r.last_seq = f->seq;
    snprintf(r.agent, sizeof(r.agent), "%s", f->agent_id);
    rc = store__put(b->txn, b->s->racks, f->rack_id, strlen(f->rack_id), &r, sizeof(r));
    if (rc != 0)
      return store__lmdb_err(rc, "store: rack", err, errlen);
  }
  return 0;
}

int store__batch_apply(struct store_batch *b, const rp_frame *f, const char *topic,
                       int32_t partition, int64_t offset, enum store_outcome *outcome,
                       unsigned *events, char *err, size_t errlen) {
  struct store_agent ag = {0};
  size_t alen = strlen(f->agent_id);
  *events = 0;
  b->received_ms = b->received_set_ms                    ? b->received_set_ms
                   : b->s->clock_ms == STORE_CLOCK_FRAME ? f->ts_ms
                   : b->s->clock_ms                      ? b->s->clock_ms
                                                         : rp_now_ms();
  int rc = store__get_copy(b->txn, b->s->agents, f->agent_id, alen, &ag, sizeof(ag));
  if (rc != 0 && rc != MDB_NOTFOUND)
    return store__lmdb_err(rc, "store: agent", err, errlen);
  bool current;
  if (!accept_seq(&ag, rc == 0, f, &current, events)) {
    ag.duplicates++;
    *outcome = STORE_DUPLICATE;
  } else {
    ag.frames++;
    if (current)
      ag.last_ms = f->ts_ms;
    snprintf(ag.rack, sizeof(ag.rack), "%s", f->rack_id);
    if ((rc = apply_frame(b, f, &ag, events, err, errlen)) != 0)
      return rc;
    *outcome = STORE_APPLIED;
  }
  if ((rc = store__put(b->txn, b->s->agents, f->agent_id, alen, &ag, sizeof(ag))) != 0)
    return store__lmdb_err(rc, "store: agent", err, errlen);
  return store_batch_skip(b, topic, partition, offset, err, errlen);
}

/* Whether the batch's record of the frame's agent holds the dictionary
 * named by its dictionary_hash. */
static bool dict_stored(struct store_batch *b, const rp_frame *f) {
  struct store_agent ag;
  return store__get_copy(b->txn, b->s->agents, f->agent_id, strlen(f->agent_id), &ag, sizeof(ag)) ==
             0 &&
         dict_slot(&ag, f->dictionary_hash) >= 0;
}

int store__apply_msg(struct store_batch *b, struct store_msg *m, char *err, size_t errlen) {
  if (m->frame == NULL)
    return store_batch_skip(b, m->topic, m->partition, m->offset, err, errlen);
  if (m->raw == NULL || dict_stored(b, m->frame)) {
    b->dict_left_out = m->raw != NULL;
    int rc = store__batch_apply(b, m->frame, m->topic, m->partition, m->offset, &m->outcome,
                                &m->events, err, errlen);
    b->dict_left_out = false;
    return rc;
  }
  /* A dictionary the store does not hold (new, or evicted): the message
   * is decoded again with it, as rp_frame_decode() alone would have. */
  rp_frame *whole;
  char why[256];
  if (rp_frame_decode(m->raw, m->raw_len, &whole, why, sizeof(why)) != 0) {
    m->frame = NULL;
    return store_batch_skip(b, m->topic, m->partition, m->offset, err, errlen);
  }
  int rc = store__batch_apply(b, whole, m->topic, m->partition, m->offset, &m->outcome, &m->events,
                              err, errlen);
  rp_frame_free(whole);
  return rc;
}

void store_batch_set_received(struct store_batch *b, int64_t ms) { b->received_set_ms = ms; }
