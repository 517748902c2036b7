/* Cross-file declarations of the SNMP collector, internal to agent/snmp/:
 * a PDU's configuration and state (struct snmp_dev, t->priv of its
 * target) and what each file offers the others, with the libuv-style
 * double underscore for internal names (net-snmp owns the snmp_ prefix):
 *   snmp_config.c    make and free a device from its YAML; --help; reloads
 *   snmp_session.c   net-snmp's library state, a device's session on
 *                    uv_poll/uv_timer, the USM owner registry, failures
 *   snmp_walk.c      requests and answers: discovery, GET, GETBULK walks
 *   snmp_readings.c  the walked values as readings, rp_target_done()
 *   snmp_collect.c   the scrape's start (name resolution, session), the
 *                    device's end, and the const struct rp_collector_snmp
 * Loop thread only, like every collector. */
#ifndef RP_AGENT_SNMP_INTERNAL_H
#define RP_AGENT_SNMP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/large_fd_set.h>

#include "agent.h"
#include "snmp_profile.h"
#include "snmp_value.h"

#define SNMP_IDX_MAX 16      /* row index components kept; longer rows are skipped */
#define SNMP_MAX_CELLS 20000 /* values one scrape may walk */
#define SNMP_SECRET_MAX 256
#define SNMP_DETAIL_MAX 240

struct snmp_cfg {
  char name[64];
  char host[256];
  int64_t port;
  char version[8];
  char community_file[256], community_env[128];
  char user[64];
  char security_level[16];
  char auth_protocol[16], auth_pass_file[256], auth_pass_env[128];
  char priv_protocol[16], priv_pass_file[256], priv_pass_env[128];
  char context[64];
  char profile[SNMP_PROFILE_NAME_MAX];
  int64_t max_repetitions, max_varbinds;
  bool bulk;
  int64_t timeout_ms, retries, interval_ms;
};

/* Keys and community, derived at load time. Zeroed before they are freed. */
struct snmp_secret {
  u_char community[SNMP_SECRET_MAX];
  size_t community_len;
  u_char auth_ku[USM_AUTH_KU_LEN];
  size_t auth_ku_len;
  u_char priv_ku[USM_PRIV_KU_LEN];
  size_t priv_ku_len;
};

/* One value a walk returned. */
struct snmp_cell {
  uint8_t col;
  uint8_t idxlen;
  uint32_t idx[SNMP_IDX_MAX];
  struct snmp_value v;
};

enum col_end { END_NONE, END_LEFT, END_EOMV, END_V1_END, END_LOOP, END_ERROR, END_TOO_MANY };

struct walk_col {
  struct snmp_oid last;
  bool done;
  enum col_end end;
  char why[96]; /* END_ERROR: the error-status text */
  struct snmp_oid end_oid;
  uint32_t rows;
};

/* A counter series' state, per metric and row. */
struct ctr_state {
  int metric;
  uint8_t idxlen;
  uint32_t idx[SNMP_IDX_MAX];
  struct snmp_counter c;
  bool seen;
};

/* Rows a table metric reported at its previous scrape. */
struct row_key {
  uint8_t len;
  uint32_t idx[SNMP_IDX_MAX];
};
struct prev_rows {
  struct row_key *rows;
  size_t n, cap;
};

/* Storage behind one reading handed to rp_target_done(). */
struct snmp_out {
  struct rp_label labels[SNMP_MAX_LABELS];
  char values[SNMP_MAX_LABELS][SNMP_LABEL_VALUE_MAX];
  char detail[SNMP_DETAIL_MAX];
};

struct snmp_dev;

/* A session and the handles that watch it; freed when both are closed. */
struct snmp_io {
  uv_poll_t poll;
  uv_timer_t timer;
  void *sessp;
  struct snmp_dev *dev; /* NULL once the device let go */
  netsnmp_large_fd_set fds;
  int open_handles;
  bool polling;
  bool *closed; /* set true by the last close callback when someone waits */
};

enum phase { PH_IDLE, PH_RESOLVE, PH_PROBE, PH_SCALARS, PH_TABLES };

struct snmp_dev {
  struct snmp_cfg cfg;
  struct snmp_profile prof;
  struct snmp_secret sec;
  char address[300]; /* "host:port", for messages */
  char ip[64];       /* numeric address once resolved */
  int family;
  uv_loop_t *loop;
  struct rp_target *t;
  struct snmp_io *io;
  uv_getaddrinfo_t resolve;
  /* A scrape. */
  enum phase ph;
  int64_t ts_ms;
  int reqid;      /* the request in flight, 0 none */
  bool responded; /* a response (or a timeout) waits to be acted on */
  bool failed;    /* the device failed: `error` says why */
  char error[320];
  bool use_getnext; /* sticky: GETBULK refused, or bulk: false, or v1 */
  int max_rep;      /* GETBULK max-repetitions, halved on tooBig */
  int vb_limit;     /* varbinds per request, halved on tooBig */
  /* Scalars: [0] is sysUpTime.0, then the profile's scalar metrics. */
  struct snmp_oid *scalar_oids;
  int *scalar_metric; /* metric index, -1 for sysUpTime */
  struct snmp_value *scalar_vals;
  char (*scalar_why)[96];
  size_t nscalars, scalar_next;
  size_t *pending; /* scalars in the GET in flight */
  size_t npending;
  /* Tables. */
  size_t table;
  struct walk_col (*walk)[SNMP_MAX_COLUMNS]; /* per table: how each column's walk ended */
  struct walk_col *cols;                     /* the current table's row of walk */
  int active[SNMP_MAX_COLUMNS];
  size_t nactive;
  size_t table_first_cell;
  struct snmp_cell *cells;
  size_t ncells, capcells;
  size_t *table_cells; /* per table: [first, end) into cells */
  /* Across scrapes. */
  bool have_uptime;
  uint32_t uptime;
  struct ctr_state *ctrs;
  size_t nctrs, capctrs;
  struct prev_rows *prev; /* per metric */
  bool said_getnext;
  /* Readings of the scrape being reported. */
  struct rp_reading *readings;
  struct snmp_out *outs;
  size_t nout, capout;
};

/* snmp_config.c. The collector's create(): reads one snmp[] entry at
 * `node` (its secrets and its profile too) into a new device, t->priv
 * (free with snmp__dev_free()), which holds a reference on net-snmp's
 * library state, and sets the target's name and interval. Returns 0, or a
 * negative errno with err set to "file:line: key: problem" (-ENOMEM:
 * possibly without it). */
int snmp__create(struct rp_target *t, const struct rp_cfg_doc *doc, rp_cfg_node node,
                 const char *where, char *err, size_t errlen);
/* Closes d's session if it has one (its handles close asynchronously),
 * zeroes its secrets, frees it and drops its library reference. Accepts
 * NULL. */
void snmp__dev_free(struct snmp_dev *d);
/* The collector's same_config(): true when two devices have the same
 * settings, secrets and profile (a reload keeps the running one). */
bool snmp__same_config(const struct rp_target *a, const struct rp_target *b);
/* Prints the snmp[] keys and the profile format for --help. */
void snmp__config_help(FILE *out);
/* net-snmp's OID of an auth_protocol or priv_protocol name, NULL if none;
 * its security level for a security_level name, -1 if none. */
const oid *snmp__auth_proto(const char *name);
const oid *snmp__priv_proto(const char *name);
int snmp__sec_level(const char *s);

/* snmp_session.c. The library reference: the first initialises net-snmp
 * (numeric OIDs only, no configuration files read), the last shuts it
 * down. */
void snmp__lib_ref(void);
void snmp__lib_unref(void);
/* Gives d its snmp_io (the timer; no session yet). 0 or -ENOMEM. */
int snmp__io_new(struct snmp_dev *d);
/* Opens d's session on d->ip and watches its socket. 0, or an error with
 * the device failed (snmp__fail). */
int snmp__open_session(struct snmp_dev *d);
/* Closes the session now and the handles asynchronously; io is freed by
 * the last close callback (which sets *io->closed when it is not NULL). */
void snmp__io_close(struct snmp_io *io);
/* Whether the device's handles keep the loop alive (while a scrape runs). */
void snmp__io_hold_loop(struct snmp_io *io, bool hold);
/* Re-arms io's timer for net-snmp's next retransmission or timeout. */
void snmp__rearm(struct snmp_io *io);
/* Marks the scrape failed with "name: address: " and the message (the
 * first failure of a scrape wins). */
void snmp__fail(struct snmp_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The session's last error as text, into buf. */
void snmp__session_error(void *sessp, netsnmp_session *s, char *buf, size_t len);
/* Makes the session discover its agent's engine ID again. */
void snmp__forget_engine(netsnmp_session *s);
/* Makes net-snmp's USM user entry for the session's engine ID hold d's
 * keys. 0, or -EEXIST when another live device holds it with other
 * credentials (its name in *other), or -ENOMEM. */
int snmp__usm_claim(struct snmp_dev *d, netsnmp_session *s, const char **other);
/* Forgets the USM entries d owns (d is being freed). */
void snmp__usm_owner_drop(struct snmp_dev *d);

/* snmp_walk.c. Sends the scrape's next request for d->ph, or ends the
 * scrape with snmp__finish() (failed, or nothing left to ask). */
void snmp__step(struct snmp_dev *d);

/* snmp_readings.c. Ends the scrape: the readings (or the failure) to
 * rp_target_done(), the loop no longer held. */
void snmp__finish(struct snmp_dev *d);

#endif
