// The workloads by name, as issue 4 names them.

import { m90 } from './m90.js';
import { meta } from './meta.js';
import { r10 } from './r10.js';
import { range } from './range.js';
import { w1 } from './w1.js';
import { w10 } from './w10.js';
import type { Workload } from './workload.js';

export const WORKLOADS: Readonly<Record<string, Workload>> = { w1, w10, r10, m90, range, meta };
export const WORKLOAD_NAMES = Object.keys(WORKLOADS);

export function workloadByName(name: string): Workload {
  const w = WORKLOADS[name];
  if (w === undefined) throw new Error(`unknown workload '${name}'; one of ${WORKLOAD_NAMES.join(', ')}`);
  return w;
}
