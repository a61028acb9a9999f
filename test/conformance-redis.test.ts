import { RedisAdapter } from "../src/adapters/redis/redis-adapter.js";
import { defineConformanceSuite } from "./conformance/suite.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";

const keyPrefix = uniquePrefix("conformance");
defineConformanceSuite("redis", () => RedisAdapter.connect({ url: REDIS_URL, keyPrefix }), () => deleteKeys(keyPrefix));
