import { readFileSync } from "node:fs";
import { ErrorCode, StreamError } from "../core/errors.js";
import type { TlsOptions } from "../server/tls-context.js";
import type { TlsFiles } from "./config-to-options.js";

/** The certificate and key the files hold; a file that cannot be read is named, with why. */
export function readTlsFiles(files: TlsFiles): TlsOptions {
  const read = (what: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new StreamError(ErrorCode.InvalidArgument, `cannot read the TLS ${what} ${path}: ${(error as Error).message}`);
    }
  };
  return { cert: read("certificate", files.cert), key: read("key", files.key) };
}
