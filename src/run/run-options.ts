import type { Experiment } from "../config/experiment.js";
import type { Worker, WorkerOptions } from "../worker/worker.js";
import type { MetricRecord } from "./records.js";

/** Where a run is between records: the iteration reached inside a training segment (the worker's progress
 * events), and the densities in force when a run (re)starts, before any record says them. */
export interface RunProgress {
  iter: number;
  densityG?: number;
  densityD?: number;
  /** The BR window's value, when known without a new probe (a resumed run's restored window). */
  br?: number;
}

/** How a run is carried out (not what it trains: that is the experiment). */
export interface RunOptions {
  /** Run directory: a new run needs it absent or empty; a resumed run reads it. */
  out: string;
  /** Stop (with a checkpoint) after this iteration instead of the experiment's end. */
  until?: number;
  worker?: WorkerOptions;
  /** A new run on this device instead of the experiment's (a table's cells go where --devices puts them);
   * config.json records the device used, and a resumed run continues on it (a checkpoint's random streams
   * belong to its device). */
  device?: Experiment["device"];
  /** Every record as it is written (progress display, scripts). */
  onRecord?: (r: MetricRecord) => void;
  /** Progress between records (see RunProgress). */
  onProgress?: (p: RunProgress) => void;
  /** Something the user should know that is not a record (a checkpoint that could not be read, and which
   * one the run fell back to). */
  onNotice?: (message: string) => void;
  /** Called each time a worker has handshaken (its pid, versions). */
  onWorker?: (w: Worker) => void;
  /** Aborting interrupts training, writes a checkpoint, stops the worker and rejects with RunAborted. */
  signal?: AbortSignal;
}
