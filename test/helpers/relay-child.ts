/**
 * A relay in its own process, so a test can SIGKILL it mid-turn like a host crash. Configured from
 * the environment like the real service; accepts the one message in RELAY_CHILD_MESSAGE, prints the
 * router's answer as a JSON line, then keeps running until killed.
 */
import { RelayApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { RecordingAdapter } from './recording-adapter.js';

const app = await RelayApp.create(loadConfig(process.env), silentLogger(), {
  agentConfigExtra: 'request_max_retries = 0\nstream_max_retries = 0\nstream_idle_timeout_ms = 120000',
});
app.registerAdapter(new RecordingAdapter('local'));
const result = app.router.accept(JSON.parse(process.env.RELAY_CHILD_MESSAGE ?? 'null'));
process.stdout.write(`${JSON.stringify(result)}\n`);
setInterval(() => undefined, 60_000);
