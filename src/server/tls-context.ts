import tls from "node:tls";
import { ErrorCode, StreamError } from "../core/errors.js";

/** A certificate chain and its private key, PEM-encoded, that the server serves HTTPS with. */
export interface TlsOptions {
  /** The certificate, followed by any intermediate certificates, in PEM. */
  cert: string | Buffer;
  /** The certificate's private key, in PEM (unencrypted). */
  key: string | Buffer;
}

/**
 * What every TLS connection of the port negotiates: `h2` (gRPC, Connect over HTTP/2)
 * and `http/1.1` (Connect, gRPC-Web, WebSockets), as on the cleartext port.
 */
export const ALPN_PROTOCOLS = ["h2", "http/1.1"];

/**
 * The certificate and key, once checked: a certificate or key that cannot be parsed, or
 * a key that is not the certificate's, stops the start with INVALID_ARGUMENT instead of
 * failing every handshake later.
 */
export function checkTls(options: TlsOptions): TlsOptions {
  try {
    tls.createSecureContext({ cert: options.cert, key: options.key });
  } catch (error) {
    const reason = (error as Error).message;
    const problem = /key values mismatch/i.test(reason)
      ? "the TLS key is not the key of the certificate"
      : `the TLS certificate or key is not usable (${reason})`;
    throw new StreamError(ErrorCode.InvalidArgument, problem);
  }
  return options;
}
