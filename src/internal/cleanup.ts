// Undo actions that must run even when the process is interrupted: kernel
// objects held by fds vanish with the process, but tracefs probe definitions
// (kprobe_events, uprobe_events) outlive it unless removed.

const pending = new Set<() => void>();
const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
let installed = false;

function runAll(): void {
  for (const undo of [...pending]) {
    pending.delete(undo);
    try {
      undo();
    } catch {
      // Best effort at exit: one failure must not stop the others.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  // If tsbpf's handler is the only one, behave as if there were none: die of the signal.
  if (signals.every((s) => process.listenerCount(s) <= 1)) {
    uninstall();
    process.kill(process.pid, signal);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", runAll);
  for (const s of signals) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off("exit", runAll);
  for (const s of signals) process.off(s, onSignal);
}

/** Registers `undo` to run at exit or on a fatal signal; returns a function that runs it now. */
export function onExit(undo: () => void): () => void {
  pending.add(undo);
  install();
  return () => {
    if (!pending.delete(undo)) return;
    if (pending.size === 0) uninstall();
    undo();
  };
}
