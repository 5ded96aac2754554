// The supervisor on the system bus: org.gptoss.Supervisor1 with read-only properties, Restart(),
// Reload() and Rollback(); and a follower of systemd's docker.service. Reconnects when the bus goes away.
import '../util/lazy-deps.js';
import dbus from 'dbus-next';
import { backoffDelay } from '../core/rules/backoff.js';
import { withDeadline } from '../util/deadline.js';
import type { Logger } from '../log/logger.js';
import { BUS_NAME, changedProps, INTERFACE, OBJECT_PATH, SIGNATURES, type PropName, type Props } from './props.js';

const { Interface } = dbus.interface;
const SYSTEMD = 'org.freedesktop.systemd1';
const PROPS = 'org.freedesktop.DBus.Properties';
const BUS_DRIVER = 'org.freedesktop.DBus';

export interface ServiceHandlers {
  restart(): void;
  /** Back to the last good spec: undefined when asked, else why it cannot be done now. */
  rollback(): string | undefined;
  reload(): Promise<void>;
  /** docker.service left `active` (stop or restart under way), or came back to it. */
  dockerUnit?(state: 'down' | 'up', activeState: string): void;
}

/** The exported object. Property getters read the latest snapshot; methods call the handlers. */
class SupervisorInterface extends Interface {
  props: Props | undefined;
  constructor(private readonly h: ServiceHandlers) {
    super(INTERFACE);
  }
  Restart(): void {
    this.h.restart();
  }
  async Reload(): Promise<void> {
    await this.h.reload();
  }
  Rollback(): void {
    const no = this.h.rollback();
    if (no) throw new dbus.DBusError(`${INTERFACE}.Error.NotPossible`, `cannot roll back now: ${no}`);
  }
}

for (const name of Object.keys(SIGNATURES) as PropName[]) {
  Object.defineProperty(SupervisorInterface.prototype, name, {
    get(this: SupervisorInterface) {
      const p = this.props;
      if (!p) throw new dbus.DBusError('org.freedesktop.DBus.Error.Failed', 'not ready yet');
      return p[name];
    },
  });
}
SupervisorInterface.configureMembers({
  properties: Object.fromEntries(
    Object.entries(SIGNATURES).map(([k, signature]) => [k, { signature, access: 'read' as const }]),
  ),
  methods: { Restart: {}, Reload: {}, Rollback: {} },
});

export interface BusOptions {
  /** Opens a connection to the system bus (the default reads $DBUS_SYSTEM_BUS_ADDRESS). */
  connect?: () => dbus.MessageBus;
  /** Reconnect delays: the first, doubling up to the max. */
  retry?: { first: number; max: number };
}

export class BusService {
  private bus: dbus.MessageBus | undefined;
  private iface: SupervisorInterface | undefined;
  private props: Props | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempts = 0;
  /** Asks systemd for docker.service's ActiveState; set once docker.service is followed. */
  private dockerActive: (() => Promise<string>) | undefined;
  private stopped = false;
  private saidDown = false;
  private everUp = false;

  private readonly open: () => dbus.MessageBus;
  private readonly delays: { first: number; max: number };

  constructor(
    private readonly log: Logger,
    private readonly handlers: ServiceHandlers,
    opts: BusOptions = {},
  ) {
    this.open = opts.connect ?? (() => dbus.systemBus());
    this.delays = opts.retry ?? { first: 1000, max: 30_000 };
  }

  start(): void {
    void this.connect();
  }

  /** The latest properties; those that changed go out in one PropertiesChanged signal. */
  update(next: Props): void {
    const changed = changedProps(this.props, next);
    this.props = next;
    if (!this.iface) return;
    this.iface.props = next;
    if (Object.keys(changed).length) Interface.emitPropertiesChanged(this.iface, changed, []);
  }

  /**
   * docker.service's ActiveState now (`active`, `deactivating`, ...), or undefined when systemd
   * cannot be asked: it tells a `systemctl stop docker` from an engine that died by itself.
   */
  async dockerState(): Promise<string | undefined> {
    const ask = this.dockerActive;
    if (!ask || !this.bus) return undefined;
    return withDeadline(ask(), 1000, () => new Error('no answer')).catch(() => undefined);
  }

  /**
   * The job systemd is running on this process's own unit (`stop`, `restart`, ...), or undefined when
   * it has none or cannot be asked: a SIGTERM of a `systemctl restart` is not a stop of the model.
   */
  async ownJob(): Promise<string | undefined> {
    const bus = this.bus;
    if (!bus) return undefined;
    const call = toSystemd(bus);
    const lookUp = async () => {
      const [unit] = (await call('/org/freedesktop/systemd1', `${SYSTEMD}.Manager`, 'GetUnitByPID', 'u', [
        process.pid,
      ])) as [string];
      const [job] = (await call(unit, PROPS, 'Get', 'ss', [`${SYSTEMD}.Unit`, 'Job'])) as [
        dbus.Variant<[number, string]>,
      ];
      const jobPath = job.value[1];
      if (!jobPath || jobPath === '/') return undefined;
      const [type] = (await call(jobPath, PROPS, 'Get', 'ss', [`${SYSTEMD}.Job`, 'JobType'])) as [dbus.Variant<string>];
      return type.value;
    };
    return withDeadline(lookUp(), 2000, () => new Error('no answer')).catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.drop();
  }

  private drop(): void {
    const bus = this.bus;
    this.bus = undefined;
    this.iface = undefined;
    if (bus) close(bus);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let bus: dbus.MessageBus | undefined;
    try {
      bus = this.open();
      const b = bus;
      // The library reports a lost connection as 'error' on the bus, or only as 'end' on its stream.
      const lost = (why: string) => this.lost(b, why);
      b.on('error', (err: Error) => lost(err.message ?? String(err)));
      (b as unknown as { _connection?: NodeJS.EventEmitter })._connection?.on('end', () =>
        lost('the bus closed the connection'),
      );
      await new Promise<void>((resolve, reject) => {
        b.once('connect', resolve);
        b.once('error', reject);
      });
      const iface = new SupervisorInterface(this.handlers);
      if (this.props) iface.props = this.props;
      bus.export(OBJECT_PATH, iface);
      const reply = await bus.requestName(BUS_NAME, dbus.NameFlag.DO_NOT_QUEUE);
      if (reply !== dbus.RequestNameReply.PRIMARY_OWNER && reply !== dbus.RequestNameReply.ALREADY_OWNER) {
        throw new Error(`${BUS_NAME} is owned by another process (is a second supervisor running?)`);
      }
      this.bus = bus;
      this.iface = iface;
      this.everUp = true;
      this.attempts = 0;
      this.log.log(this.saidDown ? 'info' : 'debug', `on the system bus as ${BUS_NAME}`);
      this.saidDown = false;
      if (this.handlers.dockerUnit)
        await this.followDocker(bus).catch((err: Error) =>
          this.log.log('debug', `not following docker.service through systemd: ${err.message}`),
        );
    } catch (err) {
      // A connection that got this far but not the name is closed, not left open at each retry.
      if (bus && bus !== this.bus) close(bus);
      this.retry(`cannot be on the system bus: ${(err as Error).message ?? String(err)}`);
    }
  }

  private lost(bus: dbus.MessageBus, why: string): void {
    // Only the connection in use: one being set up reports through connect()'s own catch.
    if (bus !== this.bus) return;
    this.drop();
    this.retry(`lost the system bus (${why})`);
  }

  private retry(why: string): void {
    if (this.stopped) return;
    this.drop();
    // One line when the bus goes away, not one per attempt; supervision goes on without it. A host
    // without a system bus at all (a container, a test) is told once, quietly.
    if (!this.saidDown)
      this.log.log(this.everUp ? 'warn' : 'info', `${why}; D-Bus status is unavailable until it is back (retrying)`);
    this.saidDown = true;
    this.attempts++;
    const delay = backoffDelay(
      this.attempts,
      { initialDelay: this.delays.first, multiplier: 2, maxDelay: this.delays.max, jitter: 0 },
      0.5,
    );
    this.log.log('debug', `D-Bus: attempt ${this.attempts} failed (${why}); next in ${delay}ms`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.connect(), delay);
    this.timer.unref();
  }

  /**
   * systemd's view of docker.service: a stop or restart is known before the engine is gone. Only
   * systemd's own signals count: any user of the system bus may send a signal (the bus's default
   * policy allows it, to any destination), and the bus stamps each with its sender's unique name, so
   * a `PropertiesChanged` is believed only from the connection that owns org.freedesktop.systemd1
   * (asked with GetNameOwner, asked again when NameOwnerChanged says systemd's owner changed).
   */
  private async followDocker(bus: dbus.MessageBus): Promise<void> {
    const call = toSystemd(bus);
    const driver = (member: string, signature: string, body: unknown[]) =>
      ask(bus, BUS_DRIVER, '/org/freedesktop/DBus', BUS_DRIVER, member, signature, body);
    // Told first, so that no change of owner falls between the question and the answer.
    await driver('AddMatch', 's', [
      `type='signal',sender='${BUS_DRIVER}',path='/org/freedesktop/DBus',interface='${BUS_DRIVER}',` +
        `member='NameOwnerChanged',arg0='${SYSTEMD}'`,
    ]);
    let owner = String(((await driver('GetNameOwner', 's', [SYSTEMD])) as [string])[0]);
    // Unit property signals are only sent while some client has subscribed.
    await call('/org/freedesktop/systemd1', `${SYSTEMD}.Manager`, 'Subscribe');
    const [path] = (await call('/org/freedesktop/systemd1', `${SYSTEMD}.Manager`, 'LoadUnit', 's', [
      'docker.service',
    ])) as [string];
    const activeState = async () => {
      const [v] = (await call(path, PROPS, 'Get', 'ss', [`${SYSTEMD}.Unit`, 'ActiveState'])) as [dbus.Variant<string>];
      return v.value;
    };
    const rule = `type='signal',sender='${SYSTEMD}',path='${path}',interface='${PROPS}',member='PropertiesChanged'`;
    await driver('AddMatch', 's', [rule]);
    this.dockerActive = activeState;
    let last = await activeState();
    const seen = (now: string) => {
      if (now === last) return;
      const was = last;
      last = now;
      // Only a change says something: a Docker started outside systemd leaves the unit inactive.
      if (was === 'active' && now !== 'active') this.handlers.dockerUnit?.('down', now);
      else if (now === 'active') this.handlers.dockerUnit?.('up', now);
    };
    let forged = 0;
    bus.on('message', (msg: dbus.Message) => {
      if (msg.type !== dbus.MessageType.SIGNAL) return;
      if (msg.sender === BUS_DRIVER && msg.member === 'NameOwnerChanged' && msg.interface === BUS_DRIVER) {
        const [name, , next] = msg.body as [string, string, string];
        if (name !== SYSTEMD || next === owner) return;
        this.log.log('debug', `systemd's connection to the bus is now ${next || '(none)'} (was ${owner})`);
        owner = next;
        // A systemd that came back (daemon-reexec) has forgotten the subscription, and what happened meanwhile.
        if (next)
          void call('/org/freedesktop/systemd1', `${SYSTEMD}.Manager`, 'Subscribe')
            .then(activeState)
            .then(seen)
            .catch((err: Error) => this.log.log('debug', `docker.service after systemd came back: ${err.message}`));
        return;
      }
      if (msg.path !== path || msg.member !== 'PropertiesChanged' || msg.interface !== PROPS) return;
      if (!owner || msg.sender !== owner) {
        // Someone else's word for systemd's: one warning, then quietly (a flood must not fill the journal).
        this.log.log(
          forged++ ? 'debug' : 'warn',
          `ignored a signal about docker.service from ${msg.sender ?? 'an unknown sender'}, which is not systemd ` +
            `(${owner || 'not on the bus'}): only systemd's own signals are believed`,
        );
        return;
      }
      const [iface, changed] = msg.body as [string, Record<string, dbus.Variant>];
      if (iface !== `${SYSTEMD}.Unit` || !changed['ActiveState']) return;
      seen(String(changed['ActiveState'].value));
    });
  }
}

/** A method call's reply body. Plain messages, not proxy objects: a proxy introspects its peer (an XML parser). */
async function ask(
  bus: dbus.MessageBus,
  destination: string,
  path: string,
  iface: string,
  member: string,
  signature: string,
  body: unknown[],
): Promise<unknown[]> {
  const reply = await bus.call(new dbus.Message({ destination, path, interface: iface, member, signature, body }));
  return reply?.body as unknown[];
}

/** Method calls to systemd's manager and units over `bus`. */
const toSystemd =
  (bus: dbus.MessageBus) =>
  (path: string, iface: string, member: string, signature = '', body: unknown[] = []) =>
    ask(bus, SYSTEMD, path, iface, member, signature, body);

/** Closes a connection for good: no listener of ours stays on it, and a late error is swallowed. */
function close(bus: dbus.MessageBus): void {
  bus.removeAllListeners();
  bus.on('error', () => undefined);
  bus.disconnect();
}
