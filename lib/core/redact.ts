/**
 * Keeping credentials out of logs, events and errors: every adapter redacts the URLs it names
 * and scrubs the secrets it was given from any text that leaves it.
 */

/**
 * A server URL with its userinfo (user, password or token) replaced by `***`; a URL without
 * userinfo comes back unchanged. Works with and without a scheme (`user:pw@host:4222`).
 *
 * @example
 * redactUrl('nats://alice:s3cret@nats.internal:4222') // 'nats://***@nats.internal:4222'
 * redactUrl('tok@127.0.0.1:4222')                      // '***@127.0.0.1:4222'
 * redactUrl('redis://127.0.0.1:6379')                  // unchanged
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at === -1) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  // An '@' after the authority (in a path or query) is not userinfo.
  const authorityEnd = url.slice(scheme.length).search(/[/?#]/);
  if (authorityEnd !== -1 && at > scheme.length + authorityEnd) return url;
  return `${scheme}***@${url.slice(at + 1)}`;
}

/**
 * Replaces every occurrence of each secret (of 3+ characters) in `text` by `***`.
 *
 * @example
 * scrubSecrets('auth failed for s3cret', ['s3cret']); // 'auth failed for ***'
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 3) out = out.split(s).join('***');
  return out;
}
