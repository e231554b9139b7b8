// tsbpf's tracefs access: finding/mounting tracefs, its events and probe definitions (one owner), and reading trace_pipe.
export {
  tracefsDir, tracepointExists, traceEventId, readTracepointFormat, listTracepoints, probeEventsFile, addProbeEvent,
  badEventName, badProbeLocation, type DynamicProbeKind, type ProbeEventDefinition,
} from "./tracefs.ts";
export { parseTraceLine, type TraceLine } from "./trace-line.ts";
export { tracePipe, type TracePipeOptions } from "./trace-pipe.ts";
