// What an ELF section name says about the programs in it: the table lives in the
// hook registry (link/hooks.ts), with how each hook is attached.
export { commonSectionNames, sectionDef, sectionDefs, type AttachKind, type SectionDef } from "../link/hooks.ts";
