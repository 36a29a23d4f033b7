/** bench/results/latest.json: what a run measured, merged with earlier runs of other scenarios. */
import { existsSync, readFileSync } from 'node:fs';
import type { AvailabilityData } from '../scenarios/availability';
import type { FlashSaleData } from '../scenarios/flash-sale';
import type { HoldsData } from '../scenarios/holds';
import type { MemoryData } from '../scenarios/memory';
import type { ReservationsData } from '../scenarios/reservations';
import type { StrategiesData } from '../scenarios/strategies';

export type Stamped<T> = T & { measuredAt: string; runId: string; stack: StackInfo; failure?: string };

export interface StackInfo {
  own: boolean;
  url: string;
  logLevel?: string;
  profiled?: boolean;
}

export interface Machine {
  cpus: number;
  node: string;
  platform: string;
  cpuModel: string;
  memoryGb: number;
  loadAverageAtStart: number[];
}

export interface Scenarios {
  availability?: Stamped<AvailabilityData>;
  flashSale?: Stamped<FlashSaleData>;
  reservations?: Stamped<ReservationsData>;
  strategies?: Stamped<StrategiesData>;
  holds?: Stamped<HoldsData>;
  memory?: Stamped<MemoryData>;
}

export interface Experiment {
  /** What changed, e.g. "API LOG_LEVEL=warn instead of info". */
  change: string;
  measure: string;
  before: number;
  after: number;
  unit: string;
  measuredAt: string;
  notes?: string;
}

export interface Results {
  generatedAt: string;
  command: string;
  machine: Machine;
  scenarios: Scenarios;
  /** Before/after measurements of proposed changes, keyed by experiment name. */
  experiments?: Record<string, Experiment[]>;
}

export function readResults(file: string): Results | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Results;
  } catch {
    return undefined;
  }
}
