import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

export interface BufCurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `buf curl` (the npm package's binary) with the given arguments to completion. */
export function bufCurl(args: string[]): Promise<BufCurlResult> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
