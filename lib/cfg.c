/* Configuration files: libyaml's document loader gives a node tree with line
 * marks; this file walks it with field tables (see cfg.h) and turns every
 * problem into "file:line: key: what is wrong". */
#include "rackpulse/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

struct rp_cfg_doc {
  yaml_document_t doc;
  char path[512];
};

static yaml_node_t *node_at(const struct rp_cfg_doc *d, rp_cfg_node n) {
  if (d == NULL || n <= 0)
    return NULL;
  return yaml_document_get_node((yaml_document_t *)&d->doc, n);
}

int rp_cfg_load_string(const char *name, const char *text, size_t len, struct rp_cfg_doc **out,
                       char *err, size_t errlen) {
  yaml_parser_t parser;
  struct rp_cfg_doc *d = calloc(1, sizeof(*d));
  if (d == NULL) {
    snprintf(err, errlen, "%s: out of memory", name);
    return -ENOMEM;
  }
  snprintf(d->path, sizeof(d->path), "%s", name);
  if (!yaml_parser_initialize(&parser)) {
    snprintf(err, errlen, "%s: cannot initialise the YAML parser", name);
    free(d);
    return -ENOMEM;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &d->doc)) {
    snprintf(err, errlen, "%s:%zu: %s%s%s", name, parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
             parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    free(d);
    return -EINVAL;
  }
  yaml_parser_delete(&parser);
  yaml_node_t *root = yaml_document_get_root_node(&d->doc);
  if (root != NULL && root->type != YAML_MAPPING_NODE) {
    snprintf(err, errlen, "%s:%zu: the top level must be a mapping of sections", name,
             root->start_mark.line + 1);
    rp_cfg_free(d);
    return -EINVAL;
  }
  *out = d;
  return 0;
}

int rp_cfg_load(const char *path, struct rp_cfg_doc **out, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    int e = errno;
    snprintf(err, errlen, "%s: %s", path, strerror(e));
    return -e;
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (cap - len < 4096) {
      if (cap >= (16u << 20)) {
        snprintf(err, errlen, "%s: larger than 16 MiB, refusing to read it", path);
        rc = -EFBIG;
        goto out;
      }
      cap = cap ? cap * 2 : 8192;
      char *bigger = realloc(text, cap);
      if (bigger == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
        goto out;
      }
      text = bigger;
    }
    size_t got = fread(text + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    snprintf(err, errlen, "%s: read error", path);
    rc = -EIO;
    goto out;
  }
  rc = rp_cfg_load_string(path, text, len, out, err, errlen);
out:
  free(text);
  fclose(f);
  return rc;
}

void rp_cfg_free(struct rp_cfg_doc *doc) {
  if (doc == NULL)
    return;
  yaml_document_delete(&doc->doc);
  free(doc);
}

const char *rp_cfg_path(const struct rp_cfg_doc *doc) { return doc->path; }

rp_cfg_node rp_cfg_root(const struct rp_cfg_doc *doc) {
  return yaml_document_get_root_node((yaml_document_t *)&doc->doc) ? 1 : 0;
}

enum rp_cfg_kind rp_cfg_kind(const struct rp_cfg_doc *doc, rp_cfg_node node) {
  yaml_node_t *n = node_at(doc, node);
  if (n == NULL)
    return RP_CFG_NONE;
  switch (n->type) {
  case YAML_SCALAR_NODE: return RP_CFG_SCALAR;
  case YAML_SEQUENCE_NODE: return RP_CFG_SEQUENCE;
  case YAML_MAPPING_NODE: return RP_CFG_MAPPING;
  default: return RP_CFG_NONE;
  }
}

int rp_cfg_line(const struct rp_cfg_doc *doc, rp_cfg_node node) {
  yaml_node_t *n = node_at(doc, node);
  return n ? (int)n->start_mark.line + 1 : 0;
}

const char *rp_cfg_scalar(const struct rp_cfg_doc *doc, rp_cfg_node node) {
  yaml_node_t *n = node_at(doc, node);
  if (n == NULL || n->type != YAML_SCALAR_NODE)
    return NULL;
  return (const char *)n->data.scalar.value;
}

size_t rp_cfg_map_len(const struct rp_cfg_doc *doc, rp_cfg_node map) {
  yaml_node_t *n = node_at(doc, map);
  if (n == NULL || n->type != YAML_MAPPING_NODE)
    return 0;
  return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

const char *rp_cfg_map_key(const struct rp_cfg_doc *doc, rp_cfg_node map, size_t i,
                           rp_cfg_node *value) {
  if (i >= rp_cfg_map_len(doc, map))
    return NULL;
  yaml_node_pair_t *p = node_at(doc, map)->data.mapping.pairs.start + i;
  if (value)
    *value = p->value;
  return rp_cfg_scalar(doc, p->key);
}

/* The key node of pair i of a mapping (for errors about the key itself). */
static rp_cfg_node map_key_node(const struct rp_cfg_doc *doc, rp_cfg_node map, size_t i) {
  if (i >= rp_cfg_map_len(doc, map))
    return 0;
  return node_at(doc, map)->data.mapping.pairs.start[i].key;
}

rp_cfg_node rp_cfg_get(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *key) {
  size_t n = rp_cfg_map_len(doc, map);
  for (size_t i = 0; i < n; i++) {
    rp_cfg_node v;
    const char *k = rp_cfg_map_key(doc, map, i, &v);
    if (k != NULL && strcmp(k, key) == 0)
      return v;
  }
  return 0;
}

size_t rp_cfg_seq_len(const struct rp_cfg_doc *doc, rp_cfg_node seq) {
  yaml_node_t *n = node_at(doc, seq);
  if (n == NULL || n->type != YAML_SEQUENCE_NODE)
    return 0;
  return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

rp_cfg_node rp_cfg_seq_item(const struct rp_cfg_doc *doc, rp_cfg_node seq, size_t i) {
  if (i >= rp_cfg_seq_len(doc, seq))
    return 0;
  return node_at(doc, seq)->data.sequence.items.start[i];
}

void rp_cfg_error(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where, char *err,
                  size_t errlen, const char *fmt, ...) {
  int n = snprintf(err, errlen, "%s:%d: %s: ", doc->path, rp_cfg_line(doc, node), where);
  if (n < 0 || (size_t)n >= errlen)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

int rp_parse_duration_ms(const char *text, int64_t *ms) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (end == text || errno != 0 || !isfinite(v) || v < 0)
    return -EINVAL;
  while (*end == ' ')
    end++;
  double mult;
  if (*end == '\0' || strcmp(end, "s") == 0)
    mult = 1000;
  else if (strcmp(end, "ms") == 0)
    mult = 1;
  else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
    mult = 60000;
  else if (strcmp(end, "h") == 0)
    mult = 3600000;
  else
    return -EINVAL;
  double total = v * mult;
  if (total > 9.0e15)
    return -EINVAL;
  *ms = (int64_t)llround(total);
  return 0;
}

static int parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = true;
      return 0;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = false;
      return 0;
    }
  }
  return -EINVAL;
}

static const char *type_name(enum rp_cfg_type t) {
  switch (t) {
  case RP_CFG_STRING: return "string";
  case RP_CFG_INT: return "whole number";
  case RP_CFG_DOUBLE: return "number";
  case RP_CFG_BOOL: return "boolean";
  case RP_CFG_DURATION: return "duration";
  }
  return "?";
}

/* Stores the text `s` into the field; `node` and `where` are for errors. */
static int set_field(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where,
                     const struct rp_cfg_field *f, const char *s, void *target, char *err,
                     size_t errlen) {
  char *dst = (char *)target + f->offset;
  double num = 0;
  switch (f->type) {
  case RP_CFG_STRING: {
    size_t len = strlen(s);
    if (len >= f->size) {
      rp_cfg_error(doc, node, where, err, errlen, "longer than %zu characters", f->size - 1);
      return -EINVAL;
    }
    memcpy(dst, s, len + 1);
    return 0;
  }
  case RP_CFG_BOOL: {
    bool b;
    if (parse_bool(s, &b) != 0) {
      rp_cfg_error(doc, node, where, err, errlen, "expected true or false, got '%s'", s);
      return -EINVAL;
    }
    memcpy(dst, &b, sizeof(b));
    return 0;
  }
  case RP_CFG_INT: {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0) {
      rp_cfg_error(doc, node, where, err, errlen, "expected an integer, got '%s'", s);
      return -EINVAL;
    }
    int64_t v64 = v;
    memcpy(dst, &v64, sizeof(v64));
    num = (double)v;
    break;
  }
  case RP_CFG_DOUBLE: {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !isfinite(v)) {
      rp_cfg_error(doc, node, where, err, errlen, "expected a number, got '%s'", s);
      return -EINVAL;
    }
    memcpy(dst, &v, sizeof(v));
    num = v;
    break;
  }
  case RP_CFG_DURATION: {
    int64_t ms;
    if (rp_parse_duration_ms(s, &ms) != 0) {
      rp_cfg_error(doc, node, where, err, errlen,
                   "expected a duration such as 500ms, 5s or 2m, got '%s'", s);
      return -EINVAL;
    }
    memcpy(dst, &ms, sizeof(ms));
    num = (double)ms / 1000.0;
    break;
  }
  }
  if (f->min != f->max && (num < f->min || num > f->max)) {
    rp_cfg_error(doc, node, where, err, errlen, "%s is outside %g..%g%s", s, f->min, f->max,
                 f->type == RP_CFG_DURATION ? " seconds" : "");
    return -EINVAL;
  }
  return 0;
}

static bool in_list(const char *const *list, const char *key) {
  for (; list != NULL && *list != NULL; list++)
    if (strcmp(*list, key) == 0)
      return true;
  return false;
}

int rp_cfg_apply(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                 const struct rp_cfg_field *fields, size_t nfields, const char *const *sections,
                 void *target, char *err, size_t errlen) {
  char path[256];
  if (map != 0 && rp_cfg_kind(doc, map) != RP_CFG_MAPPING) {
    rp_cfg_error(doc, map, where, err, errlen, "expected a mapping of keys");
    return -EINVAL;
  }
  /* Unknown and duplicate keys first: a typo must never be silently ignored. */
  size_t npairs = rp_cfg_map_len(doc, map);
  for (size_t i = 0; i < npairs; i++) {
    rp_cfg_node value;
    const char *key = rp_cfg_map_key(doc, map, i, &value);
    if (key == NULL) {
      rp_cfg_error(doc, map, where, err, errlen, "keys must be plain scalars");
      return -EINVAL;
    }
    snprintf(path, sizeof(path), "%s.%s", where, key);
    for (size_t j = 0; j < i; j++) {
      const char *prev = rp_cfg_map_key(doc, map, j, NULL);
      if (prev != NULL && strcmp(prev, key) == 0) {
        rp_cfg_error(doc, map_key_node(doc, map, i), path, err, errlen, "duplicate key");
        return -EINVAL;
      }
    }
    bool known = in_list(sections, key);
    for (size_t j = 0; j < nfields && !known; j++)
      known = strcmp(fields[j].key, key) == 0;
    if (!known) {
      int n = 0;
      char expected[768] = "";
      for (size_t j = 0; j < nfields && n >= 0 && (size_t)n < sizeof(expected); j++)
        n += snprintf(expected + n, sizeof(expected) - (size_t)n, "%s%s", j ? ", " : "",
                      fields[j].key);
      for (size_t j = 0; sections && sections[j] && n >= 0 && (size_t)n < sizeof(expected); j++)
        n += snprintf(expected + n, sizeof(expected) - (size_t)n, "%s%s", n ? ", " : "",
                      sections[j]);
      rp_cfg_error(doc, map_key_node(doc, map, i), path, err, errlen,
                   "unknown key (known keys: %s)", expected);
      return -EINVAL;
    }
  }
  for (size_t i = 0; i < nfields; i++) {
    const struct rp_cfg_field *f = &fields[i];
    rp_cfg_node value = rp_cfg_get(doc, map, f->key);
    snprintf(path, sizeof(path), "%s.%s", where, f->key);
    if (value == 0) {
      if (f->required) {
        rp_cfg_error(doc, map, path, err, errlen, "required key is missing");
        return -EINVAL;
      }
      if (f->def == NULL)
        continue;
      int rc = set_field(doc, map, path, f, f->def, target, err, errlen);
      if (rc != 0)
        return rc;
      continue;
    }
    const char *text = rp_cfg_scalar(doc, value);
    if (text == NULL) {
      rp_cfg_error(doc, value, path, err, errlen, "expected a %s, got a %s", type_name(f->type),
                   rp_cfg_kind(doc, value) == RP_CFG_MAPPING ? "mapping" : "list");
      return -EINVAL;
    }
    /* `key:` with no value is a null scalar, text "": a required string
     * left empty (agent.rack, a device's name, a policy version) is as
     * missing as an absent one, and was accepted until fuzzing found it. */
    if (f->required && f->type == RP_CFG_STRING && text[0] == '\0') {
      rp_cfg_error(doc, value, path, err, errlen, "required key is empty");
      return -EINVAL;
    }
    int rc = set_field(doc, value, path, f, text, target, err, errlen);
    if (rc != 0)
      return rc;
  }
  return 0;
}

void rp_cfg_print_help(FILE *out, const char *where, const struct rp_cfg_field *fields,
                       size_t nfields) {
  for (size_t i = 0; i < nfields; i++) {
    const struct rp_cfg_field *f = &fields[i];
    char key[128];
    snprintf(key, sizeof(key), "%s.%s", where, f->key);
    fprintf(out, "  %-28s %-9s %s", key, type_name(f->type), f->help);
    if (f->required)
      fprintf(out, " (required)");
    else if (f->def != NULL && f->def[0] != '\0')
      fprintf(out, " (default: %s)", f->def);
    fputc('\n', out);
  }
}
