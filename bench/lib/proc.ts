// Reading a process from outside through Linux /proc: resident memory and CPU time. Bench code
// measures the processes under test (tunnelctl, ssh, the relay) without touching them.
import { readFileSync } from "node:fs";
import { allDescendants } from "../../test/helpers/sshd.ts";
import { execFileSync, spawnSync } from "node:child_process";

const CLK_TCK = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** Resident set size in bytes (VmRSS), or undefined when the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** The fields of /proc/PID/stat after the command name (state is [0]); undefined when gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
}

/** Minor page faults of a process so far (field 10 of /proc/PID/stat). */
export function minorFaults(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields && Number(fields[7]);
}

/** User + system CPU seconds used so far (utime + stime), or undefined when the process is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  // After the name: state is field 3, utime 14, stime 15 (1-based) → indexes 11 and 12 here.
  return fields && (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** `pid` and all its descendants. */
export function processTree(pid: number): number[] {
  return [pid, ...allDescendants(pid)];
}

/** CPU seconds of a whole process tree (sshd and the session processes it forked). */
export function treeCpuSeconds(pid: number): number {
  return processTree(pid).reduce((sum, p) => sum + (cpuSeconds(p) ?? 0), 0);
}

/** Ports with a TCP socket on them right now (any state, IPv4 and IPv6), from /proc/net/tcp*. */
export function portsInUse(): Set<number> {
  const ports = new Set<number>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      const port = local?.split(":")[1];
      if (port) ports.add(parseInt(port, 16));
    }
  }
  return ports;
}

export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  node: string;
  openssh: string;
  ssh2: string;
  kernel: string;
  loadAverageAtStart: string;
}

export function machineInfo(ssh2Version: string): MachineInfo {
  const cpuinfo = safeRead("/proc/cpuinfo");
  const meminfo = safeRead("/proc/meminfo");
  // ssh -V prints to stderr.
  const openssh = spawnSync("/usr/bin/ssh", ["-V"], { encoding: "utf8" }).stderr.trim();
  return {
    nproc: Number(execFileSync("nproc", { encoding: "utf8" }).trim()),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memTotalGiB: Math.round((Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0) / 1024 / 1024) * 10) / 10,
    node: process.version,
    openssh,
    ssh2: ssh2Version,
    kernel: safeRead("/proc/sys/kernel/osrelease").trim(),
    loadAverageAtStart: safeRead("/proc/loadavg").split(" ").slice(0, 3).join(" "),
  };
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
