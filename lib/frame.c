/* Frames: decode-and-validate for consumers, scaled-integer values, and the
 * JSON rendering shared by `rackpulse-agent --once` and `rackpulsectl tail`.
 * Validation lives here so that every consumer refuses the same frames. */
#include "rackpulse/frame.h"
#include "rackpulse/hash.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t rp_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const double pow10_table[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

static double pow10_of(int d) {
  if (d >= 0 && d <= 9)
    return pow10_table[d];
  return pow(10.0, d);
}

int rp_value_scale(double v, int decimals, int64_t *out) {
  if (!isfinite(v))
    return -ERANGE;
  double s = nearbyint(v * pow10_of(decimals));
  if (!(s > -9.2e18 && s < 9.2e18))
    return -ERANGE;
  *out = (int64_t)s;
  return 0;
}

double rp_value_unscale(int64_t scaled, int decimals) {
  return (double)scaled / pow10_of(decimals);
}

/* The residue is measured in the scale's own units (1e-9 × 10^d once
 * multiplied): the rounding error of s × 10^d grows with 10^d, and an
 * absolute bound would push an exact 8-digit scale to 9 digits. */
int rp_scale_decimals(double scale) {
  double s = fabs(scale);
  int d = 0;
  while (d < 9 && fabs(s * pow10_of(d) - nearbyint(s * pow10_of(d))) > 1e-9 * pow10_of(d))
    d++;
  return d;
}

/* The length (1..4) of the well-formed UTF-8 character at p (no overlong
 * form, surrogate or code point above U+10FFFF: the rule jansson applies),
 * or 0 when p does not start one. */
static size_t utf8_char(const unsigned char *p) {
  unsigned c = p[0], n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 1, cp = c & 0x1F;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 2, cp = c & 0x0F;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 3, cp = c & 0x07;
  else
    return 0;
  for (unsigned i = 1; i <= n; i++) {
    if ((p[i] & 0xC0) != 0x80) /* also stops at the NUL */
      return 0;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n + 1;
}

/* protobuf-c does not check that proto3 strings are UTF-8: a frame whose
 * agent id was not used to pass validation and then vanish from every JSON
 * rendering (found by fuzzing). */
static bool utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t n; *p != '\0'; p += n)
    if ((n = utf8_char(p)) == 0)
      return false;
  return true;
}

size_t rp_utf8_copy(char *dst, size_t size, const char *src) {
  const unsigned char *p = (const unsigned char *)src;
  size_t len = 0;
  if (size == 0)
    return 0;
  while (*p != '\0') {
    size_t n = utf8_char(p);
    if (len + (n ? n : 1) >= size)
      break; /* never half a character */
    if (n == 0) {
      dst[len++] = '?';
      p++;
    } else {
      memcpy(dst + len, p, n);
      len += n;
      p += n;
    }
  }
  dst[len] = '\0';
  return len;
}

/* Free text of a frame (details, errors) as a JSON string: bytes that are
 * not UTF-8 become '?' instead of making the whole object vanish. */
static json_t *json_text(const char *s) {
  json_t *j = json_string(s);
  if (j != NULL || s == NULL)
    return j;
  size_t size = strlen(s) + 1;
  char *clean = malloc(size);
  if (clean == NULL)
    return NULL;
  rp_utf8_copy(clean, size, s);
  j = json_string(clean);
  free(clean);
  return j;
}

static int check_str(const char *s, const char *what, size_t max, char *err, size_t errlen) {
  if (s == NULL || strlen(s) > max) {
    snprintf(err, errlen, "%s longer than %zu bytes", what, max);
    return -EPROTO;
  }
  if (!utf8_valid(s)) {
    snprintf(err, errlen, "%s is not UTF-8", what);
    return -EPROTO;
  }
  return 0;
}

static int validate(const rp_frame *f, char *err, size_t errlen) {
  if (f->schema_version != RP_FRAME_SCHEMA_VERSION) {
    snprintf(err, errlen, "schema_version %u, this build reads %d", f->schema_version,
             RP_FRAME_SCHEMA_VERSION);
    return -EPROTO;
  }
  if (f->agent_id[0] == '\0' || f->rack_id[0] == '\0') {
    snprintf(err, errlen, "empty agent_id or rack_id");
    return -EPROTO;
  }
  if (check_str(f->agent_id, "agent_id", RP_ID_MAX, err, errlen) ||
      check_str(f->rack_id, "rack_id", RP_ID_MAX, err, errlen))
    return -EPROTO;
  if (f->n_dictionary > RP_FRAME_MAX_SERIES) {
    snprintf(err, errlen, "dictionary of %zu series (limit %u)", f->n_dictionary,
             RP_FRAME_MAX_SERIES);
    return -EPROTO;
  }
  for (size_t i = 0; i < f->n_dictionary; i++) {
    const Rackpulse__V1__SeriesDef *d = f->dictionary[i];
    if (check_str(d->name, "series name", RP_FRAME_MAX_NAME, err, errlen) ||
        check_str(d->unit, "series unit", RP_FRAME_MAX_NAME, err, errlen) ||
        check_str(d->device, "series device", RP_FRAME_MAX_NAME, err, errlen))
      return -EPROTO;
    if (d->name[0] == '\0') {
      snprintf(err, errlen, "series %u has an empty name", d->id);
      return -EPROTO;
    }
    if (d->decimals < -9 || d->decimals > 9) {
      snprintf(err, errlen, "series %u: decimals %d outside -9..9", d->id, d->decimals);
      return -EPROTO;
    }
    if (d->n_labels > RP_FRAME_MAX_LABELS) {
      snprintf(err, errlen, "series %u has %zu labels (limit %d)", d->id, d->n_labels,
               RP_FRAME_MAX_LABELS);
      return -EPROTO;
    }
    size_t key_len = strlen(d->name) + 1 + strlen(d->device) + 2;
    for (size_t j = 0; j < d->n_labels; j++) {
      if (check_str(d->labels[j]->key, "label key", RP_FRAME_MAX_NAME, err, errlen) ||
          check_str(d->labels[j]->value, "label value", RP_FRAME_MAX_NAME, err, errlen))
        return -EPROTO;
      key_len += strlen(d->labels[j]->key) + strlen(d->labels[j]->value) + 2;
    }
    if (key_len > RP_SERIES_KEY_MAX) {
      snprintf(err, errlen, "series %u: name, labels and device total %zu bytes (limit %d)", d->id,
               key_len, RP_SERIES_KEY_MAX);
      return -EPROTO;
    }
  }
  /* Times are Unix ms: consumers subtract them from now, which overflowed
   * for a time near INT64_MIN (found by fuzzing). */
  if (f->ts_ms < 0) {
    snprintf(err, errlen, "ts_ms %lld is negative", (long long)f->ts_ms);
    return -EPROTO;
  }
  for (size_t i = 0; i < f->n_samples; i++) {
    const Rackpulse__V1__SampleBlock *b = f->samples[i];
    if (b->n_series != b->n_scaled) {
      snprintf(err, errlen, "sample block %zu: %zu series ids but %zu values", i, b->n_series,
               b->n_scaled);
      return -EPROTO;
    }
    if (b->ts_ms < 0) {
      snprintf(err, errlen, "sample block %zu: ts_ms %lld is negative", i, (long long)b->ts_ms);
      return -EPROTO;
    }
  }
  /* Device names and kinds are keys (LMDB, JSON) like series names. Free
   * text (details, errors, the agent's version) is not checked: a device's
   * error message must not cost the rack its frame. Consumers copy it with
   * rp_utf8_copy() and render it with json_text(). */
  for (size_t i = 0; i < f->n_devices; i++) {
    const Rackpulse__V1__DeviceStatus *d = f->devices[i];
    if (check_str(d->device, "device name", RP_FRAME_MAX_NAME, err, errlen) ||
        check_str(d->kind, "device kind", RP_FRAME_MAX_NAME, err, errlen))
      return -EPROTO;
  }
  return 0;
}

int rp_frame_decode(const void *buf, size_t len, rp_frame **out, char *err, size_t errlen) {
  if (len > RP_FRAME_MAX_BYTES) {
    snprintf(err, errlen, "message of %zu bytes exceeds the %u-byte frame limit", len,
             RP_FRAME_MAX_BYTES);
    return -EMSGSIZE;
  }
  rp_frame *f = rackpulse__v1__frame__unpack(NULL, len, buf);
  if (f == NULL) {
    snprintf(err, errlen, "not a rackpulse.v1.Frame (protobuf decoding failed)");
    return -EBADMSG;
  }
  int rc = validate(f, err, errlen);
  if (rc != 0) {
    rackpulse__v1__frame__free_unpacked(f, NULL);
    return rc;
  }
  *out = f;
  return 0;
}

void rp_frame_free(rp_frame *frame) {
  if (frame != NULL)
    rackpulse__v1__frame__free_unpacked(frame, NULL);
}

const Rackpulse__V1__SeriesDef *rp_frame_find_series(const rp_frame *f, uint32_t id) {
  if (f == NULL)
    return NULL;
  for (size_t i = 0; i < f->n_dictionary; i++)
    if (f->dictionary[i]->id == id)
      return f->dictionary[i];
  return NULL;
}

/* ---- dictionary identity (see frame.h) ------------------------------------ */

static uint64_t hash_u32(uint64_t h, uint32_t v) {
  unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                         (unsigned char)(v >> 24)};
  return rp_hash_update(h, le, sizeof(le));
}

static uint64_t hash_str(uint64_t h, const char *s) {
  size_t n = s ? strlen(s) : 0;
  h = hash_u32(h, (uint32_t)n);
  return rp_hash_update(h, s ? s : "", n);
}

uint64_t rp_dict_hash_series(uint64_t h, uint32_t id, const char *name, const char *unit,
                             const char *device, int decimals, size_t nlabels) {
  h = hash_u32(h, id);
  h = hash_u32(h, (uint32_t)decimals);
  h = hash_str(h, name);
  h = hash_str(h, unit);
  h = hash_str(h, device);
  return hash_u32(h, (uint32_t)nlabels);
}

uint64_t rp_dict_hash_label(uint64_t h, const char *key, const char *value) {
  return hash_str(hash_str(h, key), value);
}

uint64_t rp_dict_hash_final(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h != 0 ? h : 1;
}

static int def_by_id(const void *a, const void *b) {
  uint32_t x = (*(const Rackpulse__V1__SeriesDef *const *)a)->id;
  uint32_t y = (*(const Rackpulse__V1__SeriesDef *const *)b)->id;
  return x < y ? -1 : x > y;
}

int rp_frame_dictionary_hash(const rp_frame *f, uint64_t *out) {
  Rackpulse__V1__SeriesDef **defs = f->dictionary, **sorted = NULL;
  for (size_t i = 1; i < f->n_dictionary; i++) {
    if (defs[i - 1]->id <= defs[i]->id)
      continue; /* agents send it in id order: no copy then */
    sorted = malloc(f->n_dictionary * sizeof(*sorted));
    if (sorted == NULL)
      return -ENOMEM;
    memcpy(sorted, defs, f->n_dictionary * sizeof(*sorted));
    qsort(sorted, f->n_dictionary, sizeof(*sorted), def_by_id);
    defs = sorted;
    break;
  }
  uint64_t h = RP_DICT_HASH_INIT;
  for (size_t i = 0; i < f->n_dictionary; i++) {
    const Rackpulse__V1__SeriesDef *d = defs[i];
    h = rp_dict_hash_series(h, d->id, d->name, d->unit, d->device, d->decimals, d->n_labels);
    for (size_t j = 0; j < d->n_labels; j++)
      h = rp_dict_hash_label(h, d->labels[j]->key, d->labels[j]->value);
  }
  free(sorted);
  *out = rp_dict_hash_final(h);
  return 0;
}

uint64_t rp_dict_legacy_id(uint32_t dictionary_version) {
  static const char tag[] = "rackpulse legacy dictionary_version";
  return rp_dict_hash_final(
      hash_u32(rp_hash_update(RP_DICT_HASH_INIT, tag, sizeof(tag) - 1), dictionary_version));
}

/* JSON numbers cannot be NaN or infinite: those become null. */
static json_t *json_num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *series_to_json(const Rackpulse__V1__SeriesDef *d) {
  json_t *labels = json_object();
  for (size_t i = 0; i < d->n_labels; i++)
    json_object_set_new(labels, d->labels[i]->key, json_string(d->labels[i]->value));
  return json_pack("{s:I, s:s, s:s, s:s, s:I, s:o}", "id", (json_int_t)d->id, "name", d->name,
                   "unit", d->unit, "device", d->device, "decimals", (json_int_t)d->decimals,
                   "labels", labels);
}

static json_t *samples_to_json(const rp_frame *f, const rp_frame *dict) {
  json_t *arr = json_array();
  for (size_t i = 0; i < f->n_samples; i++) {
    const Rackpulse__V1__SampleBlock *b = f->samples[i];
    for (size_t j = 0; j < b->n_series; j++) {
      const Rackpulse__V1__SeriesDef *d = rp_frame_find_series(f, b->series[j]);
      if (d == NULL)
        d = rp_frame_find_series(dict, b->series[j]);
      json_t *s = json_pack("{s:I, s:I}", "ts_ms", (json_int_t)b->ts_ms, "series",
                            (json_int_t)b->series[j]);
      if (d != NULL) {
        json_object_set_new(s, "name", json_string(d->name));
        json_object_set_new(s, "unit", json_string(d->unit));
        json_object_set_new(s, "device", json_string(d->device));
        json_object_set_new(s, "value", json_num(rp_value_unscale(b->scaled[j], d->decimals)));
      } else {
        json_object_set_new(s, "scaled", json_integer(b->scaled[j]));
      }
      json_array_append_new(arr, s);
    }
  }
  return arr;
}

/* Scaled statistics (WindowStats.scaled): as values when the series'
 * decimals are known (dictionary), else the integers as sent. */
static json_t *scaled_stats_to_json(json_t *o, const Rackpulse__V1__WindowStats *w,
                                    const Rackpulse__V1__SeriesDef *d) {
  const char *const names[] = {"min", "max", "mean", "stddev", "p50", "p95", "p99"};
  const int64_t x[] = {w->min_x, w->max_x, w->mean_x, w->stddev_x, w->p50_x, w->p95_x, w->p99_x};
  json_object_set_new(o, "scaled", json_true());
  for (size_t i = 0; i < sizeof(x) / sizeof(x[0]); i++) {
    char key[16];
    snprintf(key, sizeof(key), "%s_x", names[i]);
    if (d == NULL)
      json_object_set_new(o, key, json_integer(x[i]));
    else
      json_object_set_new(o, names[i],
                          json_num(rp_value_unscale(x[i], d->decimals + (i == 3 ? 2 : 0))));
  }
  json_t *slope = json_null();
  if (w->has_slope)
    slope = d == NULL ? json_integer(w->slope_x)
                      : json_num(rp_value_unscale(w->slope_x, d->decimals + 2));
  json_object_set_new(o, d == NULL ? "slope_x" : "slope_per_min", slope);
  json_object_set_new(o, "newest_ms", json_integer(w->newest_ms));
  return o;
}

static json_t *stats_to_json(const Rackpulse__V1__WindowStats *w,
                             const Rackpulse__V1__SeriesDef *d) {
  json_t *o = json_pack("{s:I, s:I, s:I}", "series", (json_int_t)w->series, "window_s",
                        (json_int_t)w->window_s, "count", (json_int_t)w->count);
  if (w->scaled)
    return scaled_stats_to_json(o, w, d);
  json_object_set_new(o, "min", json_num(w->min));
  json_object_set_new(o, "max", json_num(w->max));
  json_object_set_new(o, "mean", json_num(w->mean));
  json_object_set_new(o, "stddev", json_num(w->stddev));
  json_object_set_new(o, "p50", json_num(w->p50));
  json_object_set_new(o, "p95", json_num(w->p95));
  json_object_set_new(o, "p99", json_num(w->p99));
  json_object_set_new(o, "slope_per_min", w->has_slope ? json_num(w->slope_per_min) : json_null());
  json_object_set_new(o, "newest_ms", json_integer(w->newest_ms));
  return o;
}

static json_t *device_to_json(const Rackpulse__V1__DeviceStatus *d) {
  return json_pack("{s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:I}", "device", d->device, "kind", d->kind,
                   "up", (int)d->up, "last_error", json_text(d->last_error), "scrape_ms",
                   (json_int_t)d->scrape_ms, "scrapes", (json_int_t)d->scrapes, "failures",
                   (json_int_t)d->failures, "last_ok_ms", (json_int_t)d->last_ok_ms);
}

static json_t *health_to_json(const Rackpulse__V1__AgentHealth *h) {
  if (h == NULL)
    return json_null();
  json_t *o =
      json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "version", json_text(h->version),
                "frames_produced", (json_int_t)h->frames_produced, "frames_delivered",
                (json_int_t)h->frames_delivered, "frames_failed", (json_int_t)h->frames_failed,
                "spool_depth", (json_int_t)h->spool_depth, "frames_dropped",
                (json_int_t)h->frames_dropped, "delivery_latency_ms",
                (json_int_t)h->delivery_latency_ms, "scrapes_late", (json_int_t)h->scrapes_late);
  if (o == NULL)
    return NULL;
  json_object_set_new(o, "frames_rejected", json_integer((json_int_t)h->frames_rejected));
  json_object_set_new(o, "kafka_error", json_text(h->kafka_error));
  json_object_set_new(o, "spool_write_failures", json_integer((json_int_t)h->spool_write_failures));
  json_object_set_new(o, "spool_degraded", json_boolean(h->spool_degraded));
  return o;
}

static const char *status_name(Rackpulse__V1__ReadingStatus s) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&rackpulse__v1__reading_status__descriptor, s);
  return v ? v->name : "UNKNOWN";
}

json_t *rp_frame_to_json(const rp_frame *f, const rp_frame *dict) {
  json_t *o = json_pack("{s:I, s:s, s:s, s:I, s:I, s:I, s:I}", "schema_version",
                        (json_int_t)f->schema_version, "agent_id", f->agent_id, "rack_id",
                        f->rack_id, "seq", (json_int_t)f->seq, "ts_ms", (json_int_t)f->ts_ms,
                        "interval_ms", (json_int_t)f->interval_ms, "dictionary_version",
                        (json_int_t)f->dictionary_version);
  json_t *dictionary = json_array();
  for (size_t i = 0; i < f->n_dictionary; i++)
    json_array_append_new(dictionary, series_to_json(f->dictionary[i]));
  json_object_set_new(o, "dictionary", dictionary);
  json_object_set_new(o, "samples", samples_to_json(f, dict));
  json_t *statuses = json_array();
  for (size_t i = 0; i < f->n_statuses; i++) {
    json_t *st =
        json_pack("{s:I, s:s, s:o}", "series", (json_int_t)f->statuses[i]->series, "status",
                  status_name(f->statuses[i]->status), "detail", json_text(f->statuses[i]->detail));
    if (f->statuses[i]->detail_kept)
      json_object_set_new(st, "detail_kept", json_true());
    json_array_append_new(statuses, st);
  }
  json_object_set_new(o, "statuses", statuses);
  json_t *stats = json_array();
  for (size_t i = 0; i < f->n_stats; i++) {
    const Rackpulse__V1__SeriesDef *d = rp_frame_find_series(f, f->stats[i]->series);
    if (d == NULL)
      d = rp_frame_find_series(dict, f->stats[i]->series);
    json_array_append_new(stats, stats_to_json(f->stats[i], d));
  }
  json_object_set_new(o, "stats", stats);
  if (f->stats_every_frames > 0)
    json_object_set_new(o, "stats_every_frames", json_integer(f->stats_every_frames));
  json_t *devices = json_array();
  for (size_t i = 0; i < f->n_devices; i++)
    json_array_append_new(devices, device_to_json(f->devices[i]));
  json_object_set_new(o, "devices", devices);
  json_object_set_new(o, "health", health_to_json(f->health));
  /* 64-bit identities as 16 hex digits: JSON numbers lose bits past 2^53. */
  char hex[17];
  snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)f->incarnation);
  json_object_set_new(o, "incarnation", json_string(hex));
  snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)f->dictionary_hash);
  json_object_set_new(o, "dictionary_hash", json_string(hex));
  return o;
}
