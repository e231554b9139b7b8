import { TsbpfError } from "../errors.ts";

/** An object file tsbpf cannot use as it is: says what is wrong and what to do. */
export class ObjectError extends TsbpfError {
  constructor(message: string, options?: ErrorOptions) {
    super("ERR_TSBPF_OBJECT", message, options);
  }
}
/** Throws a lookup error that lists what is there, for map/program/variable names. */
export function notFound(what: string, name: string, available: Iterable<string>, where = "the object"): never {
  const names = [...available];
  const list = names.length ? `it has: ${names.join(", ")}` : `it has none`;
  throw new ObjectError(`no ${what} named "${name}" in ${where}; ${list}`);
}
