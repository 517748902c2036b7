/* HTTPS files and client-certificate identity (see tls.h). */
#include "tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/secret.h"

#define PEM_MAX (256 * 1024)

/* Reads a PEM file; `secret` applies the 0640 rule of secret files. */
static int read_pem(const char *path, bool secret, char **out, char *err, size_t errlen) {
  *out = NULL;
  if (path == NULL || path[0] == '\0')
    return 0;
  char *buf = calloc(1, PEM_MAX);
  if (buf == NULL)
    return -ENOMEM;
  int rc = 0;
  if (secret) {
    rc = rp_secret_read_all(path, buf, PEM_MAX, err, errlen);
  } else {
    FILE *f = fopen(path, "r");
    if (f == NULL) {
      rc = -errno;
      snprintf(err, errlen, "%s: %s", path, strerror(errno));
    } else {
      size_t n = fread(buf, 1, PEM_MAX - 1, f);
      fclose(f);
      if (n == 0) {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: empty", path);
      }
    }
  }
  if (rc == 0 && strstr(buf, "-----BEGIN") == NULL) {
    rc = -EINVAL;
    snprintf(err, errlen, "%s: not a PEM file", path);
  }
  if (rc != 0) {
    memset(buf, 0, PEM_MAX);
    free(buf);
    return rc;
  }
  *out = buf;
  return 0;
}

int rp_tls_files_load(const char *cert, const char *key, const char *client_ca,
                      struct rp_tls_files *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  int rc = read_pem(cert, false, &out->cert, err, errlen);
  if (rc == 0)
    rc = read_pem(key, true, &out->key, err, errlen);
  if (rc == 0)
    rc = read_pem(client_ca, false, &out->client_ca, err, errlen);
  if (rc != 0)
    rp_tls_files_free(out);
  return rc;
}

void rp_tls_files_free(struct rp_tls_files *f) {
  if (f->key != NULL)
    memset(f->key, 0, strlen(f->key));
  free(f->cert);
  free(f->key);
  free(f->client_ca);
  memset(f, 0, sizeof(*f));
}

bool rp_tls_client_cn(struct MHD_Connection *conn, char *cn, size_t len) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if (ci == NULL || ci->tls_session == NULL)
    return false;
  gnutls_session_t session = (gnutls_session_t)ci->tls_session;
  unsigned status = 1;
  if (gnutls_certificate_verify_peers2(session, &status) != 0 || status != 0)
    return false;
  unsigned n = 0;
  const gnutls_datum_t *chain = gnutls_certificate_get_peers(session, &n);
  if (chain == NULL || n == 0)
    return false;
  gnutls_x509_crt_t crt;
  if (gnutls_x509_crt_init(&crt) != 0)
    return false;
  bool ok = false;
  size_t size = len;
  if (gnutls_x509_crt_import(crt, &chain[0], GNUTLS_X509_FMT_DER) == 0 &&
      gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) == 0)
    ok = cn[0] != '\0';
  gnutls_x509_crt_deinit(crt);
  return ok;
}
