import { printable } from './printable.ts';

/**
 * Every failure an operator can see has a stable code. Tests and scripts match codes, never message text.
 * Messages are one line naming the place and the value; the CLI prints them without a stack.
 */
export const ErrorCodes = {
  LPX_ERR_CONFIG: 'the configuration file has errors (each listed with file:line:column and YAML path)',
  LPX_ERR_CONFIG_READ: 'the configuration file cannot be read',
  LPX_ERR_USAGE: 'a command-line argument is wrong',
  LPX_ERR_LISTEN: 'a listener could not open its address (in use, or not allowed)',
  LPX_ERR_PROTOCOL: 'a peer sent something the protocol does not allow',
  LPX_ERR_TIMEOUT: 'an operation did not finish in time',
  LPX_ERR_CONNECT: 'a connection could not be opened',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class LpxError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'LpxError';
    this.code = code;
  }
}

/** One problem in a configuration file, at one place. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** YAML path such as `pools.lsdyna.servers[1].weight`; empty for the document itself. */
  path: string;
  message: string;
}

/** One line; keys and values echoed from the file are escaped (printable), never raw control bytes. */
export function formatIssue(i: ConfigIssue): string {
  return printable(`${i.file}:${i.line}:${i.col} ${i.path ? i.path + ': ' : ''}${i.message}`);
}

/** A configuration that failed validation: carries every issue found, not only the first. */
export class ConfigError extends LpxError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('LPX_ERR_CONFIG', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Message of any thrown value, for one-line reporting. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
