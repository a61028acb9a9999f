import { MemoryItemStore } from "../src/index.js";
import { defineStoreBatchesSuite } from "./conformance/store-batches.js";

defineStoreBatchesSuite("memory", async () => {
  const store = new MemoryItemStore();
  return { store, close: () => store.close() };
});
