/* Frame building (see frames.h). Pending samples live in flat arrays that
 * grow up to a bound and are reused frame after frame, so steady-state
 * building allocates only the packed output buffer. A series' status
 * detail is sent when it changes and with the dictionary; in between its
 * status carries detail_kept (the code goes every frame). A device's
 * status goes out when it changed (a scrape ended: its counters moved) and
 * with the dictionary. */
#include "frames.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "rackpulse.pb-c.h"

struct block {
  int64_t ts_ms;
  size_t first, n; /* range in ids/scaled */
};

struct status {
  uint32_t series;
  int status;
  char detail[128];
};

struct dev_sent {
  const struct rp_target *t; /* NULL: nothing sent from this position */
  uint64_t scrapes, failures, skipped;
  bool up;
};

struct rp_frame_builder {
  size_t max_samples;
  uint32_t *ids;
  int64_t *scaled;
  size_t nsamples, cap_ids, cap_scaled;
  struct block *blocks;
  size_t nblocks, cap_blocks;
  struct status *statuses;
  size_t nstatuses, cap_statuses;
  uint64_t *sent; /* by series id: hash of the status and detail last sent; 0: none */
  size_t cap_sent;
  struct dev_sent *dev; /* by target position: what was last sent of it */
  size_t cap_dev;
  uint64_t dropped;
};

struct rp_frame_builder *rp_builder_new(size_t max_samples) {
  struct rp_frame_builder *b = calloc(1, sizeof(*b));
  if (b != NULL)
    b->max_samples = max_samples;
  return b;
}

void rp_builder_free(struct rp_frame_builder *b) {
  if (b == NULL)
    return;
  free(b->ids);
  free(b->scaled);
  free(b->blocks);
  free(b->statuses);
  free(b->sent);
  free(b->dev);
  free(b);
}

size_t rp_builder_pending(const struct rp_frame_builder *b) { return b->nsamples; }
uint64_t rp_builder_dropped(const struct rp_frame_builder *b) { return b->dropped; }

/* Grows an array to hold `need` elements of `size`; returns 0 or -ENOMEM. */
static int grow(void **arr, size_t *cap, size_t need, size_t size) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap : 64;
  while (n < need)
    n *= 2;
  void *p = realloc(*arr, n * size);
  if (p == NULL)
    return -ENOMEM;
  *arr = p;
  *cap = n;
  return 0;
}

int rp_builder_add_block(struct rp_frame_builder *b, int64_t ts_ms, const uint32_t *ids,
                         const int64_t *scaled, size_t n) {
  if (n == 0)
    return 0;
  if (b->nsamples + n > b->max_samples) {
    b->dropped += n;
    return -ENOSPC;
  }
  if (grow((void **)&b->ids, &b->cap_ids, b->nsamples + n, sizeof(*b->ids)) != 0 ||
      grow((void **)&b->scaled, &b->cap_scaled, b->nsamples + n, sizeof(*b->scaled)) != 0 ||
      grow((void **)&b->blocks, &b->cap_blocks, b->nblocks + 1, sizeof(*b->blocks)) != 0) {
    b->dropped += n;
    return -ENOMEM;
  }
  for (size_t i = 0; i < n; i++) /* a value: the next status is news */
    if (ids[i] < b->cap_sent)
      b->sent[ids[i]] = 0;
  memcpy(b->ids + b->nsamples, ids, n * sizeof(*ids));
  memcpy(b->scaled + b->nsamples, scaled, n * sizeof(*scaled));
  b->blocks[b->nblocks++] = (struct block){ts_ms, b->nsamples, n};
  b->nsamples += n;
  return 0;
}

int rp_builder_add_status(struct rp_frame_builder *b, uint32_t series, int status,
                          const char *detail) {
  if (b->nstatuses >= b->max_samples)
    return -ENOSPC;
  if (grow((void **)&b->statuses, &b->cap_statuses, b->nstatuses + 1, sizeof(*b->statuses)))
    return -ENOMEM;
  struct status *s = &b->statuses[b->nstatuses++];
  s->series = series;
  s->status = status;
  snprintf(s->detail, sizeof(s->detail), "%s", detail ? detail : "");
  return 0;
}

/* FNV-1a of a status code and its detail; never 0. */
static uint64_t status_hash(int status, const char *detail) {
  uint64_t h = 1469598103934665603ull ^ (uint64_t)(unsigned)status;
  for (const char *p = detail; *p != '\0'; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h | 1;
}

/* Leaves out a status's detail when it was sent before (unless the frame
 * carries the dictionary), remembering what it sent. */
static void status_detail(struct rp_frame_builder *b, const struct status *st, bool full,
                          Rackpulse__V1__SeriesStatus *out) {
  uint64_t h = status_hash(st->status, st->detail);
  out->detail = (char *)st->detail;
  if (!full && st->series < b->cap_sent && b->sent[st->series] == h) {
    out->detail = "";
    out->detail_kept = true;
    return;
  }
  if (st->series >= b->cap_sent) {
    size_t old = b->cap_sent;
    if (grow((void **)&b->sent, &b->cap_sent, (size_t)st->series + 1, sizeof(*b->sent)) != 0)
      return; /* sent in full again next time */
    memset(b->sent + old, 0, (b->cap_sent - old) * sizeof(*b->sent));
  }
  b->sent[st->series] = h;
}

/* True when target i is to be sent: with the dictionary, or when it
 * changed since it was last sent (records it as sent). */
static bool device_due(struct rp_frame_builder *b, size_t i, const struct rp_target *t, bool full) {
  if (i >= b->cap_dev) {
    size_t old = b->cap_dev;
    if (grow((void **)&b->dev, &b->cap_dev, i + 1, sizeof(*b->dev)) != 0)
      return true;
    memset(b->dev + old, 0, (b->cap_dev - old) * sizeof(*b->dev));
  }
  struct dev_sent *d = &b->dev[i];
  if (!full && d->t == t && d->scrapes == t->scrapes && d->failures == t->failures &&
      d->skipped == t->skipped && d->up == t->up)
    return false;
  *d = (struct dev_sent){t, t->scrapes, t->failures, t->skipped, t->up};
  return true;
}

/* The protobuf-c message structs below point into the builder, the series
 * table and the targets: nothing is copied, everything lives until packing
 * is done. */
int rp_builder_build(struct rp_frame_builder *b, const struct rp_frame_meta *meta,
                     struct rp_series_table *series, struct rp_target *const *targets,
                     size_t ntargets, const struct rp_agent_health *health, uint8_t **buf,
                     size_t *len) {
  int rc = -ENOMEM;
  Rackpulse__V1__Frame f = RACKPULSE__V1__FRAME__INIT;
  Rackpulse__V1__AgentHealth h = RACKPULSE__V1__AGENT_HEALTH__INIT;
  size_t ndict = meta->with_dictionary ? series->count : 0;
  size_t nlabels_total = 0;
  for (size_t i = 0; i < ndict; i++)
    nlabels_total += series->entries[i].nlabels;

  Rackpulse__V1__SeriesDef *defs = calloc(ndict + 1, sizeof(*defs));
  Rackpulse__V1__SeriesDef **def_ptrs = calloc(ndict + 1, sizeof(*def_ptrs));
  Rackpulse__V1__Label *labels = calloc(nlabels_total + 1, sizeof(*labels));
  Rackpulse__V1__Label **label_ptrs = calloc(nlabels_total + 1, sizeof(*label_ptrs));
  Rackpulse__V1__SampleBlock *blocks = calloc(b->nblocks + 1, sizeof(*blocks));
  Rackpulse__V1__SampleBlock **block_ptrs = calloc(b->nblocks + 1, sizeof(*block_ptrs));
  Rackpulse__V1__SeriesStatus *sts = calloc(b->nstatuses + 1, sizeof(*sts));
  Rackpulse__V1__SeriesStatus **st_ptrs = calloc(b->nstatuses + 1, sizeof(*st_ptrs));
  Rackpulse__V1__DeviceStatus *devs = calloc(ntargets + 1, sizeof(*devs));
  Rackpulse__V1__DeviceStatus **dev_ptrs = calloc(ntargets + 1, sizeof(*dev_ptrs));
  uint8_t *out = NULL;
  if (!defs || !def_ptrs || !labels || !label_ptrs || !blocks || !block_ptrs || !sts || !st_ptrs ||
      !devs || !dev_ptrs)
    goto done;

  size_t li = 0;
  for (size_t i = 0; i < ndict; i++) {
    const struct rp_series *s = &series->entries[i];
    rackpulse__v1__series_def__init(&defs[i]);
    defs[i].id = s->id;
    defs[i].name = s->name;
    defs[i].unit = s->unit;
    defs[i].device = s->device;
    defs[i].decimals = s->decimals;
    defs[i].labels = &label_ptrs[li];
    defs[i].n_labels = s->nlabels;
    for (size_t j = 0; j < s->nlabels; j++, li++) {
      rackpulse__v1__label__init(&labels[li]);
      labels[li].key = s->label_keys[j];
      labels[li].value = s->label_values[j];
      label_ptrs[li] = &labels[li];
    }
    def_ptrs[i] = &defs[i];
  }
  for (size_t i = 0; i < b->nblocks; i++) {
    rackpulse__v1__sample_block__init(&blocks[i]);
    blocks[i].ts_ms = b->blocks[i].ts_ms;
    blocks[i].series = b->ids + b->blocks[i].first;
    blocks[i].n_series = b->blocks[i].n;
    blocks[i].scaled = b->scaled + b->blocks[i].first;
    blocks[i].n_scaled = b->blocks[i].n;
    block_ptrs[i] = &blocks[i];
  }
  for (size_t i = 0; i < b->nstatuses; i++) {
    rackpulse__v1__series_status__init(&sts[i]);
    sts[i].series = b->statuses[i].series;
    sts[i].status = (Rackpulse__V1__ReadingStatus)b->statuses[i].status;
    status_detail(b, &b->statuses[i], meta->with_dictionary, &sts[i]);
    st_ptrs[i] = &sts[i];
  }
  size_t ndevs = 0;
  for (size_t i = 0; i < ntargets; i++) {
    const struct rp_target *t = targets[i];
    if (!device_due(b, i, t, meta->with_dictionary))
      continue;
    Rackpulse__V1__DeviceStatus *d = &devs[ndevs];
    rackpulse__v1__device_status__init(d);
    d->device = (char *)t->name;
    d->kind = (char *)t->collector->name;
    d->up = t->up;
    d->last_error = (char *)t->last_error;
    d->scrape_ms = t->scrape_ms;
    d->scrapes = t->scrapes;
    d->failures = t->failures;
    d->last_ok_ms = t->last_ok_ms;
    dev_ptrs[ndevs++] = d;
  }
  h.version = RP_VERSION;
  h.frames_produced = health->frames_produced;
  h.frames_delivered = health->frames_delivered;
  h.frames_failed = health->frames_failed;
  h.spool_depth = health->spool_depth;
  h.frames_dropped = health->frames_dropped;
  h.delivery_latency_ms = health->delivery_latency_ms;
  h.scrapes_late = health->scrapes_late;
  h.frames_rejected = health->frames_rejected;
  h.kafka_error = (char *)health->kafka_error;
  h.spool_write_failures = health->spool_write_failures;
  h.spool_degraded = health->spool_degraded;

  f.schema_version = 1;
  f.agent_id = (char *)meta->agent_id;
  f.rack_id = (char *)meta->rack_id;
  f.seq = meta->seq;
  f.ts_ms = meta->ts_ms;
  f.interval_ms = meta->interval_ms;
  f.incarnation = meta->incarnation;
  f.dictionary_version = series->version; /* informational (deprecated) */
  f.dictionary_hash = rp_series_table_hash(series);
  f.dictionary = def_ptrs;
  f.n_dictionary = ndict;
  f.samples = block_ptrs;
  f.n_samples = b->nblocks;
  f.statuses = st_ptrs;
  f.n_statuses = b->nstatuses;
  f.stats_every_frames = meta->stats_every;
  f.stats = meta->stats;
  f.n_stats = meta->nstats;
  f.devices = dev_ptrs;
  f.n_devices = ndevs;
  f.health = &h;

  size_t size = rackpulse__v1__frame__get_packed_size(&f);
  out = malloc(size ? size : 1);
  if (out == NULL)
    goto done;
  *len = rackpulse__v1__frame__pack(&f, out);
  *buf = out;
  b->nsamples = b->nblocks = b->nstatuses = 0;
  rc = 0;
done:
  free(defs);
  free(def_ptrs);
  free(labels);
  free(label_ptrs);
  free(blocks);
  free(block_ptrs);
  free(sts);
  free(st_ptrs);
  free(devs);
  free(dev_ptrs);
  return rc;
}
