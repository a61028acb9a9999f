import { performance } from "node:perf_hooks";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Log } from "../core/log.js";
import { callPeer } from "./call-peer.js";
import { codeName } from "./connect-errors.js";
import { nextCall } from "./next-call.js";

/** Codes that mean the server failed, not the caller: logged as errors whatever the level. */
const SERVER_FAULTS: ReadonlySet<Code> = new Set([Code.Internal, Code.Unknown, Code.DataLoss]);

/**
 * The access log of unary calls, at `debug`: method, code, duration and peer. A call
 * that fails through the server's own fault (INTERNAL, UNKNOWN, DATA_LOSS) is an
 * `error` record with the same fields and the message, at any level.
 */
export function accessLogInterceptor(log: Log): Interceptor {
  const access = log.enabled("debug");
  // Not async: one promise per call (the `then` below) instead of an async function's.
  return (next) => (req) => {
    if (req.stream) return next(req);
    const started = access ? performance.now() : 0;
    return nextCall(next, req).then(
      (res) => {
        if (access) log.debug("call", { method: req.method.name, service: req.service.typeName, code: "ok", duration_ms: elapsed(started), peer: callPeer(req.contextValues) });
        return res;
      },
      (error: unknown) => {
        const failure = ConnectError.from(error);
        const fields = { method: req.method.name, service: req.service.typeName, code: codeName(failure.code), peer: callPeer(req.contextValues) };
        if (SERVER_FAULTS.has(failure.code)) log.error("call failed", { ...fields, error: failure.rawMessage });
        else if (access) log.debug("call", { ...fields, duration_ms: elapsed(started) });
        throw error;
      },
    );
  };
}

function elapsed(started: number): number {
  return Math.round((performance.now() - started) * 1000) / 1000;
}
