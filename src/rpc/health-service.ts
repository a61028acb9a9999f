import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";
import { StreamService } from "../../gen/iii/stream/v1/stream_pb.js";

/** Services a health check may name; "" asks about the server as a whole. */
const KNOWN_SERVICES = new Set(["", StreamService.typeName]);

/** How often Watch looks for a change of status. */
const WATCH_POLL_MS = 1000;

/** The standard gRPC health protocol, serving while the storage adapter is ready. */
export function healthService(isReady: () => boolean): ServiceImpl<typeof Health> {
  const statusOf = (service: string) => {
    if (!KNOWN_SERVICES.has(service)) return ServingStatus.SERVICE_UNKNOWN;
    return isReady() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  };
  return {
    check(req) {
      if (!KNOWN_SERVICES.has(req.service)) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return create(HealthCheckResponseSchema, { status: statusOf(req.service) });
    },
    async *watch(req, context) {
      let last: ServingStatus | undefined;
      while (!context.signal.aborted) {
        const status = statusOf(req.service);
        if (status !== last) {
          last = status;
          yield create(HealthCheckResponseSchema, { status });
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, WATCH_POLL_MS);
          context.signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
        });
      }
    },
  };
}
