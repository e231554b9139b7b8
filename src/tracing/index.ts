// tsbpf's tracefs access: finding/mounting tracefs and reading trace_pipe.
export { tracefsDir } from "./tracefs.ts";
export { parseTraceLine, type TraceLine } from "./trace-line.ts";
export { tracePipe, type TracePipeOptions } from "./trace-pipe.ts";
