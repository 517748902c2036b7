/* HTTPS for the API (libmicrohttpd over GnuTLS): the certificate, key and
 * client CA read into memory for the daemon's options, and the verified
 * common name of a client certificate. */
#ifndef RACKPULSE_TLS_H
#define RACKPULSE_TLS_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

struct rp_tls_files {
  char *cert, *key, *client_ca; /* PEM text; NULL when not configured */
};

/* Reads the files (key: 0640 or tighter). Returns 0 or a negative errno
 * with err naming the file. rp_tls_files_free wipes and frees them. */
int rp_tls_files_load(const char *cert, const char *key, const char *client_ca,
                      struct rp_tls_files *out, char *err, size_t errlen);
void rp_tls_files_free(struct rp_tls_files *f);

/* The common name of the client certificate of conn when the TLS session
 * carries one that verifies against the client CA. Returns true with cn
 * set, false otherwise. */
bool rp_tls_client_cn(struct MHD_Connection *conn, char *cn, size_t len);

#endif
