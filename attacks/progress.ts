/**
 * Where an attack stands inside one call (one batch): the round (target class, restart), the step
 * or query, and how many examples are still unbroken. An hour-long FAB-T batch says where it is
 * this way instead of going silent until it ends. Reporting reads nothing from tensors: the
 * counts are the ones an attack already has on the host.
 */

/** What a progress hook gets: the position of the attack within one call. */
export interface AttackProgress {
  /** The attack (its info.name). */
  attack: string;
  /**
   * The run in progress, from 1, of `rounds`: one call makes its runs in turn, each on the
   * examples the runs before it left unbroken — restarts, target classes (APGD-T), or target
   * classes × restarts (FAB-T).
   */
  round: number;
  rounds: number;
  /** APGD-T, FAB-T: the target class of this round (1 = the most likely wrong class), of `targets`. */
  target?: number;
  targets?: number;
  /** The restart of this round, from 1, of `restarts`. */
  restart: number;
  restarts: number;
  /** Steps (Square: queries, `unit` says which) this round has done, of `steps`. */
  step: number;
  steps: number;
  unit: 'step' | 'query';
  /**
   * Examples of the call not broken yet, as far as the attack counts them on the host: FAB and
   * Square at every step, the others at the start of each round (and all attacks at the end).
   */
  robust: number;
  examples: number;
  /** Share of the call's work done, in [0,1], counting every round as a whole round of steps (later rounds run on fewer examples and go faster, so an ETA from it leans long). */
  done: number;
}

export type ProgressHook = (p: Readonly<AttackProgress>) => void;

/** How an attack's call divides into rounds and steps. */
export interface ProgressLayout {
  rounds: number;
  restarts: number;
  targets?: number;
  steps: number;
  unit: 'step' | 'query';
}

/**
 * The reporter an attack's run gets (RunContext.progress) when its caller asked for progress:
 * `withRestarts` starts the rounds, each run's loop reports its steps.
 */
export class RunProgress {
  private round = 0;
  private step = 0;
  private robust: number;
  private entering: number;

  constructor(
    private readonly hook: ProgressHook,
    private readonly attack: string,
    private readonly layout: ProgressLayout,
    private readonly examples: number,
  ) {
    this.robust = this.entering = examples;
  }

  /** Round `round` (from 0) starts on the `robust` examples no round before it broke. */
  startRound(round: number, robust: number): void {
    this.round = Math.min(round, this.layout.rounds - 1);
    this.step = 0;
    this.robust = this.entering = robust;
    this.emit();
  }

  /** `step` steps of the round are done; `broken`: examples of this round broken so far, when the attack counts them. */
  stepDone(step: number, broken?: number): void {
    this.step = Math.min(step, this.layout.steps);
    if (broken !== undefined) this.robust = this.entering - broken;
    this.emit();
  }

  /** The call is done: `robust` examples were left unbroken (the last count when not given). */
  finish(robust?: number): void {
    this.round = this.layout.rounds - 1;
    this.step = this.layout.steps;
    if (robust !== undefined) this.robust = robust;
    this.emit();
  }

  private emit(): void {
    const { rounds, restarts, targets, steps, unit } = this.layout;
    this.hook({
      attack: this.attack,
      round: this.round + 1,
      rounds,
      ...(targets !== undefined ? { target: Math.floor(this.round / restarts) + 1, targets } : {}),
      restart: (this.round % restarts) + 1,
      restarts,
      step: this.step,
      steps,
      unit,
      robust: this.robust,
      examples: this.examples,
      done: (this.round + this.step / steps) / rounds,
    });
  }
}

/** A position for people: "target 3/9 · step 45/100 · 61/112 still robust". */
export function describeProgress(p: AttackProgress): string {
  const parts: string[] = [];
  if (p.targets !== undefined) parts.push(`target ${p.target}/${p.targets}`);
  if (p.restarts > 1) parts.push(`restart ${p.restart}/${p.restarts}`);
  const where = parts.length ? `${parts.join(' ')} · ` : '';
  return `${where}${p.unit} ${p.step}/${p.steps} · ${p.robust}/${p.examples} still robust`;
}
