// Child processes the test run starts (exporter, Prometheus), each in its own
// process group so stopping it also stops anything it spawned, and a record of
// them so every exit path (normal teardown, a failing setup, Ctrl-C) stops them.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import net from 'node:net';

export interface Started {
  name: string;
  child: ChildProcess;
  logFile: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

const running = new Set<Started>();

export function startProcess(name: string, cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): Started {
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const started: Started = {
    name,
    child,
    logFile,
    exited: new Promise((resolve) => child.once('exit', () => resolve())),
  };
  child.once('error', (e) => log.write(`spawn error: ${e.message}\n`));
  running.add(started);
  void started.exited.then(() => running.delete(started));
  return started;
}

function killGroup(p: Started, signal: NodeJS.Signals) {
  if (p.child.pid === undefined || p.child.exitCode !== null || p.child.signalCode !== null) {
    return;
  }
  try {
    process.kill(-p.child.pid, signal);
  } catch {
    // already gone
  }
}

/** SIGTERM every process group we started, SIGKILL what is still there after `graceMs`. */
export async function stopAll(graceMs = 5000): Promise<void> {
  const procs = [...running];
  for (const p of procs) {
    killGroup(p, 'SIGTERM');
  }
  await Promise.race([Promise.all(procs.map((p) => p.exited)), new Promise((r) => setTimeout(r, graceMs))]);
  for (const p of procs) {
    killGroup(p, 'SIGKILL');
  }
  await Promise.all(procs.map((p) => p.exited));
}

/** SIGTERM one process group, SIGKILL it if still there after `graceMs`. */
export async function stopProcess(p: Started, graceMs = 5000): Promise<void> {
  killGroup(p, 'SIGTERM');
  await Promise.race([p.exited, new Promise((r) => setTimeout(r, graceMs))]);
  killGroup(p, 'SIGKILL');
  await p.exited;
}

/** Last lines of a process's log, for error messages. */
export function tail(p: Started, lines = 30): string {
  try {
    return readFileSync(p.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// If the runner dies without running teardown, still leave nothing behind.
process.once('exit', () => {
  for (const p of running) {
    killGroup(p, 'SIGKILL');
  }
});
// Playwright handles SIGINT itself (and then runs teardown); this only makes
// sure the children go even when that teardown does not get to run.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  const onSignal = () => {
    for (const p of running) {
      killGroup(p, 'SIGTERM');
    }
    // Our listener replaced Node's default "exit on signal"; keep that
    // default when nobody else (Playwright) handles the signal.
    if (process.listenerCount(sig) === 1) {
      process.exit(sig === 'SIGINT' ? 130 : 143);
    }
  };
  process.on(sig, onSignal);
}

/** A port that was free a moment ago on 127.0.0.1 (callers retry if it got taken). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Thrown by a `waitFor` check to stop waiting at once (e.g. the process died). */
export class Fatal extends Error {}

/** Poll `check` until it returns a value, or fail after `timeoutMs` with `what` and the last error. */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) {
        return v;
      }
    } catch (e) {
      if (e instanceof Fatal) {
        throw e;
      }
      lastError = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
