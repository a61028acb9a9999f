import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../src/index.js";
import { defineConformanceSuite } from "./conformance/suite.js";

const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-conformance-"));
defineConformanceSuite("file", () => FileStore.open({ dataDir }), async () => rmSync(dataDir, { recursive: true, force: true }));
