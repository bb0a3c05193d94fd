import net from 'node:net';

export interface TcpProxy {
  port: number;
  /** Destroys every open connection (both sides), as a network cut or a failover would. */
  cut(): void;
  /** Holds every chunk this long before passing it on (0: none). */
  setDelay(ms: number): void;
  /** While on, new connections are accepted then closed, and data on open ones is dropped silently. */
  setBlackhole(on: boolean): void;
  /**
   * While on, the target's host is silent: new connections are accepted and never answered, data on
   * open ones is dropped, nothing is closed (a host that lost power, or a network partition).
   */
  setSilent(on: boolean): void;
  /** Stops listening (connections are refused, as by a stopped server) until `listen()`. */
  stopListening(): Promise<void>;
  listen(): Promise<void>;
  openConnections(): number;
  close(): Promise<void>;
}

/** A small TCP proxy a test controls, placed between the service and PostgreSQL. */
export async function createTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<[net.Socket, net.Socket]>();
  let delayMs = 0;
  let blackhole = false;
  let silent = false;
  const held = new Set<net.Socket>();

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on('data', (chunk: Buffer) => {
      if (blackhole || silent) return;
      if (delayMs === 0) to.write(chunk);
      else {
        // Keep order: pause the source while a delayed chunk waits.
        from.pause();
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
          from.resume();
        }, delayMs);
      }
    });
  };

  const onConnection = (client: net.Socket) => {
    if (blackhole) {
      client.destroy();
      return;
    }
    if (silent) {
      // Accepted, never answered: the client waits for as long as its own timeout allows.
      held.add(client);
      client.on('error', () => held.delete(client)).on('close', () => held.delete(client));
      return;
    }
    const upstream = net.connect(target);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    forward(client, upstream);
    forward(upstream, client);
  };
  let server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    port,
    cut() {
      for (const [client, upstream] of pairs) {
        client.destroy();
        upstream.destroy();
      }
      pairs.clear();
    },
    setDelay(ms) {
      delayMs = ms;
    },
    setBlackhole(on) {
      blackhole = on;
    },
    setSilent(on) {
      silent = on;
      if (!on) {
        for (const client of held) client.destroy();
        held.clear();
      }
    },
    async stopListening() {
      // Stops accepting at once; open connections are the test's to cut.
      server.close();
    },
    async listen() {
      server = net.createServer(onConnection);
      await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    },
    openConnections: () => pairs.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const [client, upstream] of pairs) {
          client.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
