/* rackpulsectl's `policy simulate` (ctl_simulate.c): a policy backtest
 * over the frames Kafka kept. */
#ifndef RACKPULSE_CTL_SIMULATE_H
#define RACKPULSE_CTL_SIMULATE_H

/* Runs `policy simulate` with argv[0] == "policy". Returns the exit status:
 * 0 done, 1 the candidate allowed what an incident marks must_deny, 2 on a
 * usage, policy, Kafka or replay error. */
int ctl_policy_main(int argc, char **argv);

#endif
