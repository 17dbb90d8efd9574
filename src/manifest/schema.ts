/**
 * TypeBox schemas of manifests as people write them. Every object is closed
 * (additionalProperties: false) so a misspelt field is an error, not a silent no-op.
 *
 * `description` on a schema is a noun phrase: validation errors read
 * "must be <description> (got <value>)", so it doubles as the error text.
 * Rules a JSON schema cannot say well (quantities, label syntax, "command or image")
 * live in normalize.ts, which reports them with the same field paths.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { NameSchema } from '../api/objects.js';
import { LIMITS } from '../util/limits.js';

export const API_VERSION = 'oswalk.dev/v1';
export const KINDS = ['Job', 'Service', 'Node', 'Mount'] as const;
export type Kind = (typeof KINDS)[number];

const NonEmpty = Type.String({ minLength: 1 });
/** Label and nodeSelector maps; key and value syntax is checked in normalize.ts. */
const StringMap = Type.Record(Type.String(), Type.String());
const StringList = Type.Array(Type.String({ maxLength: LIMITS.argLength }), { maxItems: LIMITS.argItems });
const EnvMap = Type.Record(Type.String(), Type.String({ maxLength: LIMITS.argLength }));

export const CpusSchema = Type.Union([
  Type.Number({ exclusiveMinimum: 0 }),
  Type.String({ description: 'a CPU quantity such as "2", "0.5" or "500m"' }),
]);
export const MemorySchema = Type.Union([
  Type.Integer({ minimum: 1, description: 'a whole number of bytes > 0' }),
  Type.String({ description: 'a memory quantity such as "512Mi", "1Gi" or "100M"' }),
]);
export const ResourcesSchema = Type.Object(
  { cpus: Type.Optional(CpusSchema), memory: Type.Optional(MemorySchema) },
  { additionalProperties: false },
);

export const MetadataSchema = Type.Object(
  { name: NameSchema, labels: Type.Optional(StringMap) },
  { additionalProperties: false },
);

/** Fields Job and Service share: what to run and where. */
const workload = {
  image: Type.Optional(NonEmpty),
  command: Type.Optional(StringList),
  args: Type.Optional(StringList),
  /** Environment as a mapping NAME: value (not Kubernetes' list of {name, value}). */
  env: Type.Optional(EnvMap),
  workingDir: Type.Optional(NonEmpty),
  resources: Type.Optional(ResourcesSchema),
  backoffLimit: Type.Optional(Type.Integer({ minimum: 0 })),
  priority: Type.Optional(Type.Integer()),
  nodeSelector: Type.Optional(StringMap),
  runtime: Type.Optional(Type.Union([Type.Literal('docker'), Type.Literal('process')])),
  privileged: Type.Optional(Type.Boolean()),
};

export const JobSpecSchema = Type.Object(
  {
    ...workload,
    parallelism: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.completions })),
    completions: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.completions })),
    activeDeadlineSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: LIMITS.deadlineSeconds })),
  },
  { additionalProperties: false },
);

export const ServiceSpecSchema = Type.Object(
  {
    ...workload,
    replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: LIMITS.replicas })),
    restartPolicy: Type.Optional(Type.Union([Type.Literal('Always'), Type.Literal('OnFailure')])),
  },
  { additionalProperties: false },
);

export const NodeSpecSchema = Type.Object(
  {
    name: Type.Optional(NameSchema),
    address: Type.Optional(NonEmpty),
    labels: Type.Optional(StringMap),
    capacity: Type.Optional(ResourcesSchema),
    exportDir: Type.Optional(NonEmpty),
  },
  { additionalProperties: false },
);

export const ReplicationRuleSchema = Type.Object(
  {
    prefix: Type.String(),
    copies: Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')]),
  },
  { additionalProperties: false },
);

/** A size where 0 turns a feature off (or lifts a limit). */
const MemoryOrZeroSchema = Type.Union([
  Type.Integer({ minimum: 0, description: 'a whole number of bytes, or 0' }),
  Type.String({ description: 'a memory quantity such as "512Mi", "1Gi" or "100M", or "0"' }),
]);

export const MountSpecSchema = Type.Object(
  {
    path: NonEmpty,
    conflictPolicy: Type.Optional(Type.Literal('newest-wins')),
    copies: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Literal('all')])),
    replication: Type.Optional(Type.Array(ReplicationRuleSchema)),
    rereplicateAfterSeconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })),
    rereplicateRate: Type.Optional(MemoryOrZeroSchema),
    cacheSize: Type.Optional(MemorySchema),
    fileCacheSize: Type.Optional(MemoryOrZeroSchema),
  },
  { additionalProperties: false },
);

function document<K extends Kind, S extends TSchema>(kind: K, spec: S) {
  return Type.Object(
    { apiVersion: Type.Literal(API_VERSION), kind: Type.Literal(kind), metadata: MetadataSchema, spec },
    { additionalProperties: false },
  );
}

export const JobManifestSchema = document('Job', JobSpecSchema);
export const ServiceManifestSchema = document('Service', ServiceSpecSchema);
export const NodeManifestSchema = document('Node', NodeSpecSchema);
export const MountManifestSchema = document('Mount', MountSpecSchema);

/** The whole-document schema of each kind. */
export const MANIFEST_SCHEMAS = {
  Job: JobManifestSchema,
  Service: ServiceManifestSchema,
  Node: NodeManifestSchema,
  Mount: MountManifestSchema,
} as const;

/** Manifests as written (before defaults and unit conversion). */
export type JobManifestSpecInput = Static<typeof JobSpecSchema>;
export type ServiceManifestSpecInput = Static<typeof ServiceSpecSchema>;
export type NodeSpecInput = Static<typeof NodeSpecSchema>;
export type MountSpecInput = Static<typeof MountSpecSchema>;
export type ResourcesInput = Static<typeof ResourcesSchema>;
export type ManifestInput =
  | Static<typeof JobManifestSchema>
  | Static<typeof ServiceManifestSchema>
  | Static<typeof NodeManifestSchema>
  | Static<typeof MountManifestSchema>;
