// Runs the scripted model API standalone: `node dist/simulators/model-api/main.js --port N --key K [--listen ADDR]`.
import { parseArgs } from 'node:util';
import { BUILT_IN_SCENARIOS, loadScenarioFile } from './scenarios';
import { ModelApiServer, type Fault } from './server';

const USAGE = `usage: model-api --port N --key K [--listen ADDR] [--scenario NAME] [--scenario-file FILE.json]
                 [--log FILE] [--fault 429|500|hang [--fault-from N] [--fault-count N]]`;

function faultFrom(values: Record<string, string | undefined>): Fault[] {
  if (!values.fault) return [];
  const mode = values.fault === 'hang' ? 'hang' : Number(values.fault);
  if (mode !== 'hang' && mode !== 429 && mode !== 500)
    throw new Error(`--fault "${values.fault}" is not 429, 500 or hang`);
  const count = (name: string) => {
    const text = values[name];
    if (text === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(text)) throw new Error(`--${name} "${text}" is not a positive integer`);
    return Number(text);
  };
  return [{ mode, fromRequest: count('fault-from'), count: count('fault-count') }];
}

async function run(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      key: { type: 'string' },
      listen: { type: 'string', default: '127.0.0.1' },
      scenario: { type: 'string' },
      'scenario-file': { type: 'string' },
      log: { type: 'string' },
      fault: { type: 'string' },
      'fault-from': { type: 'string' },
      'fault-count': { type: 'string' },
    },
  });
  // The key may also come from the environment, so that it need not show in `ps`.
  const key = values.key ?? process.env.AGENTLAB_MODEL_API_KEY;
  if (!values.port || !/^\d+$/.test(values.port) || !key) {
    console.error(USAGE);
    process.exit(2);
  }
  const scenarios = values['scenario-file'] ? loadScenarioFile(values['scenario-file']) : BUILT_IN_SCENARIOS;
  const server = new ModelApiServer({
    key,
    scenarios,
    scenario: values.scenario ?? (values['scenario-file'] ? scenarios[0]!.name : undefined),
    logFile: values.log,
    faults: faultFrom(values),
  });
  const url = await server.listen(Number(values.port), values.listen);
  // stdout is data: one line saying where it listens; the key is not repeated.
  console.log(JSON.stringify({ url, scenario: server.scenarioName, scenarios: scenarios.map((s) => s.name) }));
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

run().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
