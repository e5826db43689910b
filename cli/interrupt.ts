/**
 * Ctrl-C for long commands: the first press asks the work to stop at its next safe point (after
 * the batch, with everything saved); a second press quits at once.
 */
export class Interrupt {
  private requested = false;
  private readonly handler = () => {
    if (this.requested) process.exit(130);
    this.requested = true;
    console.error(`\n${this.message}`);
  };

  constructor(private readonly message: string) {
    process.on('SIGINT', this.handler);
  }

  get stop(): boolean {
    return this.requested;
  }

  release(): void {
    process.off('SIGINT', this.handler);
  }
}
