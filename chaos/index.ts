/**
 * `warden/chaos`: write and run chaos scenarios against your own pipeline. `warden chaos <module>`
 * runs one from a shell; `runScenario` from code. docs/chaos.md describes the API.
 *
 * @example
 * import { defineScenario } from 'warden/chaos';
 * export default defineScenario({ name: 'kill-one', faults: ({ durationMs }) => [{ atMs: durationMs / 2, fault: { kind: 'kill-node', node: 0 } }] });
 */
export { defineScenario, rngOf, scheduleOf, type Scenario, type ScenarioOptions, type ScenarioPipeline, type Fault, type ScheduledFault, type Rng } from './scenario.js';
export { runScenario, type RunOptions, type ChaosProgress } from './runner.js';
export { writeReport, renderHtml, summaryTable } from './report.js';
export type { ChaosReport, FaultRecord, InvariantResult, TimelineSample } from './report-types.js';
