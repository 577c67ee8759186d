// An HTTP error: a txkv error code with its own HTTP status. Main thread.
import { TxnError, type TxnErrorCode } from '../errors.js';

/** An error with its own HTTP status (the code alone does not decide it). */
export class HttpError extends TxnError {
  constructor(
    code: TxnErrorCode,
    message: string,
    readonly status: number,
    /** The code on the wire when it is an HTTP-only one (NOT_FOUND, METHOD_NOT_ALLOWED). */
    readonly httpCode?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message);
  }
}

