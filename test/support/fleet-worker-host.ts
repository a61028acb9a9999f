/*
 * A server instance in a process of its own, on the Redis adapter, offering one worker
 * function through the seam the WebSocket bridge uses, so that a test can SIGKILL the
 * instance that hosts a worker. Run with `node --import tsx`; settings come from the
 * environment. It prints `ready <url>` once the function is offered, and `called <json>`
 * for each call.
 */
import { connectRedisBackend, createStreamServer } from "../../src/index.js";

const env = process.env;
const backend = await connectRedisBackend({
  url: env.FLEET_REDIS_URL,
  keyPrefix: env.FLEET_KEY_PREFIX,
  instanceTtlMs: Number(env.FLEET_INSTANCE_TTL_MS),
});
const server = createStreamServer({ port: 0, backend });
await server.start();
server.functions.registerWorkerFunction(env.FLEET_FUNCTION_ID!, {
  invoke: async (_functionId, payload) => {
    process.stdout.write(`called ${JSON.stringify(payload)}\n`);
    return { servedBy: "host" };
  },
});
process.stdout.write(`ready ${server.url}\n`);
process.once("SIGTERM", () => void server.stop().then(() => process.exit(0)));
