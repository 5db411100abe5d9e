/**
 * The one error type that carries an HTTP answer. Services throw it; http/errors.ts turns it
 * into the contract's JSON. Any other error is a 500 that is logged and never shown.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    /** Safe to show to the caller: it becomes the `error` field. */
    readonly publicMessage: string,
    readonly details?: Array<{ path: string; message: string }>,
  ) {
    super(publicMessage);
    this.name = 'AppError';
  }

  static notFound(): AppError {
    return new AppError(404, 'not found');
  }

  static unauthorized(): AppError {
    return new AppError(401, 'unauthorized');
  }

  static invalidRequest(details: Array<{ path: string; message: string }>): AppError {
    return new AppError(400, 'invalid request', details);
  }
}
