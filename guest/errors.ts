// The runner's error kinds that change what it does next.

/** Errors that retrying cannot fix (the host said no, or the sandbox is set up wrong). */
export class PermanentError extends Error {}
