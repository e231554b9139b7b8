// tsbpf ext4slower: ext4 operations slower than a threshold (BCC's ext4slower); see fsslower.ts.
import { FILE_SYSTEMS, runFsSlower } from "./fsslower.ts";

export const run = (args: string[]): Promise<number> => runFsSlower(FILE_SYSTEMS.ext4!, args);
