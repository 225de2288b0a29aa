/** Exit codes of the `talaria` command. */
export const EXIT_OK = 0
/** A runtime failure: the node could not start, or stopping failed. */
export const EXIT_FAILURE = 1
/** Bad usage: an unknown flag or command, or an invalid or unknown setting. */
export const EXIT_USAGE = 2
/** Deadline for a clean stop after SIGINT/SIGTERM, in milliseconds. */
export const STOP_DEADLINE_MS = 5000
