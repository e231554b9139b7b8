/** A program could not be attached: says to what, why, and what to do instead. */
export class AttachError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "AttachError";
  }
}
