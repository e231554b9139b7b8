// Histograms as BCC prints them (log2 and linear, with per-key sections), as
// JSON, and the interval loop of BCC's histogram tools. The BPF side fills
// slots with tsbpf_log2l() from include/tsbpf_hist.h.
export { LOG2_SLOTS, LINEAR_SLOTS, log2l, log2Range } from "./slots.ts";
export { STARS_MAX, log2HistLines, linearHistLines, pythonRepr, type Count } from "./format.ts";
export {
  collectHistogram,
  formatLog2Hist,
  formatLinearHist,
  histogramJson,
  bucketize,
  type HistogramKind,
  type CollectOptions,
  type PrintOptions,
  type JsonOptions,
  type HistogramSection,
  type HistogramJson,
} from "./histogram.ts";
export { FOREVER, parseIntervalArgs, clockTime, intervalHeader, intervalTicks, type IntervalArgs, type Tick, type TickOptions } from "./interval.ts";
