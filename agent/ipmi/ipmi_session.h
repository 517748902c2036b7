/* ipmi_session.h: the ipmitool children of one BMC, driven from the libuv
 * loop (uv_spawn and pipes; the loop never waits on a child).
 *
 * A runner runs one command at a time for its BMC, in one of two ways:
 *   - one-shot: each command is a child `ipmitool OPTIONS WORDS...`, which
 *     opens and closes its own RMCP+ session;
 *   - persistent: one long-lived `ipmitool OPTIONS shell` is kept and each
 *     command is written to its stdin; the answer is what it prints up to
 *     its next prompt. The shell is started by the first command, and again
 *     after it died or was killed.
 * stdout and stderr of a child are one pipe, so the order of what ipmitool
 * prints is kept and errors come with the command that caused them.
 *
 * Every child runs in its own session and process group (setsid), so a
 * deadline kills the whole group: SIGTERM, then SIGKILL after a grace
 * period. A command that passes its deadline is reported as -ETIMEDOUT
 * only once its child is gone, so a BMC never has two sessions at once.
 * Children do not keep the loop alive on their own (their handles are
 * unreferenced); a timer does while a command or a shutdown is under way.
 *
 * Passwords never travel on argv: the caller passes `-f FILE` among the
 * options, or names an environment variable whose value the child alone
 * receives as IPMI_PASSWORD (for ipmitool -E). Children get no other part
 * of the agent's environment than PATH (plus LC_ALL=C and TERM=dumb). */
#ifndef RP_AGENT_IPMI_SESSION_H
#define RP_AGENT_IPMI_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* What the shell prints when it waits for a command. */
#define IPMI_SHELL_PROMPT "ipmitool> "

struct ipmi_runner;

struct ipmi_runner_config {
  const char *name;         /* the BMC, for messages */
  const char *const *argv;  /* ipmitool and its options, without a command;
                               NULL-terminated; borrowed: keep it alive
                               while the runner exists */
  const char *password_env; /* the agent's environment variable whose value
                               the child gets as IPMI_PASSWORD, or NULL */
  bool persistent;          /* keep one `ipmitool ... shell` */
  uint64_t timeout_ms;      /* deadline of a command (and of a shell's start) */
  uint64_t grace_ms;        /* SIGTERM -> SIGKILL; `exit` -> SIGTERM */
};

struct ipmi_result {
  /* 0: the command ran to its end (one-shot: exit status 0; shell: the
   *    prompt came back; the text may still report an error);
   * -ETIMEDOUT: the deadline passed and the child's group was killed;
   * -ECHILD: a one-shot child exited non-zero or by a signal, or the shell
   *    ended (exit_status, term_signal);
   * -E2BIG: more output than IPMI_OUTPUT_MAX (the child was killed);
   * other negative errno: the child could not be started or written to. */
  int rc;
  const char *out; /* stdout and stderr, merged; the shell's echo of
                           the command and its prompt removed. NUL-terminated,
                           valid during the callback only */
  size_t len;
  int64_t exit_status; /* when the child ended */
  int term_signal;
  uint64_t elapsed_ms; /* from spawn (or write) to the answer or the kill */
  bool new_shell;      /* persistent: this command started the shell */
};

#define IPMI_OUTPUT_MAX (4u << 20)

typedef void (*ipmi_run_cb)(void *arg, const struct ipmi_result *res);
typedef void (*ipmi_idle_cb)(void *arg);

struct ipmi_runner_stats {
  uint64_t spawned;  /* children started */
  uint64_t timeouts; /* commands killed at their deadline */
  uint64_t sigkills; /* children that needed SIGKILL after SIGTERM */
};

/* Creates a runner on `loop`. Returns 0 and *out, or -ENOMEM. Free with
 * ipmi_runner_free(). */
int ipmi_runner_new(uv_loop_t *loop, const struct ipmi_runner_config *cfg,
                    struct ipmi_runner **out);

/* Runs one command, given as words (NULL-terminated): one-shot, appended to
 * the options; persistent, joined with spaces and written to the shell.
 * `cb` is called exactly once, on the loop thread, never from within this
 * call, unless this call fails: -EBUSY when a command or a shell's end is
 * under way, -EINVAL for empty words. */
int ipmi_runner_run(struct ipmi_runner *r, const char *const *words, ipmi_run_cb cb, void *arg);

/* Ends the shell, if any: `exit`, then SIGTERM after the grace period, then
 * SIGKILL. `cb` is called (from the loop, never from within this call)
 * once no child of this runner remains. -EBUSY while a command runs. */
int ipmi_runner_end(struct ipmi_runner *r, ipmi_idle_cb cb, void *arg);

/* True while the runner has a live shell (persistent mode). */
bool ipmi_runner_has_shell(const struct ipmi_runner *r);

void ipmi_runner_get_stats(const struct ipmi_runner *r, struct ipmi_runner_stats *s);

/* Frees the runner. Must not be called while a command runs. A shell still
 * alive is ended as by ipmi_runner_end() but on its own: the loop must run
 * until ipmi_children_alive() is 0 to reap it and release its memory.
 * Accepts NULL. */
void ipmi_runner_free(struct ipmi_runner *r);

/* Children of every runner whose handles are not yet closed. */
size_t ipmi_children_alive(void);

#endif
