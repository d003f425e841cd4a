// What each section of `pnpm bench` hands back to the report writer (bench/run.ts).

export interface Chart {
  /** File name under bench-results/, e.g. "execution.svg". */
  file: string;
  svg: string;
}

export interface SectionResult {
  id: string;
  title: string;
  /** Markdown, starting with the section's "## " heading. */
  markdown: string;
  /** Everything measured, for bench-results/<id>.json. */
  data: unknown;
  charts: Chart[];
}
