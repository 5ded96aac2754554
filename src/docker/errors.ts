// Typed Docker failures: the ones an operator can fix carry the fix.

export class EngineUnreachable extends Error {
  override name = 'EngineUnreachable';
  constructor(detail: string) {
    const socket = (process.env['DOCKER_HOST'] ?? 'unix:///var/run/docker.sock').replace(/^unix:\/\//, '');
    super(
      `the Docker engine does not answer (${detail}); check \`systemctl status docker\` and that this user may use ` +
        `${socket}`,
    );
  }
}

export class ImageMissing extends Error {
  override name = 'ImageMissing';
  constructor(readonly image: string) {
    super(`image ${image} is not on this host; pull it with \`docker pull ${image}\``);
  }
}

/** Someone else made or removed the container between our look and our act: look again. */
export class Raced extends Error {
  override name = 'Raced';
}

export class DockerFailed extends Error {
  override name = 'DockerFailed';
  constructor(
    what: string,
    readonly statusCode: number | undefined,
    detail: string,
  ) {
    super(`docker ${what} failed${statusCode ? ` (HTTP ${statusCode})` : ''}: ${detail}`);
  }
}

/** A pull that did not complete, in the engine's (or registry's) words. */
export class PullFailed extends Error {
  override name = 'PullFailed';
  constructor(
    detail: string,
    readonly aborted = false,
  ) {
    super(detail);
  }
}
