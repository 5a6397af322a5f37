/** The base of errors caused by what the user gave (a config, a run directory, a table, the Python environment,
 * data the worker refuses): the CLI prints the message alone and exits 2. Kept in a module of its own so the
 * CLI can tell them apart without loading the modules that throw them. */
export class InputError extends Error {}
