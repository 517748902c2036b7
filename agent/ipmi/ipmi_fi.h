/* The in-process IPMI backend's state (ipmi_freeipmi.c: the session, the
 * job, DCMI; ipmi_fi_read.c: the SDR and the sensors), internal to those
 * two files. Worker-thread functions touch only their struct ipmi_fi. */
#ifndef RP_AGENT_IPMI_FI_H
#define RP_AGENT_IPMI_FI_H

#include <stdbool.h>
#include <stdint.h>

#include <freeipmi/freeipmi.h>

#include "ipmi_internal.h"

#define FI_SDR_TRIES 4 /* SDR reads when the reservation is cancelled */

/* One sensor of the SDR, parsed once when the SDR is read. */
struct fi_sensor {
  uint8_t rec[IPMI_SDR_MAX_RECORD_LENGTH];
  unsigned len;
  uint8_t type; /* full, compact or event-only record */
  bool threshold;
  char name[IPMI_NAME_MAX];
  char entity[IPMI_ENTITY_MAX];
  int num;
  char unit[IPMI_UNIT_MAX]; /* ipmitool's text ("degrees C"), "" when none */
  /* How it is read. A sensor of the BMC itself (slave address 20h, LUN 0)
   * is read with one Get Sensor Reading and no second look at its record,
   * which ipmi_sensor_read() parses again at every reading: a linear
   * analog threshold sensor converted by ipmi_sensor_decode_value(), a
   * discrete one as its state bits. Any other goes through
   * ipmi_sensor_read() (bridged, non-linear, ...). */
  enum { FI_READ_GENERAL, FI_READ_THRESHOLD, FI_READ_DISCRETE } how;
  /* Read at each scrape: a reading of it can reach a frame
   * (ipmi__may_publish()). A GPU server lists many sensors no series maps
   * (discrete states, voltages): each costs a request a scrape. */
  bool wanted;
  int8_t r_exp, b_exp;
  int16_t m, b;
  uint8_t linearization, format;
};

enum fi_dcmi {
  DCMI_SKIPPED,
  DCMI_READ,
  DCMI_OFF,
  DCMI_UNSUPPORTED,
  DCMI_DENIED,
  DCMI_TIMEOUT,
  DCMI_FAILED
};

struct ipmi_fi {
  uv_work_t work;
  struct ipmi_bmc *b;
  bool detached; /* the BMC is gone: the job frees this when it ends */
  ipmi_ctx_t ctx;
  bool open;
  ipmi_sdr_ctx_t sdr;
  ipmi_sensor_read_ctx_t sread; /* created on first use (read_general()) */
  fiid_obj_t reading;           /* Get Sensor Reading (threshold) response, reused */
  fiid_obj_t discrete;          /* Get Sensor Reading (any) response, reused */
  struct fi_sensor *sensors;
  size_t nsensors, nwanted; /* nwanted: sensors[].wanted; none: all are read */
  bool have_sig;
  uint16_t count;
  uint32_t add_ts, erase_ts;
  int64_t sdr_checked_ms;
  char hostport[300];
  char password[IPMI_2_0_MAX_PASSWORD_LENGTH + 2];
  char cache_path[512];
  /* This job: what to do, */
  bool check_sdr, read_dcmi;
  int64_t now_ms;
  /* and what came of it. */
  int rc; /* 0, or the scrape failed with error[] */
  char error[320];
  struct ipmi_reading *out;
  size_t nout;
  enum fi_dcmi dcmi;
  struct ipmi_dcmi_power power;
  char note[160];      /* DCMI or SDR message for the loop thread's log */
  bool sdr_reread;     /* the SDR was read (again) */
  bool session_opened; /* a session was opened */
  uint64_t timeouts, sessions;
  unsigned interval_ms; /* the BMC's scrape interval */
  int64_t last_ok_ms;   /* end of the last scrape that worked: the session's idle time */
  bool reopen;          /* idle for longer than its timeout: open a new one */
  unsigned seed;        /* rand_r: SDR retry pauses of BMCs apart */
};

/* ipmi_freeipmi.c, for the worker. */
bool fi__is_timeout(int errnum);
/* A failed command: fi->error in the ipmitool backend's words, the session
 * closed; returns -EIO. */
int fi__fail(struct ipmi_fi *fi, const char *what);
void fi__session_close(struct ipmi_fi *fi);

/* ipmi_fi_read.c, for the worker. Compares the SDR repository's signature
 * with the SDR in memory and reads it again when it differs or was never
 * read; 0 or a negative errno with fi->error. */
int fi__sdr_check(struct ipmi_fi *fi);
/* Reads every sensor of the SDR into fi->out (allocated); 0 or a negative
 * errno with fi->error (the session failed, or no sensor has a reading). */
int fi__read_sensors(struct ipmi_fi *fi);

#endif
