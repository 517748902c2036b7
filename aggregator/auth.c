/* Named API clients and their roles (see auth.h): the tokens file, the
 * shared token as one client, look-ups by token or certificate, and the
 * SIGHUP reload that swaps the table under a write lock. */
#define _GNU_SOURCE /* pthread_rwlockattr_setkind_np */
#include "auth.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggregator.h"
#include "rackpulse/secret.h"

#define TOKENS_FILE_MAX (256 * 1024)

/* One table of clients; struct rp_auth holds the one in force. */
struct client_table {
  struct rp_client *clients;
  size_t n;
};

struct rp_auth {
  /* readers: look-ups; writer: a reload's swap. Writers first: with
   * glibc's default (readers first) HTTP threads that authenticate without
   * a pause kept a reload waiting for good (test_concurrency under TSan). */
  pthread_rwlock_t lock;
  struct client_table t;
};

static const char *const role_names[] = {"read", "reserve", "flag", "override", "admin"};

const char *rp_role_name(enum rp_role role) {
  for (unsigned i = 0; i < 5; i++)
    if ((unsigned)role == 1u << i)
      return role_names[i];
  return "?";
}

unsigned rp_auth_parse_roles(const char *list) {
  unsigned mask = 0;
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", list);
  for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    unsigned bit = 0;
    for (unsigned i = 0; i < 5; i++)
      if (strcmp(t, role_names[i]) == 0)
        bit = 1u << i;
    if (bit == 0)
      return 0;
    mask |= bit;
  }
  return mask;
}

static bool valid_name(const char *s) { return rp_http_valid_id(s, strlen(s)); }

static int add_client(struct client_table *a, const char *name, unsigned roles, bool by_cert,
                      const char *secret) {
  struct rp_client *grown = realloc(a->clients, (a->n + 1) * sizeof(*grown));
  if (grown == NULL)
    return -ENOMEM;
  a->clients = grown;
  struct rp_client *c = &a->clients[a->n++];
  memset(c, 0, sizeof(*c));
  snprintf(c->name, sizeof(c->name), "%s", name);
  c->roles = roles;
  c->by_cert = by_cert;
  snprintf(c->secret, sizeof(c->secret), "%s", secret);
  return 0;
}

/* One line of the tokens file: NAME ROLES TOKEN|cert:CN. */
static int parse_line(struct client_table *a, char *line, const char *path, int lineno, char *err,
                      size_t errlen) {
  char *save = NULL;
  char *name = strtok_r(line, " \t", &save);
  if (name == NULL || name[0] == '#')
    return 0;
  char *roles = strtok_r(NULL, " \t", &save), *secret = strtok_r(NULL, " \t", &save);
  char *extra = strtok_r(NULL, " \t", &save);
  if (roles == NULL || secret == NULL || extra != NULL) {
    snprintf(err, errlen, "%s:%d: expected NAME ROLE[,ROLE] TOKEN (or cert:CN)", path, lineno);
    return -EINVAL;
  }
  if (!valid_name(name)) {
    snprintf(err, errlen, "%s:%d: client name: 1..64 of A-Z a-z 0-9 . _ -", path, lineno);
    return -EINVAL;
  }
  unsigned mask = rp_auth_parse_roles(roles);
  if (mask == 0) {
    snprintf(err, errlen, "%s:%d: client %s: roles: read, reserve, flag, override, admin", path,
             lineno, name);
    return -EINVAL;
  }
  bool by_cert = strncmp(secret, "cert:", 5) == 0;
  if (strlen(secret) >= sizeof(a->clients[0].secret) || (!by_cert && strlen(secret) < 16) ||
      (by_cert && secret[5] == '\0')) {
    snprintf(err, errlen, "%s:%d: client %s: a token of 16..255 characters, or cert:CN", path,
             lineno, name);
    return -EINVAL;
  }
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->clients[i].name, name) == 0) {
      snprintf(err, errlen, "%s:%d: client %s named twice", path, lineno, name);
      return -EINVAL;
    }
  return add_client(a, name, mask, by_cert, by_cert ? secret + 5 : secret);
}

static int load_file(struct client_table *a, const char *path, char *err, size_t errlen) {
  char *text = malloc(TOKENS_FILE_MAX);
  if (text == NULL)
    return -ENOMEM;
  int rc = rp_secret_read_all(path, text, TOKENS_FILE_MAX, err, errlen);
  int lineno = 0;
  for (char *save = NULL, *line = rc == 0 ? strtok_r(text, "\n", &save) : NULL;
       line != NULL && rc == 0; line = strtok_r(NULL, "\n", &save)) {
    lineno++; /* strtok_r skips blank lines: numbers count non-blank ones */
    line[strcspn(line, "\r")] = '\0';
    rc = parse_line(a, line, path, lineno, err, errlen);
  }
  memset(text, 0, TOKENS_FILE_MAX);
  free(text);
  return rc;
}

static void table_clear(struct client_table *t) {
  if (t->clients != NULL)
    memset(t->clients, 0, t->n * sizeof(*t->clients));
  free(t->clients);
  t->clients = NULL;
  t->n = 0;
}

/* The clients of tokens_file and the shared token into t (empty on error). */
static int table_load(struct client_table *t, const char *tokens_file, const char *shared_token,
                      char *err, size_t errlen) {
  int rc = 0;
  if (tokens_file != NULL && tokens_file[0] != '\0')
    rc = load_file(t, tokens_file, err, errlen);
  if (rc == 0 && shared_token != NULL && shared_token[0] != '\0')
    rc =
        add_client(t, "shared",
                   RP_ROLE_READ | RP_ROLE_RESERVE | RP_ROLE_FLAG | RP_ROLE_OVERRIDE | RP_ROLE_ADMIN,
                   false, shared_token);
  if (rc != 0)
    table_clear(t);
  return rc;
}

int rp_auth_load(const char *tokens_file, const char *shared_token, struct rp_auth **out, char *err,
                 size_t errlen) {
  struct rp_auth *a = calloc(1, sizeof(*a));
  if (a == NULL)
    return -ENOMEM;
  int rc = table_load(&a->t, tokens_file, shared_token, err, errlen);
  if (rc != 0) {
    free(a);
    return rc;
  }
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  rc = pthread_rwlock_init(&a->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  if (rc != 0) {
    snprintf(err, errlen, "the clients' lock: %s", strerror(rc));
    table_clear(&a->t);
    free(a);
    return -rc;
  }
  *out = a;
  return 0;
}

int rp_auth_reload(struct rp_auth *a, const char *tokens_file, const char *shared_token,
                   size_t *clients, char *err, size_t errlen) {
  struct client_table fresh = {0};
  int rc = table_load(&fresh, tokens_file, shared_token, err, errlen);
  if (rc != 0)
    return rc;
  pthread_rwlock_wrlock(&a->lock);
  struct client_table old = a->t;
  a->t = fresh;
  pthread_rwlock_unlock(&a->lock);
  table_clear(&old);
  *clients = fresh.n;
  return 0;
}

void rp_auth_free(struct rp_auth *a) {
  if (a == NULL)
    return;
  table_clear(&a->t);
  pthread_rwlock_destroy(&a->lock);
  free(a);
}

bool rp_auth_enabled(struct rp_auth *a) {
  if (a == NULL)
    return false;
  pthread_rwlock_rdlock(&a->lock);
  bool any = a->t.n > 0;
  pthread_rwlock_unlock(&a->lock);
  return any;
}

/* The client's name and roles into out, never its secret. */
static void copy_out(const struct rp_client *c, struct rp_client *out) {
  memset(out, 0, sizeof(*out));
  snprintf(out->name, sizeof(out->name), "%s", c->name);
  out->roles = c->roles;
  out->by_cert = c->by_cert;
}

bool rp_auth_by_token(struct rp_auth *a, const char *token, struct rp_client *out) {
  if (a == NULL)
    return false;
  const struct rp_client *found = NULL;
  pthread_rwlock_rdlock(&a->lock);
  for (size_t i = 0; i < a->t.n; i++) /* no early exit: every token compared */
    if (!a->t.clients[i].by_cert && rp_secret_equal(token, a->t.clients[i].secret) && found == NULL)
      found = &a->t.clients[i];
  if (found != NULL)
    copy_out(found, out);
  pthread_rwlock_unlock(&a->lock);
  return found != NULL;
}

bool rp_auth_by_cert(struct rp_auth *a, const char *cn, struct rp_client *out) {
  if (a == NULL)
    return false;
  bool found = false;
  pthread_rwlock_rdlock(&a->lock);
  for (size_t i = 0; i < a->t.n && !found; i++)
    if (a->t.clients[i].by_cert && strcmp(cn, a->t.clients[i].secret) == 0) {
      copy_out(&a->t.clients[i], out);
      found = true;
    }
  pthread_rwlock_unlock(&a->lock);
  return found;
}

bool rp_auth_has(const struct rp_client *c, enum rp_role role) {
  return c != NULL && ((c->roles & (unsigned)role) != 0 || (c->roles & RP_ROLE_ADMIN) != 0);
}
