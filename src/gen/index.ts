// tsbpf gen: TypeScript from an object's BTF. `generateTypes` writes the
// interfaces of its structs, unions and enums; `generateSkeleton` a module whose
// load() gives typed programs, maps, global variables and record codecs, over
// the runtime in ./runtime.ts (which generated code imports from tsbpf).
export { generateTypes, TypeScriptTypes, pascalCase, cTypeName, cDeclaration, type TypesOptions, type Declarable } from "./types.ts";
export { generateSkeleton, type SkeletonOptions } from "./skeleton.ts";
export {
  SkeletonObject, type SkeletonSource, type SkeletonLoadOptions, type LoadedSkeleton, type TypedMap, type PerCpuMap, type Encodable,
} from "./runtime.ts";
