/**
 * Host-side vault: the only place the real OpenAI credential (and, with ONECLI_URL, the OneCLI API
 * key) exists. A JSON file with mode 0600 in the data directory; it is never mounted into a
 * container and never logged. Reads are validated with zod; a file with looser permissions is
 * refused, not silently used.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';

const VaultFileSchema = z.object({
  version: z.literal(1),
  openaiApiKey: z.string().min(1).optional(),
  /** API key for a OneCLI instance (ONECLI_URL); self-hosted instances may not need one. */
  onecliApiKey: z.string().min(1).optional(),
});
type VaultFile = z.infer<typeof VaultFileSchema>;

export class VaultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultError';
  }
}

export class Vault {
  private constructor(
    readonly path: string,
    private data: VaultFile,
  ) {}

  static pathIn(dataDir: string): string {
    return join(dataDir, 'vault.json');
  }

  /** Opens (or creates empty) the vault. Throws VaultError when the file is unreadable or too open. */
  static open(dataDir: string): Vault {
    const path = Vault.pathIn(dataDir);
    if (!existsSync(path)) return new Vault(path, { version: 1 });
    const mode = statSync(path).mode & 0o777;
    if (mode & 0o077) {
      throw new VaultError(`${path} has mode ${mode.toString(8)}; run: chmod 600 ${path}`);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new VaultError(`${path} is not valid JSON (${(err as Error).message})`);
    }
    const parsed = VaultFileSchema.safeParse(raw);
    if (!parsed.success) throw new VaultError(`${path} does not match the vault format: ${parsed.error.issues[0]?.message}`);
    return new Vault(path, parsed.data);
  }

  get openaiApiKey(): string | undefined {
    return this.data.openaiApiKey;
  }

  /** Every secret value held, so redaction can remove them from logs, archives and chat. */
  secrets(): string[] {
    return [this.data.openaiApiKey, this.data.onecliApiKey].filter((s): s is string => typeof s === 'string' && s.length > 0);
  }

  get onecliApiKey(): string | undefined {
    return this.data.onecliApiKey;
  }

  setOpenaiApiKey(key: string): void {
    this.data = { ...this.data, openaiApiKey: checkedKey(key) };
    this.save();
  }

  setOnecliApiKey(key: string): void {
    this.data = { ...this.data, onecliApiKey: checkedKey(key) };
    this.save();
  }

  /** Atomic write: temp file with 0600, then rename, so a crash never leaves half a vault. */
  private save(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(this.data, null, 2), { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}

function checkedKey(key: string): string {
  const trimmed = key.trim();
  if (trimmed.length < 8 || /\s/.test(trimmed)) throw new VaultError('that does not look like an API key');
  return trimmed;
}
