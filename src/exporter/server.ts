// The HTTP side: /metrics (Prometheus text format), /healthz, and a small index.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Exporter } from "./exporter.ts";

export const DEFAULT_PORT = 9435; // ebpf_exporter's

/** HOST:PORT, :PORT or PORT -> [host, port]; IPv6 hosts in brackets ([::1]:9435). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))?:?(\d+)$/.exec(listen);
  if (!m) throw new TypeError(`--listen expects HOST:PORT, got "${listen}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new TypeError(`--listen: port ${port} is out of range`);
  return { host: m[1] ?? (m[2] || "0.0.0.0"), port };
}

export interface MetricsServer extends AsyncDisposable {
  server: Server;
  /** The address actually bound (port 0 picks a free one). */
  address: AddressInfo;
  close(): Promise<void>;
}

export async function serve(exporter: Exporter, listen: { host: string; port: number }, healthy: () => boolean = () => true): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      exporter.scrape().then(
        (text) => res.writeHead(200, { "content-type": exporter.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
      );
    } else if (path === "/healthz") {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ok\n" : "not ready\n");
    } else if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end('<html><body><h1>tsbpf exporter</h1><p><a href="/metrics">metrics</a> <a href="/healthz">healthz</a></p></body></html>\n');
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return { server, address: server.address() as AddressInfo, close, [Symbol.asyncDispose]: close };
}
