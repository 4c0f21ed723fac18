// Prometheus metrics on /metrics (prom-client), one registry per gateway so tests can run several in one process.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly socketsConnected = new Gauge({
    name: "chat_sockets_connected",
    help: "Socket.IO connections open on this pod",
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: "chat_socket_events_total",
    help: "Client events handled, by event and outcome (ok or error code)",
    labelNames: ["event", "outcome"] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: "chat_http_requests_total",
    help: "HTTP requests, by route and status",
    labelNames: ["route", "method", "status"] as const,
    registers: [this.registry],
  });
  readonly messagesStored = new Counter({
    name: "chat_messages_stored_total",
    help: "Messages committed to the database by this pod",
    registers: [this.registry],
  });
  readonly sendToAck = new Histogram({
    name: "chat_send_to_ack_seconds",
    help: "From a message:send arriving to its ack (includes the batched commit)",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly writerPending = new Gauge({
    name: "chat_message_writer_pending",
    help: "Sends queued or in flight in the batched writer",
    registers: [this.registry],
  });
  readonly dependencyUp = new Gauge({
    name: "chat_dependency_up",
    help: "1 when a dependency answered its last readiness check",
    labelNames: ["dependency"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  event(event: string, outcome: string): void {
    this.events.inc({ event, outcome });
  }
}
