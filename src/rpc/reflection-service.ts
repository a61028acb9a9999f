import {
  create,
  fromBinary,
  toBinary,
  type DescEnum,
  type DescFile,
  type DescMessage,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type ServiceImpl } from "@connectrpc/connect";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  ServerReflectionResponseSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

type Answer = NonNullable<MessageInitShape<typeof ServerReflectionResponseSchema>["messageResponse"]>;

/**
 * What reflection can tell about a set of served services: their names, and every file
 * they are defined in or depend on, by path and by the full names it declares. Built once
 * from the generated descriptors, so it describes exactly what the server decodes.
 */
export class ReflectionIndex {
  private readonly services: string[];
  private readonly files = new Map<string, DescFile>();
  private readonly symbols = new Map<string, DescFile>();
  /** Each file's serialized FileDescriptorProto, made once. */
  private readonly encoded = new Map<DescFile, Uint8Array>();

  constructor(served: readonly DescService[]) {
    this.services = [...new Set(served.map((service) => service.typeName))].sort();
    for (const service of served) this.addFile(service.file);
  }

  /** The full names of the served services, sorted. */
  serviceNames(): readonly string[] {
    return this.services;
  }

  /** The answer to one request, an error answer for a name or request this server does not know. */
  answer(request: ServerReflectionRequest): Answer {
    const asked = request.messageRequest;
    switch (asked.case) {
      case "listServices":
        return { case: "listServicesResponse", value: { service: this.services.map((name) => ({ name })) } };
      case "fileByFilename": {
        const file = this.files.get(asked.value);
        return file ? this.filesAnswer(file) : notFound(`no file named "${asked.value}"`);
      }
      case "fileContainingSymbol": {
        const file = this.symbols.get(asked.value);
        return file ? this.filesAnswer(file) : notFound(`no symbol named "${asked.value}"`);
      }
      case "fileContainingExtension":
        // None of the served files declares an extension.
        return notFound(`no extension ${asked.value.extensionNumber} of "${asked.value.containingType}"`);
      case "allExtensionNumbersOfType": {
        const file = this.symbols.get(asked.value);
        if (!file || !isMessage(file, asked.value)) return notFound(`no message named "${asked.value}"`);
        return { case: "allExtensionNumbersResponse", value: { baseTypeName: asked.value, extensionNumber: [] } };
      }
      case undefined:
        return error(Code.InvalidArgument, "the request names nothing to look up (set one of its message_request fields)");
    }
  }

  /** The file first, then each file it depends on, directly or not, each once. */
  private filesAnswer(file: DescFile): Answer {
    const closure: DescFile[] = [];
    const seen = new Set<DescFile>();
    const visit = (next: DescFile) => {
      if (seen.has(next)) return;
      seen.add(next);
      closure.push(next);
      next.dependencies.forEach(visit);
    };
    visit(file);
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: closure.map((f) => this.encode(f)) } };
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file);
    if (!bytes) this.encoded.set(file, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  }

  private addFile(file: DescFile): void {
    if (this.files.has(file.proto.name)) return;
    this.files.set(file.proto.name, file);
    for (const service of file.services) {
      this.symbols.set(service.typeName, file);
      for (const method of service.methods) this.symbols.set(`${service.typeName}.${method.name}`, file);
    }
    const addEnum = (e: DescEnum, scope: string) => {
      this.symbols.set(e.typeName, file);
      // An enum value's full name is in the scope that holds its enum, as in C++.
      for (const value of e.values) this.symbols.set(scope === "" ? value.name : `${scope}.${value.name}`, file);
    };
    const addMessage = (message: DescMessage) => {
      this.symbols.set(message.typeName, file);
      for (const field of message.fields) this.symbols.set(`${message.typeName}.${field.name}`, file);
      for (const oneof of message.oneofs) this.symbols.set(`${message.typeName}.${oneof.name}`, file);
      for (const nested of message.nestedEnums) addEnum(nested, message.typeName);
      message.nestedMessages.forEach(addMessage);
    };
    for (const e of file.enums) addEnum(e, file.proto.package);
    file.messages.forEach(addMessage);
    file.dependencies.forEach((dependency) => this.addFile(dependency));
  }
}

function isMessage(file: DescFile, typeName: string): boolean {
  const search = (messages: DescMessage[]): boolean =>
    messages.some((message) => message.typeName === typeName || search(message.nestedMessages));
  return search(file.messages);
}

function notFound(message: string): Answer {
  return error(Code.NotFound, message);
}

function error(code: Code, errorMessage: string): Answer {
  return { case: "errorResponse", value: { errorCode: code, errorMessage } };
}

/** Answers each request of the stream in turn; an unknown name is an error answer, not the end of the stream. */
async function* answers(index: ReflectionIndex, requests: AsyncIterable<ServerReflectionRequest>): AsyncIterable<ServerReflectionResponse> {
  for await (const request of requests) {
    yield create(ServerReflectionResponseSchema, {
      validHost: request.host,
      originalRequest: request,
      messageResponse: index.answer(request),
    });
  }
}

/** grpc.reflection.v1.ServerReflection over the index. */
export function reflectionService(index: ReflectionIndex): ServiceImpl<typeof ServerReflection> {
  return { serverReflectionInfo: (requests) => answers(index, requests) };
}

/**
 * grpc.reflection.v1alpha.ServerReflection, which older clients still ask for. Its
 * messages are v1's field for field under another package, so each passes through v1's
 * answer by its bytes, which are the same.
 */
export function reflectionServiceV1alpha(index: ReflectionIndex): ServiceImpl<typeof v1alpha.ServerReflection> {
  return {
    async *serverReflectionInfo(requests) {
      async function* asV1() {
        for await (const request of requests) {
          yield fromBinary(ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, request));
        }
      }
      for await (const response of answers(index, asV1())) {
        yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(ServerReflectionResponseSchema, response));
      }
    },
  };
}

export { ServerReflection };
