// The machine a bench ran on, described in every report: figures are only comparable on the
// same machine, and this one is shared, so the load average is part of the description.
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

export interface MachineDescription {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  memoryGiB: number;
  /** 1, 5 and 15 minute load averages when the bench started. */
  loadAverage: number[];
}

export function cpuModel(): string {
  try {
    return /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown';
  } catch {
    return cpus()[0]?.model ?? 'unknown';
  }
}

export function describeMachine(): MachineDescription {
  return {
    cpu: cpuModel(),
    cores: cpus().length,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export function machineLine(m: MachineDescription): string {
  return `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node} (${m.platform}), load average ${m.loadAverage.join(' / ')}`;
}
