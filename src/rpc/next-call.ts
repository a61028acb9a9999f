/**
 * Calls the next step of an interceptor chain so that a synchronous throw comes back as a
 * rejection, as from an async function: the interceptors that are not async (to save a
 * promise per call) still see every failure in their rejection handler.
 */
export function nextCall<Req, Res>(next: (req: Req) => Promise<Res>, req: Req): Promise<Res> {
  try {
    return next(req);
  } catch (error) {
    return Promise.reject(error as Error);
  }
}
