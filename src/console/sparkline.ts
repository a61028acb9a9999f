/** A per-second rate over the last minute, drawn as an SVG line. */
const SVG = "http://www.w3.org/2000/svg";

export class Sparkline {
  readonly element: SVGSVGElement;
  private readonly line: SVGPolylineElement;
  private readonly counts: number[];
  private current = 0;

  constructor(
    private readonly seconds = 60,
    label = "changes per second over the last minute",
  ) {
    this.counts = new Array<number>(seconds).fill(0);
    this.element = document.createElementNS(SVG, "svg");
    this.element.setAttribute("viewBox", `0 0 ${seconds} 20`);
    this.element.setAttribute("preserveAspectRatio", "none");
    this.element.setAttribute("class", "sparkline");
    this.element.setAttribute("role", "img");
    this.element.setAttribute("aria-label", label);
    this.line = document.createElementNS(SVG, "polyline");
    this.element.appendChild(this.line);
    this.draw();
  }

  /** Counts `n` events in the current second. */
  add(n = 1): void {
    this.current += n;
  }

  /** Closes the current second (call once a second) and returns its count. */
  tick(): number {
    const count = this.current;
    this.push(count);
    this.current = 0;
    return count;
  }

  /** Adds a ready-made sample (a rate computed elsewhere). */
  push(value: number): void {
    this.counts.shift();
    this.counts.push(value);
    this.draw();
  }

  private draw(): void {
    const max = Math.max(1, ...this.counts);
    this.line.setAttribute("points", this.counts.map((count, i) => `${i},${(20 - (count / max) * 18 - 1).toFixed(2)}`).join(" "));
  }
}
