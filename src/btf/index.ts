export { BtfError } from "./error.ts";
export * from "./types.ts";
export { Spec } from "./spec.ts";
export type { TypeOfKind } from "./spec.ts";
export { BTF_MAGIC } from "./parse.ts";
export type { BtfHeader } from "./parse.ts";
export { parseExt, CoreReloKind } from "./ext.ts";
export type { BtfExt, CoreRelo, FuncInfo, LineInfo } from "./ext.ts";
export { fixupDatasecs, sectionLayouts } from "./fixup.ts";
export type { SectionLayout } from "./fixup.ts";
export { codecFor } from "./codec.ts";
export type { Codec } from "./codec.ts";
export {
  calculateCoreRelocation, candidateIds, coreCandidates, coreKindName, coreRelocate, coreTypesCompatible,
  coreTypesMatch, CoreError, CORE_POISON, essentialName, parseCoreSpec,
} from "./core.ts";
export type { CoreFixup, CoreResult, CoreSpec, CoreRelocateOptions, ProgramCoreRelo, CandidateCache } from "./core.ts";
export { fixupExternDatasecs } from "./externs.ts";
export type { ExternLayout } from "./externs.ts";
export { loadedModuleBtfs, moduleBtfSpecs, releaseModuleBtfs } from "./modules.ts";
export type { ModuleBtf } from "./modules.ts";
