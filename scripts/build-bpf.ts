// npm run build:bpf [-- OUTDIR]: compiles the tools' BPF C (which the exporter's
// default programs are too) into CO-RE objects (dist/bpf by default) so they run
// where there is no clang. `npm pack` runs it.
import { buildToolObjects } from "../src/cli/tool.ts";

for (const path of await buildToolObjects(process.argv[2])) console.log(path);
