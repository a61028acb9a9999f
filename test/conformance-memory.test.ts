import { MemoryItemStore } from "../src/index.js";
import { defineConformanceSuite } from "./conformance/suite.js";

defineConformanceSuite("memory", () => new MemoryItemStore());
