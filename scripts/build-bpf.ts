// npm run build:bpf [-- OUTDIR]: compiles the tools' and the exporter's BPF C into
// CO-RE objects (dist/bpf by default) so they run where there is no clang. `npm pack` runs it.
import { buildToolObjects } from "../src/cli/tool.ts";
import { buildExporterObjects } from "../src/exporter/programs.ts";

for (const path of await buildToolObjects(process.argv[2])) console.log(path);
for (const path of await buildExporterObjects(process.argv[2])) console.log(path);
