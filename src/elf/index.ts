export * from "./constants.ts";
export { ElfError } from "./error.ts";
export { ElfFile } from "./file.ts";
export type { ElfProgramHeader, ElfRelocation, ElfSection, ElfSymbol } from "./file.ts";
