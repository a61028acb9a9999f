/**
 * The fenced code blocks of a Markdown file, each with the id of the test that runs it.
 * An id is an HTML comment on the line before the fence (`<!-- test: tour-write -->`): invisible
 * on the rendered page, and the one place a reader of the Markdown learns that the block is run.
 */
export interface ReadmeBlock {
  /** From the `<!-- test: ID -->` comment before the fence; undefined when there is none. */
  id: string | undefined;
  /** The fence's info string (`sh`, `ts`, ...), "" for a bare fence. */
  lang: string;
  text: string;
  /** 1-based line of the opening fence, for messages. */
  line: number;
}

const MARKER = /^<!--\s*test:\s*([a-z0-9-]+)\s*-->$/;

export function readmeBlocks(markdown: string): ReadmeBlock[] {
  const lines = markdown.split("\n");
  const blocks: ReadmeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const end = lines.findIndex((line, j) => j > i && line.startsWith("```"));
    if (end < 0) throw new Error(`line ${i + 1}: a code fence that never closes`);
    const marker = MARKER.exec(lines[i - 1]?.trim() ?? "");
    blocks.push({ id: marker?.[1], lang: open[1], text: lines.slice(i + 1, end).join("\n") + "\n", line: i + 1 });
    i = end;
  }
  return blocks;
}
