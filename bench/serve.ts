// How the benchmarks' own servers (the fake partner, the baselines) run: on PORT (any free one by
// default) of 127.0.0.1, announcing their port in the line bench/lib.ts startChild waits for, and
// ending on SIGTERM without waiting for kept-alive connections.
import type http from 'node:http';
import type { AddressInfo } from 'node:net';

export function serveForBench(server: http.Server, name: string): void {
  server.keepAliveTimeout = 65_000;
  server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port, msg: `${name}: listening` })}\n`);
  });
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
