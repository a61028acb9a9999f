import { RedisItemStore } from "../src/index.js";
import { defineStoreBatchesSuite } from "./conformance/store-batches.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";

const keyPrefix = uniquePrefix("store-batches");
defineStoreBatchesSuite("redis", async () => {
  const store = await RedisItemStore.connect({ url: REDIS_URL, keyPrefix });
  return {
    store,
    close: async () => {
      await store.close();
      await deleteKeys(keyPrefix);
    },
  };
});
