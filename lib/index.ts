/**
 * warden: fault-tolerant real-time pipelines of supervised xstate actors over a replayable log.
 *
 * The public API, as a list: what a user defines (actors, pipelines, guarded calls,
 * supervisors), runs (nodes, producers), reads (key state, status, events) and implements
 * (the `Transport` and `CheckpointStore` ports). Adapters for real backends live in
 * `warden/nats` and `warden/redis`, test helpers in `warden/testing`; everything else is
 * internal. docs/api.md lists every export with one line each (a test keeps the two equal).
 *
 * @example
 * import { defineActor, definePipeline, startNode } from 'warden';
 */

// Time, errors, logging.
export { SystemClock, type Clock, type TimerHandle } from './core/clock.js';
export type { Envelope, Json } from './core/envelope.js';
export {
  WardenError,
  ConfigError,
  ValidationError,
  TerminalError,
  ActorCrashedError,
  CheckpointFencedError,
  type WardenErrorCode,
  type WardenErrorOptions,
} from './core/errors.js';
export { createLogger, silentLogger, type Logger, type LoggerOptions } from './core/logger.js';

// Actors.
export { defineActor, type ActorOptions, type ActorDefinition, type PayloadSchema, type StandardSchemaV1 } from './actor/define-actor.js';
export type { EmittedEvent } from './actor/actor-host.js';
export { fromCall, type CallTarget, type CallError, type CallResult, type CallLookup } from './actor/calls.js';
export type { WorkerEvent } from './worker/events.js';
export type { DeadLetter, DeadLetterReason } from './worker/dead-letter.js';
export type { StageRouting, Route, WorkerStage, ResolvedActorSupervision } from './worker/stage.js';

// Pipelines and nodes.
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
export type {
  NodeOptions,
  NodeSupervisionOptions,
  WardenNode,
  NodeEvent,
  PartitionDownEvent,
  PartitionStatus,
} from './pipeline/node-types.js';
export type { PartitionOwnership, PartitionControl, PartitionOwner, OwnershipEvent } from './pipeline/ownership.js';

// Clusters.
export { startNode, type ClusterOptions, type ClusterNodeOptions } from './cluster/node.js';
export { InMemoryLeaseStore, type InMemoryLeaseStoreOptions } from './cluster/in-memory-leases.js';
export { clusterStatus, type ClusterStatus, type ClusterPartitionStatus } from './cluster/status.js';
export type { LeaseStore, Lease, LeaseEntry, LeaseChange } from './cluster/leases.js';
export { actorGroup, type ActorGroupOptions, type PartitionDown } from './pipeline/actor-group.js';
export { createProducer, type Producer, type ProducerOptions, type IngestInput } from './pipeline/producer.js';
export { readKeyState, type KeyState, type ReadKeyStateOptions } from './pipeline/read-state.js';
export {
  listDeadLetters,
  replayDeadLetters,
  type StoredDeadLetter,
  type DeadLetterReplay,
  type DeadLetterFilter,
  type DeadLetterOptions,
  type ReplayResult,
} from './pipeline/dead-letters.js';
export { teardownPipeline, type TeardownOptions, type TeardownReport } from './pipeline/teardown.js';

// Supervision.
export {
  createSupervisor,
  supervise,
  SupervisorRefusedError,
  type RefusalReason,
  type ChildRef,
  type WorkerRef,
  type SupervisorRef,
  type SupervisorAdmin,
  type SuperviseOptions,
  type Strategy,
  type RestartType,
  type Shutdown,
  type BackoffOptions,
  type ChildHandle,
  type ChildContext,
  type WorkerChildSpec,
  type SupervisorChildSpec,
  type ActorGroupChildSpec,
  type ChildSpec,
  type SupervisorOptions,
  type ChildStatus,
  type ChildInfo,
  type ChildCounts,
  type TreeNode,
  type SupervisionEvent,
  type Supervisor,
} from './supervision/index.js';

// Guarded calls.
export {
  defineCall,
  getCall,
  listCalls,
  retryAfterFrom,
  registerCallMetrics,
  LATENCY_BUCKETS_MS,
  type RetryAfterSource,
  type HeadersLike,
  type CallMetricsOptions,
  type GuardedCall,
  type GuardedCallOptions,
  type CallFn,
  type CallContext,
  type CallOptions,
  type CallOutcome,
  type RetryOptions,
  type BreakerOptions,
  type BreakerState,
  type AttemptFailureKind,
  type CallAlert,
  type CallEvent,
  type CallMetrics,
  type BreakerStateStore,
  type SharedBreakerState,
} from './resilience/index.js';

// Operations: metrics, endpoints, readiness.
export { registerNodeMetrics, type NodeMetricsOptions } from './observe/metrics.js';
export { createOpsHandler, type OpsHandler, type OpsHandlerOptions } from './observe/http.js';
export { watchAlerts, type AlertKind, type AlertOptions, type AlertWatcher, type WardenAlert } from './observe/alerts.js';
export { readiness, type Readiness, type ReadinessOptions, type NotReadyReason } from './observe/readiness.js';
export type { NodeMetrics, PartitionTotals, StageMetrics } from './pipeline/node-types.js';
export type { HistogramSnapshot } from './core/histogram.js';

// Ports and their embedded implementations.
export type {
  Transport,
  StreamConfig,
  StoredMessage,
  PublishOptions,
  PubAck,
  StreamInfo,
  Reader,
  ReaderOptions,
  Consumer,
  ConsumerOptions,
  Delivery,
} from './transport/transport.js';
export { InMemoryTransport, type InMemoryTransportOptions, type ConsumerAdvisory } from './transport/in-memory-transport.js';
export type {
  CheckpointStore,
  CheckpointScope,
  Claim,
  CheckpointWrite,
  CheckpointMeta,
  ActorEntry,
  OutboxEntry,
  TimerIndexEntry,
  CallIndexEntry,
  WriteResult,
} from './checkpoint/checkpoint-store.js';
export { InMemoryCheckpointStore } from './checkpoint/in-memory-checkpoint-store.js';
