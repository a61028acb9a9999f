#!/usr/bin/env node
// Runs the TypeScript entry point through tsx, so the package ships its sources as they are.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/cli.ts");
