import { MemoryAdapter } from "../src/adapters/memory-adapter.js";
import { defineConformanceSuite } from "./conformance/suite.js";

defineConformanceSuite("memory", () => new MemoryAdapter());
