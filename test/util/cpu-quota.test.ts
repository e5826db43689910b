import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { cgroupCpuLimit, usableCpus } from '../../util/cpu-quota.js';
import { cpuCount } from '../../util/platform.js';

/** A reader over an in-memory file tree. */
const files =
  (tree: Record<string, string>) =>
  (path: string): string | null =>
    tree[path] ?? null;

describe('cgroupCpuLimit', () => {
  it('reads cgroup v2 cpu.max of the process cgroup and takes the tightest ancestor', () => {
    const read = files({
      '/proc/self/cgroup': '0::/kubepods/pod1/c1\n',
      '/sys/fs/cgroup/kubepods/pod1/c1/cpu.max': '150000 100000\n',
      '/sys/fs/cgroup/kubepods/pod1/cpu.max': 'max 100000\n',
      '/sys/fs/cgroup/kubepods/cpu.max': '400000 100000\n',
    });
    expect(cgroupCpuLimit(read)).toBe(1.5);
    const tighterParent = files({
      '/proc/self/cgroup': '0::/a/b\n',
      '/sys/fs/cgroup/a/b/cpu.max': '800000 100000',
      '/sys/fs/cgroup/a/cpu.max': '50000 100000',
    });
    expect(cgroupCpuLimit(tighterParent)).toBe(0.5);
  });

  it('reads cgroup v1 cfs quota and period, at the mount root when the listed path is not mounted', () => {
    const read = files({
      '/proc/self/cgroup': '4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '200000\n',
      '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    });
    expect(cgroupCpuLimit(read)).toBe(2);
  });

  it('is null with no quota, no cgroup file or unreadable values', () => {
    expect(cgroupCpuLimit(files({}))).toBeNull();
    expect(
      cgroupCpuLimit(
        files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' }),
      ),
    ).toBeNull();
    expect(
      cgroupCpuLimit(
        files({
          '/proc/self/cgroup': '1:cpu:/\n',
          '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
          '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
        }),
      ),
    ).toBeNull();
    for (const bad of ['', 'garbage', '100000', 'NaN 100000', '100000 0', '0 100000'])
      expect(
        cgroupCpuLimit(files({ '/proc/self/cgroup': '0::/x', '/sys/fs/cgroup/x/cpu.max': bad })),
      ).toBeNull();
    // A path that tries to climb out of the mount stays under it.
    expect(
      cgroupCpuLimit(
        files({ '/proc/self/cgroup': '0::/../../etc', '/sys/fs/cgroup/etc/cpu.max': '1 1' }),
      ),
    ).toBe(1);
  });
});

describe('usableCpus', () => {
  it('caps the cores by the quota rounded up, never below one', () => {
    expect(usableCpus(64, null)).toBe(64);
    expect(usableCpus(64, 2)).toBe(2);
    expect(usableCpus(64, 1.5)).toBe(2);
    expect(usableCpus(64, 0.1)).toBe(1);
    expect(usableCpus(2, 8)).toBe(2);
    expect(usableCpus(0, null)).toBe(1);
  });

  it('gives this machine a count between 1 and its cores', () => {
    const n = cpuCount();
    expect(Number.isInteger(n)).toBe(true);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(os.availableParallelism());
  });
});
