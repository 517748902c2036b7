/* The incident-map page's static files (aggregator/web/), embedded in the
 * binary by cmake/embed_web.cmake, looked up by URL path. The page reads
 * the floor from GET /v1/floor (floor.c) and a rack's detail from
 * the ordinary API; http_api.c serves these with a strict
 * Content-Security-Policy (scripts and styles from this origin only, no
 * inline code), so nothing else can run in the page. */
#include <stddef.h>
#include <string.h>

#include "aggregator.h"

extern const unsigned char rp_web_index_html[], rp_web_floor_js[], rp_web_floor_css[];
extern const size_t rp_web_index_html_len, rp_web_floor_js_len, rp_web_floor_css_len;

const char rp_web_csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

bool rp_web_asset(const char *path, const unsigned char **data, size_t *len, const char **type) {
  if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
    *data = rp_web_index_html;
    *len = rp_web_index_html_len;
    *type = "text/html; charset=utf-8";
  } else if (strcmp(path, "/floor.js") == 0) {
    *data = rp_web_floor_js;
    *len = rp_web_floor_js_len;
    *type = "text/javascript; charset=utf-8";
  } else if (strcmp(path, "/floor.css") == 0) {
    *data = rp_web_floor_css;
    *len = rp_web_floor_css_len;
    *type = "text/css; charset=utf-8";
  } else {
    return false;
  }
  return true;
}
