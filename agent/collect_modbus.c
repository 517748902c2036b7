/* The Modbus collector: CDUs over Modbus TCP or RTU with libmodbus.
 *
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
 *       registers:
 *         - {name: cdu.supply_temp, function: input, address: 0, type: i16,
 *            scale: 0.1, unit: Cel}
 *
 * libmodbus blocks, so a scrape runs in the libuv thread pool
 * (uv_queue_work): the worker connects if needed and performs the planned
 * requests; decoding and reporting happen back on the loop thread. Every
 * request is bounded by the response timeout, so a scrape is bounded by
 * requests × timeout × (retries + 1). A request that the device refuses
 * marks only its registers, never the whole device; a request of several
 * registers refused for an illegal address is retried one register at a
 * time so the one bad register is named. */
#include <errno.h>
#include <math.h>
#include <modbus.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent.h"
#include "mb_decode.h"
#include "mb_map.h"
#include "mb_plan.h"
#include "rackpulse/frame.h"

#define MB_MAX_REGISTERS 1024

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
};

/* The outcome of one planned request, filled by the worker. */
struct mb_reply {
  int rc;            /* 0 ok, else errno (EMBXILADD, ETIMEDOUT, ...) */
  uint16_t *words;   /* count words, or count bits as 0/1 words */
};

struct mb_device {
  struct mb_device_cfg cfg;
  char address[280]; /* "host:port" or the serial device, for messages */
  struct mb_register *regs;
  int *decimals;     /* per register: wire precision */
  size_t nregs;
  struct mb_plan plan;
  struct mb_reply *replies;  /* one per plan request */
  uint16_t *reply_words;     /* backing store of all replies */
  /* Used only by the worker thread during a scrape. */
  modbus_t *ctx;
  bool connected;
  int connect_errno;
  int64_t ts_ms;
  uv_work_t work;
  struct rp_target *work_target;
  /* Readings handed to rp_target_done(). */
  struct rp_reading *readings;
  struct rp_label *labels;
  char (*details)[160];
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
    RP_CFG_NUM("max_regs", RP_CFG_INT, D, max_regs, "125", 1, 125,
               "registers per request at most"),
    RP_CFG_NUM("max_gap", RP_CFG_INT, D, max_gap, "0", 0, 124,
               "unused registers a request may read across"),
};

/* One register as written in YAML, before conversion. */
struct reg_text {
  char name[MB_NAME_MAX], unit[MB_UNIT_MAX];
  char function[16], type[16], order[8];
  int64_t address, decimals;
  double scale, offset, min, max;
  char sentinel[24];
};

typedef struct reg_text R;

static const struct rp_cfg_field register_fields[] = {
    RP_CFG_STR("name", R, name, NULL, 1, "metric name, e.g. cdu.supply_temp"),
    RP_CFG_STR("unit", R, unit, "", 0, "unit: Cel, L/min, kPa, %, ..."),
    RP_CFG_STR("function", R, function, "holding", 0, MB_FUNCTION_NAMES),
    RP_CFG_NUM("address", RP_CFG_INT, R, address, NULL, 0, 65535,
               "0-based protocol address (documented 30001 = input 0)"),
    RP_CFG_STR("type", R, type, "u16", 0, MB_TYPE_NAMES),
    RP_CFG_STR("order", R, order, "ABCD", 0, MB_ORDER_NAMES),
    RP_CFG_NUM("scale", RP_CFG_DOUBLE, R, scale, "1", 0, 0, "value = raw × scale + offset"),
    RP_CFG_NUM("offset", RP_CFG_DOUBLE, R, offset, "0", 0, 0, "added after scaling"),
    RP_CFG_NUM("decimals", RP_CFG_INT, R, decimals, "-1", -1, 9,
               "decimal digits sent (-1: from scale; 3 for floats)"),
    RP_CFG_NUM("min", RP_CFG_DOUBLE, R, min, "0", 0, 0, "plausible minimum (with max)"),
    RP_CFG_NUM("max", RP_CFG_DOUBLE, R, max, "0", 0, 0, "plausible maximum (with min)"),
    RP_CFG_STR("sentinel", R, sentinel, "", 0, "raw value meaning 'sensor absent', e.g. 0xFFFF"),
};

static const char *const register_sections[] = {"bits", NULL};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int parse_bits(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                      struct mb_register *r, char *err, size_t errlen) {
  if (map == 0)
    return 0;
  if (rp_cfg_kind(doc, map) != RP_CFG_MAPPING) {
    rp_cfg_error(doc, map, where, err, errlen, "bits: expected a mapping of bit: name");
    return -EINVAL;
  }
  for (size_t i = 0; i < rp_cfg_map_len(doc, map); i++) {
    rp_cfg_node v;
    const char *bit = rp_cfg_map_key(doc, map, i, &v);
    const char *name = rp_cfg_scalar(doc, v);
    char *end;
    long b = bit ? strtol(bit, &end, 10) : -1;
    if (bit == NULL || *end != '\0' || b < 0 || b > 15 || name == NULL ||
        strlen(name) >= MB_BIT_NAME_MAX || r->nbits == MB_BITS_MAX) {
      rp_cfg_error(doc, v, where, err, errlen,
                   "bits: expected 'N: name' with N in 0..15 and a name under %d characters",
                   MB_BIT_NAME_MAX);
      return -EINVAL;
    }
    r->bits[r->nbits].bit = (uint8_t)b;
    snprintf(r->bits[r->nbits].name, sizeof(r->bits[0].name), "%s", name);
    r->nbits++;
  }
  return 0;
}

/* Wire precision of a register: enough decimal digits for its scale. */
static int default_decimals(const struct mb_register *r) {
  if (r->type == MB_TYPE_F32 || r->type == MB_TYPE_F64)
    return 3;
  double s = fabs(r->scale);
  int d = 0;
  while (d < 9 && fabs(s * pow(10, d) - nearbyint(s * pow(10, d))) > 1e-9)
    d++;
  return d;
}

static int parse_register(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                          struct mb_register *r, int *decimals, char *err, size_t errlen) {
  R t;
  memset(&t, 0, sizeof(t));
  int rc = rp_cfg_apply(doc, node, where, register_fields, N(register_fields),
                        register_sections, &t, err, errlen);
  if (rc != 0)
    return rc;
  mb_register_init(r);
  snprintf(r->name, sizeof(r->name), "%s", t.name);
  snprintf(r->unit, sizeof(r->unit), "%s", t.unit);
  r->address = (uint16_t)t.address;
  r->scale = t.scale;
  r->offset = t.offset;
  if (mb_function_from_name(t.function, &r->fn) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "function"), where, err, errlen,
                 "function '%s' is not one of " MB_FUNCTION_NAMES, t.function);
    return -EINVAL;
  }
  if (mb_type_from_name(t.type, &r->type) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "type"), where, err, errlen,
                 "type '%s' is not one of " MB_TYPE_NAMES, t.type);
    return -EINVAL;
  }
  if (mb_order_from_name(t.order, &r->order) != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "order"), where, err, errlen,
                 "order '%s' is not one of " MB_ORDER_NAMES, t.order);
    return -EINVAL;
  }
  if (rp_cfg_get(doc, node, "min") != 0 || rp_cfg_get(doc, node, "max") != 0) {
    r->has_range = true;
    r->min = rp_cfg_get(doc, node, "min") ? t.min : -INFINITY;
    r->max = rp_cfg_get(doc, node, "max") ? t.max : INFINITY;
  }
  if (t.sentinel[0] != '\0') {
    char *end;
    errno = 0;
    r->sentinel = strtoull(t.sentinel, &end, 0);
    r->has_sentinel = true;
    if (*end != '\0' || errno != 0) {
      rp_cfg_error(doc, rp_cfg_get(doc, node, "sentinel"), where, err, errlen,
                   "sentinel '%s' is not an integer such as 0xFFFF", t.sentinel);
      return -EINVAL;
    }
  }
  if ((rc = parse_bits(doc, rp_cfg_get(doc, node, "bits"), where, r, err, errlen)) != 0)
    return rc;
  char why[256];
  if (mb_register_check(r, why, sizeof(why)) != 0) {
    rp_cfg_error(doc, node, where, err, errlen, "%s", why);
    return -EINVAL;
  }
  *decimals = t.decimals >= 0 ? (int)t.decimals : default_decimals(r);
  return 0;
}

static void device_free(struct mb_device *d) {
  if (d == NULL)
    return;
  if (d->ctx != NULL) {
    modbus_close(d->ctx);
    modbus_free(d->ctx);
  }
  mb_plan_free(&d->plan);
  free(d->regs);
  free(d->decimals);
  free(d->replies);
  free(d->reply_words);
  free(d->readings);
  free(d->labels);
  free(d->details);
  free(d);
}

/* Sizes the reply and reading buffers once, from the plan. */
static int device_alloc_buffers(struct mb_device *d) {
  size_t words = 0;
  for (size_t i = 0; i < d->plan.nrequests; i++)
    words += d->plan.requests[i].count;
  d->replies = calloc(d->plan.nrequests + 1, sizeof(*d->replies));
  d->reply_words = calloc(words + 1, sizeof(*d->reply_words));
  d->max_readings = 0;
  for (size_t i = 0; i < d->nregs; i++)
    d->max_readings += d->regs[i].type == MB_TYPE_BITFIELD ? d->regs[i].nbits + 1 : 1;
  d->readings = calloc(d->max_readings + 1, sizeof(*d->readings));
  d->labels = calloc(d->max_readings + 1, sizeof(*d->labels));
  d->details = calloc(d->max_readings + 1, sizeof(*d->details));
  if (!d->replies || !d->reply_words || !d->readings || !d->labels || !d->details)
    return -ENOMEM;
  size_t off = 0;
  for (size_t i = 0; i < d->plan.nrequests; i++) {
    d->replies[i].words = d->reply_words + off;
    off += d->plan.requests[i].count;
  }
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

static int mb_create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                     const char *where, char *err, size_t errlen) {
  static const char *const sections[] = {"registers", NULL};
  struct mb_device *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  int rc = rp_cfg_apply(doc, node, where, device_fields, N(device_fields), sections, &d->cfg,
                        err, errlen);
  if (rc == 0)
    rc = check_transport(doc, node, where, &d->cfg, err, errlen);
  if (rc != 0)
    goto fail;
  rp_cfg_node regs = rp_cfg_get(doc, node, "registers");
  d->nregs = rp_cfg_seq_len(doc, regs);
  if (d->nregs == 0 || d->nregs > MB_MAX_REGISTERS) {
    rp_cfg_error(doc, regs ? regs : node, where, err, errlen,
                 "registers: expected a list of 1..%d registers", MB_MAX_REGISTERS);
    rc = -EINVAL;
    goto fail;
  }
  d->regs = calloc(d->nregs, sizeof(*d->regs));
  d->decimals = calloc(d->nregs, sizeof(*d->decimals));
  if (d->regs == NULL || d->decimals == NULL) {
    rc = -ENOMEM;
    goto fail;
  }
  for (size_t i = 0; i < d->nregs; i++) {
    char rwhere[96];
    snprintf(rwhere, sizeof(rwhere), "%s.registers[%zu]", where, i);
    rc = parse_register(doc, rp_cfg_seq_item(doc, regs, i), rwhere, &d->regs[i],
                        &d->decimals[i], err, errlen);
    if (rc != 0)
      goto fail;
  }
  struct mb_plan_limits lim = {.max_regs = (uint16_t)d->cfg.max_regs,
                               .max_gap = (uint16_t)d->cfg.max_gap};
  char why[256];
  if ((rc = mb_plan_build(d->regs, d->nregs, &lim, &d->plan, why, sizeof(why))) != 0) {
    rp_cfg_error(doc, regs, where, err, errlen, "registers: %s", why);
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
  case MB_FN_HOLDING:
    n = modbus_read_registers(ctx, start, count, words);
    break;
  case MB_FN_INPUT:
    n = modbus_read_input_registers(ctx, start, count, words);
    break;
  case MB_FN_COIL:
    n = modbus_read_bits(ctx, start, count, bits);
    break;
  case MB_FN_DISCRETE:
    n = modbus_read_input_bits(ctx, start, count, bits);
    break;
  default:
    return EINVAL;
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

static void pause_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* Worker thread: performs the plan's requests. Blocking is fine here. */
static void on_work(uv_work_t *w) {
  struct mb_device *d = w->data;
  d->ts_ms = rp_now_ms();
  d->connect_errno = worker_connect(d);
  if (d->connect_errno != 0) {
    worker_disconnect(d);
    return;
  }
  for (size_t i = 0; i < d->plan.nrequests; i++) {
    const struct mb_request *q = &d->plan.requests[i];
    int rc = 0;
    for (int attempt = 0; attempt <= d->cfg.retries; attempt++) {
      if (i > 0 || attempt > 0)
        pause_ms(d->cfg.pause_ms);
      rc = read_once(d->ctx, q->fn, q->start, q->count, d->replies[i].words);
      if (rc != ETIMEDOUT)
        break;
    }
    d->replies[i].rc = rc;
    if (rc != 0 && breaks_connection(rc)) {
      worker_disconnect(d);
      /* The rest of this scrape would only time out again: fail it fast. */
      for (size_t j = i + 1; j < d->plan.nrequests; j++)
        d->replies[j].rc = rc;
      if (worker_connect(d) != 0)
        worker_disconnect(d);
      break;
    }
  }
}

/* Loop thread: one reading per register (and per named alarm bit). */
static size_t decode_all(struct mb_device *d) {
  size_t n = 0;
  for (size_t i = 0; i < d->nregs; i++) {
    const struct mb_register *r = &d->regs[i];
    const struct mb_slot *s = &d->plan.slots[i];
    const struct mb_reply *reply = &d->replies[s->request];
    struct rp_reading *rd = &d->readings[n];
    memset(rd, 0, sizeof(*rd));
    rd->name = r->name;
    rd->unit = r->unit;
    rd->decimals = d->decimals[i];
    rd->detail = d->details[n];
    if (reply->rc != 0) {
      rd->status = RP_READING_ERROR;
      snprintf(d->details[n], sizeof(d->details[0]), "%s: register %s @ %s %u: %s",
               d->cfg.name, r->name, mb_function_name(r->fn), r->address,
               modbus_strerror(reply->rc));
      n++;
      continue;
    }
    struct mb_value v;
    mb_decode(r, reply->words + s->offset, s->words, &v, d->details[n], sizeof(d->details[0]));
    rd->value = v.value;
    switch (v.status) {
    case MB_ST_OK:
      rd->status = RP_READING_OK;
      break;
    case MB_ST_ABSENT:
      rd->status = RP_READING_ABSENT;
      break;
    case MB_ST_OUT_OF_RANGE:
    case MB_ST_NOT_FINITE:
      rd->status = RP_READING_OUT_OF_RANGE;
      break;
    default:
      rd->status = RP_READING_ERROR;
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
    for (size_t i = 0; i < d->plan.nrequests; i++)
      failed += d->replies[i].rc != 0;
    r.readings = d->readings;
    r.nreadings = decode_all(d);
    if (failed == d->plan.nrequests) {
      snprintf(error, sizeof(error), "%s: %s: every request failed: %s", d->cfg.name,
               d->address, modbus_strerror(d->replies[0].rc));
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
  fprintf(out, "  %-28s %-9s %s\n", "modbus[].registers", "list", "the register map:");
  rp_cfg_print_help(out, "modbus[].registers[]", register_fields, N(register_fields));
  fprintf(out, "  %-28s %-9s %s\n", "modbus[].registers[].bits", "mapping",
          "bitfield: bit number -> alarm name (value 1 = active)");
}

const struct rp_collector rp_collector_modbus = {
    .name = "modbus",
    .create = mb_create,
    .scrape = mb_scrape,
    .destroy = mb_destroy,
    .help = mb_help,
};
