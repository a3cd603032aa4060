/**
 * `warden/nats`: the NATS JetStream adapters (JetStreamTransport, KV leases) arrive with issue 4.
 * Until then this entry point exports nothing, so importing it is not an error but gives no API.
 */
export {};
