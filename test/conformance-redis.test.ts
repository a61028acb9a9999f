import { RedisItemStore } from "../src/index.js";
import { defineConformanceSuite } from "./conformance/suite.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";

const keyPrefix = uniquePrefix("conformance");
defineConformanceSuite("redis", () => RedisItemStore.connect({ url: REDIS_URL, keyPrefix }), () => deleteKeys(keyPrefix));
