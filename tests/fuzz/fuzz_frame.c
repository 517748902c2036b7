/* Fuzzes frame decoding (lib/frame.c) as the aggregator and `rackpulsectl
 * tail` meet it on the topic: rp_frame_decode() on any bytes, then for a
 * frame that validates rp_frame_to_json() (alone and with itself as the
 * dictionary), serialised the way the CLI prints it, and
 * rp_frame_find_series() for every id a sample names. Checks the error
 * contract (return codes, message) and the limits validation promises.
 * The aggregator's lazy decoding (rp_frame_decode_lazy(), lib/frame_lazy.c:
 * its own walk of the wire format) gets the same bytes: the same error
 * contract, and when both decode, the same frame but for a dictionary it
 * says it left out.
 * Seeds: frames packed by tests/fuzz/corpus/make_frames.sh (protoc). */
#include <errno.h>

#include "fuzz_common.h"
#include "rackpulse/frame.h"

/* rp_frame_decode_lazy() on the bytes whole decoding gave `whole` (NULL:
 * they did not decode). */
static void check_lazy(const uint8_t *data, size_t size, const rp_frame *whole) {
  rp_frame *f = NULL;
  bool left_out = true;
  char err[256];
  err[0] = '\0';
  int rc = rp_frame_decode_lazy(data, size, &f, &left_out, err, sizeof(err));
  if (rc != 0) {
    FUZZ_ASSERT(rc == -EMSGSIZE || rc == -EBADMSG || rc == -EPROTO);
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && err[0] != '\0');
    FUZZ_ASSERT(!left_out);
    return;
  }
  FUZZ_ASSERT(f->schema_version == RP_FRAME_SCHEMA_VERSION && f->ts_ms >= 0);
  if (left_out)
    FUZZ_ASSERT(f->n_dictionary == 0 && f->dictionary_hash != 0);
  if (whole != NULL) {
    FUZZ_ASSERT(f->seq == whole->seq && f->ts_ms == whole->ts_ms);
    FUZZ_ASSERT(strcmp(f->agent_id, whole->agent_id) == 0 &&
                strcmp(f->rack_id, whole->rack_id) == 0);
    FUZZ_ASSERT(f->n_samples == whole->n_samples && f->n_statuses == whole->n_statuses);
    FUZZ_ASSERT(f->dictionary_hash == whole->dictionary_hash);
    FUZZ_ASSERT(left_out || f->n_dictionary == whole->n_dictionary);
  }
  rp_frame_free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rp_frame *f = NULL;
  char err[256];
  err[0] = '\0';
  int rc = rp_frame_decode(data, size, &f, err, sizeof(err));
  check_lazy(data, size, rc == 0 ? f : NULL);
  if (rc != 0) {
    FUZZ_ASSERT(rc == -EMSGSIZE || rc == -EBADMSG || rc == -EPROTO);
    FUZZ_ASSERT(fuzz_terminated(err, sizeof(err)) && err[0] != '\0');
    return 0;
  }
  FUZZ_ASSERT(f->schema_version == RP_FRAME_SCHEMA_VERSION);
  FUZZ_ASSERT(strlen(f->agent_id) <= RP_ID_MAX && strlen(f->rack_id) <= RP_ID_MAX);
  FUZZ_ASSERT(f->n_dictionary <= RP_FRAME_MAX_SERIES);
  FUZZ_ASSERT(f->ts_ms >= 0); /* consumers compute now - ts_ms */
  for (size_t i = 0; i < f->n_samples; i++) {
    const Rackpulse__V1__SampleBlock *b = f->samples[i];
    FUZZ_ASSERT(b->n_series == b->n_scaled && b->ts_ms >= 0);
    for (size_t j = 0; j < b->n_series && j < 64; j++)
      (void)rp_frame_find_series(f, b->series[j]);
  }
  for (int pass = 0; pass < 2; pass++) {
    /* Every frame that validates renders: `--once` and `tail --json` print
     * nothing at all for NULL. */
    json_t *j = rp_frame_to_json(f, pass ? f : NULL);
    FUZZ_ASSERT(j != NULL);
    char *text = json_dumps(j, JSON_COMPACT);
    FUZZ_ASSERT(text != NULL);
    free(text);
    json_decref(j);
  }
  rp_frame_free(f);
  return 0;
}
