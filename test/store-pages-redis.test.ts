import { RedisItemStore } from "../src/index.js";
import { defineStorePagesSuite } from "./conformance/store-pages.js";
import { deleteKeys, REDIS_URL, uniquePrefix } from "./support/redis.js";

const keyPrefix = uniquePrefix("store-pages");
defineStorePagesSuite("redis", async () => {
  const store = await RedisItemStore.connect({ url: REDIS_URL, keyPrefix });
  return {
    store,
    close: async () => {
      await store.close();
      await deleteKeys(keyPrefix);
    },
  };
});
