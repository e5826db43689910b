/** One line of a training run's per-epoch log (log.json, log.csv, progress). */
export interface EpochLog {
  epoch: number;
  lr: number;
  train_loss: number;
  train_acc: number;
  test_acc: number;
  /** PGD robust accuracy on the evaluation subset (when robustEval is set). */
  robust_acc?: number;
  /** earlyStop 'train-batch': PGD-5 robust accuracy on the epoch's first training batch (Wong et al.'s check). */
  batch_robust_acc?: number;
  seconds: number;
  img_per_s: number;
  /** 'catastrophic overfitting' when robust accuracy collapsed this epoch. */
  flag?: string;
}
