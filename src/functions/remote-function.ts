import http from "node:http";
import https from "node:https";
import { isJsonObject, type JsonValue } from "../core/json.js";
import { ErrorCode, invalidArgument, StreamError } from "../core/errors.js";
import { FunctionService } from "../../gen/iii/stream/v1/triggers_pb.js";
import type { FunctionInvoker } from "./types.js";
import { currentTrace, formatTraceparent } from "../core/trace-context.js";

const INVOKE_PATH = `/${FunctionService.typeName}/${FunctionService.method.invoke.name}`;

/**
 * Longest answer (in characters) read from a remote function. Results only decide (a
 * condition, a refusal, an auth context), so a million is plenty, and a runaway backend
 * cannot make the server buffer without bound.
 */
const MAX_RESULT_CHARS = 1024 * 1024;

export interface RemoteFunctionClient extends FunctionInvoker {
  /** Closes the kept-alive connections. */
  close(): void;
}

/**
 * Calls `iii.stream.v1.FunctionService/Invoke` at a base URL with the Connect protocol's
 * unary JSON form: one POST with a `content-length`, `{"functionId", "payload"}` in,
 * `{"result"}` out. Generated Connect clients stream request bodies in chunks, which
 * plain HTTP servers (Python's http.server, say) cannot read; this request is one any
 * HTTP server can, and a Connect server answers it too. Connections to the URL are kept
 * alive: a busy trigger would otherwise pay a TCP handshake per call.
 */
export function remoteFunction(baseUrl: string): RemoteFunctionClient {
  const endpoint = invokeUrl(baseUrl);
  const client = endpoint.protocol === "https:" ? https : http;
  const agent = new client.Agent({ keepAlive: true });
  return {
    invoke: (functionId, payload, signal) =>
      new Promise((resolve, reject) => {
        const body = JSON.stringify({ functionId, payload });
        const trace = currentTrace();
        const headers = {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          "connect-protocol-version": "1",
          // The function joins the trace of the call that led here (W3C trace context).
          ...(trace !== undefined ? { traceparent: formatTraceparent(trace) } : {}),
        };
        const request = client.request(endpoint, { method: "POST", agent, headers, signal }, (response) => {
          let text = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => {
            text += chunk;
            if (text.length > MAX_RESULT_CHARS) response.destroy(new Error(`the answer is longer than ${MAX_RESULT_CHARS} characters`));
          });
          response.on("error", reject);
          response.on("end", () => {
            try {
              if (response.statusCode !== 200) {
                throw new StreamError(ErrorCode.Internal, `${endpoint} answered ${response.statusCode}: ${errorMessage(text)}`);
              }
              resolve(resultOf(endpoint, text));
            } catch (error) {
              reject(error);
            }
          });
        });
        request.on("error", reject);
        request.end(body);
      }),
    close: () => agent.destroy(),
  };
}

/** `{"result": value}`; an empty object, a missing or a null body mean "no result". */
function resultOf(endpoint: URL, text: string): JsonValue | undefined {
  let body: unknown;
  try {
    body = text === "" ? {} : JSON.parse(text);
  } catch {
    throw new StreamError(ErrorCode.Internal, `${endpoint} answered with something that is not JSON`);
  }
  if (!isJsonObject(body)) throw new StreamError(ErrorCode.Internal, `${endpoint} answered ${text.slice(0, 100)}, not {"result": ...}`);
  return body.result;
}

/** A Connect error body's `code: message`, or the start of whatever else came back. */
function errorMessage(text: string): string {
  try {
    const error: unknown = JSON.parse(text);
    if (isJsonObject(error) && typeof error.code === "string") return `${error.code}: ${String(error.message ?? "")}`;
  } catch {
    // Not JSON: show the text itself.
  }
  return text.slice(0, 200) || "(empty body)";
}

/**
 * A registered URL, checked and normalised: absolute http or https, without a query, a
 * fragment or credentials (which would be stored and listed to every administrator),
 * with its path's dot segments resolved and trailing slashes removed. The call URL is
 * this path joined with the invoke path, so nothing in it can redirect the call: a query
 * or fragment would swallow the invoke path, making the server POST to any path it names.
 */
export function checkFunctionUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalidArgument(`url "${url}" is not an absolute URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw invalidArgument(`url "${url}" is not an http or https URL`);
  }
  if (parsed.username !== "" || parsed.password !== "") {
    // Named without the URL itself, which holds the secret.
    throw invalidArgument(`url for ${parsed.host} must not carry credentials (user:password@); authenticate the function another way`);
  }
  // An empty "?" or "#" leaves `search` and `hash` empty but stays in `href`.
  if (parsed.hash !== "" || parsed.href.includes("#")) throw invalidArgument(`url "${url}" must not have a fragment (#...)`);
  if (parsed.search !== "" || parsed.href.includes("?")) throw invalidArgument(`url "${url}" must not have a query (?...)`);
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`;
}

/** The URL a function registered at `baseUrl` (already checked) is called at: the base path joined with the invoke path. */
export function invokeUrl(baseUrl: string): URL {
  const endpoint = new URL(checkFunctionUrl(baseUrl));
  endpoint.pathname = `${endpoint.pathname.replace(/\/+$/, "")}${INVOKE_PATH}`;
  return endpoint;
}
