// Who can reach the model's API: on loopback only, or beyond it; and whether it asks for a key there.

export interface ExposureInput {
  /** container.bindAddress: "" is every interface. */
  bindAddress: string;
  port: number;
  /** gate.enabled: the gate listens on bindAddress:port (else the container publishes it itself). */
  gate: boolean;
  /** gate.apiKeyFile is set (only with the gate). */
  apiKeyFile: boolean;
  /** container.env sets VLLM_API_KEY (vLLM asks for it itself, behind the gate or not). */
  vllmApiKey: boolean;
}

export const isLoopback = (a: string) => a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);

/** Where the API is reachable and whether it asks for a key; `fix` only when it is open with none. */
export function exposure(i: ExposureInput): { open: boolean; detail: string; fix?: string } {
  if (isLoopback(i.bindAddress))
    return { open: false, detail: `the model's API (port ${i.port}) is on loopback only (${i.bindAddress})` };
  const where =
    i.bindAddress === '' || i.bindAddress === '0.0.0.0' || i.bindAddress === '::'
      ? `on every interface (container.bindAddress "${i.bindAddress}")`
      : `on ${i.bindAddress} (container.bindAddress)`;
  const asked = (i.gate && i.apiKeyFile) || i.vllmApiKey;
  if (asked)
    return {
      open: false,
      detail: `the model's API (port ${i.port}) is ${where.replace(/^on/, 'reachable on')} and asks for an API key`,
    };
  const key = i.gate ? 'gate.apiKeyFile' : 'VLLM_API_KEY in container.env';
  return {
    open: true,
    detail:
      `the model's API (port ${i.port}) is open ${where} with no API key: ` + 'anyone who reaches this host can use it',
    fix: `set ${key}, or container.bindAddress: 127.0.0.1 to keep it on this machine`,
  };
}

/** The warning to give when the API is reachable beyond loopback and asks for no key; else undefined. */
export function exposureWarning(i: ExposureInput): string | undefined {
  const e = exposure(i);
  return e.open ? `${e.detail}; ${e.fix ?? ''}` : undefined;
}
