import { WebSocket } from "ws";
import { ITEMS_PER_GROUP, STREAM_NAME, writeData, type Writer } from "./transport.js";

interface InvocationResult {
  type?: string;
  invocation_id?: string;
  error?: { code: string; message: string };
}

/**
 * iii-stream's other writer: `stream::set` invoked over the worker protocol on one
 * WebSocket, as an iii SDK backend writes. It is the counterpart of the peers' writers,
 * which also write over their WebSocket.
 */
export async function openWorkerWriter(url: string): Promise<Writer> {
  const socket = new WebSocket(`${url.replace(/^http/, "ws")}/worker`, { perMessageDeflate: false });
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  const calls = new Map<string, { resolve: () => void; reject: (error: Error) => void }>();
  socket.on("message", (data) => {
    const message = JSON.parse(data.toString()) as InvocationResult;
    if (message.type !== "invocationresult" || message.invocation_id === undefined) return;
    const call = calls.get(message.invocation_id);
    calls.delete(message.invocation_id);
    if (message.error) call?.reject(new Error(`${message.error.code}: ${message.error.message}`));
    else call?.resolve();
  });
  socket.on("close", () => {
    for (const call of calls.values()) call.reject(new Error("the worker socket closed"));
    calls.clear();
  });
  return {
    write: (groupId, i) =>
      new Promise<void>((resolve, reject) => {
        const id = String(i);
        calls.set(id, { resolve, reject });
        const data = { stream_name: STREAM_NAME, group_id: groupId, item_id: `item-${i % ITEMS_PER_GROUP}`, data: writeData(i) };
        socket.send(JSON.stringify({ type: "invokefunction", invocation_id: id, function_id: "stream::set", data }));
      }),
    close: () => socket.terminate(),
  };
}
