/* Who is calling the API, and what they may do. Clients are named and
 * hold roles:
 *
 *   read      nothing beyond what anyone may read (a named reader)
 *   reserve   reservations (create, extend, release) and canaries
 *   flag      thermal flags (set, clear)
 *   override  allow a denied deploy on a rack for a bounded time
 *   admin     everything: the roles above, device retirement, and a gate
 *             asked under a class looser than the rack's own
 *
 * from http.tokens_file, one client a line (blank lines and # comments
 * skipped; the file must be mode 0640 or tighter):
 *
 *   NAME  ROLE[,ROLE...]  TOKEN            a bearer token
 *   NAME  ROLE[,ROLE...]  cert:CN          a TLS client certificate whose
 *                                          subject's common name is CN
 *
 * The single shared token of http.token_file keeps working as the client
 * "shared" with every role. Tokens are compared in constant time and never
 * logged. Shared between HTTP threads: look-ups copy the client out under a
 * read lock, and a reload (SIGHUP) swaps the whole table at once, so a
 * request sees either the old clients or the new ones. */
#ifndef RACKPULSE_AUTH_H
#define RACKPULSE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

enum rp_role {
  RP_ROLE_READ = 1,
  RP_ROLE_RESERVE = 2,
  RP_ROLE_FLAG = 4,
  RP_ROLE_OVERRIDE = 8,
  RP_ROLE_ADMIN = 16,
};

#define RP_CLIENT_NAME_MAX 64

struct rp_client {
  char name[RP_CLIENT_NAME_MAX + 1];
  unsigned roles;
  bool by_cert;     /* authenticates with a client certificate, not a token */
  char secret[256]; /* the token, or the certificate's common name */
};

struct rp_auth;

/* Loads `tokens_file` (NULL or "": none) and adds `shared_token` (NULL or
 * "": none) as client "shared". Returns 0 or a negative errno with err
 * naming file:line (never a token). *out is freed with rp_auth_free. */
int rp_auth_load(const char *tokens_file, const char *shared_token, struct rp_auth **out, char *err,
                 size_t errlen);
/* Loads the same again and, only when that succeeds, puts the new clients
 * in force (their count into *clients); on an error the clients in force
 * stay and err names file:line. */
int rp_auth_reload(struct rp_auth *a, const char *tokens_file, const char *shared_token,
                   size_t *clients, char *err, size_t errlen);
void rp_auth_free(struct rp_auth *a);
/* True when any client is configured (else changes are refused). */
bool rp_auth_enabled(struct rp_auth *a);
/* True, with the client's name and roles (never its secret) in *out, when a
 * client holds bearer token `token`. Every token is compared, in constant
 * time. */
bool rp_auth_by_token(struct rp_auth *a, const char *token, struct rp_client *out);
/* The same for a client certificate whose common name is `cn`. */
bool rp_auth_by_cert(struct rp_auth *a, const char *cn, struct rp_client *out);
/* True when c holds `role` (admin holds them all). */
bool rp_auth_has(const struct rp_client *c, enum rp_role role);
const char *rp_role_name(enum rp_role role);
/* Parses "reserve,flag" into a role mask; 0 on an unknown role. */
unsigned rp_auth_parse_roles(const char *list);

#endif
