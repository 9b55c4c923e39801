import { LicenseResponseError, type LicenseError } from './client-errors.ts';
import { LineConnection, type ConnectOptions } from './line-connection.ts';
import { parseResponse, positive, single, unexpected, word } from './protocol-text.ts';

export interface TokenGrant {
  tokens: number;
  feature: string;
}

/**
 * A client for the licd token port (SPEC 4.1): draws parallel tokens against a handle issued on the license port
 * of the same server. `ERR UNKNOWN_HANDLE` here is the symptom of a balancer that split a client's ports.
 */
export class TokenClient {
  readonly #conn: LineConnection;

  private constructor(conn: LineConnection) {
    this.#conn = conn;
  }

  static async open(
    host: string,
    port: number,
    opts: ConnectOptions = {},
    hooks: { onDisconnect?(err: LicenseError | undefined): void } = {},
  ): Promise<TokenClient> {
    return new TokenClient(await LineConnection.open(host, port, opts, hooks));
  }

  get connected(): boolean {
    return this.#conn.connected;
  }

  get closed(): Promise<void> {
    return this.#conn.closed;
  }

  async tokens(handle: string, n: number): Promise<TokenGrant> {
    const cmd = `TOKENS ${word('handle', handle)} ${positive('tokens', n)}`;
    return this.#conn.request(
      cmd,
      (line) => {
        const r = parseResponse(line);
        if (r.verb !== 'GRANTED') throw unexpected(cmd, r);
        const tokens = Number(r.args.tokens);
        if (!Number.isInteger(tokens)) throw new LicenseResponseError(cmd, line);
        return { value: { tokens, feature: r.args.feature ?? '' } };
      },
      { expectsGrant: true },
    );
  }

  async release(n: number): Promise<void> {
    const cmd = `RELEASE ${positive('tokens', n)}`;
    await this.#conn.request(cmd, single(cmd, 'OK'));
  }

  /** Ends the connection; the server frees the tokens it still holds for it. */
  close(): Promise<void> {
    return this.#conn.end();
  }

  destroy(): void {
    this.#conn.destroy();
  }
}

/** Opens a token-port connection. */
export function openTokens(host: string, tokenPort: number, opts: ConnectOptions = {}): Promise<TokenClient> {
  return TokenClient.open(host, tokenPort, opts);
}
