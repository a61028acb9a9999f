/** What the router shows: one page at a time, disposed (views closed, timers stopped) when the user leaves it. */
export interface Page {
  title: string;
  element: HTMLElement;
  dispose(): void;
}

/** The console's addresses, in the URL's fragment so that the server serves one page for all of them. */
export const routes = {
  streams: () => "#/",
  stream: (stream: string) => `#/streams/${encodeURIComponent(stream)}`,
  group: (stream: string, group: string) => `#/streams/${encodeURIComponent(stream)}/${encodeURIComponent(group)}`,
  functions: () => "#/functions",
  server: () => "#/server",
};
