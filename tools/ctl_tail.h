/* rackpulsectl's `tail` command (ctl_tail.c): a Kafka consumer that prints
 * rackpulse frames as they arrive. */
#ifndef RACKPULSE_CTL_TAIL_H
#define RACKPULSE_CTL_TAIL_H

/* Runs `tail` with argv[0] == "tail" and its own options after it. Returns
 * the exit status: 0 after SIGINT/SIGTERM or --count frames, 2 on a usage or
 * Kafka setup error. */
int ctl_tail_main(int argc, char **argv);

#endif
