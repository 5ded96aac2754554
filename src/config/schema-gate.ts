// The config's gate section: the model's front door on container.bindAddress:container.port.
import { z } from 'zod';
import { duration, positiveInt, size } from './schema-parts.js';

export const gateSchema = z
  .strictObject({
    // true: clients reach the model through the gate, which holds requests while it is not serving,
    // drains before a planned stop and replays what was never answered; the container is published on
    // loopback only (upstreamPort). false: the container publishes container.port itself, as the guide.
    enabled: z.boolean().default(true),
    // Where the model container is published for the gate and the supervisor's probes: 127.0.0.1 only.
    // auto: a free port Docker picks at each start (status and D-Bus show it); a number: that port.
    upstreamPort: z
      .union([z.literal('auto'), z.int().min(1).max(65535)], 'expected auto or a port number (1-65535)')
      .default('auto')
      .transform((p) => (p === 'auto' ? 0 : p)),
    // How long a request waits for the model to serve before it is answered 503 with Retry-After.
    holdTimeout: duration('30s', '0s', '10m'),
    // Requests held at once; past it, 503 at once.
    maxHeld: positiveInt(512),
    // Before a planned stop, requests in flight get this long to finish; a stream still going then
    // gets an error event.
    drainTimeout: duration('60s', '0s', '1h'),
    // A request body is kept (for a replay) up to this size; a larger one is forwarded, never replayed.
    maxBodySize: size('8MiB', '1KiB', '1GiB'),
    // API keys, one a line (mode 0600, like the token): a request without `Authorization: Bearer KEY`
    // gets 401. Not set: no key asked for. /health stays open.
    apiKeyFile: z
      .string('expected an absolute path')
      .refine((p) => p.startsWith('/'), 'must be an absolute path (starting with /)')
      .nullable()
      .default(null),
  })
  .prefault({});
