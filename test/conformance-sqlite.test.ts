import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteAdapter } from "../src/adapters/sqlite/sqlite-adapter.js";
import { defineConformanceSuite } from "./conformance/suite.js";

const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-conformance-"));
defineConformanceSuite("file", () => SqliteAdapter.open({ dataDir }), async () => rmSync(dataDir, { recursive: true, force: true }));
