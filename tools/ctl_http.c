/* rackpulsectl's HTTP side (see ctl_common.h): requests to the aggregator
 * over libcurl (HTTPS verified against --cacert, optionally with a client
 * certificate), its answers, the bearer token, and the deploy fields every
 * request carries (flags, else $RACKPULSE_*, else the CI's variables). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl_common.h"
#include "rackpulse/secret.h"

static struct { const char *cacert, *cert, *key; } tls;

void ctl_tls_init(const struct args *a) {
  tls.cacert = a->cacert ? a->cacert : getenv("RACKPULSE_CACERT");
  tls.cert = a->cert;
  tls.key = a->key;
}

void ctl_tls_options(CURL *curl) {
  /* HTTPS is always verified (peer and host name); --cacert names the CA
   * when it is not in the system's store. */
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  if (tls.cacert != NULL && *tls.cacert != '\0')
    curl_easy_setopt(curl, CURLOPT_CAINFO, tls.cacert);
  if (tls.cert != NULL)
    curl_easy_setopt(curl, CURLOPT_SSLCERT, tls.cert);
  if (tls.key != NULL)
    curl_easy_setopt(curl, CURLOPT_SSLKEY, tls.key);
}

struct buffer {
  char *data;
  size_t len, max; /* max 0: 8 MiB */
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx) {
  struct buffer *b = ctx;
  size_t add = size * n;
  if (b->len + add > (b->max ? b->max : (8u << 20)))
    return 0; /* refuse answers over 8 MiB (an audit export: 1 GiB) */
  char *grown = realloc(b->data, b->len + add + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + b->len, p, add);
  b->data = grown;
  b->len += add;
  b->data[b->len] = '\0';
  return add;
}

/* One request. Returns the parsed JSON answer (or NULL, with a message on
 * stderr) and the HTTP status in *status. `body` (may be NULL) is sent as
 * JSON; `token` (may be NULL) as a bearer token. */
json_t *ctl_call(const char *method, const char *base, const char *path, const json_t *body,
                 const char *token, long *status) {
  char url[2048];
  snprintf(url, sizeof(url), "%s%s", base, path);
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return NULL;
  struct buffer answer = {0};
  char curl_err[CURL_ERROR_SIZE] = "", auth[512];
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
  if (token != NULL && token[0] != '\0') {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
    memset(auth, 0, sizeof(auth));
  }
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (text != NULL)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  ctl_tls_options(curl);
  CURLcode rc = curl_easy_perform(curl);
  json_t *j = NULL;
  if (rc != CURLE_OK) {
    fprintf(stderr, "rackpulsectl: %s %s: %s\n", method, url,
            curl_err[0] ? curl_err : curl_easy_strerror(rc));
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    json_error_t jerr;
    j = json_loadb(answer.data ? answer.data : "", answer.len, 0, &jerr);
    if (j == NULL)
      fprintf(stderr, "rackpulsectl: %s: HTTP %ld, answer is not JSON: %s\n", url, *status,
              jerr.text);
  }
  curl_slist_free_all(headers);
  free(text);
  free(answer.data);
  curl_easy_cleanup(curl);
  return j;
}

void ctl_print_json(const json_t *j) {
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
  fputc('\n', stdout);
}

/* Prints the API's error and returns EXIT_ERROR, or 0 when status is 2xx. */
int ctl_check_status(const char *what, long status, const json_t *j) {
  if (status >= 200 && status < 300)
    return 0;
  const char *e = json_string_value(json_object_get(j, "error"));
  fprintf(stderr, "rackpulsectl: %s: HTTP %ld: %s\n", what, status, e ? e : "failed");
  return EXIT_ERROR;
}

/* Appends "&key=value" (URL-escaped) when value is set. */
void ctl_add_query(char *path, size_t len, const char *key, const char *value) {
  if (value == NULL)
    return;
  char *esc = curl_easy_escape(NULL, value, 0);
  size_t used = strlen(path);
  snprintf(path + used, len - used, "%c%s=%s", strchr(path, '?') ? '&' : '?', key, esc);
  curl_free(esc);
}

/* The bearer token for changes; exits the command with an error if absent. */
bool ctl_read_token(const struct args *a, char *token, size_t len) {
  const char *file = a->token_file ? a->token_file : getenv("RACKPULSE_TOKEN_FILE");
  if ((file == NULL || *file == '\0') && a->cert != NULL) {
    token[0] = '\0'; /* a client certificate stands for the token */
    return true;
  }
  if (file == NULL || *file == '\0') {
    fprintf(stderr, "rackpulsectl: changes need a token (--token-file F or "
                    "$RACKPULSE_TOKEN_FILE) or a client certificate (--cert F --key F)\n");
    return false;
  }
  char err[512];
  if (rp_secret_read_file(file, token, len, err, sizeof(err)) != 0) {
    fprintf(stderr, "rackpulsectl: token: %s\n", err);
    return false;
  }
  return true;
}

/* GET PATH and print it (JSON, or `human` when given and not --json). */
int ctl_show(const struct args *a, const char *what, const char *path,
             void (*human)(const json_t *)) {
  long status = 0;
  json_t *j = ctl_call("GET", a->base, path, NULL, NULL, &status);
  if (j == NULL)
    return EXIT_ERROR;
  int rc = ctl_check_status(what, status, j);
  if (rc == 0) {
    if (a->json || human == NULL)
      ctl_print_json(j);
    else
      human(j);
  }
  json_decref(j);
  return rc;
}

struct header_pick {
  const char *want;
  char *out;
  size_t len;
};

static size_t on_header(char *p, size_t size, size_t n, void *ctx) {
  struct header_pick *h = ctx;
  size_t len = size * n, wl = h->want ? strlen(h->want) : 0;
  if (wl && len > wl + 1 && strncasecmp(p, h->want, wl) == 0 && p[wl] == ':') {
    size_t off = wl + 1;
    while (off < len && p[off] == ' ')
      off++;
    size_t v = len - off;
    while (v > 0 && (p[off + v - 1] == '\r' || p[off + v - 1] == '\n'))
      v--;
    snprintf(h->out, h->len, "%.*s", (int)v, p + off);
  }
  return len;
}

char *ctl_get_text(const char *base, const char *path, size_t *len, long *status, const char *want,
                   char *hdr, size_t hdrlen) {
  char url[2048];
  snprintf(url, sizeof(url), "%s%s", base, path);
  CURL *curl = curl_easy_init();
  if (curl == NULL)
    return NULL;
  struct buffer answer = {.max = 1u << 30};
  struct header_pick pick = {want, hdr, hdrlen};
  if (hdr != NULL && hdrlen > 0)
    hdr[0] = '\0';
  char curl_err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &pick);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  ctl_tls_options(curl);
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    fprintf(stderr, "rackpulsectl: GET %s: %s\n", url,
            curl_err[0] ? curl_err : curl_easy_strerror(rc));
    free(answer.data);
    answer.data = NULL;
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status);
    *len = answer.len;
  }
  curl_easy_cleanup(curl);
  return answer.data;
}

json_t *ctl_change(const struct args *a, const char *method, const char *path, const json_t *body,
                   long *status) {
  char token[256];
  if (!ctl_read_token(a, token, sizeof(token)))
    return NULL;
  /* The deploy fields: in the body of a POST, the query of a DELETE. */
  char full[1024];
  snprintf(full, sizeof(full), "%s", path);
  json_t *sent = body ? json_deep_copy(body) : NULL;
  if (sent != NULL)
    ctl_deploy_body(a, sent);
  else
    ctl_deploy_query(a, full, sizeof(full));
  json_t *j = ctl_call(method, a->base, full, sent, token, status);
  json_decref(sent);
  memset(token, 0, sizeof(token));
  return j;
}

/* A field: the flag, else $RACKPULSE_<NAME>, else the first CI variable
 * that is set. */
static const char *field(const char *flag, const char *env, const char *const *ci) {
  if (flag != NULL)
    return flag;
  const char *v = getenv(env);
  if (v != NULL && *v != '\0')
    return v;
  for (; ci != NULL && *ci != NULL; ci++)
    if ((v = getenv(*ci)) != NULL && *v != '\0')
      return v;
  return NULL;
}

/* The four fields. The pipeline URL of GitHub Actions is built from three
 * variables (into buf). */
static void deploy_fields(const struct args *a, const char *out[4], char *buf, size_t len) {
  static const char *const id_ci[] = {"GITHUB_RUN_ID", "CI_PIPELINE_ID", "BUILD_TAG", NULL};
  static const char *const commit_ci[] = {"GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT", NULL};
  static const char *const url_ci[] = {"CI_PIPELINE_URL", "BUILD_URL", NULL};
  static const char *const who_ci[] = {"GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILD_USER_ID", NULL};
  out[0] = field(a->deploy_id, "RACKPULSE_DEPLOY_ID", id_ci);
  out[1] = field(a->commit, "RACKPULSE_COMMIT", commit_ci);
  out[2] = field(a->pipeline_url, "RACKPULSE_PIPELINE_URL", url_ci);
  const char *gh = getenv("GITHUB_SERVER_URL"), *repo = getenv("GITHUB_REPOSITORY"),
             *run = getenv("GITHUB_RUN_ID");
  if (out[2] == NULL && gh && repo && run) {
    snprintf(buf, len, "%s/%s/actions/runs/%s", gh, repo, run);
    out[2] = buf;
  }
  out[3] = field(a->requester, "RACKPULSE_REQUESTER", who_ci);
}

static const char *const deploy_keys[] = {"deploy_id", "commit", "pipeline_url", "requester"};

void ctl_deploy_query(const struct args *a, char *path, size_t len) {
  const char *v[4];
  char buf[1024];
  deploy_fields(a, v, buf, sizeof(buf));
  for (int i = 0; i < 4; i++)
    ctl_add_query(path, len, deploy_keys[i], v[i]);
}

void ctl_deploy_body(const struct args *a, json_t *body) {
  const char *v[4];
  char buf[1024];
  deploy_fields(a, v, buf, sizeof(buf));
  for (int i = 0; i < 4; i++)
    if (v[i] != NULL)
      json_object_set_new(body, deploy_keys[i], json_string(v[i]));
}
