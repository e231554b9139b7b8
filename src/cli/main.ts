// The tsbpf command line: one subcommand per tool, each in its own module,
// loaded only when run.

import { TsbpfError, UsageError } from "../errors.ts";

interface Command {
  summary: string;
  /** Runs the command; resolves to the process exit code. */
  load(): Promise<{ run(args: string[]): Promise<number> }>;
}

const commands: Record<string, Command> = {};

/** Registers a subcommand (each tool's module adds itself here). */
export function command(name: string, summary: string, load: Command["load"]): void {
  commands[name] = { summary, load };
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length), 4);
  const lines = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width)}  ${c.summary}`);
  return `usage: tsbpf COMMAND [ARGS...]\n\ncommands:\n${lines.join("\n")}\n\nRun "tsbpf COMMAND --help" for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  await import("./commands.ts");
  const [name, ...args] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`tsbpf: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const module = await cmd.load();
  try {
    return await module.run(args);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`tsbpf ${name}: ${err.message}\nRun "tsbpf ${name} --help" for its options.`);
      return 2;
    }
    // Errors tsbpf raises on purpose say what went wrong and what to do: print
    // just that. Anything else is a bug, and keeps its stack trace.
    if (err instanceof TsbpfError) {
      console.error(`tsbpf ${name}: ${err.message.replace(/^tsbpf: /, "")}`);
      return 1;
    }
    // Anything else is a bug: its stack helps whoever fixes it, once, and exit 1.
    console.error(err);
    console.error(`tsbpf ${name}: this is a bug in tsbpf (an error it did not expect, above); please report it with the command line`);
    return 1;
  }
}
