/**
 * Strict validation of custom resources against the upstream CRDs in `shared/crds/<project>/<version>/`.
 *
 * Every CRD YAML under the folder is a candidate. `shared/crds/index.json` (group/kind/versions per
 * file) is used only as a lookup hint when it lists exactly the YAML files on disk, so a kind's
 * file is parsed (and its schema compiled with ajv) lazily on first use, once per process;
 * otherwise every file is parsed on first use.
 *
 * The openAPIV3Schema is turned into a JSON schema (draft-07) that behaves like the API server
 * with strict field validation:
 *  - unknown fields: every object node of the structural schema (one with `properties` or
 *    `type: object`) without `x-kubernetes-preserve-unknown-fields: true` and without
 *    `additionalProperties` gets `additionalProperties: false`. This includes `type: object` with no
 *    properties at all: the API server prunes everything below such a node, so strict validation
 *    reports any field there (e.g. controller-gen's nested `volumeClaimTemplate.metadata: {type: object}`).
 *    Nodes inside anyOf/oneOf/allOf/not are value validations, not structure, and are left open.
 *  - the root always allows `apiVersion`, `kind` and `metadata` (ObjectMeta is the server's job);
 *    `x-kubernetes-embedded-resource: true` nodes also allow apiVersion/kind/metadata.
 *  - `x-kubernetes-int-or-string`: integer or string; `nullable: true`: null allowed as well.
 *  - null-valued object fields are dropped before validation, like the API server's pruning of
 *    nulls in non-nullable fields.
 *  - formats int32, int64, byte, date, date-time are checked; other formats are ignored.
 *  - Go RE2 patterns JavaScript cannot compile (inline `(?i)`) are compiled case-insensitively.
 *  - `x-kubernetes-validations` (CEL) rules are NOT evaluated.
 * The render writes `[secret]` for secret values: value errors on that literal are ignored.
 */
import * as fs from "fs";
import * as path from "path";
import { createHash } from "crypto";
import Ajv, { ErrorObject, ValidateFunction } from "ajv";
import * as YAML from "yaml";

export const SECRET_PLACEHOLDER = "[secret]";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The shared folder: $DARE_SHARED_DIR, else `<repo>/../shared`. */
export function sharedDir(): string {
  const env = process.env.DARE_SHARED_DIR;
  return env ? path.resolve(env) : path.resolve(__dirname, "../../../shared");
}

function crdsDir(): string {
  return path.join(sharedDir(), "crds");
}

/** Every .yaml/.yml file under dir, sorted; none when dir does not exist. */
export function listYaml(dir: string): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listYaml(p));
    else if (/\.ya?ml$/.test(e.name)) out.push(p);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// CRD catalogue

interface CrdVersion {
  name: string;
  served: boolean;
  schema: Json | undefined;
}
interface Crd {
  group: string;
  kind: string;
  file: string;
  versions: CrdVersion[];
}

interface Catalogue {
  dir: string;
  /** "group|kind" -> file (from index.json), when the hint is usable */
  hint: Map<string, string> | null;
  parsedFiles: Set<string>;
  crds: Map<string, Crd>; // "group|kind"
  allParsed: boolean;
  validators: Map<string, ValidateFunction | string>; // "apiVersion|kind" -> fn, or compile error
}

let catalogue: Catalogue | null = null;

function getCatalogue(): Catalogue {
  const dir = crdsDir();
  if (catalogue && catalogue.dir === dir) return catalogue;
  const files = listYaml(dir);
  let hint: Map<string, string> | null = null;
  try {
    const idx = JSON.parse(fs.readFileSync(path.join(dir, "index.json"), "utf8")) as unknown;
    if (Array.isArray(idx)) {
      const m = new Map<string, string>();
      const listed = new Set<string>();
      for (const f of idx as { path?: string; crds?: { group?: string; kind?: string }[] }[]) {
        if (!f.path) continue;
        const abs = path.resolve(dir, f.path);
        listed.add(abs);
        for (const c of f.crds ?? []) if (c.group && c.kind) m.set(`${c.group}|${c.kind}`, abs);
      }
      if (listed.size === files.length && files.every((f) => listed.has(f))) hint = m;
    }
  } catch {
    hint = null;
  }
  catalogue = { dir, hint, parsedFiles: new Set(), crds: new Map(), allParsed: false, validators: new Map() };
  return catalogue;
}

function parseFile(cat: Catalogue, file: string): void {
  if (cat.parsedFiles.has(file)) return;
  cat.parsedFiles.add(file);
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const doc of Array.isArray(docs) ? docs : [docs]) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const o = doc.toJS({ maxAliasCount: -1 }) as unknown;
    if (!isObject(o) || o.kind !== "CustomResourceDefinition") continue; // rook starts with an empty doc
    const spec = o.spec;
    if (!isObject(spec) || !isObject(spec.names) || typeof spec.group !== "string") continue;
    const kind = spec.names.kind;
    if (typeof kind !== "string") continue;
    const versions: CrdVersion[] = [];
    for (const v of Array.isArray(spec.versions) ? spec.versions : []) {
      if (!isObject(v) || typeof v.name !== "string") continue;
      const schema = isObject(v.schema) ? v.schema.openAPIV3Schema : isObject(spec.validation) ? spec.validation.openAPIV3Schema : undefined;
      versions.push({ name: v.name, served: v.served !== false, schema });
    }
    cat.crds.set(`${spec.group}|${kind}`, { group: spec.group, kind, file, versions });
  }
}

function parseAll(cat: Catalogue): void {
  if (cat.allParsed) return;
  for (const f of listYaml(cat.dir)) parseFile(cat, f);
  cat.allParsed = true;
}

function findCrd(group: string, kind: string): Crd | undefined {
  const cat = getCatalogue();
  const key = `${group}|${kind}`;
  let crd = cat.crds.get(key);
  if (crd) return crd;
  const hinted = cat.hint?.get(key);
  if (hinted) {
    parseFile(cat, hinted);
    crd = cat.crds.get(key);
    if (crd) return crd;
  }
  if (cat.hint && !hinted) return undefined; // index covers every file and does not know this kind
  parseAll(cat);
  return cat.crds.get(key);
}

/** `{project: version}` from the folder names `shared/crds/<project>/<version>/` (highest version if several). */
export function crdVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  const dir = crdsDir();
  for (const p of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!p.isDirectory()) continue;
    const versions = fs
      .readdirSync(path.join(dir, p.name), { withFileTypes: true })
      .filter((v) => v.isDirectory())
      .map((v) => v.name)
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    if (versions.length) out[p.name] = versions[versions.length - 1];
  }
  return out;
}

/** Every custom resource kind the shared CRDs define, as "group/version Kind" strings (parses all files). */
export function customResourceKinds(): string[] {
  const cat = getCatalogue();
  parseAll(cat);
  const out: string[] = [];
  for (const c of cat.crds.values()) for (const v of c.versions) out.push(`${c.group}/${v.name} ${c.kind}`);
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// openAPIV3Schema -> strict JSON schema

const COPY_KEYS = [
  "type",
  "enum",
  "pattern",
  "format",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "multipleOf",
  "required",
];

function convert(s: Json | undefined, structural: boolean, formats: Set<string>): JsonObject {
  if (!isObject(s)) return {};
  const out: JsonObject = {};
  for (const k of COPY_KEYS) if (s[k] !== undefined) out[k] = s[k];
  if (typeof s.format === "string") formats.add(s.format);
  // OpenAPI 3.0 boolean exclusiveMinimum/Maximum -> draft-07 numbers
  if (s.exclusiveMinimum === true && typeof s.minimum === "number") {
    out.exclusiveMinimum = s.minimum;
    delete out.minimum;
  }
  if (s.exclusiveMaximum === true && typeof s.maximum === "number") {
    out.exclusiveMaximum = s.maximum;
    delete out.maximum;
  }
  if (isObject(s.properties)) {
    const props: JsonObject = {};
    for (const [k, v] of Object.entries(s.properties)) props[k] = convert(v, structural, formats);
    out.properties = props;
  }
  if (isObject(s.items)) out.items = convert(s.items, structural, formats);
  else if (Array.isArray(s.items)) out.items = s.items.map((x) => convert(x, structural, formats));
  if (typeof s.additionalProperties === "boolean") out.additionalProperties = s.additionalProperties;
  else if (isObject(s.additionalProperties)) out.additionalProperties = convert(s.additionalProperties, structural, formats);
  for (const c of ["anyOf", "oneOf", "allOf"]) {
    const v = s[c];
    if (Array.isArray(v)) out[c] = v.map((x) => convert(x, false, formats));
  }
  if (isObject(s.not)) out.not = convert(s.not, false, formats);

  if (s["x-kubernetes-int-or-string"] === true) {
    delete out.type;
    if (!out.anyOf) out.anyOf = [{ type: "integer" }, { type: "string" }];
  }
  if (s["x-kubernetes-embedded-resource"] === true) {
    const props = isObject(out.properties) ? out.properties : {};
    props.apiVersion ??= { type: "string" };
    props.kind ??= { type: "string" };
    props.metadata ??= { type: "object" };
    out.properties = props;
  }
  if (s.nullable === true) {
    if (typeof out.type === "string") out.type = [out.type, "null"];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    if (Array.isArray(out.anyOf)) out.anyOf = [...out.anyOf, { type: "null" }];
  }
  const isObjectNode = s.type === "object" || isObject(s.properties);
  if (structural && isObjectNode && s["x-kubernetes-preserve-unknown-fields"] !== true && s.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

function toStrictSchema(openAPIV3Schema: Json | undefined, formats: Set<string>): JsonObject {
  const root = convert(openAPIV3Schema ?? { type: "object", "x-kubernetes-preserve-unknown-fields": true }, true, formats);
  const props = isObject(root.properties) ? root.properties : {};
  props.apiVersion = { type: "string" };
  props.kind = { type: "string" };
  props.metadata = { type: "object" }; // ObjectMeta: validated by the API server itself, not by the CRD
  root.properties = props;
  return root;
}

// ---------------------------------------------------------------------------------------------
// ajv

/** Go RE2 accepts inline flags such as `(?i)`; JS does not: approximate with a whole-pattern `i`. */
export const lenientRegExp = Object.assign(
  (pattern: string, flags: string): RegExp => {
    try {
      return new RegExp(pattern, flags);
    } catch (e) {
      if (/\(\?i\)/.test(pattern)) return new RegExp(pattern.replace(/\(\?i\)/g, ""), flags + "i");
      throw e;
    }
  },
  { code: "new RegExp" },
);

const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?$/;

/** Formats checked by the validators (as the API server does); any other format name is ignored. */
export function addKubernetesFormats(ajv: Ajv, names: Iterable<string>): void {
  const known: Record<string, Parameters<Ajv["addFormat"]>[1]> = {
    int32: { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647 },
    int64: { type: "number", validate: (n: number) => Number.isInteger(n) },
    byte: { type: "string", validate: (s: string) => B64.test(s) },
    date: { type: "string", validate: (s: string) => DATE.test(s) },
    "date-time": { type: "string", validate: (s: string) => DATE_TIME.test(s) },
  };
  for (const n of names) {
    if (ajv.formats[n] !== undefined) continue;
    ajv.addFormat(n, known[n] ?? true);
  }
}

/**
 * Hash-consing: every container node (one with properties/items/additionalProperties schema) is
 * registered once in the shared ajv instance under a content-derived $id and replaced by a $ref.
 * Identical subtrees (Affinity, Container, Probe... repeated within and across CRDs) are then
 * compiled once per process, which makes compiling the big CRDs several times faster.
 */
function shareSubschemas(ajv: Ajv, node: JsonObject, top = true): JsonObject {
  const out: JsonObject = { ...node };
  if (isObject(out.properties)) {
    const props: JsonObject = {};
    for (const [k, v] of Object.entries(out.properties)) props[k] = isObject(v) ? shareSubschemas(ajv, v, false) : v;
    out.properties = props;
  }
  if (isObject(out.items)) out.items = shareSubschemas(ajv, out.items, false);
  if (isObject(out.additionalProperties)) out.additionalProperties = shareSubschemas(ajv, out.additionalProperties, false);
  for (const c of ["anyOf", "oneOf", "allOf"]) {
    const v = out[c];
    if (Array.isArray(v)) out[c] = v.map((x) => (isObject(x) ? shareSubschemas(ajv, x, false) : x));
  }
  const container = isObject(out.properties) || isObject(out.items) || isObject(out.additionalProperties);
  if (top || !container) return out;
  const id = "crd:" + createHash("sha1").update(JSON.stringify(out)).digest("hex");
  if (!ajv.getSchema(id)) ajv.addSchema({ ...out, $id: id });
  return { $ref: id };
}

let ajvInstance: Ajv | null = null;
function getAjv(): Ajv {
  ajvInstance ??= new Ajv({
    allErrors: true,
    strict: false,
    logger: false,
    validateSchema: false,
    inlineRefs: false,
    code: { regExp: lenientRegExp, optimize: false },
    messages: false,
  });
  return ajvInstance;
}

// ---------------------------------------------------------------------------------------------
// errors

function joinPath(base: string, key: string | number): string {
  if (typeof key === "number" || /^[0-9]+$/.test(key)) return `${base}[${key}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key)) return base ? `${base}.${key}` : key;
  return `${base}[${JSON.stringify(key)}]`;
}

function pointerSegments(ptr: string): string[] {
  return ptr ? ptr.split("/").slice(1).map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~")) : [];
}

/** JSON pointer ("/spec/template/0") -> "spec.template[0]" */
export function pointerToPath(ptr: string, prefix = ""): string {
  return pointerSegments(ptr).reduce((acc, seg) => joinPath(acc, seg), prefix);
}

function valueAt(root: unknown, ptr: string): unknown {
  let cur = root;
  for (const seg of pointerSegments(ptr)) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** ajv errors -> "path: message" strings; value errors on "[secret]" are dropped. */
export function formatAjvErrors(errors: ErrorObject[], data: unknown, prefix = ""): string[] {
  const out: string[] = [];
  const combinators = new Set(errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf").map((e) => e.instancePath));
  for (const e of errors) {
    if (/\/(anyOf|oneOf)\/\d+\//.test(e.schemaPath) && combinators.has(e.instancePath)) continue;
    const value = valueAt(data, e.instancePath);
    if (e.keyword !== "required" && e.keyword !== "additionalProperties" && value === SECRET_PLACEHOLDER) continue;
    const p = pointerToPath(e.instancePath, prefix);
    const at = p || "(root)";
    const prm = e.params as Record<string, unknown>;
    const got = JSON.stringify(value);
    switch (e.keyword) {
      case "required":
        out.push(`${joinPath(p, String(prm.missingProperty))}: required field is missing`);
        break;
      case "additionalProperties":
        out.push(`${joinPath(p, String(prm.additionalProperty))}: unknown field "${String(prm.additionalProperty)}"`);
        break;
      case "type":
        out.push(`${at}: must be ${String(prm.type)}, got ${got}`);
        break;
      case "enum":
        out.push(`${at}: must be one of ${JSON.stringify(prm.allowedValues)}, got ${got}`);
        break;
      case "format":
        out.push(`${at}: must match format "${String(prm.format)}", got ${got}`);
        break;
      case "pattern":
        out.push(`${at}: must match pattern ${JSON.stringify(prm.pattern)}, got ${got}`);
        break;
      case "anyOf":
      case "oneOf":
        out.push(`${at}: ${got} does not match the allowed types (${e.keyword})`);
        break;
      default:
        out.push(`${at}: ${e.message ?? e.keyword}${got !== undefined && typeof value !== "object" ? `, got ${got}` : ""}`);
    }
  }
  return [...new Set(out)];
}

// ---------------------------------------------------------------------------------------------
// public API

/** Drops null-valued object fields (the API server prunes nulls of non-nullable fields). */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (isObject(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = dropNulls(x);
    return out;
  }
  return v;
}

function getValidator(apiVersion: string, kind: string): ValidateFunction | string | null {
  const cat = getCatalogue();
  const key = `${apiVersion}|${kind}`;
  const cached = cat.validators.get(key);
  if (cached !== undefined) return cached;
  const slash = apiVersion.indexOf("/");
  if (slash < 0) return null; // core group: never a CRD
  const group = apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  const crd = findCrd(group, kind);
  if (!crd) return null;
  const v = crd.versions.find((x) => x.name === version);
  let result: ValidateFunction | string;
  if (!v) {
    result = `apiVersion ${apiVersion}: CRD ${kind}.${group} has no version "${version}" (has: ${crd.versions.map((x) => x.name).join(", ")})`;
  } else if (!v.served) {
    result = `apiVersion ${apiVersion}: version "${version}" of CRD ${kind}.${group} is not served`;
  } else {
    const formats = new Set<string>();
    const schema = toStrictSchema(v.schema, formats);
    const ajv = getAjv();
    addKubernetesFormats(ajv, formats);
    try {
      result = ajv.compile(shareSubschemas(ajv, schema));
    } catch (e) {
      result = `cannot compile the schema of ${kind}.${group}/${version} (${path.relative(cat.dir, crd.file)}): ${(e as Error).message}`;
    }
  }
  cat.validators.set(key, result);
  return result;
}

/**
 * Validates a custom resource against the shared CRDs. Returns null when no CRD defines its
 * apiVersion/kind, otherwise the list of errors (empty = valid).
 */
export function validateCustomResource(obj: unknown): string[] | null {
  if (!isObject(obj)) return null;
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  const validator = getValidator(apiVersion, kind);
  if (validator === null) return null;
  if (typeof validator === "string") return [validator];
  const data = dropNulls(obj);
  if (validator(data)) return [];
  return formatAjvErrors(validator.errors ?? [], data);
}
