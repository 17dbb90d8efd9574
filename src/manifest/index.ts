/**
 * Manifests: Kubernetes-style YAML (`apiVersion: oswalk.dev/v1`, `kind`, `metadata`,
 * `spec`) for the kinds Job, Service, Node and Mount.
 *
 * - `parseManifestFile(path)` / `parseManifests(text, source)`: YAML in, normalized
 *   `Manifest[]` out, or a `ManifestError` naming file, line, column and field.
 * - `validateManifestObject(obj, source, index)` / `validateManifestList(objs, source)`:
 *   the same checks for manifests that arrive as JSON (no lines).
 * - `*SpecSchema` / `*ManifestSchema`: TypeBox schemas of manifests as written
 *   (`*Input` types); `JobManifestSpec`, `ServiceManifestSpec`, `NodeSpec`, `MountSpec`,
 *   `Manifest`: the normalized shapes (see normalize.ts for defaults and units).
 * - `jobSpecOfManifest(m)`: the job spec (src/api/jobs.ts) of a Job's or Service's jobs.
 */
export { ManifestError, formatPath, type FieldPath } from './errors.js';
export { QuantityError, parseCpus, parseMemory } from './quantity.js';
export {
  API_VERSION, KINDS, type Kind,
  CpusSchema, MemorySchema, ResourcesSchema, MetadataSchema, ReplicationRuleSchema,
  JobSpecSchema, ServiceSpecSchema, NodeSpecSchema, MountSpecSchema,
  JobManifestSchema, ServiceManifestSchema, NodeManifestSchema, MountManifestSchema, MANIFEST_SCHEMAS,
  type JobManifestSpecInput, type ServiceManifestSpecInput, type NodeSpecInput, type MountSpecInput, type ResourcesInput, type ManifestInput,
} from './schema.js';
export {
  DEFAULT_CACHE_SIZE, DEFAULT_FILE_CACHE_SIZE, DEFAULT_COPIES, DEFAULT_REREPLICATE_AFTER_SECONDS, DEFAULT_REREPLICATE_RATE, jobSpecOfManifest,
  type Resources, type Metadata,
  type JobManifestSpec, type ServiceManifestSpec, type NodeSpec, type MountSpec, type ReplicationRule,
  type JobManifest, type ServiceManifest, type NodeManifest, type MountManifest, type Manifest,
} from './normalize.js';
export { checkFilesTogether, parseManifests, parseManifestFile, validateManifestObject, validateManifestList } from './parse.js';
