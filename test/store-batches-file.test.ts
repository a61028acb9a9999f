import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../src/index.js";
import { defineStoreBatchesSuite } from "./conformance/store-batches.js";

defineStoreBatchesSuite("file", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "iii-stream-batches-"));
  const store = FileStore.open({ dataDir });
  return {
    store,
    close: async () => {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
});
