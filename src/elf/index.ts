export * from "./constants.ts";
export { ElfError } from "./error.ts";
export { ElfFile } from "./file.ts";
export type { ElfNote, ElfProgramHeader, ElfRelocation, ElfSection, ElfSymbol } from "./file.ts";
