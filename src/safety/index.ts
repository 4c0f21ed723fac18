// Reporting and moderation wired for one gateway: the audit log, reports (and their operator webhook when
// REPORT_WEBHOOK_URL is set) and suspensions. The transport adds the routes and ends suspended users' sockets.
import type { Logger } from "pino";
import type { Accounts } from "../auth/accounts.js";
import type { Config } from "../config.js";
import type { Db } from "../db/client.js";
import { AuditLog } from "./audit.js";
import { createReportWebhook } from "./report-webhook.js";
import { Reports } from "./reports.js";
import { Suspensions } from "./suspensions.js";

export interface Safety {
  audit: AuditLog;
  reports: Reports;
  suspensions: Suspensions;
  /** Stops the report webhook's worker (queued deliveries stay in Redis for the other pods). */
  close(): Promise<void>;
}

export function createSafety(deps: { db: Db; accounts: Accounts; log: Logger }, config: Readonly<Config>): Safety {
  const log = deps.log.child({ component: "safety" });
  const audit = new AuditLog(deps.db);
  const reports = new Reports(deps.db, audit);
  const suspensions = new Suspensions(deps.db, deps.accounts, audit);
  const webhook =
    config.REPORT_WEBHOOK_URL !== undefined && config.REPORT_WEBHOOK_SECRET !== undefined
      ? createReportWebhook({
          url: config.REPORT_WEBHOOK_URL,
          secret: config.REPORT_WEBHOOK_SECRET,
          retry: { attempts: config.PUSH_MAX_ATTEMPTS, baseDelayMs: config.PUSH_RETRY_BASE_MS },
          log,
          redisUrl: config.REDIS_URL,
          prefix: config.PUSH_QUEUE_PREFIX,
        })
      : undefined;
  if (webhook !== undefined) reports.onFiled((report) => webhook.deliver(report));
  return { audit, reports, suspensions, close: async () => webhook?.close() };
}
