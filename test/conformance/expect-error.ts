import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** Awaits a call that must fail with `code`, and checks its message when a pattern is given. */
export async function expectConnectError(call: Promise<unknown>, code: Code, message?: RegExp): Promise<ConnectError> {
  const outcome = await call.then(
    (result) => ({ result }),
    (error: unknown) => ({ error: ConnectError.from(error) }),
  );
  if (!("error" in outcome)) throw new Error(`expected ${Code[code]}, but the call succeeded: ${String(outcome.result)}`);
  const error = outcome.error;
  expect(Code[error.code], error.rawMessage).toBe(Code[code]);
  if (message) expect(error.rawMessage).toMatch(message);
  return error;
}
