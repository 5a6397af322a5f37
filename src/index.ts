export { defineExperiment, resolveExperiment, Experiment, ExperimentInput, ConfigError } from "./config/experiment.js";
export { loadExperiment } from "./config/load.js";
export { presetPolicies, MethodName } from "./config/presets.js";
export { runExperiment, resumeRun, RunAborted, type RunOptions } from "./run/run-experiment.js";
export { Worker, WorkerDiedError, WorkerHungError, type WorkerOptions } from "./worker/worker.js";
export { findPython, surveyPythons } from "./worker/discover.js";
export { erkDensities, uniformDensities } from "./sparsity/erk.js";
export { deathRate } from "./sparsity/schedule.js";
export { BrWindow, probeRatio } from "./controller/br-window.js";
export { decideDensity } from "./controller/density-rule.js";
export {
  defineController,
  ControllerAction,
  ControllerError,
  type Controller,
  type ControllerView,
  type ControllerActionInput,
  type ControllerDecisionInput,
  type Json,
  type NetDensities,
} from "./controller/controller.js";
export { builtInControllers } from "./controller/built-in.js";
export { MetricRecord, Summary } from "./run/records.js";
export { readRecords } from "./analysis/read-records.js";
export { openRun, type OpenedRun } from "./analysis/open-run.js";
export { streamExperiment } from "./run/stream.js";
export { defineTable, TableSpec } from "./table/spec.js";
export { planTable, loadTableSpec, type Cell, type TablePlan } from "./table/cells.js";
export { runTable, writeResults, type TableOutcome } from "./table/run-table.js";
export { tableResult, TableResult } from "./table/results.js";
