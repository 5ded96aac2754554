// A real dbus-daemon for the tests: the system bus's own policy rules, our policy file installed.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scratchDir } from './temp.js';

const POLICY = new URL('../../../etc/dbus-1/system.d/org.gptoss.Supervisor1.conf', import.meta.url).pathname;

export interface TestBus {
  /** For DBUS_SYSTEM_BUS_ADDRESS. */
  address: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A system-type bus on a socket of its own: deny by default, as /usr/share/dbus-1/system.conf.
 * `rootOwns`: names root may own and be called at besides ours (a stand-in systemd's).
 */
export async function makeBus(opts: { rootOwns?: readonly string[] } = {}): Promise<TestBus> {
  const dir = await scratchDir('gptoss-bus-');
  // Other users (the policy test) must reach the socket.
  await chmod(dir, 0o755);
  const socket = join(dir, 'system_bus_socket');
  const config = join(dir, 'system.conf');
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=${socket}</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <include>${POLICY}</include>
  <policy user="root">
${(opts.rootOwns ?? []).map((n) => `    <allow own="${n}"/>\n    <allow send_destination="${n}"/>`).join('\n')}
  </policy>
</busconfig>
`,
  );
  let child: ChildProcess | undefined;
  const address = `unix:path=${socket}`;
  return {
    address,
    async start() {
      child = spawn('dbus-daemon', ['--nofork', '--nopidfile', `--config-file=${config}`], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr?.on('data', (c: Buffer) => (err += c.toString()));
      for (let i = 0; i < 100; i++) {
        const ok = await new Promise<boolean>((r) => {
          const p = spawn('busctl', ['--address', address, 'list', '--no-pager'], { stdio: 'ignore' });
          p.on('exit', (code) => r(code === 0));
        });
        if (ok) return;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`dbus-daemon did not start: ${err}`);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((r) => {
        c.once('exit', () => r());
        c.kill('SIGTERM');
      });
    },
  };
}

/** `setpriv` arguments that run what follows as the unprivileged user nobody (65534). */
export const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups'] as const;
