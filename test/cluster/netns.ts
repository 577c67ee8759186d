// A small network of Linux network namespaces for partition tests: one namespace per
// machine (its end of a veth pair as eth0, an address on one /24), a bridge in a
// namespace of its own joining them, and one more veth from the test's own namespace
// to the bridge so the test reaches every machine. Taking a machine's port on the
// bridge down cuts it off from every other machine and from the test (its own etcd
// member and txkv node still reach each other inside it, as on a real machine).
// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2; available() says why not.
// Everything is deleted by destroy(), on process exit, and (names carry the pid) by
// the next lab when the process that made it died without cleaning up.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const PREFIX = 'txkvlab';

function ip(...args: string[]): string {
  return execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces left by labs whose process is gone (a killed test run). */
function removeStale(): void {
  let list = '';
  try {
    list = ip('netns', 'list');
  } catch {
    return;
  }
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(name);
    if (m && !alive(Number(m[1]))) {
      try {
        ip('netns', 'del', name);
      } catch {
        /* another run removed it */
      }
    }
  }
}

export interface LabMachine {
  ns: string;
  ip: string;
}

export class NetnsLab {
  /** null when namespaces can be made here, else the reason they cannot. */
  static available(): string | null {
    if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
    const probe = `${PREFIX}${process.pid}-probe`;
    try {
      ip('netns', 'add', probe);
    } catch (err) {
      const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
      return `cannot create a network namespace (ip netns add: ${why}); run as root with iproute2`;
    }
    // a sandbox may allow namespaces but not veth pairs or bridges: try what the lab uses
    const link = `tp${process.pid}`;
    let why: string | null = null;
    try {
      ip('-n', probe, 'link', 'add', 'br0', 'type', 'bridge');
      ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'p0', 'netns', probe);
      ip('-n', probe, 'link', 'set', 'p0', 'master', 'br0', 'up');
    } catch (err) {
      why = `cannot make a veth pair and a bridge (${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message})`;
    }
    try {
      ip('link', 'del', link);
    } catch {
      /* never made, or gone with the namespace */
    }
    try {
      ip('netns', 'del', probe);
    } catch {
      /* removed by destroy() or the next run */
    }
    return why;
  }

  readonly machines: LabMachine[] = [];
  private readonly tag = `${PREFIX}${process.pid}`;
  private readonly bridgeNs = `${this.tag}-br`;
  /** The test's end of its veth to the bridge (a root-namespace name: ≤ 15 bytes, unique by pid). */
  private readonly hostLink = `tl${process.pid}`;
  /** 10.x.y.0/24: x, y from the pid, so two labs on one machine do not overlap. */
  private readonly subnet = `10.${200 + (process.pid % 50)}.${(process.pid >> 6) % 250}`;
  private made: string[] = [];
  private readonly onExit = (): void => this.destroy();

  /** Makes `n` machines (addresses .1 to .n) and the test's own address (.200). */
  constructor(n: number) {
    removeStale();
    process.once('exit', this.onExit);
    try {
      ip('netns', 'add', this.bridgeNs);
      this.made.push(this.bridgeNs);
      ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up');
      ip('link', 'add', this.hostLink, 'type', 'veth', 'peer', 'name', 'host', 'netns', this.bridgeNs);
      ip('-n', this.bridgeNs, 'link', 'set', 'host', 'master', 'br0', 'up');
      ip('addr', 'add', `${this.subnet}.200/24`, 'dev', this.hostLink);
      ip('link', 'set', this.hostLink, 'up');
      for (let i = 0; i < n; i++) {
        const ns = `${this.tag}-m${i}`;
        ip('netns', 'add', ns);
        this.made.push(ns);
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `m${i}`, 'netns', this.bridgeNs);
        ip('-n', this.bridgeNs, 'link', 'set', `m${i}`, 'master', 'br0', 'up');
        ip('-n', ns, 'addr', 'add', `${this.subnet}.${i + 1}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        this.machines.push({ ns, ip: `${this.subnet}.${i + 1}` });
      }
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  /** Cuts machine i off from the others and from the test (its bridge port goes down). */
  partition(i: number): void {
    ip('-n', this.bridgeNs, 'link', 'set', `m${i}`, 'down');
  }

  heal(i: number): void {
    ip('-n', this.bridgeNs, 'link', 'set', `m${i}`, 'up');
  }

  /**
   * Cuts the TCP traffic of `port` (etcd's peer port) on machine i: every packet it sends
   * from or to that port is routed nowhere (policy rules; iptables/nft are not needed), so
   * its etcd member loses its peers while every other port (the member's client port, the
   * txkv node) works as before.
   */
  cutPort(i: number, port: number): void {
    for (const dir of ['sport', 'dport']) ip('-n', this.machines[i]!.ns, 'rule', 'add', 'ipproto', 'tcp', dir, String(port), 'blackhole');
  }

  healPort(i: number, port: number): void {
    for (const dir of ['sport', 'dport']) ip('-n', this.machines[i]!.ns, 'rule', 'del', 'ipproto', 'tcp', dir, String(port), 'blackhole');
  }

  /** Deletes every namespace (their veth pairs go with them); idempotent. Stop the processes in them first. */
  destroy(): void {
    process.removeListener('exit', this.onExit);
    for (const ns of this.made.reverse()) {
      try {
        ip('netns', 'del', ns);
      } catch {
        /* already gone */
      }
    }
    this.made = [];
    // the host end goes with its peer in the bridge namespace; this only covers a lab
    // that failed before the peer was moved there
    if (fs.existsSync(`/sys/class/net/${this.hostLink}`)) {
      try {
        ip('link', 'del', this.hostLink);
      } catch {
        /* gone meanwhile */
      }
    }
  }
}
