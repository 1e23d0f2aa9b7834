// Line charts over time with uPlot; one instance per chart, data swapped in
// place on every refresh so the page stays cheap while it updates live.
import uPlot from "uplot";

export interface LineSpec { label: string; color: string }

export class TimeChart {
  private plot: uPlot;

  constructor(host: HTMLElement, lines: LineSpec[], unit: (v: number) => string, bars = false) {
    const width = Math.max(320, host.clientWidth || 480);
    const opts: uPlot.Options = {
      width,
      height: 200,
      series: [
        {},
        ...lines.map((l) => ({
          label: l.label,
          stroke: l.color,
          fill: bars ? l.color + "66" : undefined,
          width: 1.5,
          spanGaps: false,
          // An interval with traffic between idle ones is a lone value: show it as a dot.
          points: { show: !bars, size: 5 },
          paths: bars ? uPlot.paths.bars!({ size: [0.8, 40] }) : undefined,
          value: (_u: uPlot, v: number | null) => (v === null || v === undefined ? "–" : unit(v)),
        })),
      ],
      axes: [{}, { size: 70, values: (_u, vals) => vals.map((v) => unit(v)) }],
      scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      legend: { live: true },
    };
    this.plot = new uPlot(opts, [[], ...lines.map(() => [])] as uPlot.AlignedData, host);
  }

  set(xs_ms: number[], ys: (number | null)[][]) {
    this.plot.setData([xs_ms.map((t) => t / 1000), ...ys] as uPlot.AlignedData);
  }

  resize(width: number) {
    this.plot.setSize({ width: Math.max(320, width), height: 200 });
  }

  destroy() {
    this.plot.destroy();
  }
}
