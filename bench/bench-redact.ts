// Benchmark: how fast the guest runner's redactor passes agent output through (MiB/s), with and without
// secrets in the stream, and the overhead of the redacting process against a plain copy.
import { PassThrough, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { agentRunnerPath } from '../common/paths';

interface Runner {
  redactStream(values: string[], input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<void>;
}

const TOTAL_MIB = 64;
const CHUNK = 64 * 1024;

async function throughput(values: string[], makeChunk: () => Buffer): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const runner = require(agentRunnerPath()) as Runner;
  const input = new PassThrough();
  let bytes = 0;
  const output = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback();
    },
  });
  const started = process.hrtime.bigint();
  const done = runner.redactStream(values, input, output);
  for (let written = 0; written < TOTAL_MIB * 1024 * 1024; written += CHUNK) {
    if (!input.write(makeChunk())) await new Promise((resolve) => input.once('drain', resolve));
  }
  input.end();
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (bytes === 0) throw new Error('nothing came out');
  return TOTAL_MIB / seconds;
}

async function main(): Promise<void> {
  const secrets = Array.from({ length: 10 }, () => `sk-${randomBytes(20).toString('hex')}`);
  const line = Buffer.from('building module 42 of 97: compiling src/components/widget.tsx ... ok\n');
  const plainChunk = Buffer.concat(Array.from({ length: Math.ceil(CHUNK / line.length) }, () => line)).subarray(
    0,
    CHUNK,
  );
  const withSecret = Buffer.from(plainChunk);
  withSecret.write(secrets[3]!, 1000); // one secret in every chunk
  const noSecrets = await throughput(secrets, () => plainChunk);
  const everyChunk = await throughput(secrets, () => withSecret);
  const noRedaction = await throughput([], () => plainChunk);
  console.log(`redactor, ${TOTAL_MIB} MiB of agent output, 10 secrets of 43 chars:`);
  console.log(`  no secret in the output:       ${noSecrets.toFixed(0)} MiB/s`);
  console.log(`  a secret in every 64 KiB chunk: ${everyChunk.toFixed(0)} MiB/s`);
  console.log(`  no values to redact (baseline): ${noRedaction.toFixed(0)} MiB/s`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
