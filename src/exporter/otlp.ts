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
    const attrs = (labels: readonly string[]) => Object.fromEntries(s.labelNames.map((n, i) => [n, labels[i]]));
    if (m.kind === "histogram") {
      const nb = s.bounds.length;
      metrics.push({
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: s.series.map((h) => {
          // OTLP counts are per bucket, not cumulative; one more than the bounds (+Inf).
          const counts = Array.from(h.v.subarray(0, nb + 1));
          const count = counts.reduce((a, b) => a + b, 0);
          return { startTime, endTime, attributes: attrs(h.labels), value: { buckets: { boundaries: s.bounds, counts }, sum: h.v[nb + 1], count } };
        }),
      });
    } else {
      const dataPoints = s.series.map((v) => ({ startTime, endTime, attributes: attrs(v.labels), value: v.v[0] }));
      if (m.kind === "counter") {
        metrics.push({ descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints });
      } else {
        metrics.push({ descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints });
      }
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
