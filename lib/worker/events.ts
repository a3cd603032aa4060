/**
 * Typed events a partition worker reports: lifecycle, checkpoints, crashes and dead letters.
 * Metrics, progress displays and the supervisor listen to these.
 */

interface Base {
  stage: string;
  partition: number;
}

/** An event without the stage and partition that report it. */
export type WorkerEventBody =
  | { type: 'restored'; seq: number; epoch: number; outbox: number; timers: number; durationMs: number }
  | { type: 'log-truncated'; checkpointSeq: number; firstSeq: number }
  | { type: 'first-input'; seq: number }
  | { type: 'checkpoint'; seq: number; bytes: number; actors: number; durationMs: number }
  /** `code`: the failure's code when it has one (`TIMEOUT` past `timeoutMs`, `CHECKPOINT_FENCED`...). */
  | { type: 'checkpoint-failed'; seq: number; error: string; code?: string }
  | { type: 'checkpoint-unusable'; key?: string; error: string }
  | { type: 'dead-letter'; seq: number; reason: string; error: string }
  | { type: 'actor-crashed'; key: string; seq: number; attempt: number; error: string }
  | { type: 'actor-restarted'; key: string; replayed: number; from: 'checkpoint' | 'initial'; durationMs: number }
  /** `state`: the state it was rebuilt into (its name, or a nested state value as JSON). */
  | { type: 'actor-reset'; key: string; state: string; reason: string }
  | { type: 'stopped'; seq: number }
  | { type: 'killed'; seq: number }
  | { type: 'failed'; seq: number; error: string };

/** Every event a `PartitionWorker` reports. */
export type WorkerEvent = Base & WorkerEventBody;
