/* Configuration files: YAML read by libyaml into a document, then applied to
 * C structs through field tables (one table per section). Every error names
 * the file, the line and the key: "agent.yaml:12: kafka.linger: expected a
 * duration such as 500ms, 5s or 2m, got 'soon'".
 *
 * A field table is data: key, type, offset into the target struct, default,
 * range and help text. rp_cfg_apply() applies defaults, checks types and
 * ranges and rejects unknown keys; rp_cfg_print_help() prints the same table
 * for --help, so the help cannot drift from what is accepted. */
#ifndef RACKPULSE_CFG_H
#define RACKPULSE_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct rp_cfg_doc; /* opaque: a parsed YAML file */

enum rp_cfg_type {
  RP_CFG_STRING,   /* char[size] in the target; longer values are an error */
  RP_CFG_INT,      /* int64_t */
  RP_CFG_DOUBLE,   /* double */
  RP_CFG_BOOL,     /* bool: true/false, yes/no, on/off */
  RP_CFG_DURATION, /* int64_t milliseconds; "250ms", "5s", "2m", "1h" */
};

struct rp_cfg_field {
  const char *key;
  enum rp_cfg_type type;
  size_t offset;   /* offsetof(target struct, member) */
  size_t size;     /* RP_CFG_STRING: size of the char array */
  const char *def; /* default, as it would be written in YAML; NULL = none */
  int required;    /* non-zero: the key must be present */
  double min, max; /* numeric range, inclusive; ignored when min == max */
  const char *help;
};

#define RP_CFG_STR(key, st, m, def, req, help) \
  { key, RP_CFG_STRING, offsetof(st, m), sizeof(((st *)0)->m), def, req, 0, 0, help }
#define RP_CFG_NUM(key, type, st, m, def, min, max, help) \
  { key, type, offsetof(st, m), sizeof(((st *)0)->m), def, 0, min, max, help }

/* A node of the document: 0 means "absent". */
typedef int rp_cfg_node;

enum rp_cfg_kind { RP_CFG_NONE, RP_CFG_SCALAR, RP_CFG_SEQUENCE, RP_CFG_MAPPING };

/* Reads and parses `path`. On success returns 0 and *out, which the caller
 * frees with rp_cfg_free(). On failure returns a negative errno and fills
 * err with "path:line: what is wrong" (or "path: strerror"). An empty file is
 * an empty mapping. */
int rp_cfg_load(const char *path, struct rp_cfg_doc **out, char *err, size_t errlen);

/* Parses YAML text held in memory; `name` stands for the file in errors. */
int rp_cfg_load_string(const char *name, const char *text, size_t len, struct rp_cfg_doc **out,
                       char *err, size_t errlen);

/* Frees a document. Accepts NULL. */
void rp_cfg_free(struct rp_cfg_doc *doc);

const char *rp_cfg_path(const struct rp_cfg_doc *doc);
rp_cfg_node rp_cfg_root(const struct rp_cfg_doc *doc);
enum rp_cfg_kind rp_cfg_kind(const struct rp_cfg_doc *doc, rp_cfg_node node);
/* 1-based line of a node in its file, 0 for an absent node. */
int rp_cfg_line(const struct rp_cfg_doc *doc, rp_cfg_node node);
/* The value of `key` in a mapping, or 0 when absent or `map` is no mapping. */
rp_cfg_node rp_cfg_get(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *key);
/* Sequence length and items (0-based). */
size_t rp_cfg_seq_len(const struct rp_cfg_doc *doc, rp_cfg_node seq);
rp_cfg_node rp_cfg_seq_item(const struct rp_cfg_doc *doc, rp_cfg_node seq, size_t i);
/* Mapping pairs (0-based): the key's text and the value node. */
size_t rp_cfg_map_len(const struct rp_cfg_doc *doc, rp_cfg_node map);
const char *rp_cfg_map_key(const struct rp_cfg_doc *doc, rp_cfg_node map, size_t i,
                           rp_cfg_node *value);
/* The text of a scalar node, or NULL. Owned by the document. */
const char *rp_cfg_scalar(const struct rp_cfg_doc *doc, rp_cfg_node node);

/* Applies `fields` to `target` from mapping `map` (which may be 0: every
 * field takes its default). `where` is the dotted path of the mapping for
 * messages ("kafka", "modbus[0]"). Keys listed in `sections` (a NULL-ended
 * list, may be NULL) are sub-sections the caller handles and are skipped.
 * Any other key not in the table is an error. Returns 0, or -EINVAL with err
 * set to "file:line: where.key: what is wrong". */
int rp_cfg_apply(const struct rp_cfg_doc *doc, rp_cfg_node map, const char *where,
                 const struct rp_cfg_field *fields, size_t nfields, const char *const *sections,
                 void *target, char *err, size_t errlen);

/* Formats "file:line: where: message" into err (for callers' own checks). */
void rp_cfg_error(const struct rp_cfg_doc *doc, rp_cfg_node node, const char *where, char *err,
                  size_t errlen, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Parses a duration ("250ms", "5s", "2m", "1h", or a bare number of
 * seconds). Returns 0 and *ms, or -EINVAL. */
int rp_parse_duration_ms(const char *text, int64_t *ms);

/* Prints a table as help text: "  where.key  type  (default: x)  help". */
void rp_cfg_print_help(FILE *out, const char *where, const struct rp_cfg_field *fields,
                       size_t nfields);

#endif
