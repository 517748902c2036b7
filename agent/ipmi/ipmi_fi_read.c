/* The in-process IPMI backend's SDR and sensors (see ipmi_freeipmi.c): the
 * SDR read through FreeIPMI's cache code into memory, re-read when the
 * repository's signature changes, and every sensor read on the worker
 * thread: a linear analog threshold sensor of the BMC with one Get Sensor
 * Reading converted by ipmi_sensor_decode_value(), any other through
 * ipmi_sensor_read(); both FreeIPMI's own conversion, into the struct
 * ipmi_reading rows the ipmitool parser also produces. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipmi_fi.h"

/* ------------------------------------------------------------ SDR */

/* Parses the record the SDR cache iterator points at into *s; false when
 * it is not a sensor record. */
static bool parse_record(struct ipmi_fi *fi, struct fi_sensor *s) {
  int len = ipmi_sdr_cache_record_read(fi->sdr, s->rec, sizeof(s->rec));
  uint16_t id;
  uint8_t type, num, eid, einst, etype, code;
  if (len <= 0)
    return false;
  s->len = (unsigned)len;
  if (ipmi_sdr_parse_record_id_and_type(fi->sdr, s->rec, s->len, &id, &type) < 0 ||
      (type != IPMI_SDR_FORMAT_FULL_SENSOR_RECORD &&
       type != IPMI_SDR_FORMAT_COMPACT_SENSOR_RECORD && type != IPMI_SDR_FORMAT_EVENT_ONLY_RECORD))
    return false;
  s->type = type;
  if (ipmi_sdr_parse_id_string(fi->sdr, s->rec, s->len, s->name, sizeof(s->name) - 1) < 0 ||
      ipmi_sdr_parse_sensor_number(fi->sdr, s->rec, s->len, &num) < 0 ||
      ipmi_sdr_parse_entity_id_instance_type(fi->sdr, s->rec, s->len, &eid, &einst, &etype) < 0 ||
      ipmi_sdr_parse_event_reading_type_code(fi->sdr, s->rec, s->len, &code) < 0)
    return false;
  for (size_t k = strlen(s->name); k > 0 && s->name[k - 1] == ' '; k--)
    s->name[k - 1] = '\0';
  s->num = num;
  snprintf(s->entity, sizeof(s->entity), "%u.%u", eid, einst);
  s->threshold = code == IPMI_EVENT_READING_TYPE_CODE_THRESHOLD;
  s->unit[0] = '\0';
  uint8_t pct, mod, rate, base, modunit;
  if (type != IPMI_SDR_FORMAT_EVENT_ONLY_RECORD && s->threshold &&
      ipmi_sdr_parse_sensor_units(fi->sdr, s->rec, s->len, &pct, &mod, &rate, &base, &modunit) ==
          0) {
    if (pct)
      snprintf(s->unit, sizeof(s->unit), "percent");
    else if (IPMI_SENSOR_UNIT_VALID(base))
      snprintf(s->unit, sizeof(s->unit), "%s", ipmi_sensor_units[base]);
  }
  uint8_t owner_type, owner, lun, channel;
  /* The owner's 7-bit address and its type bit make the slave address, as
   * ipmi_sensor_read() forms it. */
  bool of_bmc = type != IPMI_SDR_FORMAT_EVENT_ONLY_RECORD &&
                ipmi_sdr_parse_sensor_owner_id(fi->sdr, s->rec, s->len, &owner_type, &owner) == 0 &&
                (uint8_t)((owner << 1) | owner_type) == IPMI_SLAVE_ADDRESS_BMC &&
                ipmi_sdr_parse_sensor_owner_lun(fi->sdr, s->rec, s->len, &lun, &channel) == 0 &&
                lun == IPMI_BMC_IPMB_LUN_BMC;
  s->how = FI_READ_GENERAL;
  if (of_bmc && !s->threshold)
    s->how = FI_READ_DISCRETE;
  else if (of_bmc && type == IPMI_SDR_FORMAT_FULL_SENSOR_RECORD &&
           ipmi_sdr_parse_sensor_decoding_data(fi->sdr, s->rec, s->len, &s->r_exp, &s->b_exp, &s->m,
                                               &s->b, &s->linearization, &s->format) == 0 &&
           s->linearization == IPMI_SDR_LINEARIZATION_LINEAR &&
           s->format != IPMI_SDR_ANALOG_DATA_FORMAT_NOT_ANALOG)
    s->how = FI_READ_THRESHOLD;
  struct ipmi_reading probe = {0};
  snprintf(probe.name, sizeof(probe.name), "%s", s->name);
  snprintf(probe.entity, sizeof(probe.entity), "%s", s->entity);
  s->wanted = ipmi__may_publish(fi->b, &probe);
  return true;
}

/* Reads the SDR through FreeIPMI's cache file, keeps its sensor records in
 * memory and removes the file. */
static int sdr_read(struct ipmi_fi *fi) {
  if (fi->sdr == NULL && (fi->sdr = ipmi_sdr_ctx_create()) == NULL)
    return fi__fail(fi, "SDR context");
  unlink(fi->cache_path);
  /* Another client reading the SDR at the same time cancels this one's
   * reservation (completion code c5): read it again, a few times, after a
   * growing pause (this is the pool's thread, not the loop's). */
  int tries = 0, created;
  while ((created = ipmi_sdr_cache_create(fi->sdr, fi->ctx, fi->cache_path,
                                          IPMI_SDR_CACHE_CREATE_FLAGS_OVERWRITE, NULL, NULL)) < 0 &&
         ++tries < FI_SDR_TRIES && ipmi_ctx_errnum(fi->ctx) == IPMI_ERR_BAD_COMPLETION_CODE) {
    unlink(fi->cache_path);
    usleep((useconds_t)(tries * 100000 + rand_r(&fi->seed) % 100000));
  }
  if (created < 0) {
    snprintf(fi->note, sizeof(fi->note), "%s", ipmi_sdr_ctx_errormsg(fi->sdr));
    unlink(fi->cache_path);
    return fi__fail(fi, "reading the SDR");
  }
  int rc = ipmi_sdr_cache_open(fi->sdr, NULL, fi->cache_path);
  unlink(fi->cache_path);
  uint16_t count = 0;
  if (rc < 0 || ipmi_sdr_cache_record_count(fi->sdr, &count) < 0) {
    snprintf(fi->error, sizeof(fi->error), "%s: SDR cache %s: %s", fi->b->cfg.name, fi->cache_path,
             ipmi_sdr_ctx_errormsg(fi->sdr));
    ipmi_sdr_cache_close(fi->sdr);
    fi->rc = -EIO;
    return -EIO;
  }
  struct fi_sensor *s = calloc(count + 1u, sizeof(*s));
  size_t n = 0;
  if (s == NULL) {
    ipmi_sdr_cache_close(fi->sdr);
    snprintf(fi->error, sizeof(fi->error), "%s: out of memory", fi->b->cfg.name);
    fi->rc = -ENOMEM;
    return -ENOMEM;
  }
  if (ipmi_sdr_cache_first(fi->sdr) == 0) {
    do
      n += parse_record(fi, &s[n]);
    while (n < count && ipmi_sdr_cache_next(fi->sdr) == 1);
  }
  ipmi_sdr_cache_close(fi->sdr);
  free(fi->sensors);
  fi->sensors = s;
  fi->nsensors = n;
  fi->nwanted = 0;
  for (size_t i = 0; i < n; i++)
    fi->nwanted += s[i].wanted;
  fi->sdr_reread = true;
  return 0;
}

/* sdr_read(), then frees the SDR context until the next read: the records
 * are kept in fi->sensors, and the context holds ~66 kB a BMC. */
static int sdr_read_once(struct ipmi_fi *fi) {
  int rc = sdr_read(fi);
  if (fi->sdr != NULL) {
    ipmi_sdr_ctx_destroy(fi->sdr);
    fi->sdr = NULL;
  }
  return rc;
}

/* Compares the repository's signature with the SDR in memory; reads the
 * SDR again when it differs or was never read. */
int fi__sdr_check(struct ipmi_fi *fi) {
  fiid_obj_t obj = fiid_obj_create(tmpl_cmd_get_sdr_repository_info_rs);
  uint64_t count = 0, add = 0, erase = 0;
  if (obj == NULL)
    return fi__fail(fi, "Get SDR Repository Info");
  if (ipmi_cmd_get_sdr_repository_info(fi->ctx, obj) < 0) {
    fiid_obj_destroy(obj);
    return fi__fail(fi, "Get SDR Repository Info");
  }
  fiid_obj_get(obj, "record_count", &count);
  fiid_obj_get(obj, "most_recent_addition_timestamp", &add);
  fiid_obj_get(obj, "most_recent_erase_timestamp", &erase);
  fiid_obj_destroy(obj);
  fi->sdr_checked_ms = fi->now_ms;
  bool same = fi->have_sig && fi->count == count && fi->add_ts == add && fi->erase_ts == erase;
  if (same && fi->sensors != NULL)
    return 0;
  if (fi->have_sig && !same)
    snprintf(fi->note, sizeof(fi->note),
             "the SDR repository changed (%u records, added %u, erased %u -> %u, %u, %u): "
             "reading it again",
             fi->count, fi->add_ts, fi->erase_ts, (unsigned)count, (unsigned)add, (unsigned)erase);
  fi->have_sig = false;
  if (sdr_read_once(fi) != 0)
    return -EIO;
  fi->count = (uint16_t)count;
  fi->add_ts = (uint32_t)add;
  fi->erase_ts = (uint32_t)erase;
  fi->have_sig = true;
  return 0;
}

/* ------------------------------------------------------------ sensors */

/* ipmitool's status word for a threshold sensor's comparison bits. */
static enum ipmi_status threshold_status(uint16_t bits, char *word, size_t n) {
  static const char *const names[] = {"lnc", "lcr", "lnr", "unc", "ucr", "unr"};
  static const enum ipmi_status st[] = {IPMI_ST_NC, IPMI_ST_CR, IPMI_ST_NR,
                                        IPMI_ST_NC, IPMI_ST_CR, IPMI_ST_NR};
  static const int order[] = {2, 5, 1, 4, 0, 3}; /* the worst first */
  for (size_t i = 0; i < 6; i++)
    if (bits & (1u << order[i])) {
      snprintf(word, n, "%s", names[order[i]]);
      return st[order[i]];
    }
  snprintf(word, n, "ok");
  return IPMI_ST_OK;
}

/* What one sensor read gave, either way. */
struct raw_reading {
  int rc; /* as ipmi_sensor_read(): 1 read, 0 no reading (errnum says why), -1 error */
  int errnum;
  bool have_value;
  double value;
  uint16_t bits;
};

/* Whether the context's error `e` (ipmi_ctx_errnum) means the session is
 * gone, rather than that this one sensor has no reading. */
static bool session_error(int e) {
  return fi__is_timeout(e) || e == IPMI_ERR_IPMI_ERROR || e == IPMI_ERR_SYSTEM_ERROR;
}

/* One Get Sensor Reading of a sensor of the BMC into obj: 0, or minus the
 * context's error (ipmi_ctx_errnum). */
static int get_reading(struct ipmi_fi *fi, const struct fi_sensor *s, fiid_obj_t obj,
                       bool threshold) {
  int rc = threshold ? ipmi_cmd_get_sensor_reading_threshold(fi->ctx, (uint8_t)s->num, obj)
                     : ipmi_cmd_get_sensor_reading(fi->ctx, (uint8_t)s->num, obj);
  int e = ipmi_ctx_errnum(fi->ctx);
  return rc < 0 ? -(e != IPMI_ERR_SUCCESS ? e : IPMI_ERR_INTERNAL_ERROR) : 0;
}

/* A threshold sensor of the BMC (see struct fi_sensor): false when the
 * session failed. */
static bool read_direct(struct ipmi_fi *fi, const struct fi_sensor *s, struct raw_reading *out) {
  uint64_t raw = 0, state = 0, scanning = 0, bit;
  static const char *const bits[] = {
      "at_or_below_lower_non_critical_threshold",    "at_or_below_lower_critical_threshold",
      "at_or_below_lower_non_recoverable_threshold", "at_or_above_upper_non_critical_threshold",
      "at_or_above_upper_critical_threshold",        "at_or_above_upper_non_recoverable_threshold"};
  memset(out, 0, sizeof(*out));
  fiid_obj_clear(fi->reading);
  int err = get_reading(fi, s, fi->reading, true);
  if (err < 0) {
    out->rc = -1;
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_READING_CANNOT_BE_OBTAINED;
    return !session_error(-err);
  }
  fiid_obj_get(fi->reading, "sensor_reading", &raw);
  fiid_obj_get(fi->reading, "reading_state", &state);
  fiid_obj_get(fi->reading, "sensor_scanning", &scanning);
  for (int i = 0; i < 6; i++)
    if (fiid_obj_get(fi->reading, bits[i], &bit) == 1 && bit)
      out->bits |= (uint16_t)(1u << i);
  if (state == IPMI_SENSOR_READING_STATE_UNAVAILABLE) {
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_READING_UNAVAILABLE;
    return true;
  }
  if (!scanning) {
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_SCANNING_DISABLED;
    return true;
  }
  if (ipmi_sensor_decode_value(s->r_exp, s->b_exp, s->m, s->b, s->linearization, s->format,
                               (uint8_t)raw, &out->value) < 0) {
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_NON_ANALOG;
    return true;
  }
  out->rc = 1;
  out->have_value = true;
  return true;
}

/* A discrete sensor of the BMC (see struct fi_sensor): its state bits,
 * with what ipmi_sensor_read() makes of the response (FreeIPMI 1.6: an
 * unavailable reading or disabled scanning is no reading; a BMC that
 * leaves the bitmask out, which the fiid check is told to let through as
 * FreeIPMI does, has no state asserted). False when the session failed. */
static bool read_discrete(struct ipmi_fi *fi, const struct fi_sensor *s, struct raw_reading *out) {
  uint64_t state = 0, scanning = 0, mask1 = 0, mask2 = 0;
  memset(out, 0, sizeof(*out));
  out->rc = -1;
  fiid_obj_clear(fi->discrete);
  int err = get_reading(fi, s, fi->discrete, false);
  if (err < 0) {
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_READING_UNAVAILABLE;
    return !session_error(-err);
  }
  if (fiid_obj_get(fi->discrete, "reading_state", &state) == 1 &&
      state == IPMI_SENSOR_READING_STATE_UNAVAILABLE) {
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_READING_UNAVAILABLE;
    return true;
  }
  if (fiid_obj_get(fi->discrete, "sensor_scanning", &scanning) == 1 &&
      scanning == IPMI_SENSOR_SCANNING_ON_THIS_SENSOR_DISABLE) {
    out->errnum = IPMI_SENSOR_READ_ERR_SENSOR_SCANNING_DISABLED;
    return true;
  }
  int has1 = fiid_obj_get(fi->discrete, "sensor_event_bitmask1", &mask1);
  int has2 = fiid_obj_get(fi->discrete, "sensor_event_bitmask2", &mask2);
  if (has1 < 0 || has2 < 0 || (has1 == 0 && has2 == 1)) {
    out->errnum = IPMI_SENSOR_READ_ERR_IPMI_ERROR;
    return true;
  }
  out->bits = (uint16_t)((has1 == 1 ? mask1 : 0) | (has2 == 1 ? mask2 << 8 : 0));
  out->rc = 1;
  return true;
}

/* Any other sensor, through ipmi_sensor_read(): false when the session failed. */
static bool read_general(struct ipmi_fi *fi, const struct fi_sensor *s, struct raw_reading *out) {
  double *val = NULL;
  memset(out, 0, sizeof(*out));
  /* Created on first use: most sensors are read directly, and the context
   * holds an SDR context of its own (~66 kB a BMC). */
  if (fi->sread == NULL && (fi->sread = ipmi_sensor_read_ctx_create(fi->ctx)) == NULL) {
    out->rc = -1;
    out->errnum = IPMI_SENSOR_READ_ERR_OUT_OF_MEMORY;
    return true;
  }
  out->rc = ipmi_sensor_read(fi->sread, s->rec, s->len, 0, NULL, &val, &out->bits);
  out->errnum = ipmi_sensor_read_ctx_errnum(fi->sread);
  if (val != NULL) {
    out->have_value = true;
    out->value = *val;
    free(val);
  }
  return !(out->rc < 0 && out->errnum == IPMI_SENSOR_READ_ERR_IPMI_ERROR &&
           session_error(ipmi_ctx_errnum(fi->ctx)));
}

/* One sensor into *r; -EIO when the session failed (the scrape fails). */
static int read_sensor(struct ipmi_fi *fi, const struct fi_sensor *s, struct ipmi_reading *r) {
  memset(r, 0, sizeof(*r));
  snprintf(r->name, sizeof(r->name), "%s", s->name);
  snprintf(r->entity, sizeof(r->entity), "%s", s->entity);
  r->sensor_num = s->num;
  r->value = NAN;
  for (int i = 0; i < IPMI_THRESH_COUNT; i++)
    r->thresh[i] = NAN;
  if (s->type == IPMI_SDR_FORMAT_EVENT_ONLY_RECORD) {
    r->status = IPMI_ST_NA;
    snprintf(r->raw_status, sizeof(r->raw_status), "ns");
    return 0;
  }
  struct raw_reading rr;
  bool session_ok = s->how == FI_READ_THRESHOLD  ? read_direct(fi, s, &rr)
                    : s->how == FI_READ_DISCRETE ? read_discrete(fi, s, &rr)
                                                 : read_general(fi, s, &rr);
  if (!session_ok) {
    char what[64];
    snprintf(what, sizeof(what), "reading sensor '%s'", s->name);
    return fi__fail(fi, what);
  }
  int rc = rr.rc, errnum = rr.errnum;
  uint16_t bits = rr.bits;
  if (rc == 1 && rr.have_value && s->threshold) {
    const char *unit = ipmi_unit_map(s->unit, strlen(s->unit));
    r->value = rr.value;
    if (unit == NULL) {
      r->status = IPMI_ST_UNKNOWN_UNIT;
      snprintf(r->unit, sizeof(r->unit), "%s", s->unit[0] ? s->unit : "unspecified");
      threshold_status(bits, r->raw_status, sizeof(r->raw_status));
    } else {
      snprintf(r->unit, sizeof(r->unit), "%s", unit);
      r->status = threshold_status(bits, r->raw_status, sizeof(r->raw_status));
    }
  } else if (rc >= 0 && !s->threshold) {
    r->status = IPMI_ST_DISCRETE;
    snprintf(r->state, sizeof(r->state), "0x%04x", bits);
    snprintf(r->raw_status, sizeof(r->raw_status), "ok");
  } else if (errnum == IPMI_SENSOR_READ_ERR_SENSOR_SCANNING_DISABLED) {
    r->status = IPMI_ST_DISABLED;
    snprintf(r->raw_status, sizeof(r->raw_status), "ns");
  } else {
    r->status = IPMI_ST_NA;
    snprintf(r->raw_status, sizeof(r->raw_status), "ns");
  }
  return 0;
}

int fi__read_sensors(struct ipmi_fi *fi) {
  struct ipmi_bmc *b = fi->b;
  size_t na = 0;
  unsigned int flags = 0;
  fi->out = calloc(fi->nsensors + 1, sizeof(*fi->out));
  if (fi->out == NULL) {
    snprintf(fi->error, sizeof(fi->error), "%s: out of memory", b->cfg.name);
    return fi->rc = -ENOMEM;
  }
  /* Like ipmi_sensor_read(), the responses are not checked against their
   * templates: BMCs leave out the optional bytes (some the event bitmask),
   * and a field not returned is then simply not set. For the readings
   * only; a failed read ends the session and its context with it. */
  ipmi_ctx_get_flags(fi->ctx, &flags);
  ipmi_ctx_set_flags(fi->ctx, flags | IPMI_FLAGS_NO_VALID_CHECK);
  for (size_t i = 0; i < fi->nsensors; i++) {
    /* Only what can reach a frame; all when nothing can, so that the BMC's
     * answers still say it is alive (below). */
    if (fi->nwanted > 0 && !fi->sensors[i].wanted)
      continue;
    if (read_sensor(fi, &fi->sensors[i], &fi->out[fi->nout]) != 0)
      return -EIO;
    na += fi->out[fi->nout].status == IPMI_ST_NA;
    fi->out[fi->nout].line = (unsigned)(fi->nout + 1);
    fi->nout++;
  }
  ipmi_ctx_set_flags(fi->ctx, flags);
  if (fi->nout == 0) {
    snprintf(fi->error, sizeof(fi->error), "%s: %s: the SDR lists no sensor", b->cfg.name,
             b->address);
    fi->have_sig = false; /* read it again next time */
    return fi->rc = -ENODATA;
  }
  /* Judged over every sensor only: a host powered off leaves the mapped
   * ones without a reading while the BMC answers for its own; that is a
   * status of each series, not a BMC that is away. */
  if (na == fi->nout && fi->nout == fi->nsensors) {
    snprintf(fi->error, sizeof(fi->error),
             "%s: %s: none of %zu sensors has a reading (BMC not answering?)", b->cfg.name,
             b->address, fi->nout);
    fi->have_sig = false;
    fi__session_close(fi);
    return fi->rc = -ENODATA;
  }
  return 0;
}
