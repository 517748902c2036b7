/* Text helpers shared by the two halves of the IPMI parser (ipmi_parse.c,
 * the line and DCMI parsers; ipmi_classify.c, the name classifier): spans
 * of the caller's buffer, and the one error format. Internal to agent/ipmi/;
 * static inline, so either file links alone into the tests and fuzzers. */
#ifndef RP_AGENT_IPMI_TEXT_H
#define RP_AGENT_IPMI_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* (pointer, length) into the caller's buffer; not NUL-terminated. */
struct span {
  const char *p;
  size_t n;
};

static inline int lower(int c) { return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c; }

static inline bool is_digit(int c) { return c >= '0' && c <= '9'; }

static inline bool is_blank(int c) { return c == ' ' || c == '\t'; }

static inline struct span trim(struct span s) {
  while (s.n > 0 && is_blank((unsigned char)s.p[0])) {
    s.p++;
    s.n--;
  }
  while (s.n > 0 && is_blank((unsigned char)s.p[s.n - 1]))
    s.n--;
  return s;
}

/* Copy a span into dst[0..size), cut to fit, always NUL-terminated. */
static inline void copy_span(char *dst, size_t size, struct span s) {
  size_t n = s.n < size - 1 ? s.n : size - 1;

  memcpy(dst, s.p, n);
  dst[n] = '\0';
}

/* Write "line N: why: \"text\"" into err, with the text cut to 48 bytes
 * and anything unprintable shown as '?'. lineno 0 omits the line part. */
static inline void set_err(char *err, size_t errlen, unsigned lineno, const char *why,
                           const char *text, size_t tlen) {
  char snip[56];
  size_t i, n = tlen < 48 ? tlen : 48;

  if (err == NULL || errlen == 0)
    return;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)text[i];
    snip[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
  }
  snip[n] = '\0';
  if (lineno > 0)
    snprintf(err, errlen, "line %u: %s: \"%s%s\"", lineno, why, snip, tlen > n ? "..." : "");
  else
    snprintf(err, errlen, "%s: \"%s%s\"", why, snip, tlen > n ? "..." : "");
}

#endif
