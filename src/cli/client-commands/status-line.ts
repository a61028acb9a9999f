/**
 * One line of status on a terminal's standard error, rewritten in place (`\r` and erase to
 * the end of the line). It stays out of the way of the lines a command prints: each is
 * written with the status erased first and redrawn after, so that standard output on the
 * same terminal never runs into it. Off a terminal (a log file, a pipe) it writes nothing,
 * so that scripts see only what they asked for.
 */
export class StatusLine {
  private text = "";
  private readonly enabled: boolean;
  private readonly sharesTerminal: boolean;

  constructor(
    private readonly err: NodeJS.WriteStream = process.stderr,
    out: NodeJS.WriteStream = process.stdout,
  ) {
    this.enabled = err.isTTY === true;
    this.sharesTerminal = this.enabled && out.isTTY === true;
  }

  show(text: string): void {
    this.text = text;
    if (this.enabled) this.err.write(`\r\x1b[K${this.fit(text)}`);
  }

  /** Runs `write` (which prints a line on standard output) with the status out of its way. */
  around(write: () => void): void {
    if (!this.sharesTerminal) return write();
    this.err.write("\r\x1b[K");
    write();
    this.err.write(this.fit(this.text));
  }

  /** Leaves the terminal as it was: the status erased. */
  done(): void {
    if (this.enabled) this.err.write("\r\x1b[K");
  }

  private fit(text: string): string {
    const room = this.err.columns;
    return room > 1 && text.length >= room ? `${text.slice(0, room - 2)}…` : text;
  }
}
