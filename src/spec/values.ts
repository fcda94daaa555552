// The runtime values that cross every layer: what a caller may pass for each
// argument kind, and what each return kind decodes to. They live beside the
// spec, at the bottom, so the typed API, the codec and the shell share them
// without importing one another.

/** Arguments: what a caller may pass for each kind. */
export type ArgValue = string | number | bigint | boolean | null | readonly string[] | Uint8Array;
export type OptArgs = Record<string, ArgValue | undefined>;

/** A decoded struct: field names as in libguestfs; 64-bit fields are bigint. */
export type StructValue = Record<string, string | number | bigint | Buffer>;
export type RetValue = void | number | bigint | boolean | string | null | string[] | Buffer | StructValue | StructValue[] | Record<string, string>;

/**
 * How one call moves a FileIn/FileOut argument's bytes, and how it is
 * cancelled. Without it a FileIn argument names a host file that is read and
 * a FileOut argument one that is written.
 */
export interface CallTransfer {
  signal?: AbortSignal | undefined;
  /** In-memory data for a FileIn argument instead of reading its host path. */
  fileIn?: AsyncIterable<Uint8Array> | undefined;
  /** In-memory receiver for a FileOut argument instead of writing its host path. */
  fileOut?: ((chunk: Buffer) => void | Promise<void>) | undefined;
  /**
   * Library-side actions: told the size of each chunk their own calls
   * collect in host memory (read_file's content, find's listing); a throw
   * stops the call. The recipe sandbox bounds a call's host memory with it.
   */
  countBuffered?: ((bytes: number) => void) | undefined;
}

/**
 * One parameter a recipe declares (`export const params = { level: { … } }`),
 * so `--param` values are checked before anything launches and
 * `guestsh run RECIPE --help` can list them. Values reach the recipe as
 * strings, defaults filled in.
 */
export interface RecipeParamSpec {
  description: string;
  /** Its value when not given; without one the param is absent unless given. */
  default?: string | number | boolean;
  /** Refused when missing. */
  required?: boolean;
  /** What the value must be: any text (the default), a number, a flag (true/false, yes/no, on/off, 1/0), or a comma-separated list. */
  type?: 'string' | 'number' | 'boolean' | 'list';
  /** The only values it accepts. */
  values?: readonly string[];
}

export type RecipeParamSpecs = Readonly<Record<string, RecipeParamSpec>>;
