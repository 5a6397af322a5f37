/** The base of errors caused by what the user gave (a config, a run directory, a table, the Python environment,
 * data the worker refuses): the CLI prints the message alone and exits 2. Kept in a module of its own so the
 * CLI can tell them apart without loading the modules that throw them. */
export class InputError extends Error {}

/** A value of the user's code (what it threw, what it answered) as text for a message: an Error's message;
 * anything else (a string, null, an object, even one whose toString throws) as String gives it, or its type. */
export function safeText(e: unknown): string {
  if (e instanceof Error) return e.message;
  try {
    return String(e);
  } catch {
    return Object.prototype.toString.call(e);
  }
}
