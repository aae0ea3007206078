// Scenarios are data (scenarios.json, or a file given to main.ts): which tool calls the scripted model makes, in order.
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import builtIn from './scenarios.json';
import type { Conversation, Turn } from './conversation';
import { toolCallFor } from './tools';

const stepSchema = z.union([
  z.strictObject({
    say: z.string().optional(),
    writeFile: z.strictObject({ path: z.string().min(1), content: z.string() }),
  }),
  z.strictObject({ say: z.string().optional(), runCommand: z.string().min(1) }),
]);

const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[\w-]+$/),
  description: z.string().optional(),
  /** One tool call a step; the model goes on to the next step once the previous call's result is in. */
  steps: z.array(stepSchema),
  /** The final message, once every step's result is in. */
  finish: z.string(),
  /** The answer to a request that offers no tools (OpenCode's title generator, for one). */
  sideAnswer: z.string().default('Scripted task'),
});

export type ScenarioStep = z.infer<typeof stepSchema>;
export type Scenario = z.infer<typeof scenarioSchema>;

export function parseScenarios(json: unknown, source: string): Scenario[] {
  const parsed = z
    .array(scenarioSchema)
    .min(1)
    .safeParse(Array.isArray(json) ? json : [json]);
  if (!parsed.success) throw new Error(`${source}: not a scenario list: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export const BUILT_IN_SCENARIOS: Scenario[] = parseScenarios(builtIn, 'scenarios.json');

export function loadScenarioFile(path: string): Scenario[] {
  return parseScenarios(JSON.parse(readFileSync(path, 'utf8')), path);
}

export function findScenario(scenarios: Scenario[], name: string): Scenario {
  const found = scenarios.find((s) => s.name === name);
  if (!found) throw new Error(`no scenario "${name}"; known: ${scenarios.map((s) => s.name).join(', ')}`);
  return found;
}

/** A task that says `scenario:<name>` picks that scenario, so one server can drive jobs with different scripts. */
export function scenarioForTask(scenarios: Scenario[], fallback: Scenario, userText: string): Scenario {
  const named = /\bscenario:([\w-]+)/.exec(userText)?.[1];
  return scenarios.find((s) => s.name === named) ?? fallback;
}

export type TurnKind = 'tool_call' | 'finish' | 'side';

/** The scripted model itself: the step is the number of tool calls already in the history. */
export function nextTurn(scenario: Scenario, conversation: Conversation): { kind: TurnKind; turn: Turn } {
  const fill = (template: string) =>
    template.replaceAll('{agent}', conversation.agent).replaceAll('{cwd}', conversation.cwd ?? '');
  if (conversation.tools.length === 0) return { kind: 'side', turn: { text: fill(scenario.sideAnswer) } };
  const step = scenario.steps[conversation.toolCallsMade];
  if (!step) return { kind: 'finish', turn: { text: fill(scenario.finish) } };
  const action =
    'writeFile' in step
      ? { writeFile: { path: fill(step.writeFile.path), content: fill(step.writeFile.content) } }
      : { runCommand: fill(step.runCommand) };
  return { kind: 'tool_call', turn: { text: step.say && fill(step.say), toolCall: toolCallFor(action, conversation) } };
}
