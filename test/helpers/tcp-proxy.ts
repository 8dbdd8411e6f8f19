import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** A TCP proxy in front of the API that a test can use to break the network. */
export interface TcpProxy {
  /** http://127.0.0.1:<proxy port>/graphql */
  url: string;
  /** ws://127.0.0.1:<proxy port>/graphql */
  wsUrl: string;
  port: number;
  /** Destroys every open connection (both sides), like a dropped link. New connections still work. */
  cut(): void;
  /** From now on new connections are reset as soon as they arrive (the network is down). */
  pause(): void;
  /** Accepts and forwards new connections again. */
  resume(): void;
  /**
   * Open connections stop carrying data in both directions but stay open, like
   * a dead NAT mapping: only a keep-alive timeout notices. New connections work.
   */
  stall(): void;
  /**
   * Forwards new connections to another API (e.g. one restarted on another
   * port, or a replica after the first one died). With `{ cutOpen: true }` the
   * connections still open to the old target are cut too, as a load balancer
   * does when it takes a backend out of rotation.
   */
  setTarget(target: string, options?: { cutOpen?: boolean }): void;
  /** Where new connections go now (`http://host:port/...`). */
  readonly target: string;
  /** Connections accepted and forwarded so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/**
 * Starts a proxy on a random loopback port that pipes every connection to
 * `target` (`http://host:port/...`). The test owns it, so it can cut links or
 * refuse connections while the API itself keeps running.
 */
export async function startTcpProxy(
  target: string,
  options: {
    /**
     * Sees every chunk before it is forwarded; a `cut()` from here drops the
     * chunk, e.g. to lose a response after the server has acted on the request.
     */
    tap?: (chunk: Buffer, direction: 'toServer' | 'toClient') => void;
  } = {},
): Promise<TcpProxy> {
  let { hostname, port: targetPort } = new URL(target);
  const { pathname } = new URL(target);
  const sockets = new Set<Socket>();
  const links = new Set<[Socket, Socket]>();
  let paused = false;
  let accepted = 0;

  const server: Server = createServer((client) => {
    if (paused) {
      client.resetAndDestroy();
      return;
    }
    accepted++;
    const upstream = createConnection({ host: hostname, port: Number(targetPort) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      // A cut link errors on both sides; the peer is destroyed with it.
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    if (options.tap) {
      const tap = options.tap;
      // Listeners run in order: the tap sees a chunk before pipe() writes it on.
      client.on('data', (chunk: Buffer) => tap(chunk, 'toServer'));
      upstream.on('data', (chunk: Buffer) => tap(chunk, 'toClient'));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    const link: [Socket, Socket] = [client, upstream];
    links.add(link);
    client.on('close', () => links.delete(link));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const base = `127.0.0.1:${port}${pathname}`;

  const cut = () => {
    for (const s of sockets) s.resetAndDestroy();
    sockets.clear();
  };
  return {
    url: `http://${base}`,
    wsUrl: `ws://${base}`,
    port,
    cut,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
    },
    stall() {
      for (const [client, upstream] of links) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    setTarget(next, { cutOpen = false } = {}) {
      ({ hostname, port: targetPort } = new URL(next));
      if (cutOpen) cut();
    },
    get target() {
      return `http://${hostname}:${targetPort}${pathname}`;
    },
    get accepted() {
      return accepted;
    },
    async close() {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
