// tsbpf exporter as a library: configs, decoders, readers, the Exporter, the server, OTLP.
export { ConfigError, DEFAULT_SERIES_LIMIT, mergeConfigs, parseConfig, readConfigFiles } from "./config.ts";
export type { DecoderConfig, ExporterConfig, LabelConfig, MetricConfig, ProgramConfig } from "./config.ts";
export { defaultConfig, DEFAULT_CONFIG_PATH } from "./defaults.ts";
export { DROP, makeDecoder, inetIp, ksym, syscallName, cgroupPath, blockDevice } from "./decoders.ts";
export { Exporter, type ExporterOptions } from "./exporter.ts";
export { MetricReader, MapWalker, histogramLayout, rawEntries, type Series, type Snapshot } from "./reader.ts";
export { builtinNames, builtinObject, checkMetricMap } from "./programs.ts";
export { serve, parseListen, DEFAULT_PORT, type MetricsServer } from "./server.ts";
export { startOtlp, toResourceMetrics, type OtlpPusher } from "./otlp.ts";
