// tsbpf btrfsslower: btrfs operations slower than a threshold (BCC's btrfsslower); see fsslower.ts.
import { FILE_SYSTEMS, runFsSlower } from "./fsslower.ts";

export const run = (args: string[]): Promise<number> => runFsSlower(FILE_SYSTEMS.btrfs!, args);
