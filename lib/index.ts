/**
 * warden: fault-tolerant real-time pipelines of supervised xstate actors over a replayable log.
 * The public API; adapters for real backends live in `warden/nats` and `warden/redis`, test
 * helpers in `warden/testing`.
 */
export { SystemClock, SimulatedClock, sleep, type Clock, type TimerHandle } from './core/clock.js';
export { encodeEnvelope, decodeEnvelope, envelopeBody, type Envelope, type Json } from './core/envelope.js';
export {
  WardenError,
  ConfigError,
  ValidationError,
  TerminalError,
  ActorCrashedError,
  CheckpointFencedError,
  describeError,
  errorChain,
  type WardenErrorCode,
  type WardenErrorOptions,
} from './core/errors.js';
export { outputMessageId, deadLetterMessageId, partitionOf } from './core/ids.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './core/logger.js';
export { redactUrl, scrubSecrets } from './core/redact.js';
export {
  resolveStreamConfig,
  subjectMatches,
  type Transport,
  type StreamConfig,
  type StoredMessage,
  type PublishOptions,
  type PubAck,
  type StreamInfo,
  type Reader,
  type ReaderOptions,
  type Consumer,
  type ConsumerOptions,
  type Delivery,
} from './transport/transport.js';
export { InMemoryTransport } from './transport/in-memory-transport.js';
export {
  scopeId,
  type CheckpointStore,
  type CheckpointScope,
  type CheckpointWrite,
  type CheckpointMeta,
  type ActorEntry,
  type OutboxEntry,
  type WriteResult,
} from './checkpoint/checkpoint-store.js';
export { InMemoryCheckpointStore } from './checkpoint/in-memory-checkpoint-store.js';
export { defineActor, type ActorOptions, type ActorDefinition, type PayloadSchema, type StandardSchemaV1 } from './actor/define-actor.js';
export { ActorHost, type ActorHostOptions, type EmittedEvent, type LogPoint, type PendingTimer } from './actor/actor-host.js';
export { validateInput } from './actor/validate.js';
export { PartitionWorker, type PartitionWorkerOptions, type WorkerStats, type Failpoint } from './worker/worker.js';
export type { WorkerEvent } from './worker/events.js';
export type { DeadLetter, DeadLetterReason } from './worker/dead-letter.js';
export type { StageRouting, Route, WorkerStage } from './worker/stage.js';
export { actorGroup, type ActorGroupOptions, type PartitionDown } from './pipeline/actor-group.js';
export {
  definePipeline,
  type Pipeline,
  type PipelineOptions,
  type StageOptions,
  type ResolvedStage,
  type CheckpointPolicyOptions,
  type Guarantee,
  type ActorSupervisionOptions,
} from './pipeline/define-pipeline.js';
export * from './supervision/index.js';
export { startNode, type NodeOptions, type WardenNode, type NodeEvent, type IngestInput, type PartitionStatus } from './pipeline/node.js';
export { fromCall, type CallTarget, type CallError, type CallResult, type CallLookup } from './actor/calls.js';
export * from './resilience/index.js';
