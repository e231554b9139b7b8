// OTLP/HTTP push: the exporter's snapshots as OpenTelemetry metric data
// (cumulative sums, gauges and explicit-bucket histograms), sent by the
// @opentelemetry exporter every interval, beside /metrics.
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AggregationTemporality, DataPointType, type MetricData, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { ValueType, type HrTime } from "@opentelemetry/api";
import { hostname } from "node:os";
import type { Exporter } from "./exporter.ts";
import type { Snapshot } from "./reader.ts";

export interface OtlpPusher extends AsyncDisposable {
  /** Collects and sends once now; resolves when the collector answered. */
  push(): Promise<void>;
  close(): Promise<void>;
}

function hrNow(): HrTime {
  const ms = Date.now();
  return [Math.floor(ms / 1000), (ms % 1000) * 1e6];
}

/** ResourceMetrics for one collection of the exporter. */
export function toResourceMetrics(snapshots: Iterable<Snapshot>, startTime: HrTime): ResourceMetrics {
  const endTime = hrNow();
  const metrics: MetricData[] = [];
  for (const s of snapshots) {
    const m = s.metric;
    const descriptor = { name: m.name, description: m.help, unit: "", valueType: ValueType.DOUBLE };
    const attrs = (labels: string[]) => Object.fromEntries(s.labelNames.map((n, i) => [n, labels[i]]));
    if (m.kind === "histogram") {
      metrics.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: s.histograms.map((h) => {
          // OTLP counts are per bucket, not cumulative; one more than the bounds (+Inf).
          const counts = h.cumulative.map((c, i) => c - (i ? h.cumulative[i - 1] : 0));
          counts.push(h.count - (h.cumulative.at(-1) ?? 0));
          return { startTime, endTime, attributes: attrs(h.labels), value: { buckets: { boundaries: s.bounds, counts }, sum: h.sum, count: h.count } };
        }),
      });
    } else if (m.kind === "counter") {
      metrics.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: s.scalars.map((v) => ({ startTime, endTime, attributes: attrs(v.labels), value: v.value })),
      });
    } else {
      metrics.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: s.scalars.map((v) => ({ startTime, endTime, attributes: attrs(v.labels), value: v.value })),
      });
    }
  }
  return {
    resource: resourceFromAttributes({ "service.name": "tsbpf-exporter", "host.name": hostname() }),
    scopeMetrics: [{ scope: { name: "tsbpf-exporter" }, metrics }],
  };
}

/** Pushes to `endpoint` (http://HOST:4318/v1/metrics) every `intervalMs`, until closed. */
export function startOtlp(exporter: Exporter, endpoint: string, intervalMs: number, warn: (m: string) => void = () => {}): OtlpPusher {
  const otlp = new OTLPMetricExporter({ url: endpoint, timeoutMillis: Math.min(10_000, Math.max(1000, intervalMs)) });
  const startTime = hrNow();
  const push = () =>
    new Promise<void>((resolve, reject) => {
      const data = toResourceMetrics(exporter.collect().values(), startTime);
      otlp.export(data, (result) => (result.error ? reject(result.error) : resolve()));
    });
  const timer = setInterval(() => push().catch((err: Error) => warn(`OTLP push to ${endpoint}: ${err.message}`)), intervalMs);
  timer.unref();
  const close = async () => {
    clearInterval(timer);
    await otlp.shutdown();
  };
  return { push, close, [Symbol.asyncDispose]: close };
}
