/**
 * Cost of a stream's group count: every group listed with ListGroups, page after page
 * (`page_size`, following `next_page_token` until it is empty), through the Connect
 * client (binary, HTTP/2). A server without paging answers everything in one page.
 * Run by the `scale` scenario (bench/suite/scenarios/scale.ts).
 */
import { toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { ListGroupsResponseSchema, StreamService, type ListGroupsResponse } from "../../gen/iii/stream/v1/stream_pb.js";
import { finish, readJob } from "./load-io.js";
import type { GroupWalkJob, GroupWalkResult } from "./scale-jobs.js";

/** A walk that has not ended after this many pages is going round in circles. */
const MAX_PAGES = 1_000_000;

const job = readJob<GroupWalkJob>();
const sessionManager = new Http2SessionManager(job.url);
// No cap on what a response may hold: a server without paging sends every group at once.
const client = createClient(
  StreamService,
  createConnectTransport({ baseUrl: job.url, httpVersion: "2", useBinaryFormat: true, sessionManager, readMaxBytes: 0xffffffff }),
);

const walkMs: number[] = [];
let pages = 0;
let groups = 0;
let largestPage: ListGroupsResponse | undefined;
// Walk -1 is not timed: it opens the connection and takes the server's ListGroups code
// through V8's first tiers, which a fresh server's first walk would otherwise pay for.
let error: string | undefined;
try {
  for (let walk = -1; walk < job.walks; walk++) {
    pages = 0;
    groups = 0;
    let pageToken = "";
    const started = performance.now();
    do {
      const page = await client.listGroups({ streamName: job.streamName, pageSize: job.pageSize, pageToken });
      pages++;
      groups += page.groups.length;
      // Undefined from a server whose responses have no such field.
      pageToken = page.nextPageToken ?? "";
      if (page.groups.length > (largestPage?.groups.length ?? -1)) largestPage = page;
    } while (pageToken !== "" && pages < MAX_PAGES);
    if (walk >= 0) walkMs.push(performance.now() - started);
  }
} catch (failure) {
  // A server that cannot list this many groups is a result, not a broken run.
  error = `page ${pages + 1}: ${(failure as Error).message}`;
}
// Encoded after the clock stopped: the walk's time is the server's and the transport's.
const largestPageBytes = largestPage ? toBinary(ListGroupsResponseSchema, largestPage).length : 0;
const result: GroupWalkResult = { walkMs, pages, groups, largestPageBytes, error };
sessionManager.abort();
await finish(result);
