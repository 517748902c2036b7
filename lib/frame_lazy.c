/* Decoding a frame without its dictionary (rp_frame_decode_lazy, see
 * frame.h). A frame that carries its dictionary is mostly dictionary: 1 000
 * series make some 50 kB and about 7 000 allocations to unpack, against a
 * few for its samples. A consumer that already stores the dictionary named
 * by the frame's dictionary_hash needs none of it, so the frame is unpacked
 * from a copy of its bytes without the dictionary's fields (Frame field 8),
 * found by walking the top level of the protobuf wire format. The consumer
 * keeps the message and decodes it whole (rp_frame_decode) only when the
 * dictionary turns out not to be stored. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/frame.h"

enum {
  FIELD_DICTIONARY = 8,      /* repeated SeriesDef dictionary = 8 */
  FIELD_DICTIONARY_HASH = 15 /* fixed64 dictionary_hash = 15 */
};

/* Reads a varint at *p (before end). Returns false when it is cut short or
 * longer than 10 bytes. */
static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t byte = *(*p)++;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

/* One top-level field: its number, and its bytes [start, end) tag included.
 * Returns false on a wire format this walk does not follow (groups, cut
 * short): the caller then leaves the decoding to protobuf-c. */
struct field {
  uint32_t number;
  const uint8_t *start, *end;
  uint64_t fixed64; /* the value, when the wire type is 64-bit */
};

static bool next_field(const uint8_t **p, const uint8_t *end, struct field *f) {
  uint64_t tag, n;
  f->start = *p;
  f->fixed64 = 0;
  if (!read_varint(p, end, &tag) || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
    return false;
  f->number = (uint32_t)(tag >> 3);
  switch (tag & 7) {
  case 0: /* varint */
    if (!read_varint(p, end, &n))
      return false;
    break;
  case 1: /* 64-bit */
    if (end - *p < 8)
      return false;
    for (int i = 7; i >= 0; i--) /* little-endian on the wire */
      f->fixed64 = f->fixed64 << 8 | (*p)[i];
    *p += 8;
    break;
  case 2: /* length-delimited */
    if (!read_varint(p, end, &n) || n > (uint64_t)(end - *p))
      return false;
    *p += n;
    break;
  case 5: /* 32-bit */
    if (end - *p < 4)
      return false;
    *p += 4;
    break;
  default: /* groups: not in rackpulse.proto */ return false;
  }
  f->end = *p;
  return true;
}

/* Whether the frame in buf carries a dictionary under a dictionary_hash (a
 * dictionary named by a legacy version is always decoded). */
static bool has_named_dictionary(const uint8_t *buf, size_t len) {
  const uint8_t *p = buf, *end = buf + len;
  bool dictionary = false;
  uint64_t hash = 0;
  struct field f;
  while (p < end) {
    if (!next_field(&p, end, &f))
      return false;
    if (f.number == FIELD_DICTIONARY)
      dictionary = true;
    else if (f.number == FIELD_DICTIONARY_HASH && f.end - f.start == 9)
      hash = f.fixed64; /* the last one wins, as protobuf-c does */
  }
  return dictionary && hash != 0;
}

/* Copies buf without its dictionary fields into out (len bytes at most);
 * returns the length copied. */
static size_t copy_without_dictionary(const uint8_t *buf, size_t len, uint8_t *out) {
  const uint8_t *p = buf, *end = buf + len;
  size_t n = 0;
  struct field f;
  while (p < end && next_field(&p, end, &f)) {
    if (f.number == FIELD_DICTIONARY)
      continue;
    memcpy(out + n, f.start, (size_t)(f.end - f.start));
    n += (size_t)(f.end - f.start);
  }
  return n;
}

int rp_frame_decode_lazy(const void *buf, size_t len, rp_frame **out, bool *dict_left_out,
                         char *err, size_t errlen) {
  *dict_left_out = false;
  if (len > RP_FRAME_MAX_BYTES || !has_named_dictionary(buf, len))
    return rp_frame_decode(buf, len, out, err, errlen);
  uint8_t *copy = malloc(len);
  if (copy == NULL)
    return rp_frame_decode(buf, len, out, err, errlen);
  size_t n = copy_without_dictionary(buf, len, copy);
  int rc = rp_frame_decode(copy, n, out, err, errlen);
  free(copy);
  *dict_left_out = rc == 0;
  return rc;
}
