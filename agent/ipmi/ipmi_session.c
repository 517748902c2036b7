/* ipmitool children on the libuv loop: spawning with merged output, the
 * shell protocol (write a command, read up to the next prompt), deadlines
 * that kill a child's whole process group, and a clean end (`exit`, then
 * signals). See ipmi_session.h for the contract.
 *
 * A child moves through phases; its one timer means what the phase says:
 *
 *   START  shell spawned, command waiting for the first prompt  (deadline)
 *   RUN    a command in flight                                  (deadline)
 *   IDLE   shell waiting at its prompt                          (off)
 *   EXIT   `exit` written                                       (grace -> SIGTERM)
 *   TERM   SIGTERM sent to the group                            (grace -> SIGKILL)
 *   KILL   SIGKILL sent                                         (grace -> again)
 *   REAP   exited, but something still holds the output pipe    (grace -> SIGKILL, stop reading)
 *   FAILED uv_spawn failed; the error is reported from the loop (0 ms)
 *
 * A child is finished once it has exited and its output reached EOF: the
 * command in flight (if any) gets its answer, then the handles are closed
 * and the memory is released in the last close callback. */
#include "ipmi_session.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "rackpulse/clock.h"
#include "rackpulse/log.h"

enum phase { PH_START, PH_RUN, PH_IDLE, PH_EXIT, PH_TERM, PH_KILL, PH_REAP, PH_FAILED };

struct child {
  uv_process_t proc;
  uv_pipe_t in;  /* shell: its stdin */
  uv_pipe_t out; /* stdout and stderr */
  uv_timer_t timer;
  struct ipmi_runner *r; /* NULL once the runner is freed */
  struct child *next;    /* in r->children */
  enum phase phase;
  bool shell, has_proc, has_in, has_out;
  bool exited, eof, timed_out, overflow, finished;
  int open_handles;
  int pid;
  int spawn_err;
  int64_t exit_status;
  int term_signal;
  char *buf;
  size_t len, cap;
  /* The command in flight. */
  ipmi_run_cb cb;
  void *arg;
  char *cmd; /* shell: the line to write (with '\n') */
  bool new_shell;
  uint64_t t0;
  uv_write_t wreq;
};

struct ipmi_runner {
  uv_loop_t *loop;
  struct ipmi_runner_config cfg;
  char name[64];
  struct child *shell;    /* persistent: the live shell */
  struct child *active;   /* the child answering the command in flight */
  struct child *children; /* every child not yet released */
  ipmi_idle_cb idle_cb;
  void *idle_arg;
  /* A command waiting for an ending child to be gone. */
  char **pending;
  ipmi_run_cb pending_cb;
  void *pending_arg;
  struct ipmi_runner_stats stats;
};

static int start_command(struct ipmi_runner *r, const char *const *words, ipmi_run_cb cb,
                         void *arg);

static void free_words(char **w) {
  if (w == NULL)
    return;
  for (size_t i = 0; w[i] != NULL; i++)
    free(w[i]);
  free(w);
}

/* True while a child other than the live shell is still around. */
static bool others_alive(const struct ipmi_runner *r) {
  for (const struct child *c = r->children; c != NULL; c = c->next)
    if (c != r->shell)
      return true;
  return false;
}

/* ipmitool children, of every runner, whose handles are not closed yet.
 * File-scope on purpose: a child outlives the runner that spawned it
 * (ipmi_runner_free() leaves it for the loop to reap), so no runner can
 * hold the count, and the children are this process's whichever BMC
 * they served. */
static size_t children_alive;

size_t ipmi_children_alive(void) { return children_alive; }

static const char *child_name(const struct child *c) { return c->r ? c->r->name : "ipmitool"; }

/* Writing to a shell that just died must be an EPIPE error, not the death
 * of the agent. A signal's disposition is the process's: set once. */
static void ignore_sigpipe(void) {
  static bool done;
  if (done)
    return;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
  done = true;
}

/* Signals the child's process group. Once the leader is reaped its id
 * could in principle be reused, so only REAP (group members still holding
 * the pipe) signals after that. */
static void signal_group(struct child *c, int sig) {
  if (c->pid <= 0 || (c->exited && c->phase != PH_REAP))
    return;
  if (kill(-c->pid, sig) != 0 && errno != ESRCH)
    rp_warn("ipmi", "%s: kill(-%d, %d): %s", child_name(c), c->pid, sig, strerror(errno));
}

static void unlink_child(struct child *c) {
  if (c->r == NULL)
    return;
  for (struct child **p = &c->r->children; *p != NULL; p = &(*p)->next)
    if (*p == c) {
      *p = c->next;
      break;
    }
  c->next = NULL;
}

static void on_handle_closed(uv_handle_t *h) {
  struct child *c = h->data;
  if (--c->open_handles > 0)
    return;
  struct ipmi_runner *r = c->r;
  unlink_child(c);
  free(c->buf);
  free(c->cmd);
  free(c);
  children_alive--;
  if (r == NULL)
    return;
  if (r->pending != NULL && !others_alive(r)) {
    char **words = r->pending;
    r->pending = NULL;
    int rc = start_command(r, (const char *const *)words, r->pending_cb, r->pending_arg);
    free_words(words);
    if (rc != 0) {
      struct ipmi_result res = {.rc = rc, .out = "", .len = 0};
      r->pending_cb(r->pending_arg, &res);
    }
    return;
  }
  if (r->children == NULL && r->idle_cb != NULL) {
    ipmi_idle_cb cb = r->idle_cb;
    r->idle_cb = NULL;
    cb(r->idle_arg);
  }
}

static void close_handle(struct child *c, uv_handle_t *h) {
  h->data = c;
  c->open_handles++;
  uv_close(h, on_handle_closed);
}

/* The answer to the command in flight, then the handles are closed. */
static void finish(struct child *c) {
  if (c->finished)
    return;
  c->finished = true;
  uv_timer_stop(&c->timer);
  struct ipmi_runner *r = c->r;
  ipmi_run_cb cb = c->cb;
  void *arg = c->arg;
  c->cb = NULL;
  if (r != NULL) {
    if (r->shell == c)
      r->shell = NULL;
    if (r->active == c)
      r->active = NULL;
  }
  struct ipmi_result res = {.out = c->buf,
                            .len = c->len,
                            .exit_status = c->exit_status,
                            .term_signal = c->term_signal,
                            .new_shell = c->new_shell,
                            .elapsed_ms = rp_mono_ms() - c->t0};
  if (c->phase == PH_FAILED)
    res.rc = c->spawn_err;
  else if (c->timed_out)
    res.rc = -ETIMEDOUT;
  else if (c->overflow)
    res.rc = -E2BIG;
  else if (c->shell || c->exit_status != 0 || c->term_signal != 0)
    res.rc = -ECHILD;
  else
    res.rc = 0;
  /* The shell echoes the command line first: not part of the answer. */
  if (c->shell && c->cmd != NULL) {
    size_t n = strlen(c->cmd);
    if (res.len >= n && memcmp(res.out, c->cmd, n) == 0) {
      res.out += n;
      res.len -= n;
    }
  }
  close_handle(c, (uv_handle_t *)&c->timer);
  if (c->has_proc)
    close_handle(c, (uv_handle_t *)&c->proc);
  if (c->has_in)
    close_handle(c, (uv_handle_t *)&c->in);
  if (c->has_out)
    close_handle(c, (uv_handle_t *)&c->out);
  if (cb != NULL)
    cb(arg, &res);
}

static void maybe_finish(struct child *c);

static void start_timer(struct child *c, uint64_t ms);

static void on_timer(uv_timer_t *t) {
  struct child *c = t->data;
  uint64_t grace = c->r ? c->r->cfg.grace_ms : 2000;
  switch (c->phase) {
  case PH_START:
  case PH_RUN:
    c->timed_out = true;
    if (c->r)
      c->r->stats.timeouts++;
    signal_group(c, SIGTERM);
    c->phase = PH_TERM;
    start_timer(c, grace);
    break;
  case PH_EXIT:
    signal_group(c, SIGTERM);
    c->phase = PH_TERM;
    start_timer(c, grace);
    break;
  case PH_TERM:
  case PH_KILL:
    if (c->phase == PH_TERM && c->r)
      c->r->stats.sigkills++;
    if (c->phase == PH_KILL)
      rp_warn("ipmi", "%s: ipmitool (pid %d) still alive after SIGKILL", child_name(c), c->pid);
    signal_group(c, SIGKILL);
    c->phase = PH_KILL;
    start_timer(c, grace);
    break;
  case PH_REAP:
    /* Something else in the group holds the output pipe open. */
    signal_group(c, SIGKILL);
    if (c->has_out)
      uv_read_stop((uv_stream_t *)&c->out);
    c->eof = true;
    maybe_finish(c);
    break;
  case PH_FAILED: finish(c); break;
  case PH_IDLE: break;
  }
}

static void start_timer(struct child *c, uint64_t ms) {
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void maybe_finish(struct child *c) {
  if (c->finished)
    return;
  uint64_t grace = c->r ? c->r->cfg.grace_ms : 2000;
  if (c->exited && c->eof) {
    finish(c);
  } else if (c->exited && c->phase != PH_REAP) {
    c->phase = PH_REAP;
    start_timer(c, grace);
  } else if (c->eof && !c->exited && c->phase != PH_TERM && c->phase != PH_KILL) {
    /* Output closed but the process lives on: it is of no more use. */
    signal_group(c, SIGTERM);
    c->phase = PH_TERM;
    start_timer(c, grace);
  }
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  struct child *c = p->data;
  c->exited = true;
  c->exit_status = status;
  c->term_signal = sig;
  maybe_finish(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  struct child *c = h->data;
  (void)suggested;
  if (c->cap - c->len < 4097 && c->cap < IPMI_OUTPUT_MAX) {
    size_t cap = c->cap * 2;
    char *grown = realloc(c->buf, cap);
    if (grown != NULL) {
      c->buf = grown;
      c->cap = cap;
    }
  }
  b->base = c->buf + c->len;
  b->len = c->cap - c->len - 1; /* room for the NUL */
}

static int write_line(struct child *c, const char *line);

static bool ends_with_prompt(const struct child *c) {
  size_t n = sizeof(IPMI_SHELL_PROMPT) - 1;
  return c->len >= n && memcmp(c->buf + c->len - n, IPMI_SHELL_PROMPT, n) == 0;
}

static void on_prompt(struct child *c) {
  if (c->phase == PH_START) {
    /* The session is open: send the command waiting for it. */
    c->len = 0;
    c->buf[0] = '\0';
    c->phase = PH_RUN;
    uint64_t timeout = c->r ? c->r->cfg.timeout_ms : 10000;
    start_timer(c, timeout);
    if (write_line(c, c->cmd) != 0) {
      signal_group(c, SIGTERM);
      c->phase = PH_TERM;
      start_timer(c, c->r ? c->r->cfg.grace_ms : 2000);
    }
    return;
  }
  /* PH_RUN: the answer is complete. */
  uv_timer_stop(&c->timer);
  c->phase = PH_IDLE;
  c->len -= sizeof(IPMI_SHELL_PROMPT) - 1;
  c->buf[c->len] = '\0';
  ipmi_run_cb cb = c->cb;
  void *arg = c->arg;
  c->cb = NULL;
  struct ipmi_result res = {
      .out = c->buf, .len = c->len, .new_shell = c->new_shell, .elapsed_ms = rp_mono_ms() - c->t0};
  size_t n = strlen(c->cmd);
  if (res.len >= n && memcmp(res.out, c->cmd, n) == 0) {
    res.out += n;
    res.len -= n;
  }
  if (c->r != NULL && c->r->active == c)
    c->r->active = NULL;
  if (cb != NULL)
    cb(arg, &res);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b) {
  struct child *c = s->data;
  (void)b;
  if (nread > 0) {
    c->len += (size_t)nread;
    c->buf[c->len] = '\0';
    if (c->shell && (c->phase == PH_START || c->phase == PH_RUN) && ends_with_prompt(c))
      on_prompt(c);
    return;
  }
  if (nread == 0)
    return;
  if (nread == UV_ENOBUFS) {
    /* More output than any BMC has reason to print. */
    c->overflow = true;
    uv_read_stop(s);
    c->eof = true;
    signal_group(c, SIGKILL);
    maybe_finish(c);
    return;
  }
  uv_read_stop(s);
  c->eof = true;
  maybe_finish(c);
}

static void on_written(uv_write_t *w, int status) {
  struct child *c = w->data;
  if (status < 0 && status != UV_ECANCELED && !c->finished) {
    rp_debug("ipmi", "%s: write to ipmitool shell: %s", child_name(c), uv_strerror(status));
    if (c->phase != PH_TERM && c->phase != PH_KILL) {
      signal_group(c, SIGTERM);
      c->phase = PH_TERM;
      start_timer(c, c->r ? c->r->cfg.grace_ms : 2000);
    }
  }
}

static int write_line(struct child *c, const char *line) {
  uv_buf_t b = uv_buf_init((char *)line, (unsigned)strlen(line));
  c->wreq.data = c;
  return uv_write(&c->wreq, (uv_stream_t *)&c->in, &b, 1, on_written);
}

/* The child's environment is built from scratch: the agent's may hold
 * secrets (the variables that password_env names, Kafka credentials), and
 * ipmitool needs none of it. PATH, LC_ALL=C (the numbers we parse), TERM=dumb
 * (readline must not send terminal escapes) and, for -E, IPMI_PASSWORD.
 * *secret receives the string to wipe after the spawn. */
static char **build_env(const char *password_env, char **secret) {
  static char path[1024];
  const char *p = getenv("PATH");
  snprintf(path, sizeof(path), "PATH=%s", p ? p : "/usr/local/bin:/usr/bin:/bin");
  char **env = calloc(5, sizeof(*env));
  *secret = NULL;
  if (env == NULL)
    return NULL;
  size_t k = 0;
  env[k++] = path;
  env[k++] = "LC_ALL=C";
  env[k++] = "TERM=dumb";
  const char *pw = password_env ? getenv(password_env) : NULL;
  if (pw != NULL) {
    size_t len = strlen(pw);
    char *s = malloc(14 + len + 1);
    if (s == NULL) {
      free(env);
      return NULL;
    }
    memcpy(s, "IPMI_PASSWORD=", 14);
    memcpy(s + 14, pw, len + 1);
    env[k++] = s;
    *secret = s;
  }
  env[k] = NULL;
  return env;
}

static void free_env(char **env, char *secret) {
  if (secret != NULL) {
    explicit_bzero(secret, strlen(secret));
    free(secret);
  }
  free(env);
}

/* Starts a child: `argv words...`, or `argv shell` when words is NULL. On
 * a spawn error the child still exists and reports the error from the
 * loop (phase FAILED). Returns NULL only when out of memory. */
static struct child *spawn_child(struct ipmi_runner *r, const char *const *words) {
  size_t nopt = 0, nwords = 0;
  while (r->cfg.argv[nopt] != NULL)
    nopt++;
  if (words != NULL)
    while (words[nwords] != NULL)
      nwords++;
  else
    nwords = 1;
  struct child *c = calloc(1, sizeof(*c));
  char **argv = calloc(nopt + nwords + 1, sizeof(*argv));
  if (c == NULL || argv == NULL || (c->buf = malloc(8192)) == NULL) {
    free(argv);
    if (c != NULL)
      free(c->buf);
    free(c);
    return NULL;
  }
  c->cap = 8192;
  c->buf[0] = '\0';
  for (size_t i = 0; i < nopt; i++)
    argv[i] = (char *)r->cfg.argv[i];
  for (size_t i = 0; i < nwords; i++)
    argv[nopt + i] = (char *)(words ? words[i] : "shell");

  ignore_sigpipe();
  c->r = r;
  c->shell = words == NULL;
  c->t0 = rp_mono_ms();
  c->next = r->children;
  r->children = c;
  children_alive++;
  r->stats.spawned++;
  uv_timer_init(r->loop, &c->timer);
  c->timer.data = c;
  c->proc.data = c;

  char *secret = NULL;
  char **env = build_env(r->cfg.password_env, &secret);
  uv_file fds[2] = {-1, -1};
  int rc = env == NULL ? UV_ENOMEM : uv_pipe(fds, 0, 0);
  if (rc == 0 && c->shell) {
    uv_pipe_init(r->loop, &c->in, 0);
    c->in.data = c;
    c->has_in = true;
  }
  if (rc == 0) {
    uv_stdio_container_t stdio[3];
    memset(stdio, 0, sizeof(stdio));
    if (c->shell) {
      stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
      stdio[0].data.stream = (uv_stream_t *)&c->in;
    } else {
      stdio[0].flags = UV_IGNORE;
    }
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = fds[1];
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = fds[1];
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = argv[0];
    o.args = argv;
    o.env = env;
    o.exit_cb = on_exit_cb;
    o.flags = UV_PROCESS_DETACHED; /* setsid: its own process group */
    o.stdio = stdio;
    o.stdio_count = 3;
    rc = uv_spawn(r->loop, &c->proc, &o);
    c->has_proc = true; /* initialised even when the spawn failed */
    close(fds[1]);
  }
  free_env(env, secret);
  free(argv);
  if (rc != 0) {
    if (fds[0] >= 0)
      close(fds[0]);
    c->spawn_err = rc;
    c->exited = c->eof = true;
    c->phase = PH_FAILED;
    start_timer(c, 0);
    return c;
  }
  c->pid = c->proc.pid;
  uv_pipe_init(r->loop, &c->out, 0);
  c->out.data = c;
  c->has_out = true;
  uv_pipe_open(&c->out, fds[0]);
  uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read);
  /* Children never keep the loop alive by themselves; the timer does
   * while something is under way. */
  uv_unref((uv_handle_t *)&c->proc);
  uv_unref((uv_handle_t *)&c->out);
  if (c->has_in)
    uv_unref((uv_handle_t *)&c->in);
  c->phase = c->shell ? PH_START : PH_RUN;
  start_timer(c, r->cfg.timeout_ms);
  return c;
}

int ipmi_runner_new(uv_loop_t *loop, const struct ipmi_runner_config *cfg,
                    struct ipmi_runner **out) {
  struct ipmi_runner *r = calloc(1, sizeof(*r));
  if (r == NULL)
    return -ENOMEM;
  r->loop = loop;
  r->cfg = *cfg;
  snprintf(r->name, sizeof(r->name), "%s", cfg->name ? cfg->name : "bmc");
  r->cfg.name = r->name;
  if (r->cfg.grace_ms == 0)
    r->cfg.grace_ms = 2000;
  *out = r;
  return 0;
}

/* "w1 w2 w3\n" */
static char *join_words(const char *const *words) {
  size_t n = 2;
  for (size_t i = 0; words[i] != NULL; i++)
    n += strlen(words[i]) + 1;
  char *s = malloc(n);
  if (s == NULL)
    return NULL;
  s[0] = '\0';
  for (size_t i = 0; words[i] != NULL; i++) {
    if (i > 0)
      strcat(s, " ");
    strcat(s, words[i]);
  }
  strcat(s, "\n");
  return s;
}

int ipmi_runner_run(struct ipmi_runner *r, const char *const *words, ipmi_run_cb cb, void *arg) {
  if (words == NULL || words[0] == NULL || cb == NULL)
    return -EINVAL;
  if (r->active != NULL || r->pending != NULL || r->idle_cb != NULL)
    return -EBUSY;
  if (!others_alive(r))
    return start_command(r, words, cb, arg);
  /* A child is still on its way out (a killed or ending shell): one
   * session at a time, so the command waits for it to be gone. */
  size_t n = 0;
  while (words[n] != NULL)
    n++;
  char **copy = calloc(n + 1, sizeof(*copy));
  if (copy == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    if ((copy[i] = strdup(words[i])) == NULL) {
      free_words(copy);
      return -ENOMEM;
    }
  r->pending = copy;
  r->pending_cb = cb;
  r->pending_arg = arg;
  return 0;
}

static int start_command(struct ipmi_runner *r, const char *const *words, ipmi_run_cb cb,
                         void *arg) {
  if (!r->cfg.persistent) {
    struct child *c = spawn_child(r, words);
    if (c == NULL)
      return -ENOMEM;
    c->cb = cb;
    c->arg = arg;
    r->active = c;
    return 0;
  }
  char *line = join_words(words);
  if (line == NULL)
    return -ENOMEM;
  struct child *c = r->shell;
  if (c != NULL && c->phase != PH_IDLE) {
    /* A shell on its way out (it closed its output): let it go. */
    r->shell = NULL;
    c = NULL;
  }
  if (c == NULL) {
    c = spawn_child(r, NULL);
    if (c == NULL) {
      free(line);
      return -ENOMEM;
    }
    c->new_shell = true;
    c->cmd = line;
    c->cb = cb;
    c->arg = arg;
    if (c->phase != PH_FAILED)
      r->shell = c;
    r->active = c;
    return 0; /* the command is written when the first prompt comes */
  }
  free(c->cmd);
  c->cmd = line;
  c->cb = cb;
  c->arg = arg;
  c->new_shell = false;
  c->len = 0;
  c->buf[0] = '\0';
  c->t0 = rp_mono_ms();
  c->phase = PH_RUN;
  r->active = c;
  start_timer(c, r->cfg.timeout_ms);
  if (write_line(c, c->cmd) != 0) {
    signal_group(c, SIGTERM);
    c->phase = PH_TERM;
    start_timer(c, r->cfg.grace_ms);
  }
  return 0;
}

/* Asks an idle shell to leave; signals follow if it does not. */
static void end_shell(struct ipmi_runner *r) {
  struct child *c = r->shell;
  if (c == NULL || c->phase != PH_IDLE)
    return;
  r->shell = NULL;
  c->phase = PH_EXIT;
  free(c->cmd);
  c->cmd = NULL;
  start_timer(c, r->cfg.grace_ms);
  uv_buf_t b = uv_buf_init("exit\n", 5);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->in, &b, 1, on_written) != 0) {
    signal_group(c, SIGTERM);
    c->phase = PH_TERM;
  }
}

int ipmi_runner_end(struct ipmi_runner *r, ipmi_idle_cb cb, void *arg) {
  if (r->active != NULL || r->pending != NULL || r->idle_cb != NULL)
    return -EBUSY;
  end_shell(r);
  if (r->children == NULL)
    return 1;
  r->idle_cb = cb;
  r->idle_arg = arg;
  return 0;
}

bool ipmi_runner_has_shell(const struct ipmi_runner *r) { return r->shell != NULL; }

void ipmi_runner_get_stats(const struct ipmi_runner *r, struct ipmi_runner_stats *s) {
  *s = r->stats;
}

void ipmi_runner_free(struct ipmi_runner *r) {
  if (r == NULL)
    return;
  free_words(r->pending);
  end_shell(r);
  for (struct child *c = r->children, *next; c != NULL; c = next) {
    next = c->next;
    c->r = NULL;
    c->next = NULL;
    if (c->phase == PH_START || c->phase == PH_RUN || c->phase == PH_IDLE) {
      /* Not expected (no command may run): do not leave it behind. */
      c->cb = NULL;
      signal_group(c, SIGTERM);
      c->phase = PH_TERM;
      start_timer(c, 2000);
    }
  }
  free(r);
}
