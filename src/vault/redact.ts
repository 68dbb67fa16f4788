/**
 * Removes secrets from text before it is logged, archived or posted: every value the vault holds,
 * every live stub token, and anything shaped like an API key or bearer token.
 */
const KEY_SHAPES = [
  /\bsk-[A-Za-z0-9_-]{16,}/g, // OpenAI keys (sk-, sk-proj-, sk-svcacct-)
  /\bcrs_[A-Za-z0-9_-]{16,}/g, // our own stub tokens
  /\bxox[abprs]-[A-Za-z0-9-]{10,}/g, // Slack tokens
  /\bxapp-[A-Za-z0-9-]{10,}/g,
  /\bBearer\s+[A-Za-z0-9._~+/=-]{16,}/gi,
];

export type Redactor = (text: string) => string;

export function createRedactor(secrets: () => string[]): Redactor {
  return (text: string) => {
    let out = text;
    for (const secret of secrets()) {
      if (secret.length >= 6) out = out.split(secret).join('[redacted]');
    }
    for (const shape of KEY_SHAPES) out = out.replace(shape, '[redacted]');
    return out;
  };
}
