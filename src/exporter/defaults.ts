// The configuration used with no --config: src/exporter/default.yaml.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../internal/package.ts";
import { parseConfig, type ExporterConfig } from "./config.ts";

export const DEFAULT_CONFIG_PATH = join(packageRoot, "src", "exporter", "default.yaml");

export function defaultConfig(): ExporterConfig {
  return parseConfig(readFileSync(DEFAULT_CONFIG_PATH, "utf8"), DEFAULT_CONFIG_PATH);
}
