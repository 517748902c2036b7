/* The Redfish collector's configuration (the block is shown at the top of
 * redfish_collect.c): the field table of a device, its password (from a
 * file of mode 0640 at most or from the environment, never from the
 * YAML), TLS settings, and the profile of OEM readings it names
 * (<agent.profiles_dir>/redfish/NAME.yaml). A device is made and freed
 * here (rf__create, rf__dev_free). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/log.h"
#include "rackpulse/secret.h"
#include "redfish_internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

typedef struct rf_cfg D;

static const struct rp_cfg_field device_fields[] = {
    RP_CFG_STR("name", D, name, NULL, 1, "device name, unique in the agent"),
    RP_CFG_STR("host", D, host, NULL, 1, "address or name of the Redfish service (BMC)"),
    RP_CFG_NUM("port", RP_CFG_INT, D, port, "443", 1, 65535, "HTTPS port"),
    RP_CFG_STR("user", D, user, NULL, 1, "account name"),
    RP_CFG_STR("password_file", D, password_file, "", 0,
               "file holding the password (mode 0600 or 0640)"),
    RP_CFG_STR("password_env", D, password_env, "", 0,
               "or the agent's environment variable holding it"),
    RP_CFG_STR("auth", D, auth, "session", 0,
               "session (SessionService, X-Auth-Token; logs in again on 401) or basic"),
    RP_CFG_STR("ca_file", D, ca_file, "", 0,
               "PEM file of the CA (or the self-signed certificate) the service's "
               "certificate must chain to; empty: the system's CAs"),
    RP_CFG_NUM("insecure", RP_CFG_BOOL, D, insecure, "false", 0, 0,
               "true: do not verify the certificate (lab BMCs; logged at start)"),
    RP_CFG_STR("profile", D, profile, "", 0,
               "OEM readings: <agent.profiles_dir>/redfish/NAME.yaml (empty: none)"),
    RP_CFG_NUM("expand", RP_CFG_BOOL, D, expand, "true", 0, 0,
               "read collections with $expand where the service supports it"),
    RP_CFG_NUM("sse", RP_CFG_BOOL, D, sse, "true", 0, 0,
               "take TelemetryService metric reports over SSE where offered"),
    RP_CFG_NUM("timeout", RP_CFG_DURATION, D, timeout_ms, "3s", 0.1, 60,
               "deadline of one scrape of the device (every request of it)"),
    RP_CFG_NUM("interval", RP_CFG_DURATION, D, interval_ms, "0", 0, 3600,
               "scrape interval (0 = agent.interval)"),
};

/* One OEM reading of a profile, as written. */
struct oem_text {
  char resource[32], pointer[128], metric[64], unit[16];
  double scale;
  int64_t decimals;
};

typedef struct oem_text O;

static const struct rp_cfg_field oem_fields[] = {
    RP_CFG_STR("resource", O, resource, NULL, 1,
               "the resource it is in: cdu, pdu, environment, secondary_connector, "
               "primary_connector, pump, reservoir, mains, branch, outlet, ..."),
    RP_CFG_STR("pointer", O, pointer, NULL, 1,
               "JSON pointer in that resource, e.g. /Oem/Contoso/FacilityValvePercent"),
    RP_CFG_STR("metric", O, metric, NULL, 1, "metric name, e.g. cdu.valve_position"),
    RP_CFG_STR("unit", O, unit, "", 0, "unit: Cel, kPa, %, W, ..."),
    RP_CFG_NUM("scale", RP_CFG_DOUBLE, O, scale, "1", 0, 0, "value = reading x scale"),
    RP_CFG_NUM("decimals", RP_CFG_INT, O, decimals, "1", 0, 9, "decimal digits sent"),
};

struct profile_text {
  char description[1024];
};

static const struct rp_cfg_field profile_fields[] = {
    RP_CFG_STR("description", struct profile_text, description, "", 0,
               "what the profile maps and where its facts come from"),
};

static const char *const profile_sections[] = {"readings", NULL};

static int load_profile(struct rf_dev *d, const struct rp_cfg_doc *cdoc, rp_cfg_node cnode,
                        const char *where, char *err, size_t errlen) {
  const char *dir = rp_agent_profiles_dir();
  char path[512], why[512];
  snprintf(path, sizeof(path), "%s/redfish/%s.yaml", dir ? dir : ".", d->cfg.profile);
  struct rp_cfg_doc *doc = NULL;
  int rc = rp_cfg_load(path, &doc, why, sizeof(why));
  if (rc != 0) {
    rp_cfg_error(cdoc, rp_cfg_get(cdoc, cnode, "profile"), where, err, errlen, "profile: %s", why);
    return rc;
  }
  struct profile_text pt;
  rc = rp_cfg_apply(doc, rp_cfg_root(doc), "profile", profile_fields, N(profile_fields),
                    profile_sections, &pt, err, errlen);
  rp_cfg_node list = rp_cfg_get(doc, rp_cfg_root(doc), "readings");
  size_t n = rp_cfg_seq_len(doc, list);
  if (rc == 0 && list != 0 && rp_cfg_kind(doc, list) != RP_CFG_SEQUENCE) {
    rp_cfg_error(doc, list, "readings", err, errlen, "expected a list of readings");
    rc = -EINVAL;
  }
  if (rc == 0 && n > 0 && (d->oem = calloc(n, sizeof(*d->oem))) == NULL)
    rc = -ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char w[64];
    snprintf(w, sizeof(w), "readings[%zu]", i);
    rp_cfg_node item = rp_cfg_seq_item(doc, list, i);
    O o;
    rc = rp_cfg_apply(doc, item, w, oem_fields, N(oem_fields), NULL, &o, err, errlen);
    if (rc != 0)
      break;
    int k = rf_kind_parse(o.resource);
    if (k < 0 || o.pointer[0] != '/') {
      rp_cfg_error(doc, rp_cfg_get(doc, item, k < 0 ? "resource" : "pointer"), w, err, errlen,
                   k < 0 ? "resource: unknown resource '%s'"
                         : "pointer: '%s' is not a JSON pointer (it starts with /)",
                   k < 0 ? o.resource : o.pointer);
      rc = -EINVAL;
      break;
    }
    struct rf_oem *e = &d->oem[d->noem++];
    e->kind = (enum rf_kind)k;
    snprintf(e->pointer, sizeof(e->pointer), "%s", o.pointer);
    snprintf(e->metric, sizeof(e->metric), "%s", o.metric);
    snprintf(e->unit, sizeof(e->unit), "%s", o.unit);
    e->scale = o.scale;
    e->decimals = (int)o.decimals;
  }
  rp_cfg_free(doc);
  return rc;
}

static int load_password(struct rf_dev *d, const struct rp_cfg_doc *doc, rp_cfg_node node,
                         const char *where, char *err, size_t errlen) {
  bool f = d->cfg.password_file[0] != '\0', e = d->cfg.password_env[0] != '\0';
  if (f == e) {
    rp_cfg_error(doc, node, where, err, errlen,
                 "password_file or password_env: exactly one is required (secrets never go "
                 "in this file)");
    return -EINVAL;
  }
  if (f) {
    char why[300];
    int rc = rp_secret_read_file(d->cfg.password_file, d->password, sizeof(d->password), why,
                                 sizeof(why));
    if (rc != 0)
      rp_cfg_error(doc, rp_cfg_get(doc, node, "password_file"), where, err, errlen,
                   "password_file: %s", why);
    return rc;
  }
  const char *v = getenv(d->cfg.password_env);
  if (v == NULL || v[0] == '\0' || strlen(v) >= sizeof(d->password)) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "password_env"), where, err, errlen,
                 "password_env: the environment variable %s is %s", d->cfg.password_env,
                 v == NULL || v[0] == '\0' ? "not set" : "too long");
    return -EINVAL;
  }
  snprintf(d->password, sizeof(d->password), "%s", v);
  return 0;
}

int rf__create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
               const char *where, char *err, size_t errlen) {
  struct rf_dev *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -ENOMEM;
  int rc =
      rp_cfg_apply(doc, node, where, device_fields, N(device_fields), NULL, &d->cfg, err, errlen);
  if (rc == 0 && strcmp(d->cfg.auth, "session") != 0 && strcmp(d->cfg.auth, "basic") != 0) {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "auth"), where, err, errlen,
                 "auth: expected session or basic, got '%s'", d->cfg.auth);
    rc = -EINVAL;
  }
  if (rc == 0 && d->cfg.insecure && d->cfg.ca_file[0] != '\0') {
    rp_cfg_error(doc, rp_cfg_get(doc, node, "insecure"), where, err, errlen,
                 "insecure: true and a ca_file contradict each other");
    rc = -EINVAL;
  }
  if (rc == 0)
    rc = load_password(d, doc, node, where, err, errlen);
  if (rc == 0 && d->cfg.profile[0] != '\0')
    rc = load_profile(d, doc, node, where, err, errlen);
  char why[256];
  if (rc == 0 && rf__curl_load(why, sizeof(why)) != 0) {
    rp_cfg_error(doc, node, where, err, errlen, "%s", why);
    rc = -ENOENT;
  }
  if (rc != 0) {
    rf__dev_free(d);
    return rc;
  }
  bool v6 = strchr(d->cfg.host, ':') != NULL;
  snprintf(d->base, sizeof(d->base), "https://%s%s%s:%d", v6 ? "[" : "", d->cfg.host, v6 ? "]" : "",
           (int)d->cfg.port);
  snprintf(t->name, sizeof(t->name), "%s", d->cfg.name);
  t->interval_ms = d->cfg.interval_ms;
  t->priv = d;
  if (d->cfg.insecure)
    rp_warn("redfish", "%s: %s: insecure: true: the service's certificate is NOT verified",
            d->cfg.name, d->base);
  return 0;
}

void rf__dev_free(struct rf_dev *d) {
  if (d == NULL)
    return;
  rf__plan_clear(d);
  free(d->plan);
  free(d->fetch);
  free(d->oem);
  rf_out_free(&d->out);
  free(d->readings);
  explicit_bzero(d->password, sizeof(d->password));
  explicit_bzero(d->token, sizeof(d->token));
  free(d);
}

bool rf__same_config(const struct rp_target *a, const struct rp_target *b) {
  const struct rf_dev *x = a->priv, *y = b->priv;
  if (memcmp(&x->cfg, &y->cfg, sizeof(x->cfg)) != 0 || x->noem != y->noem ||
      !rp_secret_equal(x->password, y->password))
    return false;
  return x->noem == 0 || memcmp(x->oem, y->oem, x->noem * sizeof(*x->oem)) == 0;
}

void rf__config_help(FILE *out) {
  rp_cfg_print_help(out, "redfish[]", device_fields, N(device_fields));
  fprintf(out, "  redfish profile file <agent.profiles_dir>/redfish/NAME.yaml:\n");
  rp_cfg_print_help(out, "profile", profile_fields, N(profile_fields));
  rp_cfg_print_help(out, "profile.readings[]", oem_fields, N(oem_fields));
}
