// The filter between the agent and its log (`agent-runner --redact`): secret values never reach the disk.
import { REDACTED } from './redaction';

/**
 * Streams stdin to stdout with every value replaced, across chunk boundaries: the only bytes held back
 * are a tail that could still become a value, released (or redacted) by the next chunk or at the end.
 */
export function redactStream(
  values: string[],
  input: NodeJS.ReadableStream,
  output: NodeJS.WritableStream,
): Promise<void> {
  const needles = values.map((v) => Buffer.from(v, 'utf8')).filter((b) => b.length > 0);
  const replacement = Buffer.from(REDACTED);
  let held = Buffer.alloc(0);
  const heldTail = (tail: Buffer): number => {
    let hold = 0;
    for (const needle of needles) {
      const from = Math.max(0, tail.length - needle.length + 1);
      for (let p = tail.indexOf(needle[0]!, from); p !== -1 && p < tail.length; p = tail.indexOf(needle[0]!, p + 1)) {
        const k = tail.length - p;
        if (k > hold && tail.subarray(p).equals(needle.subarray(0, k))) hold = k;
        if (hold >= k) break;
      }
    }
    return hold;
  };
  const step = (chunk: Buffer, final: boolean): Buffer => {
    const buf = held.length ? Buffer.concat([held, chunk]) : chunk;
    const parts: Buffer[] = [];
    let pos = 0;
    for (;;) {
      let best = -1;
      let bestLength = 0;
      for (const needle of needles) {
        const at = buf.indexOf(needle, pos);
        if (at !== -1 && (best === -1 || at < best || (at === best && needle.length > bestLength))) {
          best = at;
          bestLength = needle.length;
        }
      }
      if (best === -1) break;
      parts.push(buf.subarray(pos, best), replacement);
      pos = best + bestLength;
    }
    const tail = buf.subarray(pos);
    const hold = final ? 0 : heldTail(tail);
    parts.push(tail.subarray(0, tail.length - hold));
    held = Buffer.from(tail.subarray(tail.length - hold));
    return Buffer.concat(parts);
  };
  return new Promise((resolve, reject) => {
    input.on('data', (chunk: Buffer) => {
      const out = step(chunk, false);
      if (out.length && !output.write(out)) {
        input.pause();
        output.once('drain', () => input.resume());
      }
    });
    input.on('end', () => output.write(step(Buffer.alloc(0), true), () => resolve()));
    input.on('error', reject);
  });
}
