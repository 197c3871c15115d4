/**
 * What both command lines share: usage errors (exit code 2), `--help` and `--version`, numeric
 * flags, and errors told in one line.
 *
 * @module
 */

import { sanitizeForTerminal, VERSION } from "../protocol.ts";

/** A command-line mistake (exit code 2): the message says what to change. */
export class UsageError extends Error {
  constructor(message: string) {
    super(sanitizeForTerminal(message));
    this.name = "UsageError";
  }
}

/** Options for {@linkcode readCommandLine}. */
export interface CommandLineOptions<T> {
  /** Which program this is, as errors and `--version` name it. */
  program: "client" | "server";
  /**
   * Reads the arguments into options.
   * @throws {UsageError} for a mistake in them.
   */
  parse: (args: string[]) => T;
  /** The text `--help` prints. */
  usage: string;
}

/**
 * Parses the arguments, prints the usage for `--help` and the version for `--version`, and turns
 * a {@linkcode UsageError} into one line on standard error. Returns the options to run with, or
 * the exit code when there is nothing more to do (0 after help or version, 2 after a usage error).
 */
export function readCommandLine<T extends { help: boolean; version: boolean }>(
  args: string[],
  options: CommandLineOptions<T>,
): T | number {
  const { program, parse, usage } = options;
  let parsed: T;
  try {
    parsed = parse(attachNegativeValues(args));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`${program}: ${error.message}\nRun with --help for usage.`);
    return 2;
  }
  if (parsed.help) {
    console.log(usage);
    return 0;
  }
  if (parsed.version) {
    console.log(`chat ${program} ${VERSION}`);
    return 0;
  }
  return parsed;
}

/**
 * `--flag -1` as `--flag=-1`: `parseArgs` takes a value that starts with `-` for an option and
 * calls it ambiguous, where the person meant a (negative, so wrong) number that the flag's own
 * check should answer ("--history must be a whole number from 0 to 200, not "-1"").
 */
export function attachNegativeValues(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const next = args[i + 1];
    if (/^--[^=]+$/.test(arg) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** Limits for {@linkcode numberFlag}. */
export interface NumberFlagOptions {
  /** @default {0} */
  min?: number;
  /** @default {Number.MAX_SAFE_INTEGER} */
  max?: number;
  /** Whether fractions are allowed. @default {false} */
  fraction?: boolean;
}

/**
 * Reads a numeric flag from `parseArgs` values: a number within `min` and `max` (whole unless
 * `fraction`), or `fallback` when absent.
 * @throws {UsageError} naming the flag and the range it takes.
 */
export function numberFlag(
  values: Record<string, unknown>,
  flag: string,
  fallback: number,
  options: NumberFlagOptions = {},
): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER, fraction = false } = options;
  const text = values[flag];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (
    typeof text !== "string" || text.trim() === "" || !Number.isFinite(value) ||
    (!fraction && !Number.isInteger(value)) || value < min || value > max
  ) {
    const kind = fraction ? "a number" : "a whole number";
    throw new UsageError(`--${flag} must be ${kind} from ${min} to ${max}, not "${String(text)}"`);
  }
  return value;
}
