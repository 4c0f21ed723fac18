// Loading a dependency at its first use instead of at start-up. An idle pod that never processes an image, never
// talks to S3 and has no push provider configured should not carry sharp, the AWS SDK or web-push in its memory
// (bench: idle pod RSS against a bare relay). The import runs once: every caller awaits the same promise, so no
// request pays for it twice; a failed import is forgotten, so the next use tries again instead of failing forever.

/** A memoised dynamic import: `const sharp = lazyModule(() => import("sharp"))`, then `(await sharp()).default`. */
export function lazyModule<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= load().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
}
