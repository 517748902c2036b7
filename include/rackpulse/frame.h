/* Frames on the wire (proto/rackpulse.proto): decoding with validation, the
 * scaled-integer value encoding, and a JSON rendering for humans and for
 * tools (`rackpulse-agent --once`, `rackpulsectl tail --json`). */
#ifndef RACKPULSE_FRAME_H
#define RACKPULSE_FRAME_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rackpulse.pb-c.h"

typedef Rackpulse__V1__Frame rp_frame;

#define RP_FRAME_SCHEMA_VERSION 1
#define RP_FRAME_MAX_BYTES (4u << 20) /* larger messages are refused */
#define RP_FRAME_MAX_SERIES 65536     /* dictionary entries per frame */
#define RP_FRAME_MAX_NAME 128         /* names, units, label keys and values */
#define RP_ID_MAX 64                  /* agent and rack ids */
#define RP_FRAME_MAX_LABELS 16        /* labels per series */
/* name, labels ("{k=v,...}") and "@device" together: the series key that
 * consumers index by must stay well inside LMDB's 511-byte key limit. */
#define RP_SERIES_KEY_MAX 400

/* Decodes and validates a frame. Returns 0 and *out (free it with
 * rp_frame_free()), or a negative errno with err saying what is wrong:
 * -EMSGSIZE (too large), -EBADMSG (not a protobuf Frame), -EPROTO (decodes but
 * breaks a rule: schema version, empty ids, arrays of unequal length, over-long
 * strings, names and ids that are not UTF-8, negative times). Free text
 * (status details, device errors, the agent version) may hold any bytes:
 * copy it with rp_utf8_copy(). */
int rp_frame_decode(const void *buf, size_t len, rp_frame **out, char *err, size_t errlen);
void rp_frame_free(rp_frame *frame);
/* As rp_frame_decode(), but a frame that carries a dictionary named by a
 * dictionary_hash is decoded without that dictionary (n_dictionary 0, the
 * hash kept) and *dict_left_out is set: decoding 1 000 series costs far more
 * than the samples. The caller needs the message again, for
 * rp_frame_decode(), when it does not store that dictionary already; a
 * dictionary left out is neither validated nor checked against its hash
 * (lib/frame_lazy.c). */
int rp_frame_decode_lazy(const void *buf, size_t len, rp_frame **out, bool *dict_left_out,
                         char *err, size_t errlen);

/* Copies the C string src into dst[0..size) as well-formed UTF-8, always
 * NUL-terminated: a byte that does not belong to a well-formed character
 * becomes '?', and a cut never splits a character. Returns the length
 * copied. */
size_t rp_utf8_copy(char *dst, size_t size, const char *src);

/* Scales `v` to an integer with `decimals` decimal digits (value × 10^d,
 * rounded to nearest). Returns 0, or -ERANGE when v is not finite or does
 * not fit. */
int rp_value_scale(double v, int decimals, int64_t *out);
double rp_value_unscale(int64_t scaled, int decimals);

/* The wire decimals a value multiplied by `scale` needs: the fewest digits
 * d (0..9) for which |scale| is a d-digit decimal to within 1e-9 (0.1 -> 1,
 * 0.025 -> 3, 10 -> 0, 1.23456789 -> 8; 9 at most). */
int rp_scale_decimals(double scale);

/* The series definition with `id` in the frame's dictionary, or NULL. */
const Rackpulse__V1__SeriesDef *rp_frame_find_series(const rp_frame *f, uint32_t id);

/* Renders a frame as a JSON object (new reference, caller decrefs). Samples
 * are rendered with their names when `dict` (a dictionary, possibly from an
 * earlier frame; may be NULL) knows their ids. */
json_t *rp_frame_to_json(const rp_frame *f, const rp_frame *dict);

/* Dictionary identity. A dictionary is named by a 64-bit hash of its
 * content, so that a consumer never decodes samples with another mapping
 * than the one they were taken with (a counter restarts with the agent).
 * Canonical form: the series in ascending id order; for each, the id, the
 * decimals, the name, unit and device, the label count and each label's key
 * and value in the order given (the order is part of the series' identity),
 * integers as 4 little-endian bytes and strings as a 4-byte length and the
 * bytes. The hash is FNV-1a 64 over those bytes, then a 64-bit finalizer
 * (MurmurHash3's fmix64) to spread the bits; 0 is never returned (it means
 * "no hash" on the wire). Usage:
 *   uint64_t h = RP_DICT_HASH_INIT;
 *   for each series in id order:
 *     h = rp_dict_hash_series(h, id, name, unit, device, decimals, nlabels);
 *     for each label: h = rp_dict_hash_label(h, key, value);
 *   hash = rp_dict_hash_final(h); */
#define RP_DICT_HASH_INIT 0xcbf29ce484222325ull /* RP_HASH_INIT: the FNV-1a 64 offset basis */
uint64_t rp_dict_hash_series(uint64_t h, uint32_t id, const char *name, const char *unit,
                             const char *device, int decimals, size_t nlabels);
uint64_t rp_dict_hash_label(uint64_t h, const char *key, const char *value);
uint64_t rp_dict_hash_final(uint64_t h);

/* The content hash of f's dictionary (f->dictionary, in any order). Returns
 * 0 and *out, or -ENOMEM. */
int rp_frame_dictionary_hash(const rp_frame *f, uint64_t *out);

/* The identity consumers give the dictionary of a frame from an agent older
 * than dictionary_hash (dictionary_hash == 0): derived from its
 * dictionary_version, so it has that field's weakness (it restarts with
 * the agent). Never 0. */
uint64_t rp_dict_legacy_id(uint32_t dictionary_version);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t rp_now_ms(void);

#endif
