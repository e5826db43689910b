/**
 * The CPU a Linux cgroup lets this process use: a Kubernetes container's `limits.cpu`, a Docker
 * `--cpus`, a systemd CPUQuota. os.availableParallelism() sees CPU affinity (Slurm's cpusets) but
 * not a quota, so in a 2-CPU pod on a 64-core node it says 64, and 64 threads sharing 2 CPUs of
 * time run slower than 2. Pure over a file reader, so tests can hand it any layout.
 */

/** Reads a file's text, or null when it cannot (missing, unreadable). */
export type ReadText = (path: string) => string | null;

const ROOT = '/sys/fs/cgroup';

/** `dir` and each of its parents up to the mount point `mount`, as paths under it. */
function selfAndAncestors(mount: string, cgroupPath: string): string[] {
  const parts = cgroupPath.split('/').filter((p) => p !== '' && p !== '.' && p !== '..');
  const dirs: string[] = [];
  for (let n = parts.length; n >= 0; n--) dirs.push([mount, ...parts.slice(0, n)].join('/'));
  return dirs;
}

/** CPUs' worth of time per second a quota allows: quota / period, or null when unlimited or unreadable. */
function ratio(quota: string | undefined, period: string | undefined): number | null {
  if (quota === undefined || period === undefined) return null;
  const q = Number(quota);
  const p = Number(period);
  // "max" (v2) and -1 (v1) mean no quota; anything unparsable is treated as none, never as a limit.
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return null;
  return q / p;
}

/**
 * The tightest CPU quota over this process's cgroup and its ancestors, in CPUs (1.5 for a quota of
 * 150 ms per 100 ms), from /proc/self/cgroup and the cgroup files under /sys/fs/cgroup (v2's
 * cpu.max; v1's cpu.cfs_quota_us and cpu.cfs_period_us). Null when there is none or it cannot be
 * read. Inside a container without its own cgroup namespace the listed path does not exist under
 * the mount; walking up reaches the mount's root, which is the container's own cgroup.
 */
export function cgroupCpuLimit(read: ReadText): number | null {
  const self = read('/proc/self/cgroup');
  if (self === null) return null;
  const limits: number[] = [];
  for (const line of self.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, id, controllers, path] = m;
    if (id === '0' && controllers === '') {
      for (const dir of selfAndAncestors(ROOT, path)) {
        const max = read(`${dir}/cpu.max`)?.trim().split(/\s+/);
        const r = max && ratio(max[0], max[1]);
        if (r) limits.push(r);
      }
    } else if (controllers.split(',').includes('cpu')) {
      for (const mount of [`${ROOT}/cpu`, `${ROOT}/cpu,cpuacct`, `${ROOT}/cpuacct,cpu`]) {
        for (const dir of selfAndAncestors(mount, path)) {
          const r = ratio(
            read(`${dir}/cpu.cfs_quota_us`)?.trim(),
            read(`${dir}/cpu.cfs_period_us`)?.trim(),
          );
          if (r) limits.push(r);
        }
      }
    }
  }
  return limits.length ? Math.min(...limits) : null;
}

/** Threads worth running: the cores available, capped by the quota rounded up (1.5 CPUs → 2). */
export function usableCpus(available: number, quota: number | null): number {
  const cores = Math.max(1, Math.floor(available));
  return quota === null ? cores : Math.max(1, Math.min(cores, Math.ceil(quota - 1e-9)));
}
