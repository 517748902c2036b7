/* The Modbus collector: CDUs over Modbus TCP or RTU with libmodbus.
 *
 *   agent:
 *     profiles_dir: /usr/share/rackpulse/profiles   # holds modbus/NAME.yaml
 *   modbus:
 *     - name: cdu1
 *       host: 10.0.4.20          # TCP; or transport: rtu with device/baud/...
 *       port: 502
 *       unit_id: 1
 *       timeout: 500ms           # per request
 *       retries: 1
 *       max_regs: 125            # words per request (devices that cannot read 125)
 *       max_gap: 0               # unused words a request may read across
 *       pause: 0ms               # between requests (RS-485 gateways)
 *       profile: generic-cdu     # register map from a profile file, and/or:
 *       registers:               # inline entries (they replace the profile's by name)
 *         - {name: cdu.supply_temp, function: input, address: 0, type: i16,
 *            scale: 0.1, unit: Cel}
 *
 *     - name: cdu2               # RTU over RS-485
 *       transport: rtu
 *       device: /dev/ttyUSB0
 *       baud: 19200
 *       parity: E                # N, E or O
 *       data_bits: 8
 *       stop_bits: 1
 *       unit_id: 3
 *       profile: liebert-xdu-style
 *
 * A profile (mb_profile.h) may set the device defaults max_regs, max_gap,
 * pause and timeout; the device's own keys win.
 *
 * libmodbus blocks, so a scrape runs in the libuv thread pool
 * (uv_queue_work): the worker connects if needed and performs the planned
 * requests; decoding and reporting happen back on the loop thread. Every
 * request is bounded by the response timeout, so a scrape is bounded by
 * requests × timeout × (retries + 1). A request that the device refuses
 * marks only its registers, never the whole device: a request of several
 * registers refused with an illegal address (or value) is retried one
 * register at a time, in the same scrape, so only the bad register is an
 * error, named with device, register, function and address; the request
 * stays split for later scrapes (re-tried whole every MB_REPROBE_EVERY
 * scrapes). A busy device (exception 6) is a status on the registers of
 * that request, read again at the next scrape. */
#include <errno.h>
#include <modbus.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent.h"
#include "mb_decode.h"
#include "mb_map.h"
#include "mb_plan.h"
#include "mb_profile.h"
#include "rackpulse/frame.h"

#define MB_DEFAULT_PROFILES_DIR "/usr/share/rackpulse/profiles"
#define MB_REPROBE_EVERY 64 /* scrapes between attempts to read a split request whole */

struct mb_device_cfg {
  char name[64];
  char transport[8];
  char host[256];
  int64_t port;
  char device[256];
  int64_t baud, data_bits, stop_bits;
  char parity[8];
  int64_t unit_id;
  int64_t interval_ms, timeout_ms, retries, pause_ms;
  int64_t max_regs, max_gap;
  char profile[MB_PROFILE_NAME_MAX];
};

/* The outcome of one planned request, filled by the worker. */
struct mb_reply {
  int rc;          /* 0 ok, else errno (EMBXILADD, ETIMEDOUT, ...) */
  uint16_t *words; /* count words, or count bits as 0/1 words */
  bool split;      /* read one register at a time (see the top comment) */
};

struct mb_device {
  struct mb_device_cfg cfg;
  char address[280];    /* "host:port" or the serial device, for messages */
  struct mb_regmap map; /* regs, decimals, documented numbers */
  struct mb_plan plan;
  struct mb_reply *replies; /* one per plan request */
  uint16_t *reply_words;    /* backing store of all replies */
  int *reg_rc;              /* per register: 0 or the errno of its read */
  size_t *by_request;       /* register indices grouped by request ... */
  size_t *request_first;    /* ... request i's are by_request[first[i]..first[i+1]) */
  /* Used only by the worker thread during a scrape. */
  modbus_t *ctx;
  bool connected;
  int connect_errno;
  uint64_t scrape_no;
  int64_t ts_ms;
  uv_work_t work;
  struct rp_target *work_target;
  /* Readings handed to rp_target_done(). */
  struct rp_reading *readings;
  struct rp_label *labels;
  char (*details)[200];
  size_t max_readings;
};

typedef struct mb_device_cfg D;

static const struct rp_cfg_field device_fields[] = {
    RP_CFG_STR("name", D, name, NULL, 1, "device name, unique in the agent"),
    RP_CFG_STR("transport", D, transport, "tcp", 0, "tcp or rtu"),
    RP_CFG_STR("host", D, host, "", 0, "TCP: address of the device or gateway"),
    RP_CFG_NUM("port", RP_CFG_INT, D, port, "502", 1, 65535, "TCP port"),
    RP_CFG_STR("device", D, device, "", 0, "RTU: serial device, e.g. /dev/ttyUSB0"),
    RP_CFG_NUM("baud", RP_CFG_INT, D, baud, "19200", 300, 4000000, "RTU: baud rate"),
    RP_CFG_STR("parity", D, parity, "N", 0, "RTU: N, E or O"),
    RP_CFG_NUM("data_bits", RP_CFG_INT, D, data_bits, "8", 5, 8, "RTU: data bits"),
    RP_CFG_NUM("stop_bits", RP_CFG_INT, D, stop_bits, "1", 1, 2, "RTU: stop bits"),
    RP_CFG_NUM("unit_id", RP_CFG_INT, D, unit_id, "1", 0, 255, "Modbus unit (slave) id"),
    RP_CFG_NUM("interval", RP_CFG_DURATION, D, interval_ms, "0", 0, 3600,
               "scrape interval (0 = agent.interval)"),
    RP_CFG_NUM("timeout", RP_CFG_DURATION, D, timeout_ms, "500ms", 0.01, 60,
               "response timeout of one request"),
    RP_CFG_NUM("retries", RP_CFG_INT, D, retries, "1", 0, 10, "retries of a timed-out request"),
    RP_CFG_NUM("pause", RP_CFG_DURATION, D, pause_ms, "0ms", 0, 10,
               "pause between requests (RS-485 gateways)"),
    RP_CFG_NUM("max_regs", RP_CFG_INT, D, max_regs, "125", 1, 125, "registers per request at most"),
    RP_CFG_NUM("max_gap", RP_CFG_INT, D, max_gap, "0", 0, 124,
               "unused registers a request may read across"),
    RP_CFG_STR("profile", D, profile, "", 0,
               "register map from <agent.profiles_dir>/modbus/NAME.yaml; inline "
               "registers replace its entries by name"),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void device_free(struct mb_device *d) {
  if (d == NULL)
    return;
  if (d->ctx != NULL) {
    modbus_close(d->ctx);
    modbus_free(d->ctx);
  }
  mb_plan_free(&d->plan);
  mb_regmap_free(&d->map);
  free(d->replies);
  free(d->reply_words);
  free(d->reg_rc);
  free(d->by_request);
  free(d->request_first);
  free(d->readings);
  free(d->labels);
  free(d->details);
  free(d);
}

/* Sizes the reply and reading buffers once, from the plan, and groups the
 * registers by request (a counting sort) for the one-at-a-time retries. */
static int device_alloc_buffers(struct mb_device *d) {
  size_t words = 0, nregs = d->map.n, nreq = d->plan.nrequests;
  for (size_t i = 0; i < nreq; i++)
    words += d->plan.requests[i].count;
  d->replies = calloc(nreq + 1, sizeof(*d->replies));
  d->reply_words = calloc(words + 1, sizeof(*d->reply_words));
  d->reg_rc = calloc(nregs + 1, sizeof(*d->reg_rc));
  d->by_request = calloc(nregs + 1, sizeof(*d->by_request));
  d->request_first = calloc(nreq + 2, sizeof(*d->request_first));
  d->max_readings = 0;
  for (size_t i = 0; i < nregs; i++)
    d->max_readings += d->map.regs[i].type == MB_TYPE_BITFIELD ? d->map.regs[i].nbits + 1 : 1;
  d->readings = calloc(d->max_readings + 1, sizeof(*d->readings));
  d->labels = calloc(d->max_readings + 1, sizeof(*d->labels));
  d->details = calloc(d->max_readings + 1, sizeof(*d->details));
  if (!d->replies || !d->reply_words || !d->reg_rc || !d->by_request || !d->request_first ||
      !d->readings || !d->labels || !d->details)
    return -ENOMEM;
  size_t off = 0;
  for (size_t i = 0; i < nreq; i++) {
    d->replies[i].words = d->reply_words + off;
    off += d->plan.requests[i].count;
  }
  for (size_t i = 0; i < nregs; i++)
    d->request_first[d->plan.slots[i].request + 1]++;
  for (size_t i = 0; i < nreq; i++)
    d->request_first[i + 1] += d->request_first[i];
  size_t *fill = calloc(nreq + 1, sizeof(*fill));
  if (fill == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < nregs; i++) {
    uint32_t q = d->plan.slots[i].request;
    d->by_request[d->request_first[q] + fill[q]++] = i;
  }
  free(fill);
  return 0;
}

static int check_transport(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                           const D *c, char *err, size_t errlen) {
  if (strcmp(c->transport, "tcp") == 0) {
    if (c->host[0] == '\0') {
      rp_cfg_error(doc, node, where, err, errlen, "host: required for transport tcp");
      return -EINVAL;
    }
    return 0;
  }
  if (strcmp(c->transport, "rtu") == 0) {
    if (c->device[0] == '\0') {
      rp_cfg_error(doc, node, where, err, errlen, "device: required for transport rtu");
      return -EINVAL;
    }
    if (strlen(c->parity) != 1 || strchr("NEO", c->parity[0]) == NULL) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "parity"), where, err, errlen,
                   "parity: '%s' is not N, E or O", c->parity);
      return -EINVAL;
    }
    return 0;
  }
  rp_cfg_error(doc, rp_cfg_get(doc, node, "transport"), where, err, errlen,
               "transport: '%s' is not tcp or rtu", c->transport);
  return -EINVAL;
}

/* Loads the device's profile (if any) into d->map and takes the profile's
 * device defaults for the keys the device does not set itself. */
static int load_profile(struct mb_device *d, const struct rp_cfg_doc *doc, rp_cfg_node node,
                        const char *where, char *err, size_t errlen) {
  if (d->cfg.profile[0] == '\0')
    return 0;
  const char *dir = rp_agent_profiles_dir();
  if (dir == NULL || dir[0] == '\0')
    dir = MB_DEFAULT_PROFILES_DIR;
  struct mb_profile_defaults defs;
  char why[768];
  int rc = mb_profile_load(dir, d->cfg.profile, &d->map, &defs, why, sizeof(why));
  if (rc != 0) {
    char pwhere[96];
    snprintf(pwhere, sizeof(pwhere), "%s.profile", where);
    rp_cfg_error(doc, rp_cfg_get(doc, node, "profile"), pwhere, err, errlen, "%s", why);
    return rc;
  }
  if (defs.has_max_regs && rp_cfg_get(doc, node, "max_regs") == 0)
    d->cfg.max_regs = defs.max_regs;
  if (defs.has_max_gap && rp_cfg_get(doc, node, "max_gap") == 0)
    d->cfg.max_gap = defs.max_gap;
  if (defs.has_pause && rp_cfg_get(doc, node, "pause") == 0)
    d->cfg.pause_ms = defs.pause_ms;
  if (defs.has_timeout && rp_cfg_get(doc, node, "timeout") == 0)
    d->cfg.timeout_ms = defs.timeout_ms;
  return 0;
}

static int mb_create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                     const char *where, char *err, size_t errlen) {
  static const char *const sections[] = {"registers", NULL};
  struct mb_regmap inline_map = {0};
  struct mb_device *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  int rc = rp_cfg_apply(doc, node, where, device_fields, N(device_fields), sections, &d->cfg, err,
                        errlen);
  if (rc == 0)
    rc = check_transport(doc, node, where, &d->cfg, err, errlen);
  if (rc == 0)
    rc = load_profile(d, doc, node, where, err, errlen);
  if (rc != 0)
    goto fail;
  rp_cfg_node regs = rp_cfg_get(doc, node, "registers");
  if (regs == 0 && d->cfg.profile[0] == '\0') {
    rp_cfg_error(doc, node, where, err, errlen,
                 "registers: expected a list of 1..%d registers, or a profile", MB_MAX_REGISTERS);
    rc = -EINVAL;
    goto fail;
  }
  if (regs != 0) {
    if ((rc = mb_regmap_parse(doc, regs, where, 0, &inline_map, err, errlen)) != 0)
      goto fail;
    if ((rc = mb_regmap_override(&d->map, &inline_map)) != 0) {
      if (rc == -E2BIG)
        rp_cfg_error(doc, regs, where, err, errlen, "registers: more than %d with the profile's",
                     MB_MAX_REGISTERS);
      else
        rp_cfg_error(doc, regs, where, err, errlen, "registers: out of memory");
      goto fail;
    }
    mb_regmap_free(&inline_map);
  }
  if (d->map.n == 0) {
    rp_cfg_error(doc, regs ? regs : node, where, err, errlen,
                 "registers: expected a list of 1..%d registers", MB_MAX_REGISTERS);
    rc = -EINVAL;
    goto fail;
  }
  struct mb_plan_limits lim = {.max_regs = (uint16_t)d->cfg.max_regs,
                               .max_gap = (uint16_t)d->cfg.max_gap};
  char why[256];
  if ((rc = mb_plan_build(d->map.regs, d->map.n, &lim, &d->plan, why, sizeof(why))) != 0) {
    rp_cfg_error(doc, regs ? regs : rp_cfg_get(doc, node, "profile"), where, err, errlen,
                 "registers%s%s: %s", d->cfg.profile[0] ? " with profile " : "", d->cfg.profile,
                 why);
    goto fail;
  }
  if ((rc = device_alloc_buffers(d)) != 0) {
    snprintf(err, errlen, "%s: out of memory", where);
    goto fail;
  }
  if (strcmp(d->cfg.transport, "rtu") == 0)
    snprintf(d->address, sizeof(d->address), "%s", d->cfg.device);
  else
    snprintf(d->address, sizeof(d->address), "%s:%lld", d->cfg.host, (long long)d->cfg.port);
  snprintf(t->name, sizeof(t->name), "%s", d->cfg.name);
  t->interval_ms = d->cfg.interval_ms;
  t->priv = d;
  return 0;
fail:
  mb_regmap_free(&inline_map);
  device_free(d);
  return rc;
}

static void mb_destroy(struct rp_target *t) {
  device_free(t->priv);
  t->priv = NULL;
}

/* Worker thread: (re)creates the libmodbus context and connects. */
static int worker_connect(struct mb_device *d) {
  if (d->connected)
    return 0;
  if (d->ctx == NULL) {
    if (strcmp(d->cfg.transport, "rtu") == 0)
      d->ctx = modbus_new_rtu(d->cfg.device, (int)d->cfg.baud, d->cfg.parity[0],
                              (int)d->cfg.data_bits, (int)d->cfg.stop_bits);
    else {
      char port[16];
      snprintf(port, sizeof(port), "%lld", (long long)d->cfg.port);
      d->ctx = modbus_new_tcp_pi(d->cfg.host, port);
    }
    if (d->ctx == NULL)
      return errno ? errno : ENOMEM;
    modbus_set_slave(d->ctx, (int)d->cfg.unit_id);
    uint32_t to = (uint32_t)d->cfg.timeout_ms;
    modbus_set_response_timeout(d->ctx, to / 1000, (to % 1000) * 1000);
  }
  if (modbus_connect(d->ctx) != 0)
    return errno ? errno : EIO;
  d->connected = true;
  return 0;
}

static void worker_disconnect(struct mb_device *d) {
  if (d->ctx != NULL)
    modbus_close(d->ctx);
  d->connected = false;
}

static int read_once(modbus_t *ctx, enum mb_function fn, uint16_t start, uint16_t count,
                     uint16_t *words) {
  uint8_t bits[MB_MAX_READ_BITS];
  int n;
  switch (fn) {
  case MB_FN_HOLDING: n = modbus_read_registers(ctx, start, count, words); break;
  case MB_FN_INPUT: n = modbus_read_input_registers(ctx, start, count, words); break;
  case MB_FN_COIL: n = modbus_read_bits(ctx, start, count, bits); break;
  case MB_FN_DISCRETE: n = modbus_read_input_bits(ctx, start, count, bits); break;
  default: return EINVAL;
  }
  if (n < 0)
    return errno ? errno : EIO;
  if (fn == MB_FN_COIL || fn == MB_FN_DISCRETE)
    for (uint16_t i = 0; i < count; i++)
      words[i] = bits[i];
  return 0;
}

/* True for errors after which the connection cannot be trusted. */
static bool breaks_connection(int e) {
  return e == ETIMEDOUT || e == ECONNRESET || e == EPIPE || e == EBADF || e == EMBBADDATA ||
         e == EMBBADCRC || e == EMBBADSLAVE || e == ECONNREFUSED;
}

/* True for exceptions that say a request's shape is wrong for this device
 * (an address it does not have), so its registers are worth reading alone. */
static bool refuses_shape(int e) { return e == EMBXILADD || e == EMBXILVAL; }

static void pause_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Worker thread: one read with the device's retries of a timed-out request;
 * `*first` says whether no request preceded it in this scrape (no pause). */
static int read_retrying(struct mb_device *d, enum mb_function fn, uint16_t start, uint16_t count,
                         uint16_t *words, bool *first) {
  int rc = 0;
  for (int attempt = 0; attempt <= d->cfg.retries; attempt++) {
    if (!*first)
      pause_ms(d->cfg.pause_ms);
    *first = false;
    rc = read_once(d->ctx, fn, start, count, words);
    if (rc != ETIMEDOUT)
      break;
  }
  return rc;
}

/* Worker thread: reads request q's registers one request each, into the
 * same words of q's reply. Returns 0, or an error that broke the connection
 * (the registers not read yet are marked with it). */
static int read_split(struct mb_device *d, size_t q, bool *first) {
  for (size_t k = d->request_first[q]; k < d->request_first[q + 1]; k++) {
    size_t i = d->by_request[k];
    const struct mb_register *r = &d->map.regs[i];
    const struct mb_slot *s = &d->plan.slots[i];
    int rc = read_retrying(d, r->fn, r->address, s->words, d->replies[q].words + s->offset, first);
    d->reg_rc[i] = rc;
    if (rc != 0 && breaks_connection(rc)) {
      for (size_t m = k + 1; m < d->request_first[q + 1]; m++)
        d->reg_rc[d->by_request[m]] = rc;
      return rc;
    }
  }
  return 0;
}

/* Worker thread: performs the plan's requests. Blocking is fine here. */
static void on_work(uv_work_t *w) {
  struct mb_device *d = w->data;
  d->ts_ms = rp_now_ms();
  d->scrape_no++;
  memset(d->reg_rc, 0, d->map.n * sizeof(*d->reg_rc));
  d->connect_errno = worker_connect(d);
  if (d->connect_errno != 0) {
    worker_disconnect(d);
    return;
  }
  bool first = true;
  for (size_t i = 0; i < d->plan.nrequests; i++) {
    const struct mb_request *q = &d->plan.requests[i];
    struct mb_reply *reply = &d->replies[i];
    bool several = d->request_first[i + 1] - d->request_first[i] > 1;
    int rc;
    if (reply->split && d->scrape_no % MB_REPROBE_EVERY != 0) {
      rc = read_split(d, i, &first);
    } else {
      rc = read_retrying(d, q->fn, q->start, q->count, reply->words, &first);
      if (rc == 0) {
        reply->split = false;
      } else if (refuses_shape(rc) && several) {
        reply->split = true;
        rc = read_split(d, i, &first);
      } else {
        for (size_t k = d->request_first[i]; k < d->request_first[i + 1]; k++)
          d->reg_rc[d->by_request[k]] = rc;
      }
    }
    reply->rc = rc;
    if (rc != 0 && breaks_connection(rc)) {
      worker_disconnect(d);
      /* The rest of this scrape would only time out again: fail it fast. */
      for (size_t j = i + 1; j < d->plan.nrequests; j++) {
        d->replies[j].rc = rc;
        for (size_t k = d->request_first[j]; k < d->request_first[j + 1]; k++)
          d->reg_rc[d->by_request[k]] = rc;
      }
      if (worker_connect(d) != 0)
        worker_disconnect(d);
      break;
    }
  }
}

/* "register cdu.flow @ input 2 (FC4, documented 30003)" for messages. */
static void register_where(const struct mb_device *d, size_t i, char *buf, size_t len) {
  const struct mb_register *r = &d->map.regs[i];
  if (d->map.documented[i] >= 0)
    snprintf(buf, len, "register %s @ %s %u (FC%d, documented %ld)", r->name,
             mb_function_name(r->fn), r->address, (int)r->fn, (long)d->map.documented[i]);
  else
    snprintf(buf, len, "register %s @ %s %u (FC%d)", r->name, mb_function_name(r->fn), r->address,
             (int)r->fn);
}

/* Loop thread: one reading per register (and per named alarm bit). */
static size_t decode_all(struct mb_device *d) {
  size_t n = 0;
  for (size_t i = 0; i < d->map.n; i++) {
    const struct mb_register *r = &d->map.regs[i];
    const struct mb_slot *s = &d->plan.slots[i];
    const struct mb_reply *reply = &d->replies[s->request];
    struct rp_reading *rd = &d->readings[n];
    memset(rd, 0, sizeof(*rd));
    rd->name = r->name;
    rd->unit = r->unit;
    rd->decimals = d->map.decimals[i];
    rd->detail = d->details[n];
    if (d->reg_rc[i] != 0) {
      char at[160];
      register_where(d, i, at, sizeof(at));
      rd->status = RP_READING_ERROR;
      snprintf(d->details[n], sizeof(d->details[0]), "%s: %s: %s%s", d->cfg.name, at,
               modbus_strerror(d->reg_rc[i]),
               d->reg_rc[i] == EMBXSBUSY ? " (read again next scrape)" : "");
      n++;
      continue;
    }
    struct mb_value v;
    mb_decode(r, reply->words + s->offset, s->words, &v, d->details[n], sizeof(d->details[0]));
    rd->value = v.value;
    switch (v.status) {
    case MB_ST_OK: rd->status = RP_READING_OK; break;
    case MB_ST_ABSENT: rd->status = RP_READING_ABSENT; break;
    case MB_ST_OUT_OF_RANGE:
    case MB_ST_NOT_FINITE: rd->status = RP_READING_OUT_OF_RANGE; break;
    default: rd->status = RP_READING_ERROR;
    }
    n++;
    if (r->type != MB_TYPE_BITFIELD || v.status != MB_ST_OK)
      continue;
    for (size_t b = 0; b < r->nbits; b++) {
      struct rp_reading *bit = &d->readings[n];
      memset(bit, 0, sizeof(*bit));
      d->labels[n] = (struct rp_label){"alarm", r->bits[b].name};
      bit->name = r->name;
      bit->labels = &d->labels[n];
      bit->nlabels = 1;
      bit->value = (v.active >> r->bits[b].bit) & 1u;
      bit->status = RP_READING_OK;
      n++;
    }
  }
  return n;
}

static void on_work_done(uv_work_t *w, int status) {
  struct mb_device *d = w->data;
  struct rp_target *target = d->work_target;
  char error[320];
  struct rp_scrape_result r = {.ts_ms = d->ts_ms, .ok = true};
  if (status != 0) {
    snprintf(error, sizeof(error), "%s: scrape cancelled", d->cfg.name);
    r.ok = false;
    r.error = error;
  } else if (d->connect_errno != 0) {
    snprintf(error, sizeof(error), "%s: %s: %s: %s", d->cfg.name, d->address,
             strcmp(d->cfg.transport, "rtu") == 0 ? "open" : "connect",
             modbus_strerror(d->connect_errno));
    r.ok = false;
    r.error = error;
  } else {
    size_t failed = 0;
    for (size_t i = 0; i < d->map.n; i++)
      failed += d->reg_rc[i] != 0;
    r.readings = d->readings;
    r.nreadings = decode_all(d);
    if (failed == d->map.n) {
      snprintf(error, sizeof(error), "%s: %s: every request failed: %s", d->cfg.name, d->address,
               modbus_strerror(d->reg_rc[0]));
      r.ok = false;
      r.error = error;
    }
  }
  rp_target_done(target, &r);
}

static int mb_scrape(struct rp_target *t) {
  struct mb_device *d = t->priv;
  d->work.data = d;
  d->work_target = t;
  return uv_queue_work(t->agent->loop, &d->work, on_work, on_work_done);
}

static void mb_help(FILE *out) {
  rp_cfg_print_help(out, "modbus[]", device_fields, N(device_fields));
  fprintf(out, "  %-28s %-9s %s\n", "modbus[].registers", "list",
          "the register map (or profile:), entries:");
  mb_register_help(out, "modbus[].registers[]");
  mb_profile_help(out);
}

/* A reload keeps a device whose settings and register map are unchanged
 * (the structs are zeroed before they are filled, so bytes compare). */
static bool mb_same_config(const struct rp_target *a, const struct rp_target *b) {
  const struct mb_device *x = a->priv, *y = b->priv;
  return memcmp(&x->cfg, &y->cfg, sizeof(x->cfg)) == 0 && x->map.n == y->map.n &&
         memcmp(x->map.regs, y->map.regs, x->map.n * sizeof(*x->map.regs)) == 0 &&
         memcmp(x->map.decimals, y->map.decimals, x->map.n * sizeof(*x->map.decimals)) == 0;
}

const struct rp_collector rp_collector_modbus = {
    .name = "modbus",
    .create = mb_create,
    .scrape = mb_scrape,
    .destroy = mb_destroy,
    .help = mb_help,
    .same_config = mb_same_config,
};
