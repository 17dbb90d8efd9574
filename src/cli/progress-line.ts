import { printable } from './output.js';

/** Clears the terminal line the cursor is on and puts the cursor at its start. */
const CLEAR_LINE = '\r\x1b[2K';

/**
 * One line of progress for a command that works or waits a while (translate, node remove), on
 * stderr so that stdout stays the command's result.
 *
 * On a terminal the line is drawn again in place at each update: cleared first, so a shorter
 * text leaves nothing of a longer one behind, and cut to the terminal's width, since a line that
 * wrapped would be cleared only in its last row. Log lines and warnings go through `print`: the
 * progress is cleared, the line written, and the progress drawn again below it, so the two
 * never share a row. `end` leaves the last progress on a row of its own, for what follows.
 *
 * Anywhere else (a file, a pipe, a CI log) there is no redrawing: each new text is a plain line,
 * at most one every `plainEveryMs` (a busy command would fill a log with them), and `end`
 * writes the last one if it was held back.
 */
export class ProgressLine {
  private readonly tty: boolean;
  /** The progress text now, shown or to be shown; '' when there is none. */
  private text = '';
  /** Terminal: whether the progress is on the cursor's row. */
  private drawn = false;
  /** Elsewhere: the last text written, and when. */
  private written = '';
  private writtenAt = -Infinity;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr, private readonly opts: { plainEveryMs?: number } = {}) {
    this.tty = !!stream.isTTY;
  }

  update(text: string): void {
    this.text = printable(text);
    if (this.tty) this.draw();
    else if (this.text !== this.written && Date.now() - this.writtenAt >= (this.opts.plainEveryMs ?? 0)) this.writePlain();
  }

  /** Write whole lines (a log line, a warning) above the progress. */
  print(lines: string): void {
    const text = lines.endsWith('\n') ? lines : `${lines}\n`;
    if (!this.tty) {
      this.stream.write(text);
      return;
    }
    this.stream.write(this.drawn ? CLEAR_LINE + text : text);
    this.drawn = false;
    if (this.text) this.draw();
  }

  /** The progress is over: later output starts on a row of its own. */
  end(): void {
    if (this.tty) {
      if (this.drawn) this.stream.write('\n');
      this.drawn = false;
    } else if (this.text && this.text !== this.written) {
      this.writePlain();
    }
    this.text = '';
  }

  private draw(): void {
    // One column spare: writing the last one makes some terminals wrap at once.
    const width = Math.max(1, (this.stream.columns || 80) - 1);
    this.stream.write(CLEAR_LINE + [...this.text].slice(0, width).join(''));
    this.drawn = true;
  }

  private writePlain(): void {
    this.stream.write(`${this.text}\n`);
    this.written = this.text;
    this.writtenAt = Date.now();
  }
}
