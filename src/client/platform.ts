/**
 * What differs between Node and browsers: how a transport is made (HTTP/2 sessions in
 * Node, fetch in browsers) and how a WebSocket is opened. Each entry point (`node.ts`,
 * `browser.ts`) supplies one, so that a browser bundle never reaches Node's modules.
 */
import type { Interceptor, Transport } from "@connectrpc/connect";
import type { TransportName } from "./options.js";

export interface PlatformTransport {
  transport: Transport;
  /** Drops the connection (a dead one is replaced by a new transport). */
  close(): void;
}

export interface SocketHandlers {
  open(): void;
  message(text: string): void;
  close(code: number, reason: string): void;
  /** The server proved the connection alive without a message (a protocol ping), where the platform can see it. */
  alive(): void;
}

export interface ClientSocket {
  send(text: string): void;
  close(): void;
}

export interface Platform {
  /** `websocket` never comes here: its unary calls use `connect`. */
  transport(name: Exclude<TransportName, "websocket">, baseUrl: string, interceptors: Interceptor[]): PlatformTransport;
  openSocket(url: string, headers: Record<string, string>, handlers: SocketHandlers): ClientSocket;
  /** Whether `alive` is ever called: without it, a socket's silence proves nothing. */
  readonly seesPings: boolean;
}
