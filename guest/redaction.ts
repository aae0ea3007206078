// Redaction: every secret value of 6+ characters becomes [REDACTED] in the log, the runner's messages
// and the result. Shorter values would redact ordinary words and protect nothing.
import type { GuestSecrets } from '../common/contract';
import { git } from './git';

export const REDACTED = '[REDACTED]';
const MIN_REDACTED_LENGTH = 6;

/** This job's values to redact, set once the claim (with its secrets) is in. */
let redactValues: string[] = [];

export function setRedactValues(values: string[]): void {
  redactValues = values;
}

export const valuesToRedact = (): readonly string[] => redactValues;

/** The strings to redact for a secrets bundle: env values, the git token, the key and its lines. */
export function secretValues(secrets: GuestSecrets | null | undefined): string[] {
  if (!secrets) return [];
  const values: string[] = [...Object.values(secrets.env || {})];
  const git = secrets.git || {};
  if (git.token) values.push(git.token);
  if (git.sshPrivateKey) values.push(git.sshPrivateKey, ...git.sshPrivateKey.split('\n'));
  const settings = secrets.agent && secrets.agent.claudeSettingsJson;
  if (settings) {
    values.push(settings);
    const visit = (value: unknown, key: string, underEnv: boolean): void => {
      if (typeof value === 'string' && (underEnv || /key|token|secret|password|auth/i.test(key))) values.push(value);
      else if (value && typeof value === 'object')
        for (const [k, v] of Object.entries(value)) visit(v, k, underEnv || k === 'env');
    };
    try {
      visit(JSON.parse(settings), '', false);
    } catch {
      /* validated on the host; nothing more to find */
    }
  }
  const unique = [...new Set(values.map((v) => String(v).trim()).filter((v) => v.length >= MIN_REDACTED_LENGTH))];
  return unique.sort((a, b) => b.length - a.length); // the longest first, so a value inside another goes too
}

/** The forms of a value that are redacted: the value itself, and as it appears inside a JSON string. */
function valueForms(value: string): string[] {
  const quoted = JSON.stringify(value).slice(1, -1);
  return quoted !== value ? [value, quoted] : [value];
}

/** Replaces every needle, in order (the longest values come first); returns the text and how many went. */
function replaceNeedles(text: string, needles: string[]): { text: string; count: number } {
  let count = 0;
  for (const needle of needles) {
    const parts = text.split(needle);
    count += parts.length - 1;
    text = parts.join(REDACTED);
  }
  return { text, count };
}

export function redactText(text: string): string {
  return replaceNeedles(String(text), redactValues.flatMap(valueForms)).text;
}

export interface RedactedPatch {
  patch: Buffer;
  redactions: number;
  withheld: string[];
}

/**
 * Redacts the agent's patch before it reaches the disk. Works on bytes (a latin1 string holds one
 * byte per character), since files need not be UTF-8. A multi-line value in a patch is a run of
 * lines, each after its "+", "-" or " ": it becomes as many [REDACTED] lines with the same
 * prefixes, so the hunk's line counts stay right. The blob ids of a file that had a value replaced
 * hash its clear content, so its index line goes. A binary file is base85 in the patch, where no
 * value can be found: one whose old or new content holds a value (also as UTF-16, which git takes
 * for binary) is left out and listed.
 */
export async function redactPatch(patch: Buffer, repoDir: string): Promise<RedactedPatch> {
  if (redactValues.length === 0) return { patch, redactions: 0, withheld: [] };
  const bytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
  const lineRun = (value: string): RegExp =>
    new RegExp(
      bytes(value)
        .split('\n')
        .map((line) => line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('\n[-+ ]'),
      'g',
    );
  const needles = redactValues.map((value) => ({
    forms: valueForms(value).map(bytes),
    run: value.includes('\n') ? lineRun(value) : null,
  }));
  const redactSection = (section: string): { text: string; count: number } => {
    let text = section;
    let count = 0;
    for (const { forms, run } of needles) {
      const replaced = replaceNeedles(text, forms);
      text = replaced.text;
      count += replaced.count;
      if (run)
        text = text.replace(run, (match) => {
          count++;
          return match
            .split('\n')
            .map((line, i) => (i > 0 ? line[0] : '') + REDACTED)
            .join('\n');
        });
    }
    return { text, count };
  };
  const binaryForms = redactValues.flatMap((value) => [
    ...valueForms(value).map(bytes),
    Buffer.from(value, 'utf16le').toString('latin1'),
  ]);
  const blobsHoldValue = async (ids: string[]): Promise<boolean> => {
    for (const id of ids.filter((id) => !/^0+$/.test(id))) {
      const blob = (await git(['cat-file', 'blob', id], { cwd: repoDir, buffer: true })).toString('latin1');
      if (binaryForms.some((form) => blob.includes(form))) return true;
    }
    return false;
  };
  let redactions = 0;
  const withheld: string[] = [];
  const kept: string[] = [];
  // Every file's section starts a line with "diff --git ": patch content lines never do (they start
  // with a +, - or space, and base85 has no space).
  for (const section of patch.toString('latin1').split(/(?<=\n)(?=diff --git )/)) {
    const binary = section.includes('\nGIT binary patch\n') && /\nindex ([0-9a-f]+)\.\.([0-9a-f]+)/.exec(section);
    if (binary && (await blobsHoldValue(binary.slice(1) as string[]))) {
      withheld.push(redactText(sectionPath(section))); // its name may hold a value too
      continue;
    }
    const { text, count } = redactSection(section);
    redactions += count;
    kept.push(count > 0 ? text.replace(/\nindex [^\n]*/, '') : section);
  }
  if (redactions === 0 && withheld.length === 0) return { patch, redactions, withheld };
  return { patch: Buffer.from(kept.join(''), 'latin1'), redactions, withheld };
}

/** The path a file's section is about, as git writes it (quoted if git quoted it). */
function sectionPath(section: string): string {
  const renamed = /\nrename to ([^\n]*)/.exec(section);
  if (renamed) return Buffer.from(renamed[1]!, 'latin1').toString('utf8');
  const header = section.slice('diff --git '.length, section.indexOf('\n')); // "a/P b/P" or '"a/P" "b/P"'
  const second = header.slice((header.length + 1) / 2);
  const name = second.startsWith('"') ? `"${second.slice(3)}` : second.slice(2);
  return Buffer.from(name, 'latin1').toString('utf8');
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** One sentence for the log and the result message; the paths go only to the log and report.json. */
export function patchRedactionSummary(redactions: number, withheld: number): string {
  const parts: string[] = [];
  if (redactions > 0)
    parts.push(
      `${plural(redactions, 'secret value')} replaced with ${REDACTED}, so it will not apply as written at those places`,
    );
  if (withheld > 0) parts.push(`${plural(withheld, 'binary file')} holding a secret left out`);
  return `changes.patch: ${parts.join('; ')}`;
}
