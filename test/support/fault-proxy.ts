import net from "node:net";

/**
 * A TCP proxy that breaks connections on purpose, between a client and a real server:
 * `cut` ends them (FIN), `reset` aborts them (RST), `blackhole` keeps them open but
 * forwards nothing more (a peer gone without a word, which only a watchdog notices).
 * New connections always go to the current target, which `retarget` changes (another
 * instance of a fleet, a restarted server on a new port).
 */
export class FaultProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();
  private chaosTimer: NodeJS.Timeout | undefined;
  readonly faults = { cut: 0, reset: 0, blackhole: 0 };
  /** Connections accepted so far. */
  accepted = 0;

  private constructor(private target: number) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(targetPort: number): Promise<FaultProxy> {
    const proxy = new FaultProxy(targetPort);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  retarget(port: number): void {
    this.target = port;
  }

  cut(): void {
    this.faults.cut++;
    for (const pair of this.take()) {
      pair.client.end();
      pair.upstream.end();
      setTimeout(() => (pair.client.destroy(), pair.upstream.destroy()), 50);
    }
  }

  reset(): void {
    this.faults.reset++;
    for (const pair of this.take()) {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    }
  }

  /** Existing connections stop forwarding, in both directions, until the proxy closes. */
  blackhole(): void {
    this.faults.blackhole++;
    for (const pair of this.pairs) {
      if (pair.stalled) continue;
      pair.stalled = true;
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.client.pause();
      pair.upstream.pause();
    }
  }

  /** A random fault every `minMs` to `maxMs`, until `calm`. */
  chaos(minMs: number, maxMs: number, faults: Array<"cut" | "reset" | "blackhole"> = ["cut", "reset", "blackhole"]): void {
    const next = () => {
      this.chaosTimer = setTimeout(() => {
        this[faults[Math.floor(Math.random() * faults.length)]]();
        next();
      }, minMs + Math.random() * (maxMs - minMs));
    };
    next();
  }

  calm(): void {
    clearTimeout(this.chaosTimer);
  }

  async close(): Promise<void> {
    this.calm();
    for (const pair of this.take()) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private take() {
    const pairs = [...this.pairs];
    this.pairs.clear();
    return pairs;
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const upstream = net.connect(this.target, "127.0.0.1");
    const pair = { client, upstream, stalled: false };
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
