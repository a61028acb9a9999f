/**
 * What `iii-stream COMMAND` exits with, one code per class of failure, so that a script can
 * tell "try again later" from "fix the command" without parsing messages.
 */
export const ExitCode = {
  Ok: 0,
  /** Anything not listed below: a value over the size limit, a server fault, a skipped update op. */
  Failure: 1,
  /** The command line or a JSON value is wrong, locally or as the server judged it (INVALID_ARGUMENT). */
  Usage: 2,
  /** `get` found no item (or the server answered NOT_FOUND). */
  NotFound: 3,
  /** `--if-revision` did not match (FAILED_PRECONDITION): nothing was written. */
  PreconditionFailed: 4,
  /** No server answered at the URL, it is shutting down, or its storage is unreachable (UNAVAILABLE). */
  Unavailable: 5,
  /** The API key is missing or wrong (UNAUTHENTICATED), or the server refused the call (PERMISSION_DENIED). */
  Denied: 6,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit codes as the help of every command lists them. */
export const EXIT_CODES_HELP = `Exit codes:
  0  done
  1  any other failure (a value over the size limit, a server fault, an update op skipped)
  2  usage: a wrong command line or JSON value, or one the server refused as invalid
  3  not found: get found no item
  4  precondition failed: --if-revision did not match, nothing was written
  5  unavailable: no server at the URL, or it is shutting down or cannot reach its storage
  6  unauthenticated or permission denied: a missing or wrong API key`;

/** A mistake in the command line or in a JSON value, found before anything was sent. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The exit code for a call the server (or the network) failed, by its status code. */
export function exitCodeForStatus(code: string): ExitCode {
  switch (code) {
    case "invalid_argument":
      return ExitCode.Usage;
    case "not_found":
      return ExitCode.NotFound;
    case "failed_precondition":
      return ExitCode.PreconditionFailed;
    case "unavailable":
    case "deadline_exceeded":
      return ExitCode.Unavailable;
    case "unauthenticated":
    case "permission_denied":
      return ExitCode.Denied;
    default:
      return ExitCode.Failure;
  }
}
