/* libcurl, loaded when the first Redfish device is configured. Most rack
 * hosts have no Redfish BMC, and linking libcurl maps its whole stack
 * (OpenSSL's libssl, GnuTLS, p11-kit, LDAP, SSH, nghttp2, RTMP: about 4 MB
 * of resident pages, measured in BENCHMARKS.md) into every agent. So the
 * agent is not linked to it: rf__curl_load() dlopen()s it once, when a
 * configuration (at start, at a reload, or --check-config) first has a
 * Redfish device, and fills rf__curl with the calls the collector makes.
 * A host without it gets a configuration error naming the library, not a
 * device that silently never reads. The library stays loaded until exit.
 *
 * The pointers are called exactly as libcurl's functions would be; libcurl
 * is the same ABI its headers describe (SONAME libcurl.so.4, on Debian and
 * on RPM distributions alike). Loop thread only, like the collector. */
#include <dlfcn.h>
#include <stdio.h>

#include "redfish_internal.h"

#define RF_CURL_SONAME "libcurl.so.4"

struct rf_curl rf__curl;
static void *handle;

/* The POSIX way to store a dlsym() result in a function pointer. */
#define BIND(field, symbol)                                                         \
  do {                                                                              \
    *(void **)(&rf__curl.field) = dlsym(handle, symbol);                            \
    if (rf__curl.field == NULL) {                                                   \
      snprintf(err, errlen, "%s has no %s: %s", RF_CURL_SONAME, symbol, dlerror()); \
      goto fail;                                                                    \
    }                                                                               \
  } while (0)

int rf__curl_load(char *err, size_t errlen) {
  if (handle != NULL)
    return 0;
  if ((handle = dlopen(RF_CURL_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
    snprintf(err, errlen, "the Redfish collector needs libcurl, which cannot be loaded: %s",
             dlerror());
    return -1;
  }
  BIND(global_init, "curl_global_init");
  BIND(global_cleanup, "curl_global_cleanup");
  BIND(easy_init, "curl_easy_init");
  BIND(easy_cleanup, "curl_easy_cleanup");
  BIND(easy_setopt, "curl_easy_setopt");
  BIND(easy_getinfo, "curl_easy_getinfo");
  BIND(easy_strerror, "curl_easy_strerror");
  BIND(multi_init, "curl_multi_init");
  BIND(multi_cleanup, "curl_multi_cleanup");
  BIND(multi_setopt, "curl_multi_setopt");
  BIND(multi_add_handle, "curl_multi_add_handle");
  BIND(multi_remove_handle, "curl_multi_remove_handle");
  BIND(multi_assign, "curl_multi_assign");
  BIND(multi_socket_action, "curl_multi_socket_action");
  BIND(multi_info_read, "curl_multi_info_read");
  BIND(slist_append, "curl_slist_append");
  BIND(slist_free_all, "curl_slist_free_all");
  return 0;

fail:
  dlclose(handle);
  handle = NULL;
  return -1;
}
