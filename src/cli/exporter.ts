// tsbpf exporter: eBPF maps as Prometheus metrics (and OTLP), as Cloudflare's
// ebpf_exporter. With no --config it runs the default programs (block I/O
// latency, syscalls, run-queue latency, TCP, execs, opens).
import { readConfigFiles, type ExporterConfig } from "../exporter/config.ts";
import { defaultConfig } from "../exporter/defaults.ts";
import { Exporter } from "../exporter/exporter.ts";
import type { OtlpPusher } from "../exporter/otlp.ts";
import { DEFAULT_PORT, parseListen, serve } from "../exporter/server.ts";
import { setFlagsFromString } from "node:v8";
import { havePrivileges, intOption, parseToolArgs, UsageError } from "./tool.ts";

const HELP = `usage: tsbpf exporter [-h] [--config FILE]... [--listen HOST:PORT] [--series-limit N]
                      [--otlp-endpoint URL] [--otlp-interval SECS] [--check]

Run eBPF programs and expose their maps as Prometheus metrics at /metrics
(and /healthz). SIGHUP reloads the config; SIGTERM or Ctrl-C detaches and exits.

options:
  --config FILE          a YAML config (several: merged); tsbpf's format or
                         ebpf_exporter's (NAME.yaml beside NAME.bpf.o). Default: the
                         built-in set (src/exporter/default.yaml)
  --listen HOST:PORT     where to serve (default 0.0.0.0:${DEFAULT_PORT})
  --series-limit N       series kept per metric (default: the config's, else 10000)
  --otlp-endpoint URL    also push to an OpenTelemetry collector over OTLP/HTTP
                         (http://HOST:4318/v1/metrics)
  --otlp-interval SECS   seconds between pushes (default 15)
  --check                load and attach everything, report, detach and exit

examples:
  tsbpf exporter                                   # the default metrics on :9435
  tsbpf exporter --config biolatency.yaml          # an ebpf_exporter config and its object
  tsbpf exporter --listen 127.0.0.1:9500 --otlp-endpoint http://collector:4318/v1/metrics
`;

const OPTIONS = {
  config: { type: "string", multiple: true },
  listen: { type: "string" },
  "series-limit": { type: "string" },
  "otlp-endpoint": { type: "string" },
  "otlp-interval": { type: "string" },
  check: { type: "boolean" },
} as const;

export async function run(args: string[]): Promise<number> {
  const parsed = parseToolArgs(args, OPTIONS, HELP);
  if (!parsed) return 0;
  const { values: o, positionals } = parsed;
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  let listen: { host: string; port: number };
  try {
    listen = parseListen(o.listen ?? `0.0.0.0:${DEFAULT_PORT}`);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const seriesLimit = intOption(o["series-limit"], "--series-limit", 1);
  const otlpInterval = intOption(o["otlp-interval"], "--otlp-interval", 1);
  const warn = (m: string) => process.stderr.write(`tsbpf exporter: ${m}\n`);
  const readConfig = (): ExporterConfig => {
    const config = o.config?.length ? readConfigFiles(o.config, warn) : defaultConfig();
    if (seriesLimit) for (const m of config.metrics) m.seriesLimit = seriesLimit;
    return config;
  };
  const config = readConfig();
  if (!havePrivileges("exporter")) return 1;
  // V8 doubles its young generation (up to 32 MiB) whenever scavenges keep objects,
  // and a long-running process scraped every few seconds gets there: RSS 85 MiB
  // after scrapes of 10,000 series, 72 MiB with it kept at its start size, for no
  // measurable CPU. Read at each growth, so it can be set now; NODE_OPTIONS wins.
  if (!/semi-space/.test(`${process.env.NODE_OPTIONS ?? ""} ${process.execArgv.join(" ")}`)) setFlagsFromString("--semi-space-growth-factor=1");

  const exporter = await Exporter.start(config, { warn });
  const summary = () => `${exporter.config!.programs.length} programs (${exporter.programCount} BPF programs), ${exporter.config!.metrics.length} metrics`;
  if (o.check) {
    process.stdout.write(`tsbpf exporter: config OK: ${summary()}\n`);
    await exporter.close();
    return 0;
  }
  let server;
  try {
    server = await serve(exporter, listen);
  } catch (err) {
    await exporter.close();
    throw new UsageError(`cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`);
  }
  const endpoint = o["otlp-endpoint"] ?? config.otlp?.endpoint;
  let otlp: OtlpPusher | undefined;
  // The OpenTelemetry SDK loads only when used: it costs memory and start-up time.
  if (endpoint) otlp = (await import("../exporter/otlp.ts")).startOtlp(exporter, endpoint, otlpInterval ? otlpInterval * 1000 : (config.otlp?.intervalMs ?? 15_000), warn);
  const where = `${server.address.family === "IPv6" ? `[${server.address.address}]` : server.address.address}:${server.address.port}`;
  process.stderr.write(`tsbpf exporter: serving ${summary()} on http://${where}/metrics${otlp ? `, pushing OTLP to ${endpoint}` : ""}\n`);

  let reloading = Promise.resolve();
  const onHup = () => {
    reloading = reloading.then(async () => {
      try {
        await exporter.reload(readConfig());
        warn(`reloaded: ${summary()}`);
      } catch (err) {
        warn(`reload failed, the running config stays: ${(err as Error).message}`);
      }
    });
  };
  const stopped = new Promise<string>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  process.on("SIGHUP", onHup);
  const reason = await stopped;
  process.off("SIGHUP", onHup);
  await reloading;
  await otlp?.close().catch(() => {});
  await server.close();
  await exporter.close();
  process.stderr.write(`tsbpf exporter: ${reason}: detached, exiting\n`);
  return 0;
}
