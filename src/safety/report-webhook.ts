// Delivers each new report to the operator's webhook (REPORT_WEBHOOK_URL): a signed POST, retried with exponential
// backoff through a BullMQ queue when Redis is there (a job survives the pod that filed it), in process otherwise.
// Filing never waits for it: the report is committed first and the job queued after, errors only logged.
//
// Body `{type: "report", report}` (the admin API's report object, the message snapshot included). Signature as the
// push webhook's: `x-report-timestamp: <unix seconds>` and `x-report-signature: v1=<hex HMAC-SHA256(secret,
// "<timestamp>.<raw body>")>`. A 2xx is done; 4xx other than 408/429 is dropped (logged); the rest is retried.
import { Queue, UnrecoverableError, Worker } from "bullmq";
import type { Logger } from "pino";
import { backoffMs, type RetryPolicy } from "../push/queue.js";
import { signWebhook } from "../push/webhook-provider.js";
import type { ReportView } from "./reports.js";

export interface ReportWebhook {
  /** Queues the delivery; never throws, never waits for the receiver. */
  deliver(report: ReportView): void;
  close(): Promise<void>;
}

export interface ReportWebhookOptions {
  url: string;
  secret: string;
  retry: RetryPolicy;
  log: Logger;
  /** BullMQ on this Redis when set; in process otherwise. */
  redisUrl?: string | undefined;
  /** BullMQ key prefix (shared with the push queue's). */
  prefix?: string | undefined;
}

class RetryableWebhookError extends Error {}

/** One POST; resolves on 2xx, throws RetryableWebhookError for what may work later, Error for a refusal. */
export async function postReport(url: string, secret: string, report: ReportView): Promise<void> {
  const body = JSON.stringify({ type: "report", report });
  const timestamp = Math.floor(Date.now() / 1000);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-report-timestamp": String(timestamp),
        "x-report-signature": signWebhook(secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer().catch(() => undefined);
  } catch (err) {
    throw new RetryableWebhookError(`report webhook request failed: ${(err as Error).message}`);
  }
  if (res.ok) return;
  if (res.status >= 500 || res.status === 408 || res.status === 429) {
    throw new RetryableWebhookError(`report webhook answered ${res.status}`);
  }
  throw new Error(`report webhook refused with ${res.status}`);
}

export function createReportWebhook(options: ReportWebhookOptions): ReportWebhook {
  return options.redisUrl !== undefined ? bullWebhook(options, options.redisUrl) : inProcessWebhook(options);
}

function bullWebhook(options: ReportWebhookOptions, redisUrl: string): ReportWebhook {
  const common = { connection: { url: redisUrl, maxRetriesPerRequest: null }, prefix: options.prefix ?? "chat-push" };
  const queue = new Queue<{ report: ReportView }>("report-webhook", common);
  queue.on("error", (err) => options.log.warn({ err }, "report webhook queue error"));
  const worker = new Worker<{ report: ReportView }>(
    "report-webhook",
    async (job) => {
      try {
        await postReport(options.url, options.secret, job.data.report);
      } catch (err) {
        // A refusal is not retried.
        if (!(err instanceof RetryableWebhookError)) throw new UnrecoverableError((err as Error).message);
        throw err;
      }
    },
    {
      ...common,
      concurrency: 4,
      settings: { backoffStrategy: (attemptsMade: number) => backoffMs(options.retry, attemptsMade) },
    },
  );
  worker.on("error", (err) => options.log.warn({ err }, "report webhook worker error"));
  worker.on("failed", (job, err) => {
    if (job === undefined) return;
    if (job.attemptsMade >= (job.opts.attempts ?? 1) || err instanceof UnrecoverableError) {
      options.log.warn({ reportId: job.data.report.id, err: err.message }, "report webhook delivery given up");
    }
  });
  return {
    deliver(report) {
      queue
        .add(
          "deliver",
          { report },
          {
            // One delivery per report even if it is queued twice.
            jobId: `report_${report.id}`,
            attempts: options.retry.attempts,
            backoff: { type: "custom" },
            removeOnComplete: { age: 3600 },
            removeOnFail: { age: 7 * 24 * 3600 },
          },
        )
        .catch((err: unknown) => options.log.warn({ err, reportId: report.id }, "could not queue report webhook"));
    },
    async close() {
      await worker.close();
      await queue.close();
    },
  };
}

function inProcessWebhook(options: ReportWebhookOptions): ReportWebhook {
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const attempt = (report: ReportView, n: number): void => {
    postReport(options.url, options.secret, report).catch((err: unknown) => {
      const retryable = err instanceof RetryableWebhookError;
      if (!retryable || n >= options.retry.attempts || closed) {
        options.log.warn({ reportId: report.id, err: (err as Error).message }, "report webhook delivery given up");
        return;
      }
      const timer = setTimeout(
        () => {
          timers.delete(timer);
          attempt(report, n + 1);
        },
        backoffMs(options.retry, n),
      );
      timers.add(timer);
    });
  };
  return {
    deliver: (report) => attempt(report, 1),
    async close() {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
    },
  };
}
