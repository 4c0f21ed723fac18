// A deadline for Redis calls a request waits on. node-redis's own command timeout only covers the time a command
// waits to be written: once written, a command waits for Redis's answer as long as Redis takes (CLIENT PAUSE, a slow
// script, DEBUG SLEEP), and a request waiting on it would hang with it. The late answer is dropped, not awaited.

export class RedisDeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`redis did not answer ${what} within ${ms} ms`);
    this.name = "RedisDeadlineError";
  }
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RedisDeadlineError(what, ms)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        // Passed on as it is: rate-limiter-flexible rejects with a RateLimiterRes (not an Error) when a key is over
        // its limit, and wrapping it hid that from the caller, which then answered `internal` instead of 429.
        reject(err);
      },
    );
  });
}
