/** A Transport that forwards every call to another; tests extend it and override what they fault. */
import type {
  Consumer,
  ConsumerOptions,
  PublishOptions,
  PubAck,
  Reader,
  ReaderOptions,
  StoredMessage,
  StreamConfig,
  StreamInfo,
  Transport,
} from '../../lib/index.js';

export class DelegatingTransport implements Transport {
  constructor(protected readonly inner: Transport) {}
  publish(subject: string, data: Uint8Array, options?: PublishOptions): Promise<PubAck> {
    return this.inner.publish(subject, data, options);
  }
  openReader(stream: string, options?: ReaderOptions): Reader {
    return this.inner.openReader(stream, options);
  }
  ensureStream(config: StreamConfig): Promise<StreamInfo> {
    return this.inner.ensureStream(config);
  }
  streamInfo(stream: string): Promise<StreamInfo> {
    return this.inner.streamInfo(stream);
  }
  lastSeqOf(stream: string, subject: string): Promise<number> {
    return this.inner.lastSeqOf(stream, subject);
  }
  getMessage(stream: string, seq: number): Promise<StoredMessage | undefined> {
    return this.inner.getMessage(stream, seq);
  }
  consumer(stream: string, options: ConsumerOptions): Promise<Consumer> {
    return this.inner.consumer(stream, options);
  }
  deleteStream(stream: string): Promise<void> {
    return this.inner.deleteStream(stream);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
