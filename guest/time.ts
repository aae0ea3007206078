// Waiting and durations, as the runner's modules share them.

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds as seconds with one decimal, as the result and report.json give durations. */
export const seconds = (ms: number): number => Math.round(ms / 100) / 10;
