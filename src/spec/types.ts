// Schema of spec.json, the facts extracted from libguestfs's generator by
// scripts/spec-from-source.ts. The enumerations are runtime arrays so that
// the extraction script can check them against generator/types.ml and fail
// when a libguestfs release adds a kind this schema does not know.

export const STRING_KINDS = [
  'PlainString', 'Device', 'Mountable', 'Pathname', 'FileIn', 'FileOut',
  'Key', 'GUID', 'Filename', 'Dev_or_Path', 'Mountable_or_Path',
] as const;
export type StringKind = (typeof STRING_KINDS)[number];

export const RSTRING_KINDS = ['RPlainString', 'RDevice', 'RMountable'] as const;
export type RStringKind = (typeof RSTRING_KINDS)[number];

export type ArgSpec =
  | { kind: 'Bool' | 'Int' | 'Int64' | 'OptString' | 'BufferIn'; name: string }
  | { kind: 'String' | 'StringList'; name: string; sub: StringKind }
  | { kind: 'Pointer'; name: string; ctype: string };

export const OPTARG_KINDS = ['OBool', 'OInt', 'OInt64', 'OString', 'OStringList'] as const;
export type OptArgSpec = { kind: (typeof OPTARG_KINDS)[number]; name: string };

export type RetSpec =
  | { kind: 'RErr' }
  | { kind: 'RInt' | 'RInt64' | 'RBool' | 'RConstString' | 'RConstOptString' | 'RBufferOut' }
  | { kind: 'RString' | 'RStringList'; sub: RStringKind }
  | { kind: 'RStruct' | 'RStructList'; struct: string }
  | { kind: 'RHashtable'; key: RStringKind; value: RStringKind };

export const FIELD_TYPES = [
  'FChar', 'FString', 'FBuffer', 'FUInt32', 'FInt32', 'FUInt64', 'FInt64',
  'FBytes', 'FUUID', 'FOptPercent',
] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export interface StructSpec {
  name: string;
  camelName: string;
  fields: { name: string; type: FieldType }[];
}

export const VISIBILITIES = [
  'VPublic', 'VPublicNoFish', 'VStateTest', 'VBindTest', 'VDebug', 'VInternal',
] as const;
export type Visibility = (typeof VISIBILITIES)[number];

export interface ActionSpec {
  /** snake_case C short name, e.g. "add_drive" */
  name: string;
  /** daemon procedure number; null = library-side action */
  procNr: number | null;
  /** libguestfs version that added it; [-1, -1, -1] for the binding-test actions */
  added: [number, number, number];
  ret: RetSpec;
  args: ArgSpec[];
  optargs: OptArgSpec[];
  visibility: Visibility;
  /** null = not deprecated */
  deprecatedBy: null | { replacedBy: string | null };
  /** optional feature group, e.g. "linuxxattrs" */
  optional: string | null;
  progress: boolean;
  cancellable: boolean;
  protocolLimitWarning: boolean;
  configOnly: boolean;
  blocking: boolean;
  onceHadNoOptargs: boolean;
  fishAlias: string[];
  fishOutput: null | 'octal' | 'hex';
  /** as the generator computes it (explicit camel_name or derived) */
  camelName: string;
  /** daemon side implemented in OCaml rather than C */
  implOCaml: boolean;
  /** back-compat aliases the generator adds (e.g. add_drive_opts) */
  nonCAliases: string[];
}

export interface Protocol {
  program: number;
  version: number;
  launchFlag: number;
  cancelFlag: number;
  progressFlag: number;
  messageMax: number;
  maxChunkSize: number;
  errorLen: number;
  maxProcNr: number;
}

export interface Spec {
  source: string;
  protocol: Protocol;
  optgroups: Record<string, string[]>;
  structs: StructSpec[];
  actions: ActionSpec[];
}
