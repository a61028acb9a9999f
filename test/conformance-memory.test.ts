import { MemoryItemStore } from "../src/adapters/memory/memory-item-store.js";
import { defineConformanceSuite } from "./conformance/suite.js";

defineConformanceSuite("memory", () => new MemoryItemStore());
