// Durations, as the runner's modules share them.

/** Milliseconds as seconds with one decimal, as the result and report.json give durations. */
export const seconds = (ms: number): number => Math.round(ms / 100) / 10;
