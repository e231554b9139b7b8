// Stack output as BCC's tools print it (multi-line and folded) and a
// self-contained interactive flame graph (SVG or HTML).
export { formatStacks, formatFolded, stackLines, foldedFrames, parseFolded, type StackSample, type StackFormatOptions, type Frames } from "./stacks.ts";
export { flameGraphSvg, flameGraphHtml, flameFrames, type FlameGraphOptions, type FoldedStack, type FlameFrame } from "./flamegraph.ts";
