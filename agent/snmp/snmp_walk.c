/* The SNMP collector's requests and answers: v3 engine-ID discovery, the
 * GET of the scalars, each table walked as a column group with GETBULK (or
 * GETNEXT, for v1, `bulk: false`, or an agent that refused GETBULK), and
 * the answers to them (tooBig halves the request, v1's noSuchName ends a
 * column, a walk ends when a column leaves its subtree). snmp__step()
 * decides what to send next or ends the scrape with snmp__finish(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rackpulse/log.h"
#include "snmp_internal.h"

static void oid_to_net(const struct snmp_oid *o, oid *out) {
  for (size_t i = 0; i < o->len; i++)
    out[i] = o->sub[i];
}

static bool oid_from_net(const oid *name, size_t len, struct snmp_oid *o) {
  if (len > SNMP_OID_MAX)
    return false;
  for (size_t i = 0; i < len; i++) {
    if (name[i] > UINT32_MAX)
      return false;
    o->sub[i] = (uint32_t)name[i];
  }
  o->len = (uint8_t)len;
  return true;
}

static void value_from_var(const netsnmp_variable_list *vb, struct snmp_value *v) {
  memset(v, 0, sizeof(*v));
  switch (vb->type) {
  case ASN_INTEGER:
    v->type = SNMP_V_INTEGER;
    v->i = *vb->val.integer;
    break;
  case ASN_GAUGE: /* also Unsigned32 */
    v->type = SNMP_V_GAUGE;
    v->u = (uint32_t)*vb->val.integer;
    break;
  case ASN_COUNTER:
    v->type = SNMP_V_COUNTER32;
    v->u = (uint32_t)*vb->val.integer;
    break;
  case ASN_TIMETICKS:
    v->type = SNMP_V_TIMETICKS;
    v->u = (uint32_t)*vb->val.integer;
    break;
  case ASN_COUNTER64:
    v->type = SNMP_V_COUNTER64;
    v->u = ((uint64_t)vb->val.counter64->high << 32) | (uint32_t)vb->val.counter64->low;
    break;
  case ASN_OCTET_STR: v->type = SNMP_V_STRING; break;
  case SNMP_NOSUCHOBJECT: v->type = SNMP_V_NOSUCHOBJECT; break;
  case SNMP_NOSUCHINSTANCE: v->type = SNMP_V_NOSUCHINSTANCE; break;
  case SNMP_ENDOFMIBVIEW: v->type = SNMP_V_ENDOFMIBVIEW; break;
  default: v->type = SNMP_V_OTHER;
  }
}

static int on_pdu(int op, netsnmp_session *s, int reqid, netsnmp_pdu *pdu, void *magic);

static int send_pdu(struct snmp_dev *d, netsnmp_pdu *pdu) {
  int reqid = snmp_sess_async_send(d->io->sessp, pdu, on_pdu, d);
  if (reqid == 0) {
    char why[200];
    snmp__session_error(d->io->sessp, NULL, why, sizeof(why));
    if (why[0] == '\0' || strcmp(why, "unknown error") == 0)
      snprintf(why, sizeof(why), "%s",
               snmp_api_errstring(snmp_sess_session(d->io->sessp)->s_snmp_errno));
    snmp_free_pdu(pdu);
    snmp__fail(d, "cannot send a request: %s", why);
    return -EIO;
  }
  d->reqid = reqid;
  return 0;
}

static int send_probe(struct snmp_dev *d) {
  netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
  if (pdu == NULL)
    return -ENOMEM;
  /* RFC 3414 discovery: an unauthenticated request with an empty user; the
   * agent answers with a Report carrying its engine ID, boots and time. */
  pdu->version = SNMP_VERSION_3;
  pdu->securityModel = SNMP_SEC_MODEL_USM;
  pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
  pdu->securityName = strdup("");
  pdu->securityNameLen = 0;
  return send_pdu(d, pdu);
}

/* The next GET of scalars: up to vb_limit of those not read yet. */
static int send_scalars(struct snmp_dev *d) {
  netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_GET);
  if (pdu == NULL)
    return -ENOMEM;
  if (d->npending == 0) {
    while (d->scalar_next < d->nscalars && d->npending < (size_t)d->vb_limit)
      d->pending[d->npending++] = d->scalar_next++;
  }
  for (size_t i = 0; i < d->npending; i++) {
    oid name[SNMP_OID_MAX];
    const struct snmp_oid *o = &d->scalar_oids[d->pending[i]];
    oid_to_net(o, name);
    snmp_add_null_var(pdu, name, o->len);
  }
  return send_pdu(d, pdu);
}

static void table_begin(struct snmp_dev *d) {
  const struct snmp_table *tb = &d->prof.tables[d->table];
  d->cols = d->walk[d->table];
  memset(d->cols, 0, SNMP_MAX_COLUMNS * sizeof(*d->cols));
  for (size_t c = 0; c < tb->ncols; c++)
    d->cols[c].last = tb->cols[c];
  d->table_first_cell = d->ncells;
  d->max_rep = (int)d->cfg.max_repetitions;
}

static int send_walk(struct snmp_dev *d) {
  const struct snmp_table *tb = &d->prof.tables[d->table];
  netsnmp_pdu *pdu = snmp_pdu_create(d->use_getnext ? SNMP_MSG_GETNEXT : SNMP_MSG_GETBULK);
  if (pdu == NULL)
    return -ENOMEM;
  if (!d->use_getnext) {
    pdu->non_repeaters = 0;
    pdu->max_repetitions = d->max_rep;
  }
  d->nactive = 0;
  for (size_t c = 0; c < tb->ncols && d->nactive < (size_t)d->vb_limit; c++) {
    if (d->cols[c].done)
      continue;
    oid name[SNMP_OID_MAX];
    oid_to_net(&d->cols[c].last, name);
    snmp_add_null_var(pdu, name, d->cols[c].last.len);
    d->active[d->nactive++] = (int)c;
  }
  return send_pdu(d, pdu);
}

/* Decides what to send next, or finishes the scrape. */
void snmp__step(struct snmp_dev *d) {
  if (d->failed) {
    snmp__finish(d);
    return;
  }
  int rc = 0;
  if (d->ph == PH_PROBE) {
    rc = send_probe(d);
  } else if (d->ph == PH_SCALARS) {
    if (d->npending > 0 || d->scalar_next < d->nscalars) {
      rc = send_scalars(d);
    } else {
      d->ph = PH_TABLES;
      d->table = 0;
      if (d->prof.ntables > 0)
        table_begin(d);
    }
  }
  if (rc == 0 && d->ph == PH_TABLES) {
    while (d->table < d->prof.ntables) {
      const struct snmp_table *tb = &d->prof.tables[d->table];
      bool walking = false;
      for (size_t c = 0; c < tb->ncols; c++)
        walking |= !d->cols[c].done;
      if (walking)
        break;
      d->table_cells[2 * d->table] = d->table_first_cell;
      d->table_cells[2 * d->table + 1] = d->ncells;
      if (++d->table < d->prof.ntables)
        table_begin(d);
    }
    if (d->table >= d->prof.ntables) {
      snmp__finish(d);
      return;
    }
    rc = send_walk(d);
  }
  if (rc != 0) {
    if (!d->failed)
      snmp__fail(d, "cannot build a request: %s", strerror(-rc));
    snmp__finish(d);
  }
}

static const char *errstat_text(long e) { return snmp_errstring((int)e); }

static void got_probe(struct snmp_dev *d, netsnmp_session *s) {
  if (s->securityEngineIDLen == 0) {
    snmp__fail(d, "SNMPv3 engine ID discovery: the answer carried no engine ID");
    return;
  }
  if (s->engineBoots != 0 || s->engineTime != 0)
    set_enginetime(s->securityEngineID, (u_int)s->securityEngineIDLen, s->engineBoots,
                   s->engineTime, TRUE);
  const char *other = NULL;
  if (snmp__usm_claim(d, s, &other) != 0) {
    char hex[2 * SNMP_MAX_ENG_SIZE + 1] = "";
    for (size_t i = 0; i < s->securityEngineIDLen && i < SNMP_MAX_ENG_SIZE; i++)
      snprintf(hex + 2 * i, 3, "%02x", s->securityEngineID[i]);
    snmp__forget_engine(s); /* try again at the next scrape */
    snmp__fail(d,
               "SNMPv3 engine %s user %s: device %s uses them with other credentials (USM keys "
               "are per engine ID and user)",
               hex, d->cfg.user, other ? other : "?");
    return;
  }
  int rc = create_user_from_session(s);
  if (rc != SNMPERR_SUCCESS) {
    snmp__fail(d, "SNMPv3 user %s: %s", d->cfg.user, snmp_api_errstring(rc));
    return;
  }
  d->ph = PH_SCALARS;
}

static void got_scalars(struct snmp_dev *d, netsnmp_pdu *pdu) {
  if (pdu->errstat == SNMP_ERR_NOSUCHNAME && pdu->errindex >= 1 &&
      (size_t)pdu->errindex <= d->npending) {
    /* v1: one bad name fails the whole GET; drop it and ask again. */
    size_t k = (size_t)pdu->errindex - 1;
    size_t s = d->pending[k];
    d->scalar_vals[s].type = SNMP_V_NOSUCHOBJECT;
    snprintf(d->scalar_why[s], sizeof(d->scalar_why[s]), "noSuchName");
    memmove(&d->pending[k], &d->pending[k + 1], (d->npending - k - 1) * sizeof(d->pending[0]));
    d->npending--;
    return;
  }
  if (pdu->errstat == SNMP_ERR_TOOBIG && d->npending > 1) {
    size_t half = d->npending / 2;
    d->scalar_next -= d->npending - half; /* the rest goes in later requests */
    d->npending = half;
    d->vb_limit = (int)half;
    return;
  }
  if (pdu->errstat != SNMP_ERR_NOERROR) {
    for (size_t i = 0; i < d->npending; i++) {
      size_t s = d->pending[i];
      d->scalar_vals[s].type = SNMP_V_ERROR;
      snprintf(d->scalar_why[s], sizeof(d->scalar_why[s]), "GET answered %s",
               errstat_text(pdu->errstat));
    }
    d->npending = 0;
    return;
  }
  size_t i = 0;
  for (netsnmp_variable_list *vb = pdu->variables; vb != NULL && i < d->npending;
       vb = vb->next_variable, i++)
    value_from_var(vb, &d->scalar_vals[d->pending[i]]);
  d->npending = 0;
}

static void end_col(struct walk_col *col, enum col_end end, const struct snmp_oid *at) {
  col->done = true;
  col->end = end;
  if (at != NULL)
    col->end_oid = *at;
}

static void got_walk(struct snmp_dev *d, netsnmp_pdu *pdu) {
  const struct snmp_table *tb = &d->prof.tables[d->table];
  if (pdu->errstat != SNMP_ERR_NOERROR) {
    if (!d->use_getnext &&
        (pdu->errstat == SNMP_ERR_GENERR || pdu->errstat == SNMP_ERR_NOSUCHNAME)) {
      d->use_getnext = true;
      rp_warn("snmp", "%s: %s: GETBULK answered %s: walking with GETNEXT from now on", d->cfg.name,
              d->address, errstat_text(pdu->errstat));
      d->ncells = d->table_first_cell;
      table_begin(d);
      return;
    }
    if (d->use_getnext && pdu->errstat == SNMP_ERR_NOSUCHNAME && pdu->errindex >= 1 &&
        (size_t)pdu->errindex <= d->nactive) {
      /* v1 says "end of the MIB" this way, for one column of the request. */
      end_col(&d->cols[d->active[pdu->errindex - 1]], END_V1_END, NULL);
      return;
    }
    if (pdu->errstat == SNMP_ERR_TOOBIG && !d->use_getnext && d->max_rep > 1) {
      d->max_rep /= 2;
      return;
    }
    for (size_t k = 0; k < d->nactive; k++) {
      struct walk_col *col = &d->cols[d->active[k]];
      end_col(col, END_ERROR, NULL);
      snprintf(col->why, sizeof(col->why), "%s answered %s", d->use_getnext ? "GETNEXT" : "GETBULK",
               errstat_text(pdu->errstat));
    }
    return;
  }
  bool progress = false;
  size_t i = 0;
  for (netsnmp_variable_list *vb = pdu->variables; vb != NULL; vb = vb->next_variable, i++) {
    int c = d->active[i % d->nactive];
    struct walk_col *col = &d->cols[c];
    if (col->done)
      continue;
    progress = true;
    struct snmp_oid name;
    if (vb->type == SNMP_ENDOFMIBVIEW) {
      end_col(col, END_EOMV, NULL);
      continue;
    }
    if (!oid_from_net(vb->name, vb->name_length, &name)) {
      end_col(col, END_ERROR, NULL);
      snprintf(col->why, sizeof(col->why), "an OID longer than %d sub-identifiers", SNMP_OID_MAX);
      continue;
    }
    if (!snmp_oid_under(&tb->cols[c], &name)) {
      end_col(col, END_LEFT, &name);
      continue;
    }
    if (snmp_oid_cmp(&name, &col->last) <= 0) {
      end_col(col, END_LOOP, &name);
      continue;
    }
    col->last = name;
    col->rows++;
    size_t idxlen = name.len - tb->cols[c].len;
    if (idxlen > SNMP_IDX_MAX)
      continue; /* an index we cannot match: not a row of any profile pattern */
    if (d->ncells == SNMP_MAX_CELLS) {
      end_col(col, END_TOO_MANY, &name);
      continue;
    }
    if (d->ncells == d->capcells) {
      size_t cap = d->capcells ? d->capcells * 2 : 256;
      struct snmp_cell *grown = realloc(d->cells, cap * sizeof(*grown));
      if (grown == NULL) {
        end_col(col, END_TOO_MANY, &name);
        continue;
      }
      d->cells = grown;
      d->capcells = cap;
    }
    struct snmp_cell *cell = &d->cells[d->ncells++];
    cell->col = (uint8_t)c;
    cell->idxlen = (uint8_t)idxlen;
    memcpy(cell->idx, name.sub + tb->cols[c].len, idxlen * sizeof(cell->idx[0]));
    value_from_var(vb, &cell->v);
  }
  if (!progress) {
    for (size_t k = 0; k < d->nactive; k++) {
      struct walk_col *col = &d->cols[d->active[k]];
      if (!col->done) {
        end_col(col, END_ERROR, NULL);
        snprintf(col->why, sizeof(col->why), "an empty answer");
      }
    }
  }
}

static int on_pdu(int op, netsnmp_session *s, int reqid, netsnmp_pdu *pdu, void *magic) {
  struct snmp_dev *d = magic;
  (void)reqid; /* a Report answering a v3 request may carry another request id */
  if (d == NULL || d->reqid == 0)
    return 1;
  if (d->ph == PH_PROBE &&
      (op == NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE || op == NETSNMP_CALLBACK_OP_SEC_ERROR)) {
    /* net-snmp reports the discovery Report as a security error; what
     * counts is whether the session learnt the engine ID from it. */
    d->reqid = 0;
    d->responded = true;
    got_probe(d, s);
    return 1;
  }
  switch (op) {
  case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE: break;
  case NETSNMP_CALLBACK_OP_TIMED_OUT:
    d->reqid = 0;
    d->responded = true;
    snmp__fail(d, "no answer within %.3g s x %lld tries%s", d->cfg.timeout_ms / 1000.0,
               (long long)d->cfg.retries + 1,
               strcmp(d->cfg.version, "3") == 0 ? ""
                                                : " (down, unreachable, or a wrong community)");
    return 1;
  case NETSNMP_CALLBACK_OP_SEC_ERROR: {
    d->reqid = 0;
    d->responded = true;
    int e = pdu != NULL && pdu->command == SNMP_MSG_REPORT ? snmpv3_get_report_type(pdu)
                                                           : s->s_snmp_errno;
    snmp__fail(d, "SNMPv3 %s: %s", d->cfg.user, snmp_api_errstring(e));
    if (e == SNMPERR_UNKNOWN_ENG_ID) /* a new device behind the address: discover again */
      snmp__forget_engine(s);
    return 1;
  }
  case NETSNMP_CALLBACK_OP_SEND_FAILED:
  case NETSNMP_CALLBACK_OP_DISCONNECT: {
    d->reqid = 0;
    d->responded = true;
    char why[200];
    snmp__session_error(d->io ? d->io->sessp : NULL, NULL, why, sizeof(why));
    snmp__fail(d, "request failed: %s", why);
    return 1;
  }
  default: return 1; /* CONNECT, RESEND: the request is still in flight */
  }
  d->reqid = 0;
  d->responded = true;
  if (pdu == NULL) {
    snmp__fail(d, "an answer without a PDU");
    return 1;
  }
  if (pdu->command == SNMP_MSG_REPORT) {
    if (d->ph == PH_PROBE) {
      got_probe(d, s);
      return 1;
    }
    int type = snmpv3_get_report_type(pdu);
    snmp__fail(d, "SNMPv3 report: %s", snmp_api_errstring(type));
    if (type == SNMPERR_UNKNOWN_ENG_ID) /* a new device behind the address: discover again */
      snmp__forget_engine(s);
    return 1;
  }
  switch (d->ph) {
  case PH_PROBE:
    /* A v3 agent answering a discovery probe with a response: it knows us. */
    got_probe(d, s);
    break;
  case PH_SCALARS: got_scalars(d, pdu); break;
  case PH_TABLES: got_walk(d, pdu); break;
  default: break;
  }
  return 1;
}
