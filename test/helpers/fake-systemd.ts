// A stand-in for systemd on a test bus: org.freedesktop.systemd1 with the Manager calls the supervisor
// makes (Subscribe, LoadUnit) and docker.service's ActiveState, whose changes it signals as systemd does.
import dbus from 'dbus-next';

const { Interface } = dbus.interface;
export const SYSTEMD = 'org.freedesktop.systemd1';
export const DOCKER_UNIT_PATH = '/org/freedesktop/systemd1/unit/docker_2eservice';

class Manager extends Interface {
  constructor() {
    super(`${SYSTEMD}.Manager`);
  }
  Subscribe(): void {
    return undefined;
  }
  LoadUnit(name: string): string {
    if (name !== 'docker.service') throw new dbus.DBusError(`${SYSTEMD}.NoSuchUnit`, `no unit ${name} here`);
    return DOCKER_UNIT_PATH;
  }
}
Manager.configureMembers({ methods: { Subscribe: {}, LoadUnit: { inSignature: 's', outSignature: 'o' } } });

class Unit extends Interface {
  ActiveState = 'active';
  constructor() {
    super(`${SYSTEMD}.Unit`);
  }
}
Unit.configureMembers({ properties: { ActiveState: { signature: 's', access: 'read' } } });

export class FakeSystemd {
  private constructor(
    private readonly bus: dbus.MessageBus,
    private readonly unit: Unit,
  ) {}

  /** Connects to the bus at `address` and owns org.freedesktop.systemd1 (the bus must let root own it). */
  static async start(address: string): Promise<FakeSystemd> {
    const bus = dbus.sessionBus({ busAddress: address });
    bus.on('error', () => undefined);
    const unit = new Unit();
    bus.export('/org/freedesktop/systemd1', new Manager());
    bus.export(DOCKER_UNIT_PATH, unit);
    const reply = await bus.requestName(SYSTEMD, dbus.NameFlag.DO_NOT_QUEUE);
    if (reply !== dbus.RequestNameReply.PRIMARY_OWNER) throw new Error(`${SYSTEMD} is taken (${reply})`);
    return new FakeSystemd(bus, unit);
  }

  /** This connection's unique name (`:1.N`), which the bus stamps on its signals. */
  get uniqueName(): string {
    return (this.bus as unknown as { name: string | null }).name ?? '';
  }

  /** docker.service's ActiveState changes, with the PropertiesChanged signal systemd sends. */
  set(state: string): void {
    this.unit.ActiveState = state;
    Interface.emitPropertiesChanged(this.unit, { ActiveState: state }, []);
  }

  stop(): void {
    this.bus.disconnect();
  }
}
